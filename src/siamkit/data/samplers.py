"""Samplers that feed training: `keras.utils.PyDataset`s drawn fresh each epoch.

Every batch is a pure function of `(seed, epoch, batch index)`, so a run is
reproducible whatever the number of workers or the order batches are asked in.
"""

import math

import numpy as np

from ..errors import DataError
from .epochs import EpochSeeded
from .pairs import ClassIndex, check_pairable, sample_pairs


class _EpochSampler(EpochSeeded):
    """Common plumbing of the single-pool samplers: arrays, augmentation, class index."""

    def __init__(self, x, y, augment, seed, **kwargs):
        super().__init__(**kwargs)
        self.x = x
        self.y = np.asarray(y)
        if len(self.x) != len(self.y):
            raise DataError(f"x has {len(self.x)} samples but y has {len(self.y)} labels")
        self.index = ClassIndex(self.y)
        self.augment = augment
        self.seed = int(seed)

    def _take(self, idx, rng):
        batch = np.asarray(self.x[idx], dtype="float32")
        return self.augment(batch, rng) if self.augment is not None else batch


class PairDataset(_EpochSampler):
    """Balanced positive and negative pairs: `((x1, x2), same)` batches.

    Labels: 1 = same class, 0 = different. An image is never paired with
    itself, and classes with a single image give negatives only.

    Args:
        x: samples, e.g. images `(n, h, w, c)`.
        y: class labels `(n,)`.
        batch_size: pairs per batch.
        positive_fraction: share of positive pairs.
        pairs_per_epoch: pairs drawn per epoch (default: `2 * len(x)`).
        augment: optional `augment(batch, rng) -> batch`, applied to each side.
        seed: seeds every draw.
        **kwargs: `keras.utils.PyDataset` options (`workers`,
            `use_multiprocessing`, `max_queue_size`).

    Example:

    >>> import numpy as np
    >>> ds = PairDataset(np.random.rand(20, 8, 8, 1), np.repeat(np.arange(4), 5), batch_size=8)
    >>> (x1, x2), same = ds[0]
    >>> x1.shape, same.shape
    ((8, 8, 8, 1), (8,))
    """

    def __init__(
        self, x, y, batch_size=128, positive_fraction=0.5, pairs_per_epoch=None, augment=None, seed=0, **kwargs
    ):
        super().__init__(x, y, augment, seed, **kwargs)
        check_pairable(self.index, need_positives=positive_fraction > 0)
        self.batch_size = int(batch_size)
        self.positive_fraction = float(positive_fraction)
        self.pairs_per_epoch = int(pairs_per_epoch or 2 * len(self.y))
        self._draw()

    def _draw(self):
        n = len(self) * self.batch_size
        self.first, self.second, self.labels = sample_pairs(
            self.y, n, self.positive_fraction, rng=self._rng(), index=self.index
        )

    def __len__(self):
        return math.ceil(self.pairs_per_epoch / self.batch_size)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
        rng = self._rng(i)
        return (self._take(self.first[sl], rng), self._take(self.second[sl], rng)), self.labels[sl]


class TripletDataset(_EpochSampler):
    """Random triplets: `((anchor, positive, negative), anchor_labels)` batches.

    For offline triplet models with three inputs; for online mining on
    embeddings use `ClassBalancedBatches` with `siamkit.losses.TripletLoss`.

    Args:
        x, y, augment, seed, **kwargs: as for `PairDataset`.
        batch_size: triplets per batch.
        triplets_per_epoch: triplets per epoch (default: `len(x)`).
    """

    def __init__(self, x, y, batch_size=128, triplets_per_epoch=None, augment=None, seed=0, **kwargs):
        super().__init__(x, y, augment, seed, **kwargs)
        check_pairable(self.index, need_positives=True)
        self.batch_size = int(batch_size)
        self.triplets_per_epoch = int(triplets_per_epoch or len(self.y))
        self._draw()

    def _draw(self):
        rng = self._rng()
        anchors = rng.choice(self.index.eligible_anchors(), size=len(self) * self.batch_size)
        self.triplets = np.stack(
            [anchors, self.index.positive_partners(anchors, rng), self.index.negative_partners(anchors, rng)]
        )

    def __len__(self):
        return math.ceil(self.triplets_per_epoch / self.batch_size)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        a, p, n = self.triplets[:, i * self.batch_size : (i + 1) * self.batch_size]
        rng = self._rng(i)
        return (self._take(a, rng), self._take(p, rng), self._take(n, rng)), self.y[a]


