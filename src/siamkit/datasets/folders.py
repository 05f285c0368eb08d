"""Your own data on disk: image folders, pair CSVs and cross-modal roots.

- **Image folder**: `ROOT/CLASS/*.png` (any depth below the class folder);
  the class is the sub-folder's name. `load_folder(ROOT)`.
- **Pair CSV**: rows `path_a,path_b,label` (label 1 = same, 0 = different),
  paths relative to the CSV file, an optional header. `load_pairs(CSV)`.
- **Cross-modal roots**: two folders of class sub-folders, one per modality
  (images, `.wav` audio, `.txt` text or `.npy`/`.npz` feature vectors; a
  Parquet table of vectors with a label column may stand for a folder),
  paired by class name (`load_cross_modal`), or a pair CSV whose columns are
  relative to one root each (`load_pairs(CSV, root_a=..., root_b=...)`).
- **Positive pairs**: a CSV of `path_a,path_b` rows, each a matching pair,
  with an optional `label` (a class: rows of one label all match), for a
  two-tower network; a text column holds the text itself
  (`load_positive_pairs`).

Every file is checked up front (headers, then a full decode) with a progress
bar. The first bad file raises a `DataError` naming it; with `skip_bad=True`
bad files are left out and listed in `info["bad_files"]` as `(path, reason)`.

Example:

>>> ds = load_folder("photos", image_size=105, channels=1)   # doctest: +SKIP
>>> ds.x.shape, ds.info["class_names"][:2], ds.meta["path"][0]
((2000, 105, 105, 1), ['cat', 'dog'], 'cat/0001.jpg')
"""

import csv
import io
import os

import numpy as np

from .. import _io
from ..errors import DataError
from . import images, parquet
from .base import Dataset, Pairs
from .images import IMAGE_EXTENSIONS
from .store import ImageStore
from .text import FEATURE_EXTENSIONS, TEXT_EXTENSIONS, read_features, read_texts
from .waveforms import Waveforms, read_wav

AUDIO_EXTENSIONS = (".wav",)
PAIR_COLUMNS = ("path_a", "path_b", "label")
# The modalities a file can hold, by extension.
KINDS = {
    **{ext: "image" for ext in IMAGE_EXTENSIONS},
    **{ext: "audio" for ext in AUDIO_EXTENSIONS},
    **{ext: "text" for ext in TEXT_EXTENSIONS},
    **{ext: "features" for ext in FEATURE_EXTENSIONS},
}
MODALITIES = ("image", "audio", "text", "features")


def _kind(path):
    return KINDS.get(os.path.splitext(path)[1].lower())


def files_below(folder):
    """Non-hidden files below `folder`, sorted, any depth."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return found


def scan_folder(root):
    """List a class-folder tree.

    Args:
        root: a folder with one sub-folder per class.

    Returns:
        `(paths, labels, class_names, kind)`: every readable file (image,
        `.wav`, `.txt`, `.npy`/`.npz`), its class index, the sorted class
        names, and the modality (`"image"`, `"audio"`, `"text"` or
        `"features"`). `.txt` files beside files of another modality are
        notes, not data, and are left out.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder; pass a folder with one sub-folder of images per class")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    paths, labels, kinds = [], [], set()
    for label, name in enumerate(classes):
        for path in files_below(os.path.join(root, name)):
            kind = _kind(path)
            if kind is not None:
                paths.append(path)
                labels.append(label)
                kinds.add(kind)
    if not paths:
        loose = [e.name for e in os.scandir(root) if e.is_file() and _kind(e.name)]
        what = f"has {len(loose)} image(s) but no class sub-folders" if loose else "is empty: it has no image files"
        raise DataError(
            f"{root} {what}; put the images in one sub-folder per class, e.g. {os.path.join(root, 'cat', '1.png')} "
            f"(readable types: {', '.join(sorted(KINDS))})"
        )
    if "text" in kinds and len(kinds) > 1:  # notes beside images, recordings or vectors: not data
        keep = [i for i, p in enumerate(paths) if _kind(p) != "text"]
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        kinds.discard("text")
    if len(kinds) > 1:
        raise DataError(f"{root} mixes {' and '.join(sorted(kinds))} files; keep one modality per folder")
    return paths, np.asarray(labels, dtype="int64"), classes, kinds.pop()


