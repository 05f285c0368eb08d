"""Fuzzed readers of user input: each input gives a result or a `SiamkitError` with a message.

Every reader is fed valid files and the same files mutated (truncated, bytes
flipped, magic bytes swapped, bytes spliced in, header fields set to any
value, replaced by random bytes), and must answer with a result or a
`SiamkitError` whose message is not empty: never another exception, and
never a hang (the profiles' deadline is 10 s per input).

The `ci` Hypothesis profile (the default) tries a few dozen inputs per
reader; `HYPOTHESIS_PROFILE=long` (`scripts/fuzz_long.sh`) tries thousands.
With `SIAMKIT_FUZZ_REPORT=FILE` the number of inputs each reader was given
is written to FILE as JSON.
"""

import collections
import csv
import io
import json
import math
import os
import shutil
import struct
import tempfile
import wave
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from conftest import module_report
from siamkit.errors import SiamkitError

EXAMPLES = collections.Counter()


_examples_report = module_report("SIAMKIT_FUZZ_REPORT", lambda: dict(sorted(EXAMPLES.items())))


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="siamkit-fuzz-") as folder:
        yield folder


def outcome(reader, fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, or the `SiamkitError` it raised (checked to have a message).

    Counts one input of `reader` (None: a further call on the same input).
    """
    if reader:
        EXAMPLES[reader] += 1
    try:
        return fn(*args, **kwargs)
    except SiamkitError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return err


MAGICS = [b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"\xff\xd8\xff", b"RIFF", b"II*\x00", b"PK\x03\x04", b"\x93NUMPY"]


@st.composite
def mutated(draw, data):
    """`data` as given, or damaged in one of the ways a file gets damaged."""
    kind = draw(st.sampled_from(["keep", "truncate", "flip", "magic", "splice", "random"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "flip" and data:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] ^= draw(st.integers(1, 255))
        return bytes(out)
    if kind == "magic":
        magic = draw(st.sampled_from(MAGICS))
        return magic + data[len(magic) :]
    if kind == "splice":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(max_size=64)) + data[at + draw(st.integers(0, 16)) :]
    if kind == "random":
        return draw(st.binary(max_size=512))
    return data


# --- images ---------------------------------------------------------------------------------------------------


def _image_pool():
    """Small valid images in every mode and format PIL writes: `[(extension, bytes)]`."""
    rng = np.random.default_rng(0)
    pool = []
    modes = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
    for mode in modes:
        base = Image.fromarray(rng.integers(0, 255, (5, 7, 4), dtype=np.uint8), "RGBA")
        img = base.convert("P") if mode in ("P", "PA") else base.convert("RGBA" if mode == "LA" else "RGB")
        img = img.convert(mode) if mode not in ("P",) else img
        for ext, fmt in [(".png", "PNG"), (".gif", "GIF"), (".bmp", "BMP"), (".tif", "TIFF"), (".webp", "WEBP"),
                         (".jpg", "JPEG")]:
            buffer = io.BytesIO()
            try:
                img.save(buffer, fmt)
            except (OSError, ValueError, KeyError):
                continue  # not every mode has every format
            pool.append((ext, buffer.getvalue()))
    return pool


IMAGES = _image_pool()


@st.composite
def huge_declared_size(draw):
    """A PNG, GIF or BMP whose header declares any width and height (a decompression bomb at the top)."""
    ext, data = draw(st.sampled_from([item for item in IMAGES if item[0] in (".png", ".gif", ".bmp")]))
    out = bytearray(data)
    if ext == ".png":
        w, h = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
        out[16:24] = struct.pack(">II", w, h)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))  # a valid IHDR checksum
    elif ext == ".gif":
        out[6:10] = struct.pack("<HH", draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
    else:
        out[18:26] = struct.pack("<ii", draw(st.integers(-(2**31), 2**31 - 1)), draw(st.integers(-(2**31), 2**31 - 1)))
    return ext, bytes(out)


image_files = st.one_of(
    st.sampled_from(IMAGES).flatmap(lambda item: mutated(item[1]).map(lambda data: (item[0], data))),
    huge_declared_size(),
)


@given(image_files, st.sampled_from([None, 8, (5, 9)]), st.sampled_from([None, 1, 3, 4]))
def test_image_decoding(workdir, file, image_size, channels):
    from siamkit.datasets.images import decode, read_header

    ext, data = file
    path = os.path.join(workdir, "image" + ext)
    with open(path, "wb") as f:
        f.write(data)
    outcome("images", read_header, path)
    result = outcome(None, decode, path, image_size, channels, max_pixels=1 << 20)
    if isinstance(result, np.ndarray):
        assert result.dtype == np.uint8 and result.ndim == 3


# --- WAV ------------------------------------------------------------------------------------------------------

# Offsets of the fmt fields in a canonical 44-byte header: (offset, struct format).
WAV_FIELDS = {"format": (20, "<H"), "channels": (22, "<H"), "rate": (24, "<I"), "byte_rate": (28, "<I"),
              "block_align": (32, "<H"), "bits": (34, "<H"), "data_size": (40, "<I"), "riff_size": (4, "<I")}


@st.composite
def wav_files(draw):
    channels, width = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(draw(st.sampled_from([1, 8000, 44100])))
        w.writeframes(draw(st.binary(max_size=64)))
    data = bytearray(buffer.getvalue())
    for _ in range(draw(st.integers(0, 2))):
        offset, fmt = WAV_FIELDS[draw(st.sampled_from(sorted(WAV_FIELDS)))]
        limit = 2 ** (8 * struct.calcsize(fmt)) - 1
        struct.pack_into(fmt, data, offset, draw(st.one_of(st.integers(0, 40), st.just(limit), st.integers(0, limit))))
    return draw(mutated(bytes(data)))


@given(wav_files())
def test_wav_decoding(data):
    from siamkit.datasets.wav import decode_wav

    result = outcome("wav", decode_wav, io.BytesIO(data), name="clip.wav")
    if not isinstance(result, SiamkitError):
        samples, rate = result
        assert samples.dtype == np.float32 and samples.ndim == 1 and len(samples) and rate > 0
        assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0


# --- pair CSVs ------------------------------------------------------------------------------------------------

CSV_FIELDS = ["a.png", "b.png", "missing.png", " a.png ", "0", "1", "2", "", "path_a", "path_b", "label", "é.png"]


@st.composite
def pair_csvs(draw):
    rows = draw(st.lists(st.lists(st.sampled_from(CSV_FIELDS) | st.text(max_size=6), max_size=5), max_size=6))
    if draw(st.booleans()):
        buffer = io.StringIO()
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
        csv.writer(buffer, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows(rows)
        text = buffer.getvalue()
    else:  # written by hand: stray quotes, separators and line ends as they come
        text = "\n".join(",".join(row) for row in rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    return draw(mutated(text.encode(encoding, errors="replace")))


@pytest.fixture(scope="module")
def pair_folder(workdir):
    folder = os.path.join(workdir, "pairs")
    os.makedirs(folder)
    for name in ("a.png", "b.png"):
        Image.new("L", (4, 4), 200).save(os.path.join(folder, name))
    return folder


@given(pair_csvs(), st.booleans())
def test_pair_csv_reading(pair_folder, data, skip_bad):
    from siamkit.datasets.folders import load_pairs

    path = os.path.join(pair_folder, "pairs.csv")
    with open(path, "wb") as f:
        f.write(data)
    result = outcome("pair_csv", load_pairs, path, image_size=4, skip_bad=skip_bad, progress=False)
    if not isinstance(result, SiamkitError):
        assert len(result.y) >= 1


# --- TOML configs ---------------------------------------------------------------------------------------------


def toml_value(value):
    """A TOML literal for a JSON-like value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


scalars = st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=8)
toml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=6)


