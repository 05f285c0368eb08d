"""Standard datasets: the real files, where files are found, and download + convert offline."""

import gzip
import hashlib
import io
import os
import tarfile
import urllib.error
import urllib.request
import wave
import zipfile

import numpy as np
import pytest
from PIL import Image

from siamkit import cli, datasets
from siamkit.datasets import fsdd, mnist, omniglot, sources
from siamkit.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test reads the real user cache or $SIAMKIT_DATA_DIR, or reaches the network."""
    monkeypatch.setenv(sources.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.ENV_DATA_DIR, raising=False)

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path / "cache"


# --- the real files in ../shared/data --------------------------------------


@pytest.mark.data
def test_mnist(shared_data_dir):
    ds = datasets.load("mnist", data_dir=shared_data_dir)
    assert ds.x.shape == (70000, 28, 28, 1) and ds.x.dtype == np.float32
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0 and ds.y.dtype == np.int64
    test = datasets.load("mnist", subset="test", data_dir=shared_data_dir)
    assert np.bincount(test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train = datasets.load("mnist", subset="train", data_dir=shared_data_dir)
    assert np.bincount(train.y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    np.testing.assert_array_equal(ds.x[60000:], test.x)
    assert ds.meta["split"].sum() == 10000
    # Ink is high: the border of a digit image is nearly all background (0), the centre is not.
    assert ds.x[:, 0].mean() < 0.001 and ds.x[:, 10:18, 10:18].mean() > 0.3


@pytest.mark.data
def test_omniglot_split_is_class_disjoint(shared_data_dir):
    counts = {}
    for subset in ("background", "evaluation"):
        pixels, labels, meta, info = omniglot.read(subset, data_dir=shared_data_dir)
        counts[subset] = (len(labels), set(labels.tolist()), set(meta["alphabet"].tolist()))
        assert pixels.shape[1:] == (105, 105) and set(np.unique(pixels[:500]).tolist()) == {0, 255}
    (n_bg, chars_bg, alpha_bg), (n_ev, chars_ev, alpha_ev) = counts["background"], counts["evaluation"]
    assert (n_bg, len(chars_bg), len(alpha_bg)) == (19280, 964, 30)
    assert (n_ev, len(chars_ev), len(alpha_ev)) == (13180, 659, 20)
    assert not chars_bg & chars_ev and not alpha_bg & alpha_ev
    assert len(info["alphabet_names"]) == 50 and len(info["class_names"]) == 1623
    assert info["class_names"][0] == "Arcadian/character01"


@pytest.mark.data
def test_omniglot_dataset(shared_data_dir):
    ds = datasets.load("omniglot", subset="evaluation", image_size=28, data_dir=shared_data_dir)
    assert ds.x.shape == (13180, 28, 28, 1) and ds.x.dtype == np.float32
    assert 0.03 < float(ds.x.mean()) < 0.15  # about 8% of pixels are strokes, now high
    assert set(ds.meta) == {"alphabet", "character", "drawer", "split"}
    assert ds.meta["drawer"].min() == 1 and ds.meta["drawer"].max() == 20 and set(ds.meta["split"]) == {1}
    assert ds.info["alphabet_names"][int(ds.meta["alphabet"][0])] == "Angelic"
    assert ds.y.min() == 964 and ds.num_classes == 659


@pytest.mark.data
def test_fsdd(shared_data_dir):
    ds = datasets.load("fsdd", data_dir=shared_data_dir)
    assert len(ds) == 3000 and isinstance(ds.x, datasets.Waveforms)
    assert ds.info["sample_rate"] == 8000 and len(ds.info["speaker_names"]) == 6
    assert ds.x[0].dtype == np.int16 and ds.x.lengths.min() == 1148 and ds.x.lengths.max() == 18262
    assert np.bincount(ds.y).tolist() == [300] * 10
    test = datasets.load("fsdd", subset="test", data_dir=shared_data_dir)
    assert len(test) == 300 and test.meta["index"].max() == 4
    assert len(datasets.load("fsdd", subset="train", data_dir=shared_data_dir)) == 2700
    with np.load(os.path.join(shared_data_dir, "fsdd.npz")) as f:
        np.testing.assert_array_equal(ds.x[2999], f["audio"][f["offsets"][2999] :])
        assert sources.content_sha256(f["audio"]) == fsdd.REMOTE.content_sha256["audio"]


@pytest.mark.data
def test_data_dir_from_environment_and_cli_listing(shared_data_dir, monkeypatch, capsys):
    monkeypatch.setenv(sources.ENV_DATA_DIR, str(shared_data_dir))
    assert sources.find("mnist.npz") == os.path.join(str(shared_data_dir), "mnist.npz")
    assert cli.main(["datasets", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "mnist.npz" in lines["mnist"] and "70,000" in lines["mnist"]
    assert lines["fashion_mnist"].rstrip().endswith("no")
    assert lines["digits"].rstrip().endswith("bundled")


# --- registry --------------------------------------------------------------


def test_digits_unchanged_from_sklearn():
    from sklearn.datasets import load_digits

    ds = datasets.load("digits")
    np.testing.assert_array_equal(ds.x[..., 0], (load_digits().images / 16.0).astype("float32"))
    assert ds.info["image_size"] == (8, 8) and ds.info["channels"] == 1


def test_load_rejects_bad_options():
    with pytest.raises(ConfigError, match="invalid dataset 'nope'"):
        datasets.load("nope")
    with pytest.raises(ConfigError, match="invalid mnist subset 'val'"):
        datasets.load("mnist", subset="val")
    with pytest.raises(ConfigError, match="no subsets"):
        datasets.load("digits", subset="train")
    with pytest.raises(ConfigError, match="audio"):
        datasets.load("fsdd", image_size=28)


def test_offline_without_data_names_file_and_variable(isolated_cache):
    with pytest.raises(DataError) as info:
        datasets.load("fashion_mnist")
    message = str(info.value)
    assert "fashion_mnist.npz" in message and "SIAMKIT_DATA_DIR" in message and "network disabled" in message
    with pytest.raises(DataError, match="omniglot.npz was not found in .*SIAMKIT_DATA_DIR"):
        datasets.load("omniglot", download=False)


def test_info_cli(capsys):
    assert cli.main(["datasets", "info", "omniglot"]) == 0
    out = capsys.readouterr().out
    assert "32,460 (background 19,280, evaluation 13,180)" in out and "1623" in out and "SIAMKIT_DATA_DIR" in out
    assert cli.main(["datasets", "info", "nope"]) == 2


# --- where files are found --------------------------------------------------


def test_search_order(tmp_path, monkeypatch, isolated_cache):
    for folder in ("arg", "env", "cache"):
        os.makedirs(tmp_path / folder, exist_ok=True)
    monkeypatch.setenv(sources.ENV_CACHE_DIR, str(tmp_path / "cache"))
    (tmp_path / "cache" / "x.npz").write_bytes(b"c")
    assert sources.find("x.npz") == str(tmp_path / "cache" / "x.npz")
    monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path / "env"))
    (tmp_path / "env" / "x.npz").write_bytes(b"e")
    assert sources.find("x.npz") == str(tmp_path / "env" / "x.npz")
    (tmp_path / "arg" / "x.npz").write_bytes(b"a")
    assert sources.find("x.npz", data_dir=tmp_path / "arg") == str(tmp_path / "arg" / "x.npz")
    assert sources.find("y.npz", data_dir=tmp_path / "arg") is None


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv(sources.ENV_CACHE_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert sources.cache_dir() == os.path.join("/somewhere", "siamkit")


# --- download and convert, offline on synthetic archives ---------------------


def _serve(monkeypatch, files):
    """Make `urlopen` serve `{url: bytes}`; returns the list of URLs fetched."""
    fetched = []

    def urlopen(url, timeout=None):
        if url not in files:
            raise urllib.error.URLError(f"unknown url {url}")
        fetched.append(url)
        return io.BytesIO(files[url])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return fetched


def _remote_for(remote, blobs, **changes):
    """`remote` with synthetic blobs at fake URLs and their real checksums."""
    files = {name: (f"https://example.test/{name}", hashlib.sha256(blobs[name]).hexdigest()) for name in remote.files}
    return sources.Remote(files, remote.convert, changes.get("content_sha256", {}))


def _idx(array):
    codes = {np.dtype("uint8"): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def test_parse_idx():
    a = RNG.integers(0, 256, (3, 4, 5), dtype="uint8")
    np.testing.assert_array_equal(mnist.parse_idx(_idx(a)), a)
    i32 = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + np.array([1, -7], ">i4").tobytes()
    assert mnist.parse_idx(i32).tolist() == [1, -7]
    with pytest.raises(DataError, match="bad magic"):
        mnist.parse_idx(b"PK\x03\x04rest")
    with pytest.raises(DataError, match=r"shape \(3, 4, 5\)"):
        mnist.parse_idx(_idx(a)[:-1])


def test_mnist_download_and_convert(monkeypatch, isolated_cache):
    arrays = {
        "train_images": RNG.integers(0, 256, (6, 28, 28), dtype="uint8"),
        "train_labels": RNG.integers(0, 10, 6, dtype="uint8"),
        "test_images": RNG.integers(0, 256, (2, 28, 28), dtype="uint8"),
        "test_labels": RNG.integers(0, 10, 2, dtype="uint8"),
    }
    blobs = {mnist.PARTS[k]: gzip.compress(_idx(v)) for k, v in arrays.items()}
    remote = _remote_for(mnist.REMOTES["mnist"], blobs)
    monkeypatch.setitem(mnist.REMOTES, "mnist", remote)
    fetched = _serve(monkeypatch, {url: blobs[name] for name, (url, _) in remote.files.items()})

    ds = datasets.load("mnist")
    assert len(fetched) == 4 and os.listdir(isolated_cache) == ["mnist.npz"]  # downloads removed
    with np.load(isolated_cache / "mnist.npz") as f:
        for key, value in arrays.items():
            np.testing.assert_array_equal(f[key], value)
    np.testing.assert_allclose(ds.x[7, ..., 0], arrays["test_images"][1] / 255, atol=1e-7)
    assert ds.y.tolist() == arrays["train_labels"].tolist() + arrays["test_labels"].tolist()
    datasets.load("mnist", subset="test")
    assert len(fetched) == 4  # the second load reads the cache


def test_download_checksum_mismatch_writes_nothing(monkeypatch, isolated_cache):
    blobs = {name: gzip.compress(b"x") for name in mnist.PARTS.values()}
    remote = _remote_for(mnist.REMOTES["fashion_mnist"], blobs)
    first = next(iter(remote.files))
    url, _ = remote.files[first]
    remote.files[first] = (url, "0" * 64)
    monkeypatch.setitem(mnist.REMOTES, "fashion_mnist", remote)
    _serve(monkeypatch, {url: blobs[name] for name, (url, _) in remote.files.items()})
    with pytest.raises(DataError, match="SHA-256 .* does not match the expected 0000"):
        datasets.load("fashion_mnist")
    assert os.listdir(isolated_cache) == []


def _png_bytes(pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(bool)).save(buf, "PNG")  # 1-bit, as the official files
    return buf.getvalue()


def test_omniglot_download_and_convert(monkeypatch, isolated_cache):
    # Two background alphabets (ids 1-2 and 3) and one evaluation alphabet (id 4), 2 drawers each.
    layout = [
        ("images_background", "Zeta", 1, 1),
        ("images_background", "Zeta", 2, 2),
        ("images_background", "Alpha", 1, 3),
        ("images_evaluation", "Omega", 1, 4),
    ]
    pixels, blobs = {}, {}
    for top in ("images_background", "images_evaluation"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for split, alphabet, character, char_id in layout:
                if split != top:
                    continue
                for drawer in (2, 1):  # out of order on purpose
                    img = RNG.integers(0, 2, (5, 5), dtype="uint8")
                    pixels[char_id, drawer] = img
                    name = f"{top}/{alphabet}/character{character:02d}/{char_id:04d}_{drawer:02d}.png"
                    archive.writestr(name, _png_bytes(img))
            archive.writestr(f"{top}/README.txt", "ignored")
        blobs[f"{top}.zip"] = buf.getvalue()
    remote = _remote_for(omniglot.REMOTE, blobs)
    monkeypatch.setattr(omniglot, "REMOTE", remote)
    _serve(monkeypatch, {url: blobs[name] for name, (url, _) in remote.files.items()})

    ds = datasets.load("omniglot")
    with np.load(isolated_cache / "omniglot.npz") as f:
        assert f["char_id"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4] and f["drawer"].tolist() == [1, 2] * 4
        assert f["alphabet_names"].tolist() == ["Zeta", "Alpha", "Omega"]  # ordered by first character id
        assert f["alphabet_split"].tolist() == [0, 0, 1] and f["alphabet_num_chars"].tolist() == [2, 1, 1]
        assert f["alphabet_first_char_id"].tolist() == [1, 3, 4] and f["split"].tolist() == [0] * 6 + [1] * 2
        np.testing.assert_array_equal(f["images"][5], pixels[3, 2])
    np.testing.assert_array_equal(ds.x[5, ..., 0], 1 - pixels[3, 2])  # ink = 1
    assert ds.y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and ds.meta["character"].tolist() == [1, 1, 2, 2, 1, 1, 1, 1]
    assert ds.info["class_names"] == ["Zeta/character01", "Zeta/character02", "Alpha/character01", "Omega/character01"]
    assert len(datasets.load("omniglot", subset="evaluation")) == 2


def _wav_bytes(samples, rate=8000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, "<i2").tobytes())
    return buf.getvalue()


def _fsdd_archive(clips):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, samples in clips.items():
            data = _wav_bytes(samples)
            member = tarfile.TarInfo(f"free-spoken-digit-dataset-abc/recordings/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buf.getvalue()


def test_fsdd_download_and_convert(monkeypatch, isolated_cache):
    clips = {
        f"{d}_{s}_{i}.wav": RNG.integers(-900, 900, 10 + d + i) for s in ("zed", "amy") for d in (1, 0) for i in (6, 0)
    }
    blob = _fsdd_archive(clips)
    expected_audio = np.concatenate([clips[f"{d}_{s}_{i}.wav"] for s in ("amy", "zed") for d in (0, 1) for i in (0, 6)])
    remote = _remote_for(
        fsdd.REMOTE,
        {"fsdd.tar.gz": blob},
        content_sha256={"audio": sources.content_sha256(expected_audio.astype("int16"))},
    )
    monkeypatch.setattr(fsdd, "REMOTE", remote)
    _serve(monkeypatch, {remote.files["fsdd.tar.gz"][0]: blob})

    ds = datasets.load("fsdd")
    assert ds.info["speaker_names"] == ["amy", "zed"] and ds.info["sample_rate"] == 8000
    np.testing.assert_array_equal(ds.x.samples, expected_audio)
    assert ds.meta["digit"].tolist() == [0, 0, 1, 1] * 2 and ds.meta["index"].tolist() == [0, 6] * 4
    assert ds.meta["split"].tolist() == [1, 0] * 4
    np.testing.assert_array_equal(ds.x[3], clips["1_amy_6.wav"])
    with np.load(isolated_cache / "fsdd.npz") as f:
        assert f["filenames"][3] == "1_amy_6.wav" and int(f["sample_rate"]) == 8000
        assert f["lengths"].tolist() == [len(c) for c in ds.x]


def test_fsdd_content_check_rejects_changed_upstream(monkeypatch, isolated_cache):
    blob = _fsdd_archive({"0_amy_0.wav": [1, 2, 3], "1_amy_0.wav": [4]})
    remote = _remote_for(fsdd.REMOTE, {"fsdd.tar.gz": blob}, content_sha256={"audio": "f" * 64})
    monkeypatch.setattr(fsdd, "REMOTE", remote)
    _serve(monkeypatch, {remote.files["fsdd.tar.gz"][0]: blob})
    with pytest.raises(DataError, match="array 'audio' .* expected ffff"):
        datasets.load("fsdd")
    assert not (isolated_cache / "fsdd.npz").exists()


# --- containers --------------------------------------------------------------


def test_waveforms():
    clips = [RNG.integers(-5, 5, n) for n in (3, 0, 4)]
    w = datasets.Waveforms.from_list(clips, 16000)
    assert len(w) == 3 and w.lengths.tolist() == [3, 0, 4]
    np.testing.assert_array_equal(w[-1], clips[2])
    sub = w[np.array([True, False, True])]
    assert isinstance(sub, datasets.Waveforms) and sub.sample_rate == 16000
    np.testing.assert_array_equal(sub[1], clips[2])
    with pytest.raises(IndexError):
        w[3]
    ds = datasets.Dataset("a", w, np.array([0, 1, 0]))
    assert len(ds.subset(ds.y == 0).x) == 2


def test_read_wav_mixes_channels_to_int16_and_names_bad_files(tmp_path):
    left = np.array([1000, -2000, 32767], "<i2")
    right = np.array([3000, 2000, 32767], "<i2")
    with wave.open(str(tmp_path / "s.wav"), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(np.stack([left, right], axis=1).tobytes())
    samples, rate = datasets.waveforms.read_wav(str(tmp_path / "s.wav"))
    assert rate == 8000 and samples.dtype == np.int16
    np.testing.assert_array_equal(samples, [2000, 0, 32767])
    (tmp_path / "bad.wav").write_bytes(b"RIFF-not-really")
    with pytest.raises(DataError, match="bad.wav.*not a readable PCM WAV"):
        datasets.waveforms.read_wav(str(tmp_path / "bad.wav"))
    with pytest.raises(DataError, match="missing.wav.*cannot be read"):
        datasets.waveforms.read_wav(str(tmp_path / "missing.wav"))


def test_containers_refuse_mismatched_parts_with_a_data_error():
    from siamkit.datasets.base import Pairs
    from siamkit.datasets.waveforms import Waveforms

    with pytest.raises(DataError, match="x has 3 samples but y has 2"):
        datasets.Dataset("d", np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(DataError, match=r"meta\['group'\] has 1 rows, expected 2"):
        datasets.Dataset("d", np.zeros((2, 2)), np.array([0, 1]), meta={"group": [0]})
    with pytest.raises(DataError, match="pair indices for 2 labels"):
        Pairs("p", np.zeros((2, 2)), np.zeros((2, 2)), np.array([0]), np.array([1, 0]), np.array([1, 0]))
    with pytest.raises(DataError, match="end at len"):
        Waveforms(np.zeros(4), np.array([0, 3]), 8000)
    with pytest.raises(DataError, match="must not decrease"):
        Waveforms(np.zeros(4), np.array([0, 3, 2, 4]), 8000)