def _check_classes(root, paths, labels, class_names, min_per_class, skip_bad, bad):
    """Enforce `min_per_class` files per class and 2+ classes; relabel to 0..k-1.

    Returns the kept positions, the new labels and the kept class names.
    """
    counts = np.bincount(labels, minlength=len(class_names))
    keep = np.ones(len(labels), dtype=bool)
    for c in np.flatnonzero((counts > 0) & (counts < min_per_class)):
        members = np.flatnonzero(labels == c)
        reason = (
            f"class {class_names[c]!r} has only {counts[c]} image(s) ({paths[members[0]]}); each class needs at "
            f"least {min_per_class} to form a positive pair: add images, remove the folder, or skip it with --skip-bad"
        )
        if not skip_bad:
            raise DataError(f"{os.path.join(root, class_names[c])}: {reason}")
        bad.extend((paths[i], reason) for i in members)
        keep[members] = False
    used = np.unique(labels[keep])
    if len(used) < 2:
        names = [class_names[c] for c in used]
        raise DataError(
            f"{root} has {len(used)} usable class(es) {names}; similarity learning needs at least 2 classes, "
            "one sub-folder each"
        )
    positions = np.flatnonzero(keep)
    return positions, np.searchsorted(used, labels[keep]), [class_names[c] for c in used]


def load_folder(
    root,
    image_size=None,
    channels=None,
    skip_bad=False,
    max_pixels=None,
    progress=True,
    stream=False,
    cache_dir=None,
    min_per_class=2,
):
    """Load a folder of images with one sub-folder per class.

    Args:
        root: the folder.
        image_size: resize every image to `N` x `N` (or `(h, w)`, `"HxW"`);
            None requires all images to have one size.
        channels: 1 (grayscale), 3 (RGB), 4 (RGBA), or None for 1 when every
            image is grayscale, else 3.
        skip_bad: leave bad files (and classes left with too few images) out
            and list them in `info["bad_files"]`, instead of raising.
        max_pixels: reject images with more pixels (decompression bombs);
            default `PIL.Image.MAX_IMAGE_PIXELS`.
        progress: progress bars on a terminal.
        stream: keep pixels on disk: `x` is an `ImageStore` that decodes
            batches on demand (files are still all checked up front).
        cache_dir: with `stream`, a folder for the decoded-image cache.
        min_per_class: fewest images a class may have.

    Returns:
        A `Dataset` with float32 `x` `(n, h, w, c)` in [0, 1] (pixel values as
        in the files), labels by sorted class name, `meta["path"]` relative to
        `root`, and `info` with `class_names`, `root`, `image_size`,
        `channels` and `bad_files`.
    """
    root = os.fspath(root)
    paths, labels, class_names, kind = scan_folder(root)
    if kind != "image":
        raise DataError(f"{root} holds {kind} files; use load_cross_modal for them, or an image folder here")
    bad = []
    positions, labels, class_names = _check_classes(root, paths, labels, class_names, min_per_class, skip_bad, bad)
    paths = [paths[i] for i in positions]
    scanned = images.scan_images(paths, image_size, channels, skip_bad, max_pixels, progress)
    decoded = images.decode_images(paths, scanned, skip_bad, max_pixels, progress, keep=not stream)
    bad.extend(decoded.bad)
    paths, labels = [paths[i] for i in decoded.kept], labels[decoded.kept]
    positions = np.arange(len(paths))
    if decoded.bad:  # skipped files may leave a class too small
        positions, labels, class_names = _check_classes(root, paths, labels, class_names, min_per_class, True, bad)
    good = [paths[i] for i in positions]
    if stream:
        x = ImageStore(good, decoded.image_size, decoded.channels, max_pixels, cache_dir)
    else:
        x = images.to_float(decoded.images[positions])
    info = {
        "root": root,
        "class_names": class_names,
        "image_size": decoded.image_size,
        "channels": decoded.channels,
        "bad_files": bad,
    }
    relative = np.array([os.path.relpath(p, root) for p in good])
    return Dataset(os.path.basename(os.path.abspath(root)), x, labels, {"path": relative}, info)


