"""Files to embeddings with a run, streamed batch by batch.

The CLI's `--data` and query arguments name image files, `.wav` clips,
`.txt` texts, `.npy`/`.npz` feature vectors, or folders of them (any depth; an item's label is its top sub-folder's name),
or a `.npz` file: the output of `siamkit embed` (embeddings, reused as they
are) or arrays of inputs (`x`, optional `y` labels).

Every file goes through `read_files`, which finds the file type
(`FILE_TYPES`, by extension) and the run's tower (`modality`) for it, and
reads it with `Run.read_inputs`: images under the run's image policy, audio
at the run's sample rate and clip length. Folders are read `batch_size`
files at a time, so a folder larger than memory streams from disk.

Example:

>>> found = embed_data(Run("runs/digits"), "gallery/")          # doctest: +SKIP
>>> found.embeddings.shape, found.paths[0], found.labels[0]     # doctest: +SKIP
((1000, 64), '/data/gallery/3/0001.png', '3')
"""

import dataclasses
import os

import numpy as np

from .. import _io
from ..datasets.folders import KINDS
from ..errors import DataError


@dataclasses.dataclass
class Embedded:
    """Embeddings of some data, with one path and label (or None) per row."""

    embeddings: np.ndarray
    paths: list
    labels: list

    def metadata(self):
        return [{"path": p, "label": lab} for p, lab in zip(self.paths, self.labels)]


# Extension -> file type (a modality). A `.npz` given as `--data` is an array file (see `embed_data`).
FILE_TYPES = {ext: kind for ext, kind in KINDS.items() if ext != ".npz"}


def _file_type(path):
    return FILE_TYPES.get(os.path.splitext(path)[1].lower())


def read_files(run, paths, invert=None):
    """Model inputs for files of one type, and the run's tower for them.

    Args:
        run: a `Run`.
        paths: files of one type (images, or `.wav`).
        invert: for images, flip intensities (see `Run.read_inputs`).

    Returns:
        `(x, modality)`.
    """
    kinds = {_file_type(p) for p in paths}
    if None in kinds:
        bad = next(p for p in paths if _file_type(p) is None)
        raise DataError(f"{bad}: unsupported file type; readable types: {', '.join(sorted(FILE_TYPES))}")
    if len(kinds) > 1:
        raise DataError(f"{paths[0]} and others mix file types; read one type at a time")
    modality = run.side_for(kinds.pop())
    return run.read_inputs(list(paths), modality, invert), modality


def list_files(path):
    """Readable files at `path` (a file, or a folder searched at any depth), with labels.

    Returns:
        `(paths, labels)`: absolute paths, sorted; a file's label is the name
        of its top sub-folder below `path` (None for a file given directly or
        lying at the top of the folder).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return [os.path.abspath(path)], [None]
    if not os.path.isdir(path):
        raise DataError(f"{path}: no such file or folder")
    from ..datasets.folders import files_below

    paths = [p for p in files_below(path) if _file_type(p) is not None]
    if not paths:
        raise DataError(f"{path} holds no image or .wav files (readable types: {', '.join(sorted(FILE_TYPES))})")
    labels = []
    for p in paths:
        parts = os.path.relpath(p, path).split(os.sep)
        labels.append(parts[0] if len(parts) > 1 else None)
    return [os.path.abspath(p) for p in paths], labels


def embed_files(run, paths, batch_size=256, invert=None, progress=True):
    """Embeddings of files, read and embedded `batch_size` at a time.

    Args:
        run: a `Run`.
        paths: image and/or `.wav` files; each type goes to its tower.
        batch_size: files per batch (and per forward pass).
        invert: for images, flip intensities.
        progress: show a progress bar on a terminal.

    Returns:
        float32 `(len(paths), dim)`, in the order of `paths`.
    """
    from ..datasets._progress import progress as progress_bar

    if batch_size < 1:
        raise DataError(f"batch size must be positive, got {batch_size}")
    by_type = {}
    for i, path in enumerate(paths):
        by_type.setdefault(_file_type(path), []).append(i)
    batches = [rows[s : s + batch_size] for rows in by_type.values() for s in range(0, len(rows), batch_size)]
    out = None
    for rows in progress_bar(batches, "embedding", enabled=progress, unit="batch"):
        x, modality = read_files(run, [paths[i] for i in rows], invert)
        z = run.embed(x, modality, batch_size)
        if out is None:
            out = np.empty((len(paths), z.shape[1]), np.float32)
        out[rows] = z
    return out


def index_run(index, run_dir=None):
    """The run that made an index's embeddings (its recorded run, or `run_dir`), checked.

    Raises a `DataError` when the run's model is not the index's.
    """
    from ..runs import Run

    run_dir = run_dir or index.info.get("run")
    if not run_dir:
        raise DataError("the index records no run directory; pass --run RUN_DIR")
    run = Run(run_dir)
    index.check_model(run.fingerprint())
    return run


def read_npz(path):
    """Every array of a `.npz` file, read without unpickling, or a `DataError`.

    Object arrays (pickled Python objects) are refused: loading them could
    run code hidden in the file.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {}
            for key in f.files:
                try:
                    arrays[key] = f[key]
                except ValueError as err:
                    if "allow_pickle" not in str(err):
                        raise
                    raise DataError(
                        f"{path}: array {key!r} holds Python objects, which siamkit never unpickles; "
                        "save numbers or strings (e.g. np.array(paths, dtype=str))"
                    ) from None
    except _io.NUMPY_READ_ERRORS as err:
        raise DataError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    return arrays