class ClassBalancedBatches(_EpochSampler):
    """P x K batches for online mining: `(x, labels)` with P classes, K samples each.

    Only classes with at least 2 samples are drawn (a class alone in its
    batch gives no positive). A class with fewer than K samples is sampled
    with replacement.

    With `groups` (say each character's alphabet), a batch takes its classes
    group by group: all of a random group's classes (up to P), then another
    group's, until it has P. The negatives of a batch are then mostly from
    the same group, the hard negatives of a within-group test such as
    Omniglot's within-alphabet one-shot protocol. Groups are drawn alike
    whatever their size, so the classes of groups larger than P are drawn
    less often each.

    Args:
        x, y, augment, seed, **kwargs: as for `PairDataset`.
        classes_per_batch: P, distinct classes per batch.
        samples_per_class: K, samples of each class per batch.
        batches_per_epoch: default `len(x) // (P * K)`, at least 1.
        groups: optional group of each sample `(n,)`; every class must lie
            in one group.

    Example:

    >>> import numpy as np
    >>> ds = ClassBalancedBatches(np.random.rand(40, 4), np.repeat(np.arange(8), 5), 4, 2)
    >>> x, labels = ds[0]
    >>> x.shape, len(set(labels.tolist()))
    ((8, 4), 4)
    """

    def __init__(
        self, x, y, classes_per_batch=32, samples_per_class=4, batches_per_epoch=None, augment=None, seed=0,
        groups=None, **kwargs,
    ):
        super().__init__(x, y, augment, seed, **kwargs)
        self.classes_per_batch = int(classes_per_batch)
        self.samples_per_class = int(samples_per_class)
        if self.classes_per_batch < 2 or self.samples_per_class < 2:
            raise DataError(
                f"P x K batches need P >= 2 classes and K >= 2 samples per class, "
                f"got P={classes_per_batch}, K={samples_per_class}"
            )
        self.eligible = np.flatnonzero(self.index.size >= 2)
        if len(self.eligible) < self.classes_per_batch:
            raise DataError(
                f"{len(self.eligible)} classes have 2 or more samples, fewer than classes_per_batch="
                f"{self.classes_per_batch}; lower classes_per_batch or add data"
            )
        batch = self.classes_per_batch * self.samples_per_class
        self.batches_per_epoch = int(batches_per_epoch or max(1, len(self.y) // batch))
        self.group_classes = None if groups is None else self._group_classes(np.asarray(groups))

    def _group_classes(self, groups):
        """The eligible classes (indices into `index.classes`) of each group."""
        if groups.shape != self.y.shape:
            raise DataError(f"groups must give one group per sample, shape {self.y.shape}; got {groups.shape}")
        first = groups[self.index.order[self.index.start]]  # the group of each class's first sample
        if not np.array_equal(groups[self.index.order], np.repeat(first, self.index.size)):
            raise DataError("every class must lie in one group; some class has samples in two groups")
        eligible_groups = first[self.eligible]
        return [self.eligible[eligible_groups == g] for g in np.unique(eligible_groups)]

    def _classes(self, rng):
        P = self.classes_per_batch
        if self.group_classes is None:
            return rng.choice(self.eligible, size=P, replace=False)
        picked, have = [], 0
        for g in rng.permutation(len(self.group_classes)):
            members = self.group_classes[g]
            take = rng.permutation(members)[: P - have]
            picked.append(take)
            have += len(take)
            if have == P:
                break
        return np.concatenate(picked)

    def __len__(self):
        return self.batches_per_epoch

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        rng = self._rng(i)
        K = self.samples_per_class
        picked = []
        for c in self._classes(rng):
            members = self.index.order[self.index.start[c] : self.index.start[c] + self.index.size[c]]
            picked.append(rng.choice(members, size=K, replace=len(members) < K))
        idx = np.concatenate(picked)
        return self._take(idx, rng), self.y[idx]


class LabelledPairs(EpochSeeded):
    """Given labelled pairs, shuffled each epoch: `((x1, x2), same)` batches.

    For data that comes as pairs rather than classes (a pair CSV). Pair `i`
    is `(x_a[index_a[i]], x_b[index_b[i]])` with label `same[i]`.

    Args:
        x_a, x_b: the two pools of samples (may be the same array).
        index_a, index_b: pair indices into the pools.
        same: pair labels, 1 = same, 0 = different.
        batch_size, augment, seed, **kwargs: as for `PairDataset`.
    """

    def __init__(self, x_a, x_b, index_a, index_b, same, batch_size=128, augment=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        same = np.asarray(same, dtype="float32")
        if not np.isin(same, (0, 1)).all():
            raise DataError("pair labels must be 1 (same) or 0 (different)")
        self.x_a, self.x_b, self.same = x_a, x_b, same
        self.index_a, self.index_b = np.asarray(index_a), np.asarray(index_b)
        self.batch_size = int(batch_size)
        self.augment = augment
        self.seed = int(seed)
        self._draw()

    def _draw(self):
        self.order = self._rng().permutation(len(self.same))

    def __len__(self):
        return math.ceil(len(self.same) / self.batch_size)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range for {len(self)} batches")
        sel = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        rng = self._rng(i)
        sides = []
        for pool, idx in ((self.x_a, self.index_a[sel]), (self.x_b, self.index_b[sel])):
            batch = np.asarray(pool[idx], dtype="float32")
            sides.append(self.augment(batch, rng) if self.augment is not None else batch)
        return tuple(sides), self.same[sel]
