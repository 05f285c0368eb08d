"""Omniglot: the official zips of PNG folders -> the cache schema -> arrays.

The zips hold `images_background/ALPHABET/characterXX/CCCC_DD.png` (and
`images_evaluation/...`): `CCCC` is the global character id 1..1623 and `DD`
the drawer 1..20. The cache schema (`omniglot.npz`) is documented in the
shared/data README: rows sorted by character id then drawer, pixels as in the
PNGs (1 = paper, 0 = ink). Loading flips them so that ink is high.
"""

import io
import re
import zipfile

import numpy as np
from PIL import Image

from ..errors import DataError
from .sources import Remote, ensure

SUBSETS = ("background", "evaluation")
_ENTRY = re.compile(r"(?:^|/)images_(background|evaluation)/([^/]+)/character(\d+)/(\d+)_(\d+)\.png$")
# The official "background small" splits (Lake et al.'s minimal training sets).
SMALL1 = ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin")
SMALL2 = ("Greek", "Japanese_(katakana)", "Latin", "Sanskrit", "Tagalog")

_BASE = "https://github.com/brendenlake/omniglot/raw/master/python/"


def convert_zips(paths):
    """Official Omniglot zips -> the cache schema's arrays.

    Args:
        paths: `{zip name: path}`; every `.png` entry that matches the
            official layout is read.
    """
    rows = []  # (char_id, drawer, split, alphabet, character, pixels)
    for name, path in paths.items():
        try:
            with zipfile.ZipFile(path) as archive:
                for entry in archive.namelist():
                    match = _ENTRY.search(entry)
                    if not match:
                        continue
                    split, alphabet, character, char_id, drawer = match.groups()
                    with Image.open(io.BytesIO(archive.read(entry))) as img:
                        pixels = np.asarray(img.convert("1"), dtype="uint8")
                    rows.append((int(char_id), int(drawer), SUBSETS.index(split), alphabet, int(character), pixels))
        except zipfile.BadZipFile as err:
            raise DataError(f"{name}: not a readable zip file ({err})") from None
    if not rows:
        raise DataError(f"no images_*/ALPHABET/characterXX/XXXX_YY.png entries in {', '.join(paths)}")
    rows.sort(key=lambda r: (r[0], r[1]))
    char_id = np.array([r[0] for r in rows], dtype="int16")
    alphabets = [r[3] for r in rows]
    first_id = {}
    for a, c in zip(alphabets, char_id):
        first_id.setdefault(a, int(c))  # rows are sorted, so the first seen is the smallest
    names = sorted(first_id, key=first_id.get)
    alphabet = np.array([names.index(a) for a in alphabets], dtype="uint8")
    split = np.array([r[2] for r in rows], dtype="uint8")
    try:
        images = np.stack([r[5] for r in rows])
    except ValueError:
        raise DataError("Omniglot images differ in size; the archive is not the official one") from None
    alphabet_split = np.array([split[alphabet == i][0] for i in range(len(names))], dtype="uint8")
    return {
        "images": images,
        "char_id": char_id,
        "label": (char_id - 1).astype("int16"),
        "alphabet": alphabet,
        "character": np.array([r[4] for r in rows], dtype="uint8"),
        "drawer": np.array([r[1] for r in rows], dtype="uint8"),
        "split": split,
        "alphabet_names": np.array(names),
        "alphabet_split": alphabet_split,
        "alphabet_first_char_id": np.array([first_id[a] for a in names], dtype="int16"),
        "alphabet_num_chars": np.array([len(np.unique(char_id[alphabet == i])) for i in range(len(names))], "int16"),
        "alphabet_in_small1": np.array([a in SMALL1 for a in names], dtype="uint8"),
        "alphabet_in_small2": np.array([a in SMALL2 for a in names], dtype="uint8"),
    }


REMOTE = Remote(
    {
        "images_background.zip": (
            _BASE + "images_background.zip",
            "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640",
        ),
        "images_evaluation.zip": (
            _BASE + "images_evaluation.zip",
            "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee",
        ),
    },
    convert_zips,
)


def read(subset=None, data_dir=None, download=True):
    """Read Omniglot from the cache schema.

    Args:
        subset: `"background"` (964 characters), `"evaluation"` (659), or
            None for all 1,623.
        data_dir, download: as for `sources.ensure`.

    Returns:
        `(images, labels, meta, info)`: uint8 `(n, 105, 105)` with ink = 255,
        labels = global character index 0..1622, `meta` with `alphabet`,
        `character`, `drawer`, `split` (0 background, 1 evaluation);
        `info` with `alphabet_names` and `class_names` (`"Alphabet/characterXX"`).
    """
    path = ensure("omniglot.npz", REMOTE, data_dir, download)
    with np.load(path, allow_pickle=False) as f:
        rows = slice(None) if subset is None else f["split"] == SUBSETS.index(subset)
        images = f["images"][rows]
        np.subtract(1, images, out=images)  # 1 = paper in the PNGs; ink high from here on
        images *= 255
        label = f["label"][rows].astype("int64")
        meta = {k: f[k][rows] for k in ("alphabet", "character", "drawer", "split")}
        names = [str(a) for a in f["alphabet_names"]]
        first = f["alphabet_first_char_id"]
        num = f["alphabet_num_chars"]
    class_names = [f"{a}/character{c:02d}" for a, n in zip(names, num) for c in range(1, n + 1)]
    if len(class_names) != int(first.max()) + int(num[first.argmax()]) - 1:
        raise DataError(f"{path}: alphabet id ranges are not contiguous; the file is not in the shared/data schema")
    info = {"alphabet_names": names, "class_names": class_names, "path": path}
    return images, label, meta, info