@st.composite
def toml_configs(draw):
    from siamkit.training.config import DEFAULTS

    keys = sorted(DEFAULTS) + ["not_an_option"]
    config = draw(st.dictionaries(st.sampled_from(keys), toml_values | st.sampled_from(
        ["cnn", "contrastive", "triplet", "bce", "cosine", "euclidean", "dot", "distance", "l1", 0.5, 2, 0, -1]),
        max_size=4))
    text = "\n".join(f"{key} = {toml_value(value)}" for key, value in config.items())
    return draw(mutated(text.encode()))


@pytest.fixture(scope="module")
def keras_loaded():
    from siamkit.training.config import validate  # noqa: F401  (imports Keras before the timed examples)
    from siamkit import losses  # noqa: F401


@given(toml_configs())
def test_toml_config_reading(keras_loaded, workdir, data):
    from siamkit.training.config import resolve

    path = os.path.join(workdir, "config.toml")
    with open(path, "wb") as f:
        f.write(data)
    result = outcome("toml", resolve, path)
    assert isinstance(result, (dict, SiamkitError))


# --- index directories ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_indexes(workdir):
    from siamkit.index import Index

    rng = np.random.default_rng(0)
    folders = []
    for backend in ("exact", "hnswlib"):
        index = Index(4, "cosine", backend, fingerprint="f" * 64, info={"run": "runs/x"})
        index.add(rng.normal(size=(20, 4)).astype("float32"), metadata=[{"path": f"{i}.png"} for i in range(20)])
        folder = os.path.join(workdir, "index-" + backend)
        index.save(folder)
        folders.append(folder)
    return folders


