"""Online miners: pick informative positives and negatives inside a batch.

Each miner works on a pairwise distance matrix `D` (lower = closer) of one
labelled batch and returns the distances the loss needs, with a mask of the
anchors (or pairs) that have a valid choice. Losses take a miner by name.

- `all_triplets`: every valid (anchor, positive, negative) triplet.
- `batch_hard`: per anchor, the farthest positive and the closest negative
  (Hermans, Beyer & Leibe 2017).
- `semi_hard`: per (anchor, positive) pair, the closest negative that is
  farther than the positive but within the margin; where there is none, the
  closest negative overall (Schroff, Kalenichenko & Philbin 2015, FaceNet).
- `easy_positive`: per anchor, the closest positive and the closest negative
  (Xuan, Stylianou & Pless 2020).
"""

from keras import ops

MINERS = ("all", "hard", "semi-hard", "easy")

# Stands in for "no candidate" inside masked min/max; far above any distance.
_BIG = 1e9


def label_masks(labels):
    """Boolean `(n, n)` masks of positive pairs (same label, not self) and negatives."""
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    not_self = ops.logical_not(ops.cast(ops.eye(ops.shape(labels)[0]), "bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


def _masked_min(values, mask, axis):
    return ops.min(ops.where(mask, values, _BIG), axis=axis)


def _masked_max(values, mask, axis):
    return ops.max(ops.where(mask, values, -_BIG), axis=axis)


def all_triplets(D, labels):
    """Returns `(d_ap, d_an, valid)`, all `(n, n, n)` indexed `[a, p, n]`."""
    pos, neg = label_masks(labels)
    valid = ops.logical_and(ops.expand_dims(pos, 2), ops.expand_dims(neg, 1))
    return ops.expand_dims(D, 2), ops.expand_dims(D, 1), valid


def batch_hard(D, labels):
    """Returns `(d_ap, d_an, valid)`, `(n,)`: hardest positive and negative per anchor."""
    pos, neg = label_masks(labels)
    valid = ops.logical_and(ops.any(pos, axis=1), ops.any(neg, axis=1))
    return _masked_max(D, pos, 1), _masked_min(D, neg, 1), valid


def easy_positive(D, labels):
    """Returns `(d_ap, d_an, valid)`, `(n,)`: closest positive and closest negative."""
    pos, neg = label_masks(labels)
    valid = ops.logical_and(ops.any(pos, axis=1), ops.any(neg, axis=1))
    return _masked_min(D, pos, 1), _masked_min(D, neg, 1), valid


def semi_hard(D, labels, margin):
    """Returns `(d_ap, d_an, valid)`, `(n, n)` indexed `[a, p]`.

    `d_an[a, p]` is the closest negative of `a` with `D[a, p] < D[a, n] <
    D[a, p] + margin`, or the closest negative of `a` where none is.
    """
    pos, neg = label_masks(labels)
    d_ap = ops.expand_dims(D, 2)  # [a, p, 1]
    d_an = ops.expand_dims(D, 1)  # [a, 1, n]
    in_band = ops.logical_and(ops.greater(d_an, d_ap), ops.less(d_an, d_ap + margin))
    in_band = ops.logical_and(in_band, ops.expand_dims(neg, 1))
    semi = _masked_min(ops.broadcast_to(d_an, ops.shape(in_band)), in_band, 2)
    hardest = ops.expand_dims(_masked_min(D, neg, 1), 1)
    chosen = ops.where(ops.any(in_band, axis=2), semi, hardest)
    valid = ops.logical_and(pos, ops.expand_dims(ops.any(neg, axis=1), 1))
    return D, chosen, valid
