"""Embeddings for TensorBoard's embedding projector, written without TensorFlow.

`tensorboard --logdir DIR` shows them, coloured by label, with a thumbnail
per point. Files in `DIR`:

- `tensors.tsv`: one embedding per row, tab-separated;
- `metadata.tsv`: a header `label<TAB>path`, then one row per embedding;
- `sprite.png`: the thumbnails, row by row in square cells (when images are given);
- `projector_config.pbtxt`: the projector's configuration naming the three.

Example:

>>> import numpy as np
>>> write_projector("proj", np.zeros((4, 3)), ["a", "b", "a", "b"])   # doctest: +SKIP
'proj/projector_config.pbtxt'
"""

import io
import os

import numpy as np

from .. import _io
from ..errors import DataError
from . import media

TENSORS = "tensors.tsv"
METADATA = "metadata.tsv"
SPRITE = "sprite.png"
CONFIG = "projector_config.pbtxt"


def _cell(text):
    """A TSV cell: tabs and line breaks would split rows or columns, so they become spaces."""
    return " ".join(str(text).split("\t")).replace("\n", " ").replace("\r", " ")


def write_projector(folder, embeddings, labels, paths=None, images=None, name="siamkit", progress=None):
    """Write a projector folder.

    Args:
        folder: the output folder (created).
        embeddings: `(n, dim)` embeddings.
        labels: `n` labels (strings or numbers).
        paths: optional `n` file paths, a second metadata column.
        images: optional indexable of `n` images in [0, 1] for the sprite.
        name: the tensor's name in the projector.
        progress: optional `f(iterable) -> iterable` showing progress over the thumbnails.

    Returns:
        The path of `projector_config.pbtxt`.
    """
    z = np.asarray(embeddings, dtype="float32")
    if z.ndim != 2 or len(z) == 0:
        raise DataError(f"the projector needs a non-empty (n, dim) embedding array, got shape {z.shape}")
    if len(labels) != len(z) or (paths is not None and len(paths) != len(z)):
        raise DataError(f"the projector needs one label (and path) per embedding: {len(z)} embeddings, "
                        f"{len(labels)} labels" + ("" if paths is None else f", {len(paths)} paths"))
    os.makedirs(folder, exist_ok=True)
    buffer = io.StringIO()
    np.savetxt(buffer, z, delimiter="\t", fmt="%.7g")
    _io.write_text(os.path.join(folder, TENSORS), buffer.getvalue())
    header = "label\tpath\n" if paths is not None else "label\n"
    rows = [_cell(lab) + ("" if paths is None else "\t" + _cell(p))
            for lab, p in zip(labels, paths if paths is not None else labels)]
    _io.write_text(os.path.join(folder, METADATA), header + "\n".join(rows) + "\n")
    config = [
        "embeddings {",
        f'  tensor_name: "{name}"',
        f'  tensor_path: "{TENSORS}"',
        f'  metadata_path: "{METADATA}"',
    ]
    if images is not None:
        cell = media.sprite_cell(np.asarray(images[0]).shape, len(z))
        png, _ = media.sprite_png(images, cell, progress)
        with _io.atomic_path(os.path.join(folder, SPRITE), suffix=".png") as tmp:
            with open(tmp, "wb") as f:
                f.write(png)
        config += ["  sprite {", f'    image_path: "{SPRITE}"', f"    single_image_dim: {cell}",
                   f"    single_image_dim: {cell}", "  }"]
    config.append("}")
    path = os.path.join(folder, CONFIG)
    _io.write_text(path, "\n".join(config) + "\n")
    return path
