"""Datasets: the standard ones by name, and your own files on disk.

`load(name)` returns a `Dataset`. Images are float32 arrays of shape
`(n, height, width, channels)` scaled to [0, 1], foreground (ink) high; audio
(`fsdd`) is a `Waveforms`. Files come from `data_dir`, `$SIAMKIT_DATA_DIR`,
the user cache (`$SIAMKIT_CACHE_DIR`, default `~/.cache/siamkit`), or a
checked download (see `sources`).

Your own data: `load_folder` (one sub-folder per class), `load_pairs` (a
`path_a,path_b,label` CSV), `load_cross_modal` (two roots paired by class
name), `load_positive_pairs` (a CSV of matching cross-modal pairs, text
inline); `encode_text`, `read_texts`, `read_features` for text and
feature-vector towers; `load_inputs` resolves a training config's data options into one
of those; `ImageStore` keeps large folders on disk, and
`siamkit.datasets.streaming.ImageBatches` feeds them to Keras with worker
processes.

Example:

>>> from siamkit import datasets
>>> ds = datasets.load("digits")
>>> ds.x.shape, ds.num_classes
((1797, 8, 8, 1), 10)
"""

from .base import Dataset, Pairs
from .folders import (
    load_cross_modal, load_folder, load_pairs, load_positive_pairs, write_bad_files, write_manifest,
)
from .images import BadFileError
from .inputs import load_inputs, load_towers
from .registry import DATASETS, DatasetSpec, get_spec, load
from .store import ImageStore
from .text import encode_text, read_features, read_texts
from .waveforms import Waveforms

__all__ = [
    "BadFileError",
    "DATASETS",
    "Dataset",
    "DatasetSpec",
    "ImageStore",
    "Pairs",
    "Waveforms",
    "encode_text",
    "get_spec",
    "load",
    "load_cross_modal",
    "load_folder",
    "load_inputs",
    "load_towers",
    "load_pairs",
    "load_positive_pairs",
    "read_features",
    "read_texts",
    "write_bad_files",
    "write_manifest",
]
