"""`CrossModalPairs`: pairs across two modalities, matched by class.

Modality a (say images) and modality b (say recordings) share class labels
(the digit). A positive pair is an a-item and a b-item of the same class, a
negative pair one of different classes. Like the other samplers, every batch
is a pure function of `(seed, epoch, batch index)`.
"""

import math

import numpy as np

from ..errors import DataError, check_choice
from .epochs import EpochSeeded
from .pairs import ClassIndex

MODES = ("in_batch", "pairs")


class CrossModalPairs(EpochSeeded):
    """Cross-modal pairs by class, for `TwoTowerNetwork` training.

    Each epoch walks through modality b in a fresh random order; every
    b-item is paired with a random a-item.

    - `mode="in_batch"`: every pair is positive, and the batch is
      `((x_a, x_b), classes)`. The other rows are the negatives (in-batch
      negatives): train `CrossModalScores` with `ClipLoss` or
      `CrossModalContrastiveLoss`.
    - `mode="pairs"`: a `positive_fraction` of the pairs are positive, the
      rest have an a-item of another class, and the batch is
      `((x_a, x_b), same)` with 1 = same class, 0 = different: train the
      `TwoTowerNetwork` itself with `ContrastiveLoss` or `BinaryCrossEntropy`.

    Args:
        x_a, y_a: samples and class labels of modality a.
        x_b, y_b: samples and class labels of modality b; every class of
            `y_b` must occur in `y_a`.
        batch_size: pairs per batch.
        mode: `"in_batch"` or `"pairs"`.
        positive_fraction: share of positives in `mode="pairs"`.
        pairs_per_epoch: default `len(x_b)`.
        augment_a, augment_b: optional `augment(batch, rng) -> batch` per modality.
        seed: seeds every draw.
        **kwargs: `keras.utils.PyDataset` options (`workers`, ...).

    Example:

    >>> import numpy as np
    >>> images, digits = np.random.rand(50, 8, 8, 1), np.arange(50) % 10
    >>> clips, spoken = np.random.rand(30, 800), np.arange(30) % 10
    >>> ds = CrossModalPairs(images, digits, clips, spoken, batch_size=8, seed=0)
    >>> (xa, xb), classes = ds[0]
    >>> xa.shape, xb.shape, classes.shape
    ((8, 8, 8, 1), (8, 800), (8,))
    """

    def __init__(
        self,
        x_a,
        y_a,
        x_b,
        y_b,
        batch_size=64,
        mode="in_batch",
        positive_fraction=0.5,
        pairs_per_epoch=None,
        augment_a=None,
        augment_b=None,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.x_a, self.y_a = x_a, np.asarray(y_a)
        self.x_b, self.y_b = x_b, np.asarray(y_b)
        for name, x, y in (("a", x_a, self.y_a), ("b", x_b, self.y_b)):
            if len(x) != len(y):
                raise DataError(f"modality {name}: {len(x)} samples but {len(y)} labels")
        self.index_a = ClassIndex(self.y_a)
        missing = np.setdiff1d(self.y_b, self.index_a.classes)
        if len(missing):
            raise DataError(
                f"classes {missing[:10].tolist()} of modality b have no samples in modality a, "
                "so they have no positive partner; drop them or add samples"
            )
        self.mode = check_choice("mode", mode, MODES)
        if not 0.0 <= positive_fraction <= 1.0:
            raise DataError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        if mode == "pairs" and positive_fraction < 1.0 and self.index_a.num_classes < 2:
            raise DataError("negative pairs need modality a to have at least 2 classes")
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)
        self.positive_fraction = float(positive_fraction)
        self.pairs_per_epoch = int(pairs_per_epoch or len(self.y_b))
        self.augment_a, self.augment_b = augment_a, augment_b
        self.seed = int(seed)
        self._draw()

    def _draw(self):
        """This epoch's b-items: shuffled passes over modality b."""
        rng = self._rng()
        n = len(self) * self.batch_size
        passes = math.ceil(n / len(self.y_b))
        self.order_b = np.concatenate([rng.permutation(len(self.y_b)) for _ in range(passes)])[:n]

    def __len__(self):
        return math.ceil(self.pairs_per_epoch / self.batch_size)

    def partners(self, classes, same, rng):
        """A random a-item of each class in `classes` (`same` True), or of another class."""
        idx = self.index_a
        pos = np.searchsorted(idx.classes, classes)
        n_other = len(self.y_a) - idx.size[pos]
        r = np.where(same, rng.integers(0, idx.size[pos]), rng.integers(0, np.maximum(n_other, 1)))
        # Negatives index the samples outside the class's contiguous block of `order`.
        r = np.where(same, idx.start[pos] + r, np.where(r >= idx.start[pos], r + idx.size[pos], r))
        return idx.order[r]

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        rng = self._rng(i)
        b = self.order_b[i * self.batch_size : (i + 1) * self.batch_size]
        classes = self.y_b[b]
        if self.mode == "in_batch":
            same = np.ones(len(b), bool)
        else:
            same = rng.permutation(len(b)) < round(len(b) * self.positive_fraction)
        a = self.partners(classes, same, rng)
        xa = np.asarray(self.x_a[a], dtype="float32")
        xb = np.asarray(self.x_b[b], dtype="float32")
        if self.augment_a is not None:
            xa = self.augment_a(xa, rng)
        if self.augment_b is not None:
            xb = self.augment_b(xb, rng)
        target = classes if self.mode == "in_batch" else same.astype("float32")
        return (xa, xb), target