json_values = st.recursive(st.none() | scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=5)


@st.composite
def index_damage(draw, names):
    """One way to damage an index directory: `(kind, file name, argument)`."""
    kind = draw(st.sampled_from(["file", "delete", "manifest", "resign"]))
    if kind == "manifest":
        keys = ["format", "version", "generation", "backend", "options", "distance", "dim", "count", "fingerprint",
                "info", "files"]
        return kind, "manifest.json", (draw(st.sampled_from(keys)), draw(json_values | st.integers(-5, 50)))
    name = draw(st.sampled_from(names))
    if kind == "resign":  # damage a data file and record its new size and checksum: reach the parsers behind them
        name = draw(st.sampled_from([n for n in names if n.endswith((".npy", ".json")) and n != "manifest.json"]))
    return kind, name, draw(mutated(b""))  # placeholder, replaced by the file's own damaged bytes below


@given(st.data())
def test_index_directory_loading(saved_indexes, workdir, data):
    from siamkit.index import Index
    from siamkit.index.files import _sha256

    template = data.draw(st.sampled_from(saved_indexes))
    folder = os.path.join(workdir, "index-under-test")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(template, folder)
    kind, name, _ = data.draw(index_damage(sorted(os.listdir(folder))))
    path = os.path.join(folder, name)
    if kind == "delete":
        os.remove(path)
    elif kind == "manifest":
        key, value = _
        manifest = json.load(open(path, encoding="utf-8"))
        manifest[key] = value
        with open(path, "w", encoding="utf-8") as f:
            json.dump(manifest, f)
    else:
        with open(path, "rb") as f:
            damaged = data.draw(mutated(f.read()))
        with open(path, "wb") as f:
            f.write(damaged)
        if kind == "resign":
            manifest_path = os.path.join(folder, "manifest.json")
            manifest = json.load(open(manifest_path, encoding="utf-8"))
            for record in manifest["files"].values():
                if record["name"] == name:
                    record.update(bytes=len(damaged), sha256=_sha256(path))
            with open(manifest_path, "w", encoding="utf-8") as f:
                json.dump(manifest, f)
    index = outcome("index", Index.load, folder)
    if not isinstance(index, SiamkitError) and len(index):
        outcome(None, index.search, np.ones((1, index.dim), "float32"), k=3)


# --- .npz inputs ----------------------------------------------------------------------------------------------


class StubRun:
    """What `index.inputs` asks of a run, without a model: embeddings of `x` are zeros."""

    path = "runs/stub"
    is_two_tower = False
    config = {"input_shape": [3], "input_shape_b": None}

    def fingerprint(self):
        return "f" * 64

    def embed(self, x, modality="a", batch_size=256):
        return np.zeros((len(x), 2), np.float32)


DTYPES = ["float32", "float64", "int64", "uint8", "bool", "complex64", "U4", "S3", "object"]


