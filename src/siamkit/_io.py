"""Atomic file writes: a reader never sees a half-written file.

Each write goes to a temporary file in the destination's folder and is moved
into place with `os.replace`, which is atomic on POSIX and Windows. The file
gets the permissions a plain `open(path, "w")` would give (an existing
file's mode, else `0o666` less the umask), not the owner-only mode of the
temporary file.
"""

import contextlib
import json
import os
import stat
import tempfile
import tokenize
import zipfile
import zlib

import numpy as np

# What NumPy raises reading a damaged `.npy` or `.npz` (with `allow_pickle=False`): a bad `.npy` header fails in
# its parser (ast, tokenize), a short file with EOFError, a damaged archive in zipfile (NotImplementedError: an
# unknown compression method; RuntimeError: the encrypted flag) or zlib.
NUMPY_READ_ERRORS = (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, zlib.error,
                     NotImplementedError, RuntimeError)

# Read once: reading the umask means setting it, which would race with other threads' file creation.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside `path`; move it onto `path` on success.

    Args:
        path: the final destination.
        suffix: suffix for the temporary file, for writers that check the
            extension (Keras wants `.keras`, NumPy adds `.npz`).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=".tmp" + suffix, dir=folder
    )
    os.close(fd)
    try:
        yield tmp
        # The mode a plain `open(path, "w")` leaves: the old file's, else 0o666 less the umask.
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def json_default(obj):
    """The `default` of `json.dump` for NumPy values: scalars become Python numbers, arrays lists.

    Example:

    >>> json.dumps({"n": np.int64(3), "v": np.arange(2)}, default=json_default)
    '{"n": 3, "v": [0, 1]}'
    """
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def write_json(path, data):
    """Atomically write `data` as indented JSON (NumPy values included)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, default=json_default)
            f.write("\n")


def write_text(path, text):
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def save_npz(path, **arrays):
    """Atomically write arrays to a compressed `.npz` file."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def save_model(model, path):
    """Atomically save a Keras model to a `.keras` file."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
