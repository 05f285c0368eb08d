"""Text and precomputed feature vectors as model inputs, in NumPy.

A text tower reads no vocabulary: `encode_text` turns each string into its
UTF-8 bytes (each byte + 1, so 0 is padding), cut or zero-padded to a fixed
length, and `siamkit.encoders.text_encoder` hashes byte n-grams inside the
model. `read_texts` reads `.txt` files; `read_features` reads one vector per
`.npy` / `.npz` file, all of one length. Both take paths or
`siamkit.datasets.memory.MemoryFile`s.

Example:

>>> encode_text(["ab"], 4).tolist()
[[98.0, 99.0, 0.0, 0.0]]
"""


import numpy as np

from .. import _io
from ..errors import DataError
from .memory import name_of, open_binary

TEXT_EXTENSIONS = (".txt",)
FEATURE_EXTENSIONS = (".npy", ".npz")


def encode_text(texts, length, names=None):
    """Strings as float32 `(n, length)` byte codes (byte + 1; 0 pads).

    Args:
        texts: strings.
        length: bytes kept per text (longer texts are cut).
        names: what to call each text in errors (file or row); default "text K".
    """
    out = np.zeros((len(texts), int(length)), dtype="float32")
    for i, text in enumerate(texts):
        data = str(text).strip().encode("utf-8")[: int(length)]
        if not data:
            where = names[i] if names is not None else f"text {i + 1}"
            raise DataError(f"{where} is empty; give every item some text")
        out[i, : len(data)] = np.frombuffer(data, dtype="uint8").astype("float32") + 1.0
    return out


def read_texts(paths):
    """The contents of UTF-8 `.txt` files, stripped; an empty or undecodable file is an error naming it."""
    texts = []
    for path in paths:
        name = name_of(path)
        try:
            with open_binary(path) as f:
                text = f.read().decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise DataError(f"{name}: not UTF-8 text; save it as UTF-8") from None
        except OSError as err:
            raise DataError(f"{name}: cannot be read ({err.strerror})") from None
        if not text:
            raise DataError(f"{name}: the text file is empty; give every item some text")
        texts.append(text)
    return np.array(texts, dtype=object)


def _vector(source):
    path = name_of(source)
    try:
        with open_binary(source) as f:
            if path.lower().endswith(".npz"):
                with np.load(f, allow_pickle=False) as archive:
                    if len(archive.files) != 1:
                        raise DataError(f"{path}: holds {len(archive.files)} arrays; a feature .npz holds exactly one")
                    value = archive[archive.files[0]]
            else:
                value = np.load(f, allow_pickle=False)
    except DataError:
        raise
    except _io.NUMPY_READ_ERRORS as err:
        raise DataError(f"{path}: not a readable .npy/.npz feature vector ({type(err).__name__}: {err})") from None
    value = np.asarray(value)
    if value.ndim != 1 or not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
        raise DataError(f"{path}: a feature file holds one 1-D vector of integers or floats, got shape "
                        f"{value.shape} {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise DataError(f"{path}: the feature vector has NaN or infinite values")
    return value.astype("float32")


def read_features(paths, dim=None):
    """One vector per `.npy` / `.npz` file, stacked to float32 `(n, dim)`.

    Args:
        paths: the files.
        dim: the length every vector must have; default the first file's.
    """
    rows = []
    for path in paths:
        vector = _vector(path)
        dim = len(vector) if dim is None else dim
        if len(vector) != dim:
            raise DataError(f"{name_of(path)}: feature vector of length {len(vector)}, expected {dim} like the others")
        rows.append(vector)
    return np.stack(rows) if rows else np.zeros((0, dim or 0), "float32")
