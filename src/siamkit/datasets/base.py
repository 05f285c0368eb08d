"""The containers that every loader returns: `Dataset` and `Pairs`."""

import dataclasses

import numpy as np

from ..errors import DataError


def select(values, sel):
    """Samples `values[sel]`, for arrays and lazy containers alike.

    A lazy container (`Waveforms`, `ImageStore`) selects with its `subset`,
    without decoding, so a streamed folder stays on disk.

    Args:
        values: an array, a `Waveforms` or an `ImageStore`.
        sel: a slice, a boolean mask or an index array.

    Example:

    >>> select(np.arange(5) * 10, [0, 3]).tolist()
    [0, 30]
    """
    return values.subset(sel) if hasattr(values, "subset") else values[sel]


@dataclasses.dataclass
class Dataset:
    """Arrays of one dataset, or of one subset of it.

    Args:
        name: the dataset's name.
        x: samples. Images are float32 `(n, height, width, channels)` in
            [0, 1]; audio is a `Waveforms`; a streamed image folder is an
            `ImageStore` that decodes on indexing.
        y: integer class labels, shape `(n,)`.
        meta: per-sample arrays of length `n` (for example `alphabet`,
            `drawer`, `split`, `speaker`, `path`).
        info: dataset-level facts (for example `class_names`).
    """

    name: str
    x: object
    y: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise DataError(f"{self.name}: x has {len(self.x)} samples but y has {len(self.y)}")
        for key, values in self.meta.items():
            if len(values) != len(self.y):
                raise DataError(f"{self.name}: meta[{key!r}] has {len(values)} rows, expected {len(self.y)}")

    def __len__(self):
        return len(self.y)

    @property
    def num_classes(self):
        return len(np.unique(self.y))

    def subset(self, mask_or_index):
        """Return the samples selected by a boolean mask or an index array."""
        sel = np.asarray(mask_or_index)
        return dataclasses.replace(
            self,
            x=select(self.x, sel),
            y=self.y[sel],
            meta={k: v[sel] for k, v in self.meta.items()},
        )


@dataclasses.dataclass
class Pairs:
    """Labelled pairs over two pools of samples (one pool per side).

    Pair `i` is `(x_a[index_a[i]], x_b[index_b[i]])` with label `y[i]`
    (1 = same, 0 = different). Each file is decoded once, however many
    pairs it is in; for single-modality pairs `x_a` and `x_b` are the same
    pool.

    Args:
        name: where the pairs came from (the CSV path).
        x_a, x_b: the pools, as `Dataset.x`.
        index_a, index_b: int arrays `(n,)` into the pools.
        y: int array `(n,)` of 0/1 labels.
        meta: per-pair arrays of length `n` (for example `line`).
        info: facts such as `paths_a`, `paths_b` (the pools' files).
    """

    name: str
    x_a: object
    x_b: object
    index_a: np.ndarray
    index_b: np.ndarray
    y: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = len(self.y)
        if len(self.index_a) != n or len(self.index_b) != n:
            raise DataError(f"{self.name}: {len(self.index_a)}/{len(self.index_b)} pair indices for {n} labels")

    def __len__(self):
        return len(self.y)

    @property
    def same_pool(self):
        return self.x_a is self.x_b

    @property
    def first(self):
        """The first sample of every pair (decoded, as an array)."""
        return self.x_a[self.index_a]

    @property
    def second(self):
        """The second sample of every pair."""
        return self.x_b[self.index_b]

    def subset(self, mask_or_index):
        """Return the pairs selected by a boolean mask or an index array (pools are shared)."""
        sel = np.asarray(mask_or_index)
        return dataclasses.replace(
            self,
            index_a=self.index_a[sel],
            index_b=self.index_b[sel],
            y=self.y[sel],
            meta={k: v[sel] for k, v in self.meta.items()},
        )