def _read_pair_rows(csv_path, root_a, root_b, skip_bad, bad):
    """Parse and check the rows of a pair CSV: `[(line, path_a, path_b, label)]`."""
    folder = os.path.dirname(os.path.abspath(csv_path))
    bases = (root_a or folder, root_b or folder)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(f"{csv_path}: pair CSV not found; give a CSV of path_a,path_b,label rows") from None
    except (PermissionError, UnicodeDecodeError) as err:
        raise DataError(f"{csv_path}: cannot be read as a text CSV ({err})") from None
    rows = []
    for n, fields in enumerate(lines, start=1):
        fields = [f.strip() for f in fields]
        if not any(fields) or (n == 1 and [f.lower() for f in fields] == list(PAIR_COLUMNS)):
            continue
        problem = None
        if len(fields) != 3:
            problem = f"has {len(fields)} field(s); expected 3: path_a,path_b,label"
        elif fields[2] not in ("0", "1"):
            problem = f"label {fields[2]!r} is not 0 or 1 (1 = same, 0 = different)"
        else:
            resolved = [os.path.join(base, p) for base, p in zip(bases, fields[:2])]
            for column, given, path, root in zip(PAIR_COLUMNS, fields, resolved, (root_a, root_b)):
                if not os.path.isfile(path):
                    base = "the CSV's folder" if root is None else os.fspath(root)
                    problem = f"{column} {given!r} does not exist (looked for {path}; paths are relative to {base})"
                    break
        if problem:
            if not skip_bad:
                raise DataError(f"{csv_path}, line {n}: {problem}")
            bad.append((f"{csv_path}:{n}", problem))
            continue
        rows.append((n, *resolved, int(fields[2])))
    if not rows:
        raise DataError(f"{csv_path}: no usable pairs; each row is path_a,path_b,label with label 0 or 1")
    return rows


def _read_each(kind, paths, skip_bad, bad, dim=None):
    """Read audio, text or feature files one by one; returns `(x, kept positions)`.

    A bad file raises its `DataError`, or with `skip_bad` is listed in `bad`.
    """
    readers = {
        "audio": lambda p: read_wav(p),
        "text": lambda p: read_texts([p])[0],
        "features": lambda p: read_features([p], dim)[0],
    }
    values, kept = [], []
    for i, path in enumerate(paths):
        try:
            values.append(readers[kind](path))
        except DataError as err:
            if not skip_bad:
                raise
            bad.append((path, str(err)))
            continue
        kept.append(i)
        if kind == "features":
            dim = len(values[-1])
        elif kind == "audio" and values[-1][1] != values[0][1]:
            raise DataError(
                f"{path}: sample rate {values[-1][1]} Hz differs from {values[0][1]} Hz of the other files; resample it"
            )
    if kind == "audio":
        x = Waveforms.from_list([v for v, _ in values], values[0][1] if values else 0)
    elif kind == "text":
        x = np.array(values, dtype=object)
    else:
        x = np.stack(values) if values else np.zeros((0, dim or 0), "float32")
    return x, np.asarray(kept, dtype="int64")


def _load_pool(paths, image_size, channels, skip_bad, max_pixels, progress, bad):
    """Decode a pool of files of one modality; returns `(x, kept positions)`."""
    kinds = {_kind(p) for p in paths}
    if len(kinds) != 1 or None in kinds:
        unknown = next((p for p in paths if _kind(p) is None), paths[0])
        raise DataError(
            f"{unknown}: not a readable file ({', '.join(sorted(KINDS))}), or a column mixes modalities"
        )
    kind = kinds.pop()
    if kind != "image":
        return _read_each(kind, paths, skip_bad, bad)
    decoded = images.read_images(paths, image_size, channels, skip_bad, max_pixels, progress)
    bad.extend(decoded.bad)
    return images.to_float(decoded.images), decoded.kept


