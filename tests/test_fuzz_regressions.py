"""Inputs the fuzzers of `test_fuzz.py` found, each kept as a plain example.

Each one made a reader raise something other than a `SiamkitError` (or
accept data it cannot use); each now gives a one-line `DataError` or
`ConfigError` that names the file. Tests are named `test_READER_...`
(`benchmarks/robustness.py` counts the cases per reader).
"""

import io

import numpy as np
import pytest

from siamkit.errors import ConfigError, DataError


def test_wav_whose_data_chunk_is_shorter_than_its_frames_is_a_data_error():
    from siamkit.datasets.wav import decode_wav

    # 1 channel, 1 Hz, 8-bit, an empty data chunk: `wave` raised a bare RuntimeError while seeking in it.
    data = (
        b"RIFF$\x00\x00\x00WAVE\x00fmt \x10\x00\x00\x00\x01\x00\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00"
        b"\x01\x00\x08\x00data\x00\x00\x00\x00"
    )
    with pytest.raises(DataError, match="'clip.wav' is not a readable PCM WAV file"):
        decode_wav(io.BytesIO(data), name="clip.wav")


def test_toml_config_that_is_not_utf8_is_a_config_error(tmp_path):
    from siamkit.training.config import read_toml

    path = tmp_path / "config.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ConfigError, match="config.toml: not valid TOML"):
        read_toml(path)


class _Run:
    path = "runs/stub"
    is_two_tower = False

    def fingerprint(self):
        return "f" * 64


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"embeddings": np.eye(2), "paths": np.array("a.png")}, "`paths` must be a 1-D array"),
        ({"embeddings": np.eye(2), "labels": np.array([["a"], ["b"]])}, "`labels` must be a 1-D array"),
        ({"embeddings": np.array([["1", "2"]])}, "`embeddings` must hold real numbers, got dtype <U1"),
        ({"embeddings": np.ones((2, 2), complex)}, "must hold real numbers, got dtype complex128"),
        ({"embeddings": np.ones((2, 2, 2))}, r"must be a \(rows, dim\) array, got shape \(2, 2, 2\)"),
    ],
    ids=["0-d paths", "2-d labels", "string embeddings", "complex embeddings", "3-d embeddings"],
)
def test_npz_inputs_of_the_wrong_shape_or_dtype_are_data_errors(tmp_path, arrays, message):
    from siamkit.index.inputs import embed_data

    path = tmp_path / "embeddings.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        embed_data(_Run(), str(path))


@pytest.mark.parametrize("key", ["val_fraction", "positive_fraction"])
@pytest.mark.parametrize("value", ["cnn", [0.5]])
def test_toml_fractions_that_are_not_numbers_are_config_errors(tmp_path, key, value):
    from siamkit.training.config import resolve

    path = tmp_path / "config.toml"
    path.write_text(f"{key} = {value!r}".replace("'", '"'))
    with pytest.raises(ConfigError, match=f"{key} must be in"):
        resolve(path)


@pytest.mark.parametrize("key", ["ids", "embeddings"])
@pytest.mark.parametrize(
    "damage",
    [lambda data: b"", lambda data: data.replace(b"}", b"|", 1), lambda data: b"PK\x03\x04" + data[4:]],
    ids=["empty", "header dict not closed", "zip magic"],
)
def test_index_array_file_damaged_behind_a_matching_checksum_is_a_data_error(tmp_path, key, damage):
    import json

    from siamkit.index import Index, files

    index = Index(2)
    index.add(np.eye(2))
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    path = tmp_path / manifest["files"][key]["name"]
    path.write_bytes(damage(path.read_bytes()))
    manifest["files"][key].update(bytes=path.stat().st_size, sha256=files._sha256(path))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=rf"{key}\.1\.npy is not a valid array file"):
        Index.load(tmp_path)


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_central_directory_set(offset, value, **arrays):
    """A `.npz` of `arrays` whose first central directory entry has the 2-byte field at `offset` set to `value`."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = bytearray(buffer.getvalue())
    at = data.index(b"PK\x01\x02") + offset
    data[at : at + 2] = value.to_bytes(2, "little")
    return bytes(data)


# An archive member of an unknown compression method (zipfile: NotImplementedError), or flagged encrypted
# (RuntimeError).
ZIP_DAMAGE = {"unknown compression": (10, 99), "encrypted flag": (8, 1)}


@pytest.mark.parametrize("damage", ZIP_DAMAGE)
def test_npz_archive_of_an_unknown_compression_or_encrypted_is_a_data_error(tmp_path, damage):
    from siamkit.index.inputs import read_npz

    path = tmp_path / "inputs.npz"
    path.write_bytes(_npz_central_directory_set(*ZIP_DAMAGE[damage], embeddings=np.ones((2, 3), "float32")))
    with pytest.raises(DataError, match="inputs.npz: not a readable .npz file"):
        read_npz(str(path))


FEATURE_FILES = {
    **{f"{damage.replace(' ', '-')}.npz": _npz_central_directory_set(*where, vector=np.ones(3))
       for damage, where in ZIP_DAMAGE.items()},
    "empty.npy": b"",  # EOFError
    "zip-magic.npy": b"PK\x03\x04" + _npy(np.ones(3))[4:],  # zipfile.BadZipFile
    "header-not-closed.npy": _npy(np.ones(3)).replace(b"}", b"|", 1),  # tokenize.TokenError
    "complex.npy": _npy(np.ones(3, "complex64")),  # was read as its real part
}


@pytest.mark.parametrize("name", FEATURE_FILES)
def test_features_damaged_or_complex_vector_is_a_data_error(tmp_path, name):
    from siamkit.datasets.text import read_features

    path = tmp_path / name
    path.write_bytes(FEATURE_FILES[name])
    with pytest.raises(DataError, match=rf"{name}: (not a readable|a feature file holds one 1-D vector)"):
        read_features([path])
