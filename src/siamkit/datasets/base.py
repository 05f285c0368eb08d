"""The `Dataset` container that every loader returns."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Dataset:
    """Arrays of one dataset, or of one subset of it.

    Args:
        name: the dataset's name.
        x: samples, float32; images are `(n, height, width, channels)` in [0, 1].
        y: integer class labels, shape `(n,)`.
        meta: per-sample arrays of length `n` (for example `alphabet`,
            `drawer`, `split`, `speaker`).
        info: dataset-level facts (for example `class_names`).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: x has {len(self.x)} samples but y has {len(self.y)}")
        for key, values in self.meta.items():
            if len(values) != len(self.y):
                raise ValueError(f"{self.name}: meta[{key!r}] has {len(values)} rows, expected {len(self.y)}")

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
            x=self.x[sel],
            y=self.y[sel],
            meta={k: v[sel] for k, v in self.meta.items()},
        )