def load_pairs(
    csv_path,
    root_a=None,
    root_b=None,
    image_size=None,
    channels=None,
    skip_bad=False,
    max_pixels=None,
    progress=True,
):
    """Load labelled pairs listed in a CSV of `path_a,path_b,label`.

    Args:
        csv_path: the CSV. A first row `path_a,path_b,label` is a header.
        root_a, root_b: folders the two columns are relative to (two
            modalities); default: the CSV's folder.
        image_size, channels, skip_bad, max_pixels, progress: as for
            `load_folder`. With `skip_bad`, rows with a missing or bad file
            are left out and listed in `info["bad_files"]`.

    Returns:
        A `Pairs`. Each file is decoded once; with no roots given both
        columns share one pool.

    Example:

    >>> pairs = load_pairs("pairs.csv", image_size=64)     # doctest: +SKIP
    >>> pairs.first.shape, pairs.y[:3]
    ((500, 64, 64, 1), array([1, 0, 1]))
    """
    csv_path = os.fspath(csv_path)
    bad = []
    rows = _read_pair_rows(csv_path, root_a, root_b, skip_bad, bad)
    shared = root_a is None and root_b is None
    columns = [[r[1] for r in rows], [r[2] for r in rows]]
    pools = [sorted(set(columns[0]) | set(columns[1]))] * 2 if shared else [sorted(set(c)) for c in columns]
    loaded = [_load_pool(pools[0], image_size, channels, skip_bad, max_pixels, progress, bad)]
    loaded.append(
        loaded[0] if shared else _load_pool(pools[1], image_size, channels, skip_bad, max_pixels, progress, bad)
    )
    lookup = [{pool[k]: j for j, k in enumerate(kept)} for pool, (_, kept) in zip(pools, loaded)]
    keep = [all(p in lookup[s] for s, p in enumerate(r[1:3])) for r in rows]
    rows = [r for r, k in zip(rows, keep) if k]
    if not rows:
        raise DataError(f"{csv_path}: no pairs left after leaving out bad files")
    index_a = np.array([lookup[0][r[1]] for r in rows], dtype="int64")
    index_b = np.array([lookup[1][r[2]] for r in rows], dtype="int64")
    x_a, x_b = loaded[0][0], loaded[1][0]
    info = {
        "csv": csv_path,
        "paths_a": [pools[0][k] for k in loaded[0][1]],
        "paths_b": [pools[1][k] for k in loaded[1][1]],
        "bad_files": bad,
    }
    if isinstance(x_a, np.ndarray):
        info.update(image_size=tuple(x_a.shape[1:3]), channels=int(x_a.shape[-1]))
    y = np.array([r[3] for r in rows], dtype="int64")
    meta = {"line": np.array([r[0] for r in rows], dtype="int64")}
    return Pairs(csv_path, x_a, x_b if not shared else x_a, index_a, index_b, y, meta, info)


def _load_table(path):
    """A Parquet table of feature vectors as a dataset, its classes the label column's names."""
    x, labels, rows = parquet.read_feature_table(path)
    names = sorted(set(labels))
    info = {"root": path, "class_names": names, "bad_files": [], "modality": "features"}
    y = np.searchsorted(names, labels)
    return Dataset(os.path.basename(path), x, y, {"path": np.array(rows)}, info)


def _relabel(ds, class_names):
    """Relabel by the shared class list, so label k means the same class on both sides."""
    ds.y = np.searchsorted(class_names, np.asarray(ds.info["class_names"])[ds.y])
    ds.info["class_names"] = list(class_names)
    return ds


def _load_root(root, class_names, image_size, channels, skip_bad, max_pixels, progress):
    paths, labels, names, kind = scan_folder(root)
    if kind == "image":
        ds = load_folder(root, image_size, channels, skip_bad, max_pixels, progress, min_per_class=1)
    else:
        bad = []
        x, kept = _read_each(kind, paths, skip_bad, bad)
        relative = np.array([os.path.relpath(paths[k], root) for k in kept])
        info = {"root": root, "class_names": names, "bad_files": bad, "modality": kind}
        if kind == "audio":
            info["sample_rate"] = x.sample_rate
        ds = Dataset(os.path.basename(os.path.abspath(root)), x, labels[kept], {"path": relative}, info)
    ds.info["modality"] = kind
    return _relabel(ds, class_names)


