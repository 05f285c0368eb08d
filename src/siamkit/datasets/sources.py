"""Where dataset files come from: a data directory, the cache, or the web.

A dataset is one `.npz` file in the schema of the project's `shared/data`
folder (its README documents every array). `ensure` finds it, in order:

1. in `data_dir` (the `--data-dir` option), else in `$SIAMKIT_DATA_DIR`;
2. in the user cache, `$SIAMKIT_CACHE_DIR` or `~/.cache/siamkit`;
3. by downloading the official files, checking their SHA-256, converting
   them to the schema and writing the `.npz` atomically into the cache.

Offline with none of these, it raises a `DataError` that names the file and
the variable to set.

Example:

>>> path = ensure("mnist.npz", mnist.REMOTE)        # doctest: +SKIP
"""

import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.error

import numpy as np

from .. import _io
from ..errors import DataError
from .download import download as download_file

ENV_DATA_DIR = "SIAMKIT_DATA_DIR"
ENV_CACHE_DIR = "SIAMKIT_CACHE_DIR"


@dataclasses.dataclass(frozen=True)
class Remote:
    """The official files of a dataset and how to convert them.

    Args:
        files: `{local name: (url, sha256)}`; sha256 None for archives that
            their host builds on the fly (the bytes change, the content not).
        convert: `convert(paths) -> {array name: array}` from `{local name: path}`.
        content_sha256: `{array name: sha256 of its little-endian bytes}`,
            checked after conversion.
    """

    files: dict
    convert: object
    content_sha256: dict = dataclasses.field(default_factory=dict)


def cache_dir():
    """The user cache folder: `$SIAMKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/siamkit`, else `~/.cache/siamkit`."""
    if os.environ.get(ENV_CACHE_DIR):
        return os.environ[ENV_CACHE_DIR]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "siamkit")


def search_dirs(data_dir=None):
    """Folders searched for dataset files, in order."""
    first = data_dir or os.environ.get(ENV_DATA_DIR)
    return [os.fspath(d) for d in (first, cache_dir()) if d]


def find(filename, data_dir=None):
    """Path of `filename` in the first folder of `search_dirs` that has it, else None."""
    for folder in search_dirs(data_dir):
        path = os.path.join(folder, filename)
        if os.path.isfile(path):
            return path
    return None


def content_sha256(array):
    """SHA-256 of an array's little-endian bytes (its content, whatever the file around it)."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()).hexdigest()


def fetch(filename, remote, progress=True):
    """Download `remote`'s files, convert them, and write `filename` into the cache.

    Returns:
        The path of the cached `.npz`.
    """
    target = os.path.join(cache_dir(), filename)
    os.makedirs(cache_dir(), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=".download-", dir=cache_dir())
    try:
        paths = {}
        for name, (url, sha256) in remote.files.items():
            paths[name] = download_file(url, os.path.join(workdir, name), sha256, progress=progress)
        arrays = remote.convert(paths)
        for key, expected in remote.content_sha256.items():
            got = content_sha256(arrays[key])
            if got != expected:
                raise DataError(
                    f"{filename}: array {key!r} converted from {', '.join(remote.files)} has SHA-256 {got}, "
                    f"expected {expected}; the upstream files changed, so the cache was not written"
                )
        _io.save_npz(target, **arrays)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return target


def ensure(filename, remote=None, data_dir=None, download=True, progress=True):
    """Path of a dataset file: found locally, or downloaded into the cache.

    Args:
        filename: the `.npz` name, e.g. `"mnist.npz"`.
        remote: a `Remote` to download from, or None if there is none.
        data_dir: a folder searched first (else `$SIAMKIT_DATA_DIR`).
        download: False never touches the network.
        progress: show progress bars on a terminal.

    Raises:
        DataError: not found locally and not downloadable.
    """
    path = find(filename, data_dir)
    if path is not None:
        return path
    searched = " and ".join(search_dirs(data_dir))
    hint = (
        f"set {ENV_DATA_DIR} (or pass --data-dir / data_dir=) to a folder that holds {filename} "
        f"in the shared/data schema, or put it in {cache_dir()}"
    )
    if remote is None or not download:
        raise DataError(f"{filename} was not found in {searched}; {hint}")
    try:
        return fetch(filename, remote, progress)
    except (urllib.error.URLError, OSError) as err:
        url = next(iter(remote.files.values()))[0]
        reason = getattr(err, "reason", None) or err
        raise DataError(
            f"{filename} was not found in {searched}, and downloading it from {url} failed ({reason}); {hint}"
        ) from None
