"""Splits for similarity learning.

One-shot and verification on unseen classes need the held-out classes to be
absent from training, so the splits here are by class, not by sample.
`split_indices` and `split_pairs` are the train/validation/test splits of a
training config, shared by training and evaluation.
"""

import numpy as np

from ..errors import ConfigError, DataError


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


def meta_field(dataset, config, option):
    """The per-sample `dataset.meta` field that `config[option]` names, or None when unset."""
    key = config.get(option)
    if key is None:
        return None
    if key not in dataset.meta:
        raise ConfigError(
            f"{option} {key!r} is not a per-sample field of dataset {dataset.name!r}; "
            f"it has: {', '.join(sorted(dataset.meta)) or 'none'}"
        )
    return np.asarray(dataset.meta[key])


def split_indices(dataset, config):
    """Train, validation and test indices, the test classes unseen in training.

    Validation holds out images of the training classes (for choosing
    thresholds); the test set holds whole classes out. With `split_by`, a
    key of `dataset.meta` such as Omniglot's `"alphabet"`, validation and
    test hold out whole groups instead (`holdout_groups`, or a fraction).
    """
    y, seed = dataset.y, config["seed"]
    groups = meta_field(dataset, config, "split_by")
    if config["holdout_classes"] is not None:
        train_idx, test_idx = holdout_split(y, config["holdout_classes"])
    elif config.get("holdout_groups") is not None:
        train_idx, test_idx = holdout_split(groups, config["holdout_groups"])
    else:
        f = config["holdout_fraction"]
        train_idx, test_idx = class_disjoint_split(y if groups is None else groups, (1 - f, f), seed=seed)
    if groups is None:
        train_idx, val_idx = stratified_fraction(train_idx, y, config["val_fraction"], seed=seed)
    else:
        v = config["val_fraction"]
        keep, held = class_disjoint_split(groups[train_idx], (1 - v, v), seed=seed)
        train_idx, val_idx = train_idx[keep], train_idx[held]
    for part, idx in (("training", train_idx), ("validation", val_idx), ("test", test_idx)):
        if len(idx) == 0:
            raise DataError(
                f"the {part} part of the split is empty ({len(np.unique(y))} classes, holdout_fraction "
                f"{config['holdout_fraction']}, val_fraction {config['val_fraction']}); validation needs classes "
                f"with 2 or more images, or groups to hold out: add data or change the fractions"
            )
    return train_idx, val_idx, test_idx


def split_pairs(pairs, config):
    """Random train, validation and test parts of labelled pairs, seeded."""
    order = np.random.default_rng(config["seed"]).permutation(len(pairs))
    n_test = max(1, int(round(config["holdout_fraction"] * len(pairs))))
    n_val = max(1, int(round(config["val_fraction"] * len(pairs))))
    if len(pairs) - n_test - n_val < 2:
        raise DataError(f"{pairs.name}: {len(pairs)} pairs are too few to split into train, validation and test")
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return tuple(pairs.subset(np.sort(part)) for part in (train, val, test))