@st.composite
def npz_files(draw):
    arrays = {}
    for key in draw(st.sets(st.sampled_from(["embeddings", "x", "paths", "labels", "y", "fingerprint"]), max_size=4)):
        dtype = draw(st.sampled_from(DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
        if dtype == "object":
            arrays[key] = np.full(shape, None, dtype=object)
        elif dtype in ("U4", "S3"):
            arrays[key] = np.full(shape, draw(st.sampled_from(["", "7", "ab/c"])), dtype=dtype)
        else:
            with np.errstate(invalid="ignore"):  # NaN and inf cast to integers: any value will do
                value = np.full(shape, draw(st.sampled_from([0, 1, -1, np.nan, np.inf])), dtype="float64")
                arrays[key] = value.astype(dtype)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return draw(mutated(buffer.getvalue()))


@given(npz_files())
def test_npz_inputs(workdir, data):
    from siamkit.index.inputs import embed_data

    path = os.path.join(workdir, "inputs.npz")
    with open(path, "wb") as f:
        f.write(data)
    result = outcome("npz", embed_data, StubRun(), path)
    if not isinstance(result, SiamkitError):
        assert result.embeddings.dtype == np.float32 and result.embeddings.ndim == 2
        assert len(result.paths) == len(result.labels) == len(result.embeddings)


# --- feature vectors ------------------------------------------------------------------------------------------


@st.composite
def feature_files(draw):
    """A `.npy` or `.npz` feature file (a two-tower side of precomputed vectors), of any dtype and shape."""
    dtype, shape = draw(st.sampled_from(DTYPES)), tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    if dtype == "object":
        array = np.full(shape, None, dtype=object)
    elif dtype in ("U4", "S3"):
        array = np.full(shape, "1.5", dtype=dtype)
    else:
        with np.errstate(invalid="ignore"):
            array = np.full(shape, draw(st.sampled_from([0.5, -1, np.nan, np.inf])), dtype="float64").astype(dtype)
    buffer = io.BytesIO()
    ext = draw(st.sampled_from([".npy", ".npz"]))
    if ext == ".npy":
        np.save(buffer, array)
    else:
        np.savez(buffer, *[array] * draw(st.integers(0, 2)))
    return ext, draw(mutated(buffer.getvalue()))


@given(feature_files())
def test_feature_vector_reading(workdir, file):
    from siamkit.datasets.text import read_features

    ext, data = file
    path = os.path.join(workdir, "vector" + ext)
    with open(path, "wb") as f:
        f.write(data)
    result = outcome("features", read_features, [path])
    if not isinstance(result, SiamkitError):
        assert result.dtype == np.float32 and result.shape[0] == 1 and np.isfinite(result).all()


# --- the service's request bodies ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_client(trained_run, gallery_index, tmp_path_factory):
    """The service's ASGI app in process (lifespan, batching, limits and auth as served), with a writable index."""
    pytest.importorskip("fastapi", reason="the service needs the `serve` extra")
    from fastapi.testclient import TestClient

    from siamkit.service import Settings, create_app

    index_dir = tmp_path_factory.mktemp("fuzz-index") / "ix"
    shutil.copytree(gallery_index[0], index_dir)
    app = create_app(trained_run, index_dir, Settings(api_key="k" * 16, max_files=4, max_k=20, max_pixels=10_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, str(index_dir)


def _b64(data):
    import base64

    return base64.b64encode(data).decode()


file_bodies = st.sampled_from(IMAGES).flatmap(lambda item: mutated(item[1])) | st.binary(max_size=64)
json_files = st.one_of(
    file_bodies.map(lambda data: {"name": "x.png", "data": _b64(data)}),
    st.fixed_dictionaries({"name": json_values, "data": json_values | st.text(max_size=12)}),
    json_values,
)
ROUTES = ["/v1/embed", "/v1/compare", "/v1/search", "/v1/index/items"]


@st.composite
def service_requests(draw):
    """`(route, request kwargs)`: a JSON body, a multipart form or raw bytes, each shaped like a real request or not."""
    route = draw(st.sampled_from(ROUTES))
    form = draw(st.sampled_from(["json", "multipart", "raw"]))
    if form == "json":
        body = draw(st.fixed_dictionaries({}, optional={
            "files": st.lists(json_files, max_size=3) | json_values, "a": json_files, "b": json_files,
            "b_item": json_values | st.integers(-2, 50), "k": json_values | st.integers(-2, 10**9),
            "items": st.lists(st.fixed_dictionaries({"file": json_files}, optional={
                "label": json_values, "metadata": json_values}), max_size=2) | json_values,
        }) | json_values)
        return route, {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}
    if form == "multipart":
        names = draw(st.lists(st.sampled_from(["files", "a", "b", "file", "labels", "x"]), min_size=0, max_size=4))
        files = [(name, (f"{i}.png", draw(file_bodies))) for i, name in enumerate(names)]
        data = draw(st.fixed_dictionaries({}, optional={"k": st.text(max_size=6), "b_item": st.text(max_size=6),
                                                         "labels": st.text(max_size=6), "metadata": st.text(max_size=12)}))
        return route, {"files": files or None, "data": data}
    content_type = draw(st.sampled_from(["application/json", "multipart/form-data", "multipart/form-data; boundary=x",
                                         "text/plain", "application/octet-stream", ""]))
    return route, {"content": draw(st.binary(max_size=200)), "headers": {"content-type": content_type}}


@given(service_requests())
def test_service_request_bodies(service_client, request_):
    client, index_dir = service_client
    route, kwargs = request_
    EXAMPLES["service"] += 1
    headers = {**kwargs.pop("headers", {}), "X-API-Key": "k" * 16}
    answer = client.post(route, headers=headers, **kwargs)
    assert answer.status_code < 500, answer.text
    body = answer.json()
    if answer.status_code >= 400:
        assert body["error"].strip() and body["request_id"]
    assert index_dir not in answer.text and os.path.dirname(index_dir) not in answer.text  # no server path
