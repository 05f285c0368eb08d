"""Your own data on disk: image folders, pair CSVs and cross-modal roots.

- **Image folder**: `ROOT/CLASS/*.png` (any depth below the class folder);
  the class is the sub-folder's name. `load_folder(ROOT)`.
- **Pair CSV**: rows `path_a,path_b,label` (label 1 = same, 0 = different),
  paths relative to the CSV file, an optional header. `load_pairs(CSV)`.
- **Cross-modal roots**: two folders of class sub-folders, one per modality
  (images or `.wav` audio), paired by class name (`load_cross_modal`), or a
  pair CSV whose columns are relative to one root each
  (`load_pairs(CSV, root_a=..., root_b=...)`).

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
from . import images
from .base import Dataset, Pairs
from .images import IMAGE_EXTENSIONS
from .store import ImageStore
from .waveforms import read_wavs

AUDIO_EXTENSIONS = (".wav",)
PAIR_COLUMNS = ("path_a", "path_b", "label")


def _kind(path):
    ext = os.path.splitext(path)[1].lower()
    return "image" if ext in IMAGE_EXTENSIONS else "audio" if ext in AUDIO_EXTENSIONS else None


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
        `(paths, labels, class_names, kind)`: every image or `.wav` file, its
        class index, the sorted class names, and `"image"` or `"audio"`.
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
            f"(readable types: {', '.join(IMAGE_EXTENSIONS)})"
        )
    if len(kinds) > 1:
        raise DataError(f"{root} mixes image and audio files; keep one modality per folder")
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
        raise DataError(f"{root} holds audio files; use load_cross_modal for audio, or an image folder here")
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


def _load_pool(paths, image_size, channels, skip_bad, max_pixels, progress, bad):
    """Decode a pool of files of one modality; returns `(x, kept positions)`."""
    kinds = {_kind(p) for p in paths}
    if kinds == {"audio"}:
        return read_wavs(paths, progress), np.arange(len(paths))
    if kinds != {"image"}:
        unknown = next(p for p in paths if _kind(p) != "image")
        raise DataError(f"{unknown}: not a readable image or .wav file, or a column mixes images and audio")
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


def _load_root(root, class_names, image_size, channels, skip_bad, max_pixels, progress):
    paths, labels, names, kind = scan_folder(root)
    if kind == "image":
        ds = load_folder(root, image_size, channels, skip_bad, max_pixels, progress, min_per_class=1)
    else:
        x = read_wavs(paths, progress)
        relative = np.array([os.path.relpath(p, root) for p in paths])
        info = {"root": root, "class_names": names, "sample_rate": x.sample_rate, "bad_files": []}
        ds = Dataset(os.path.basename(os.path.abspath(root)), x, labels, {"path": relative}, info)
    # Relabel by the shared class list, so label k means the same class on both sides.
    ds.y = np.searchsorted(class_names, np.asarray(ds.info["class_names"])[ds.y])
    ds.info["class_names"] = list(class_names)
    return ds


def load_cross_modal(root_a, root_b, image_size=None, channels=None, skip_bad=False, max_pixels=None, progress=True):
    """Load two class-folder trees, one per modality, paired by class name.

    Args:
        root_a, root_b: folders with one sub-folder per class, holding images
            or `.wav` files; the class names must match.
        image_size, channels, skip_bad, max_pixels, progress: as for
            `load_folder`, applied to image folders.

    Returns:
        `(dataset_a, dataset_b)` whose labels index the same sorted class
        names; any sample of class k on one side pairs with any of class k
        on the other.
    """
    names = [scan_folder(r)[2] for r in (root_a, root_b)]
    if names[0] != names[1]:
        only_a = sorted(set(names[0]) - set(names[1]))
        only_b = sorted(set(names[1]) - set(names[0]))
        raise DataError(
            f"the class folders of {root_a} and {root_b} differ: only in the first {only_a}, only in the "
            f"second {only_b}; cross-modal pairing matches classes by folder name"
        )
    return tuple(
        _load_root(os.fspath(r), names[0], image_size, channels, skip_bad, max_pixels, progress)
        for r in (root_a, root_b)
    )


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
