"""Draw pairs of sample indices by class, exactly and without loops.

Samples are grouped by class once (`ClassIndex`); a positive partner is then
drawn uniformly from the anchor's class minus the anchor itself, and a
negative partner uniformly from all samples of the other classes.
"""

import numpy as np

from ..errors import DataError


class ClassIndex:
    """Positions of each class's samples, for fast sampling by class.

    Args:
        y: integer class labels, shape `(n,)`.
    """

    def __init__(self, y):
        y = np.asarray(y)
        if y.ndim != 1 or len(y) == 0:
            raise DataError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
        self.y = y
        self.order = np.argsort(y, kind="stable")
        self.classes, self.start, self.size = np.unique(y[self.order], return_index=True, return_counts=True)
        # For each sample: its class's position in `classes` and its rank inside that class.
        self.class_pos = np.searchsorted(self.classes, y)
        self.rank = np.empty(len(y), dtype=np.int64)
        self.rank[self.order] = np.arange(len(y)) - np.repeat(self.start, self.size)

    @property
    def num_classes(self):
        return len(self.classes)

    def eligible_anchors(self):
        """Samples whose class has at least two samples (they have positives)."""
        return np.flatnonzero(self.size[self.class_pos] >= 2)

    def positive_partners(self, anchors, rng):
        c = self.class_pos[anchors]
        r = rng.integers(0, self.size[c] - 1)
        r = r + (r >= self.rank[anchors])  # skip the anchor itself
        return self.order[self.start[c] + r]

    def negative_partners(self, anchors, rng):
        c = self.class_pos[anchors]
        r = rng.integers(0, len(self.y) - self.size[c])
        r = np.where(r >= self.start[c], r + self.size[c], r)  # skip the anchor's class block
        return self.order[r]


def check_pairable(index, need_positives=True, what="dataset"):
    """Refuse data from which balanced pairs cannot be drawn."""
    if index.num_classes < 2:
        raise DataError(
            f"the {what} has {index.num_classes} class; pairs need at least 2 classes to draw negatives"
        )
    if need_positives and not (index.size >= 2).any():
        raise DataError(
            f"no class of the {what} has 2 or more samples, so no positive pair can be drawn; "
            "add samples or use a dataset with repeated classes"
        )


def sample_pairs(y, n_pairs, positive_fraction=0.5, rng=None, index=None):
    """Draw `n_pairs` index pairs, a fraction of them positive, shuffled.

    An index is never paired with itself; classes with a single sample appear
    only in negative pairs.

    Args:
        y: class labels.
        n_pairs: number of pairs.
        positive_fraction: share of positive pairs, in [0, 1].
        rng: a `numpy.random.Generator` or seed.
        index: a prebuilt `ClassIndex` of `y` (avoids recomputing it).

    Returns:
        `(first, second, labels)`: index arrays and float32 labels,
        1 = same class, 0 = different.

    Example:

    >>> i, j, same = sample_pairs([0, 0, 1, 1], 4, rng=0)
    >>> bool((i != j).all())
    True
    """
    if not 0.0 <= positive_fraction <= 1.0:
        raise DataError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
    index = index or ClassIndex(y)
    rng = np.random.default_rng(rng)
    n_pos = int(round(n_pairs * positive_fraction))
    check_pairable(index, need_positives=n_pos > 0)
    pos_anchor = rng.choice(index.eligible_anchors(), size=n_pos)
    neg_anchor = rng.integers(0, len(index.y), size=n_pairs - n_pos)
    first = np.concatenate([pos_anchor, neg_anchor])
    second = np.concatenate([index.positive_partners(pos_anchor, rng), index.negative_partners(neg_anchor, rng)])
    labels = np.concatenate([np.ones(n_pos, "float32"), np.zeros(n_pairs - n_pos, "float32")])
    perm = rng.permutation(n_pairs)
    return first[perm], second[perm], labels[perm]