def load_cross_modal(
    root_a,
    root_b,
    image_size=None,
    channels=None,
    skip_bad=False,
    max_pixels=None,
    progress=True,
    image_size_b=None,
    channels_b=None,
):
    """Load two class-folder trees, one per modality, paired by class name.

    Args:
        root_a, root_b: folders with one sub-folder per class, holding images,
            `.wav`, `.txt` or `.npy`/`.npz` files, or a Parquet table of
            feature vectors with a label column
            (`siamkit.datasets.parquet.read_feature_table`); the class names
            must match.
        image_size, channels, skip_bad, max_pixels, progress: as for
            `load_folder`, applied to image folders. With `skip_bad`, a class
            found in one root only is left out (and listed in
            `info["bad_files"]` of the first dataset), as are unreadable files.
        image_size_b, channels_b: root b's image policy when it differs
            from root a's (default: the same).

    Returns:
        `(dataset_a, dataset_b)` whose labels index the same sorted class
        names; any sample of class k on one side pairs with any of class k
        on the other. `info["modality"]` says what each holds.
    """
    roots = [os.fspath(r) for r in (root_a, root_b)]
    tables = {r: _load_table(r) for r in roots if parquet.is_table(r)}
    names = [tables[r].info["class_names"] if r in tables else scan_folder(r)[2] for r in roots]
    shared = sorted(set(names[0]) & set(names[1]))
    lonely = [(root, name) for root, own, other in zip(roots, names, names[::-1]) for name in own if name not in other]
    if lonely and not skip_bad:
        root, name = lonely[0]
        other = roots[1] if root == roots[0] else roots[0]
        raise DataError(
            f"{os.path.join(root, name)}: class {name!r} has no folder in {other} ({len(lonely)} class(es) are in one "
            "root only); cross-modal pairing matches classes by folder name: add it, remove it, or pass --skip-bad"
        )
    if len(shared) < 2:
        raise DataError(f"{roots[0]} and {roots[1]} share {len(shared)} class folder(s); pairing needs at least 2")
    parts = []
    policies = ((image_size, channels), (image_size_b or image_size, channels_b or channels))
    for root, own, (size, chans) in zip(roots, names, policies):
        if root in tables:
            ds = _relabel(tables[root], own)
        else:
            ds = _load_root(root, own, size, chans, skip_bad, max_pixels, progress)
        keep = np.isin(np.asarray(own)[ds.y], shared)
        ds = ds.subset(np.flatnonzero(keep))
        ds.y = np.searchsorted(shared, np.asarray(own)[ds.y])
        ds.info["class_names"] = shared
        parts.append(ds)
    parts[0].info["bad_files"] = parts[0].info.get("bad_files", []) + [
        (os.path.join(root, name), "class folder in one root only") for root, name in lonely
    ]
    for ds, root in zip(parts, roots):
        missing = sorted(set(range(len(shared))) - set(ds.y.tolist()))
        if missing:
            raise DataError(f"{os.path.join(root, shared[missing[0]])}: no readable files left in this class folder")
    return tuple(parts)