def _load_npz(run, path, batch_size):
    """A `.npz` of `embeddings` (from `siamkit embed`, reused if this run made them) or of inputs `x`."""
    arrays = read_npz(path)
    key = "embeddings" if "embeddings" in arrays else "x"
    if key not in arrays or arrays[key].ndim < 2 or len(arrays[key]) == 0:
        raise DataError(
            f"{path} needs a non-empty `embeddings` array (from `siamkit embed`) or `x` (model inputs); "
            f"it has {sorted(arrays)}"
        )
    rows = arrays[key]
    if rows.dtype == bool or not (np.issubdtype(rows.dtype, np.integer) or np.issubdtype(rows.dtype, np.floating)):
        raise DataError(f"{path}: `{key}` must hold real numbers, got dtype {rows.dtype}")
    if key == "embeddings" and rows.ndim != 2:
        raise DataError(f"{path}: `embeddings` must be a (rows, dim) array, got shape {rows.shape}")
    for name in ("paths", "labels", "y"):
        if name in arrays and arrays[name].ndim != 1:
            raise DataError(f"{path}: `{name}` must be a 1-D array (one per row), got shape {arrays[name].shape}")
    paths = [str(p) for p in arrays["paths"]] if "paths" in arrays else [f"{path}[{i}]" for i in range(len(rows))]
    labels = arrays.get("labels", arrays.get("y"))
    labels = [None] * len(rows) if labels is None else [str(v) or None for v in labels]
    if not len(paths) == len(labels) == len(rows):
        raise DataError(f"{path}: {len(rows)} rows but {len(paths)} paths and {len(labels)} labels")
    if key == "x":
        modality = "b" if run.is_two_tower and rows.shape[1:] == tuple(run.config["input_shape_b"]) else "a"
        return Embedded(run.embed(rows, modality, batch_size).astype(np.float32), paths, labels)
    fingerprint = str(arrays.get("fingerprint", ""))
    if fingerprint and fingerprint != run.fingerprint():
        raise DataError(f"{path} was embedded by another model than the run {run.path!r}; embed the data again")
    return Embedded(rows.astype(np.float32), paths, labels)


def embed_data(run, data, batch_size=256, invert=None, progress=True):
    """Embed what a `--data` argument names: a folder, a file, or a `.npz`.

    Args:
        run: a `Run`.
        data: path of a folder, an image or `.wav` file, or a `.npz` file.
        batch_size: files per batch.
        invert: for images, flip intensities.
        progress: show a progress bar on a terminal.

    Returns:
        An `Embedded`.
    """
    data = os.fspath(data)
    if data.lower().endswith(".npz") and os.path.isfile(data):
        return _load_npz(run, data, batch_size)
    paths, labels = list_files(data)
    return Embedded(embed_files(run, paths, batch_size, invert, progress), paths, labels)
