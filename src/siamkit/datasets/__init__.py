"""Standard datasets as arrays, with labels and metadata.

`load(name)` returns a `Dataset`. Images are float32 arrays of shape
`(n, height, width, channels)` scaled to [0, 1], foreground (ink) high.

Example:

>>> from siamkit import datasets
>>> ds = datasets.load("digits")
>>> ds.x.shape, ds.num_classes
((1797, 8, 8, 1), 10)
"""

from .base import Dataset
from .registry import DATASETS, load

__all__ = ["Dataset", "DATASETS", "load"]
