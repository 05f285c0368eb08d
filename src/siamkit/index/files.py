"""The on-disk format of an index directory: versioned, checksummed, atomic.

`INDEX_DIR/manifest.json` describes the index and lists its data files, each
with its size and SHA-256:

- `embeddings.G.npy`: float32 `(count, dim)`, as they were added;
- `ids.G.npy`: int64 `(count,)`;
- `metadata.G.json`: `[{"id": ..., "path": ..., "label": ...}, ...]`;
- `backend.G.faiss` / `backend.G.hnsw`: the backend's own file, if any.

`G` is a generation number that grows with each save. A save writes the new
generation's files (each atomically), then replaces the manifest atomically,
then deletes the old generation. A reader therefore sees the old index or
the new one, never a mix; a crash mid-save leaves the old index intact.

Writers hold `INDEX_DIR/.lock` (`locked`): a second writer waits for the
first, then fails with a clear message after a timeout. A save also deletes
the temporary files a killed save left behind.

On load every file is checked against its size and checksum before it is
parsed, so a corrupt or truncated index raises a `DataError` instead of
giving wrong results. Arrays are read with `allow_pickle=False` and metadata
is JSON: nothing is ever unpickled.
"""

import contextlib
import hashlib
import io
import json
import os
import re
import threading
import time
import tokenize

import numpy as np

from .. import _io
from ..errors import DataError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writers are not serialised there
    fcntl = None

FORMAT = "siamkit-index"
VERSION = 1
MANIFEST = "manifest.json"
_DATA_FILE = re.compile(r"^(embeddings|ids|metadata|backend)\.\d+\.(npy|json|faiss|hnsw)$")
# `_io.atomic_path`'s temporary files for the manifest and data files.
_TEMP_FILE = re.compile(r"^\.(manifest\.json|(embeddings|ids|metadata|backend)\.\d+\.\w+)\..+\.tmp")
LOCK = ".lock"
LOCK_TIMEOUT = 60.0
_held = threading.local()  # index directories this thread holds the lock of
_READ_BYTES = 1 << 20
# What NumPy raises on a damaged `.npy`: a bad header fails in its parser (tokenize, ast), a short file with EOFError.
_ARRAY_ERRORS = (ValueError, KeyError, EOFError, SyntaxError, tokenize.TokenError)
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_READ_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _record(name, path):
    return {"name": name, "bytes": os.path.getsize(path), "sha256": _sha256(path)}


def write_file(directory, name, writer):
    """Atomically write `directory/name` with `writer(path)`; return its manifest record."""
    path = os.path.join(directory, name)
    with _io.atomic_path(path, suffix=os.path.splitext(name)[1]) as tmp:
        writer(tmp)
        record = _record(name, tmp)
    return record


def write_vectors(path, blocks, count, dim):
    """Write float32 `(count, dim)` rows, given block by block, as one `.npy` file."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": (count, dim)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for vectors in blocks:
            f.write(np.ascontiguousarray(vectors, dtype="<f4").data)


def write_array(path, array):
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def read_manifest(directory):
    """The manifest of an index directory, checked, or a `DataError`."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise DataError(
            f"{directory!r} is not a siamkit index: {MANIFEST} is missing (build one with `siamkit index build`)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is corrupt ({err}); rebuild the index") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path} is not a siamkit index manifest")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise DataError(
            f"{path} has format version {manifest.get('version')!r}, newer than this siamkit reads ({VERSION}); "
            "upgrade siamkit"
        )
    return manifest


