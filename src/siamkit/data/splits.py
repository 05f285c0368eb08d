"""Splits for similarity learning.

One-shot and verification on unseen classes need the held-out classes to be
absent from training, so the splits here are by class, not by sample.
"""

import numpy as np

from ..errors import DataError


def class_disjoint_split(y, fractions=(0.7, 0.15, 0.15), seed=0):
    """Split sample indices into parts whose classes do not overlap.

    Args:
        y: class labels `(n,)`.
        fractions: share of the *classes* in each part; must sum to 1.
        seed: seeds the shuffle of the classes.

    Returns:
        A list of index arrays, one per fraction.

    Example:

    >>> tr, va, te = class_disjoint_split(np.repeat(np.arange(10), 3), (0.6, 0.2, 0.2))
    >>> len(tr), len(va), len(te)
    (18, 6, 6)
    """
    y = np.asarray(y)
    fractions = np.asarray(fractions, dtype=float)
    if (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise DataError(f"split fractions must be non-negative and sum to 1, got {fractions.tolist()}")
    classes = np.random.default_rng(seed).permutation(np.unique(y))
    if len(classes) < np.count_nonzero(fractions):
        raise DataError(f"{len(classes)} classes cannot fill {np.count_nonzero(fractions)} class-disjoint parts")
    counts = np.diff(np.round(np.cumsum(fractions) * len(classes)).astype(int), prepend=0)
    for i in np.flatnonzero((fractions > 0) & (counts == 0)):  # rounding emptied a part: lend it a class
        counts[np.argmax(counts)] -= 1
        counts[i] = 1
    parts = np.split(classes, np.cumsum(counts)[:-1])
    return [np.flatnonzero(np.isin(y, part)) for part in parts]


def holdout_split(y, holdout_classes):
    """Indices of the samples outside and inside `holdout_classes`."""
    y = np.asarray(y)
    held = np.isin(y, holdout_classes)
    missing = sorted(set(np.asarray(holdout_classes).tolist()) - set(np.unique(y).tolist()))
    if missing:
        raise DataError(f"holdout classes {missing} do not occur in the labels")
    if held.all() or not held.any():
        raise DataError("the holdout classes must leave at least one class for training and hold out at least one")
    return np.flatnonzero(~held), np.flatnonzero(held)


def stratified_fraction(indices, y, fraction, seed=0):
    """Split `indices` into (rest, part) taking `fraction` of each class.

    Classes keep at least one sample in `rest`; used to hold out images of
    the training classes for validation.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    part = []
    for c in np.unique(y[indices]):
        members = rng.permutation(indices[y[indices] == c])
        take = min(int(round(fraction * len(members))), len(members) - 1)
        part.append(members[:take])
    part = np.sort(np.concatenate(part)) if part else np.array([], dtype=int)
    return np.setdiff1d(indices, part), part