def load_positive_pairs(
    csv_path,
    root_a=None,
    root_b=None,
    text_a=False,
    text_b=False,
    image_size=None,
    channels=None,
    skip_bad=False,
    max_pixels=None,
    progress=True,
    image_size_b=None,
    channels_b=None,
):
    """Load matching pairs listed in a CSV of `path_a,path_b[,label]`, for a two-tower network.

    Every row is a positive pair. Rows with the same `label` (any text) are
    one class: all their items match each other; without a label column each
    row's `path_a` is its class, so rows sharing an a-item match too. A
    header row `path_a,path_b[,label]` is optional.

    Args:
        csv_path: the CSV.
        root_a, root_b: folders the columns' paths are relative to (default:
            the CSV's folder).
        text_a, text_b: the column holds the text itself, not a path.
        image_size, channels, skip_bad, max_pixels, progress: as for
            `load_folder`. With `skip_bad`, bad rows and files are left out
            and listed in `info["bad_files"]` of the first dataset.
        image_size_b, channels_b: column b's image policy (default: column a's).

    Returns:
        `(dataset_a, dataset_b)`: item k of each is row k's side, with the
        same label; `meta["line"]` is its CSV line, and text sides hold
        strings.

    Example:

    >>> a, b = load_positive_pairs("captions.csv", root_a="photos", text_b=True)   # doctest: +SKIP
    """
    csv_path = os.fspath(csv_path)
    folder = os.path.dirname(os.path.abspath(csv_path))
    bases = (os.fspath(root_a or folder), os.fspath(root_b or folder))
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(f"{csv_path}: pair CSV not found; give a CSV of path_a,path_b[,label] rows") from None
    except (PermissionError, UnicodeDecodeError) as err:
        raise DataError(f"{csv_path}: cannot be read as a UTF-8 CSV ({err})") from None
    texts = (text_a, text_b)
    bad, rows = [], []
    for n, fields in enumerate(lines, start=1):
        fields = [f.strip() for f in fields]
        if not any(fields) or (n == 1 and [f.lower() for f in fields] in (list(PAIR_COLUMNS), list(PAIR_COLUMNS[:2]))):
            continue
        problem = None
        if len(fields) not in (2, 3):
            problem = f"has {len(fields)} field(s); expected path_a,path_b or path_a,path_b,label"
        elif not fields[0] or not fields[1]:
            problem = f"is unpaired: {PAIR_COLUMNS[0 if not fields[0] else 1]} is empty; every row is a matching pair"
        else:
            for column, value, base, is_text in zip(PAIR_COLUMNS, fields, bases, texts):
                if not is_text and not os.path.isfile(os.path.join(base, value)):
                    problem = f"{column} {value!r} does not exist (looked in {base})"
                    break
        if problem:
            if not skip_bad:
                raise DataError(f"{csv_path}, line {n}: {problem}")
            bad.append((f"{csv_path}:{n}", problem))
            continue
        side = [value if is_text else os.path.join(base, value) for value, base, is_text in zip(fields, bases, texts)]
        rows.append((n, side[0], side[1], fields[2] if len(fields) == 3 else None))
    if len(rows) < 2:
        raise DataError(f"{csv_path}: {len(rows)} usable pair(s); a two-tower network needs at least 2")
    labelled = {r[3] is not None for r in rows}
    if len(labelled) > 1:
        raise DataError(f"{csv_path}: some rows have a label and some do not; label every row or none")
    columns = []
    for s, is_text in enumerate(texts):
        values = [r[1 + s] for r in rows]
        if is_text:
            x, kept = np.array(values, dtype=object), []
            for k, value in enumerate(values):
                if value.strip():
                    kept.append(k)
                elif not skip_bad:
                    raise DataError(f"{csv_path}, line {rows[k][0]}: the text of {PAIR_COLUMNS[s]} is empty")
                else:
                    bad.append((f"{csv_path}:{rows[k][0]}", f"the text of {PAIR_COLUMNS[s]} is empty"))
            columns.append((x, {k: k for k in kept}, "text"))
            continue
        pool = sorted(set(values))
        size, chans = (image_size, channels) if s == 0 else (image_size_b or image_size, channels_b or channels)
        x, kept = _load_pool(pool, size, chans, skip_bad, max_pixels, progress, bad)
        lookup = {pool[k]: j for j, k in enumerate(kept)}
        columns.append((x, {k: lookup[v] for k, v in enumerate(values) if v in lookup}, _kind(pool[0])))
    good = [k for k in range(len(rows)) if all(k in c[1] for c in columns)]
    if len(good) < 2:
        raise DataError(f"{csv_path}: {len(good)} usable pair(s); a two-tower network needs at least 2")
    keys = [rows[k][3] if rows[k][3] is not None else rows[k][1] for k in good]
    class_names, y = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    lines_used = np.array([rows[k][0] for k in good], dtype="int64")
    parts = []
    for s, (x, position, kind) in enumerate(columns):
        index = np.array([position[k] for k in good], dtype="int64")
        x = x[index] if kind == "text" or isinstance(x, np.ndarray) else x.subset(index)
        info = {
            "csv": csv_path, "class_names": class_names.tolist(), "modality": kind, "bad_files": bad if s == 0 else [],
        }
        if kind == "audio":
            info["sample_rate"] = x.sample_rate
        meta = {"line": lines_used, "path": np.asarray([rows[k][1 + s] for k in good], dtype=str)}
        parts.append(Dataset(os.path.basename(csv_path), x, y.astype("int64"), meta, info))
    return tuple(parts)


def _csv_text(header, rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_manifest(data, path):
    """Write the files and labels used: `path,label,class` rows (or `path_a,path_b,label` for `Pairs`)."""
    if isinstance(data, Pairs):  # paths relative to the CSV, as in the CSV itself
        folder = os.path.dirname(os.path.abspath(data.info["csv"]))
        a, b = (np.asarray([os.path.relpath(p, folder) for p in data.info[k]]) for k in ("paths_a", "paths_b"))
        _io.write_text(path, _csv_text(PAIR_COLUMNS, zip(a[data.index_a], b[data.index_b], data.y)))
        return
    names = data.info["class_names"]
    _io.write_text(
        path, _csv_text(("path", "label", "class"), ((p, int(y), names[y]) for p, y in zip(data.meta["path"], data.y)))
    )


def write_bad_files(bad, path):
    """Write the skipped files report: `file,reason` rows."""
    _io.write_text(path, _csv_text(("file", "reason"), bad))