@contextlib.contextmanager
def locked(directory, timeout=LOCK_TIMEOUT):
    """Hold the write lock of an index directory for the `with` block.

    Another process (or thread) holding it is waited for up to `timeout`
    seconds, then a `DataError` is raised. The lock is re-entrant within a
    thread, and released by the kernel if its holder dies, so a killed
    writer never leaves the index locked. The lock file, `INDEX_DIR/.lock`,
    is deleted when the lock is let go.

    Example:

    >>> with locked("gallery-index"):                               # doctest: +SKIP
    ...     index = Index.load("gallery-index"); index.remove([3]); index.save("gallery-index")
    """
    key = os.path.realpath(directory)
    held = _held.__dict__.setdefault("dirs", set())
    if fcntl is None or key in held or not os.path.isdir(directory):  # no folder, nothing to guard
        yield
        return
    path = os.path.join(directory, LOCK)
    deadline = time.monotonic() + timeout
    while True:
        f = open(path, "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            if time.monotonic() >= deadline:
                raise DataError(
                    f"{directory!r} is being written by another process (waited {timeout:g} s for {path}); "
                    "try again when it has finished"
                ) from None
            time.sleep(0.05)
            continue
        # The holder deletes the file as it lets go: a lock on a deleted file is no lock, so try again.
        try:
            if os.path.samestat(os.fstat(f.fileno()), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        f.close()
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        f.close()


def write_manifest(directory, manifest):
    """Atomically replace the manifest, then delete data files it no longer names and stale temporary files."""
    _io.write_json(os.path.join(directory, MANIFEST), manifest)
    keep = {record["name"] for record in manifest["files"].values()}
    for name in os.listdir(directory):
        if (_DATA_FILE.match(name) and name not in keep) or _TEMP_FILE.match(name):
            os.remove(os.path.join(directory, name))


def _path(directory, record):
    name = record.get("name", "") if isinstance(record, dict) else ""
    if not _DATA_FILE.match(name):
        raise DataError(f"{os.path.join(directory, MANIFEST)} names an invalid data file {name!r}; rebuild the index")
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise DataError(f"{path} is missing: the index is incomplete; rebuild it")
    size = os.path.getsize(path)
    if size != record.get("bytes"):
        raise DataError(
            f"{path} has {size} bytes, expected {record.get('bytes')}: it is truncated or corrupt; rebuild the index"
        )
    return path


def _corrupt(path):
    return DataError(f"{path} does not match its checksum: the index is corrupt; rebuild it")


def verified_path(directory, record):
    """Path of a data file whose size and checksum match its record."""
    path = _path(directory, record)
    if _sha256(path) != record.get("sha256"):
        raise _corrupt(path)
    return path


def verified_bytes(directory, record):
    """Contents of a data file whose size and checksum match its record."""
    path = _path(directory, record)
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise _corrupt(path)
    return path, data


def read_array(directory, record, dtype, shape):
    """A verified `.npy` file as an array of exactly `dtype` and `shape`."""
    path, data = verified_bytes(directory, record)
    try:
        array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)  # .npy only: never a zip
    except _ARRAY_ERRORS as err:
        raise DataError(f"{path} is not a valid array file ({err}); rebuild the index") from None
    if array.dtype != np.dtype(dtype) or array.shape != tuple(shape):
        raise DataError(f"{path} holds {array.dtype} {array.shape}, expected {np.dtype(dtype)} {tuple(shape)}")
    return array


def read_json(directory, record):
    path, data = verified_bytes(directory, record)
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); rebuild the index") from None


def read_vectors(directory, record, count, dim, rows_per_read):
    """Yield float32 row chunks of a vectors file, hashing it as it is read.

    Raises a `DataError` after the last chunk if the checksum does not match:
    consume the generator to the end before trusting what it gave.
    """
    path = _path(directory, record)
    digest = hashlib.sha256()

    class _Hashing(io.RawIOBase):  # hashes every byte read, header included
        def __init__(self, f):
            self.f = f

        def readable(self):
            return True

        def readinto(self, buffer):
            n = self.f.readinto(buffer)
            digest.update(memoryview(buffer)[:n])
            return n

    with open(path, "rb", buffering=0) as raw:
        f = io.BufferedReader(_Hashing(raw), buffer_size=_READ_BYTES)
        try:
            read_header = _HEADER_READERS[np.lib.format.read_magic(f)]
            shape, fortran, dtype = read_header(f)
        except _ARRAY_ERRORS as err:
            raise DataError(f"{path} is not a valid array file ({err}); rebuild the index") from None
        if shape != (count, dim) or fortran or dtype != np.dtype("<f4"):
            raise DataError(f"{path} holds {dtype} {shape}, expected float32 {(count, dim)}; rebuild the index")
        for start in range(0, count, rows_per_read):
            chunk = np.empty((min(rows_per_read, count - start), dim), np.float32)
            if f.readinto(chunk.data.cast("B")) != chunk.nbytes:
                raise DataError(f"{path} is truncated; rebuild the index")
            yield chunk
        if f.read(1):  # also drives the digest to the end of the file
            raise DataError(f"{path} has trailing bytes; rebuild the index")
    if digest.hexdigest() != record.get("sha256"):
        raise _corrupt(path)
