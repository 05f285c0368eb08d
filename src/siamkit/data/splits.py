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


# Validation protocols of `split_indices` (`config["validation"]`), and how reports name them.
VALIDATION = ("auto", "classes", "images")
VALIDATION_LABELS = {"classes": "unseen-classes", "images": "seen-classes"}
# "auto" validates on whole classes when at least this many training classes (groups) remain.
MIN_TRAIN_CLASSES = 5


def validation_info(mode, reason):
    """How validation was drawn, as reports record it: `{"validation": label, "validation_reason": reason}`.

    The label is `"unseen-classes"` for `mode` `"classes"` (the threshold
    was chosen on classes the model was not trained on, as the test classes
    are) and `"seen-classes"` for `"images"`.
    """
    return {"validation": VALIDATION_LABELS[mode], "validation_reason": reason}


def _test_split(y, groups, config):
    """Training and test indices: the test set holds whole classes (or groups) out."""
    if config["holdout_classes"] is not None:
        return holdout_split(y, config["holdout_classes"])
    if config.get("holdout_groups") is not None:
        return holdout_split(groups, config["holdout_groups"])
    f = config["holdout_fraction"]
    return class_disjoint_split(y if groups is None else groups, (1 - f, f), seed=config["seed"])


def _validation_count(units, fraction, whole_groups):
    """`(n, n_val)`: training classes (groups) and how many of them validation holds out.

    Validation pairs need two classes (one group holds many), and `fraction` of them otherwise.
    """
    n = len(np.unique(units))
    return n, max(1 if whole_groups else 2, int(round(fraction * n)))


def resolve_validation(dataset, config):
    """`(protocol, reason)`: how `split_indices` validates `dataset` under `config["validation"]`.

    `"classes"` holds out whole training classes (whole groups with
    `split_by`), so that thresholds and early stopping are chosen on classes
    the model has not seen, as the test classes are; `"images"` holds out
    images of the training classes. `"auto"` is `"classes"` when at least
    `MIN_TRAIN_CLASSES` training classes (groups) would remain, else `"images"`.

    Args:
        dataset: a `siamkit.datasets.Dataset`.
        config: a training config.

    Returns:
        `("classes" or "images", a sentence saying why)`.

    Example:

    >>> from siamkit import datasets
    >>> config = {"validation": "auto", "holdout_classes": [7, 8, 9], "val_fraction": 0.15, "seed": 0}
    >>> resolve_validation(datasets.load("digits"), config)[0]
    'classes'
    """
    mode = config.get("validation")
    if mode is None:  # a run saved before the option existed validated this way
        return ("images" if config.get("split_by") is None else "classes"), "the run predates the validation option"
    if mode != "auto":
        return mode, f"validation = {mode!r} was set"
    groups = meta_field(dataset, config, "split_by")
    train_idx, _ = _test_split(dataset.y, groups, config)
    kind = "classes" if groups is None else "groups"
    n, n_val = _validation_count((dataset.y if groups is None else groups)[train_idx], config["val_fraction"],
                                 groups is not None)
    if n - n_val >= MIN_TRAIN_CLASSES:
        return "classes", f"{n_val} of the {n} training {kind} are held out for validation"
    return "images", (
        f"only {n} training {kind}: holding {n_val} out for validation would leave {n - n_val} "
        f"(fewer than {MIN_TRAIN_CLASSES}), so validation uses held-out images of the training classes "
        "and the threshold is chosen on seen classes"
    )


def split_indices(dataset, config):
    """Train, validation and test indices, the test classes unseen in training.

    The test set holds whole classes out (`holdout_classes`, or
    `holdout_fraction` of them); with `split_by`, a key of `dataset.meta`
    such as Omniglot's `"alphabet"`, whole groups (`holdout_groups`, or a
    fraction). Validation, which chooses thresholds and the epoch to keep,
    holds out `val_fraction` of the training classes (groups), at least two
    classes, or `val_fraction` of each training class's images, as
    `resolve_validation` decides.

    Returns:
        `(train_idx, val_idx, test_idx)`.
    """
    y, seed = dataset.y, config["seed"]
    groups = meta_field(dataset, config, "split_by")
    train_idx, test_idx = _test_split(y, groups, config)
    mode, _ = resolve_validation(dataset, config)
    if mode == "images":
        train_idx, val_idx = stratified_fraction(train_idx, y, config["val_fraction"], seed=seed)
    else:
        units = (y if groups is None else groups)[train_idx]
        n, n_val = _validation_count(units, config["val_fraction"], groups is not None)
        if n_val >= n:
            raise DataError(
                f"validation = 'classes' holds out {n_val} of the {n} training "
                f"{'classes' if groups is None else 'groups'}, leaving none to train on: "
                "add classes, lower val_fraction or set validation = 'images'"
            )
        keep, held = class_disjoint_split(units, (1 - n_val / n, n_val / n), seed=seed)
        train_idx, val_idx = train_idx[keep], train_idx[held]
    for part, idx in (("training", train_idx), ("validation", val_idx), ("test", test_idx)):
        if len(idx) == 0:
            raise DataError(
                f"the {part} part of the split is empty ({len(np.unique(y))} classes, holdout_fraction "
                f"{config['holdout_fraction']}, val_fraction {config['val_fraction']}); validation needs classes "
                f"with 2 or more images, or groups to hold out: add data or change the fractions"
            )
    return train_idx, val_idx, test_idx


def validation_folds(dataset, config):
    """The class-disjoint folds whose validation pairs choose the decision threshold.

    Fold 0 is `split_indices`'s own split. With `calibration_folds = K > 1`
    and class validation (see `resolve_validation`), each further fold holds
    out as many training classes (groups) as fold 0 does, classes no earlier
    fold held out, in a seeded order; a model of the same recipe trained on
    the rest of the training classes scores that fold's validation pairs.
    The threshold is then chosen on the validation pairs of all K folds, so
    that its negative pairs span K sets of unseen classes instead of one.
    The test classes are in no fold. Image-level validation has one fold.

    Args:
        dataset: a `siamkit.datasets.Dataset`.
        config: a training config (`calibration_folds`, and the keys of `split_indices`).

    Returns:
        A list of `(train_idx, val_idx)`, fold 0 first.

    Example:

    >>> from siamkit import datasets
    >>> config = {"validation": "classes", "holdout_classes": [7, 8, 9], "val_fraction": 0.15, "seed": 0,
    ...           "calibration_folds": 3}
    >>> folds = validation_folds(datasets.load("digits"), config)
    >>> [sorted(set(datasets.load("digits").y[val].tolist())) for _, val in folds]
    [[0, 1], [4, 6], [2, 5]]
    """
    train_idx, val_idx, _ = split_indices(dataset, config)
    folds = [(train_idx, val_idx)]
    count = config.get("calibration_folds", 1)
    if count == 1 or resolve_validation(dataset, config)[0] != "classes":
        return folds
    groups = meta_field(dataset, config, "split_by")
    units = dataset.y if groups is None else groups
    part = np.sort(np.concatenate([train_idx, val_idx]))  # the training part: every class but the test's
    held = np.unique(units[val_idx])
    rest = np.random.default_rng(config["seed"]).permutation(np.setdiff1d(np.unique(units[part]), held))
    if len(rest) < (count - 1) * len(held):
        kind = "classes" if groups is None else "groups"
        raise ConfigError(
            f"calibration_folds = {count} needs {count * len(held)} training {kind} to hold out {len(held)} "
            f"in each fold, but there are {len(held) + len(rest)}: lower calibration_folds"
        )
    for k in range(1, count):
        inside = np.isin(units[part], rest[(k - 1) * len(held) : k * len(held)])
        folds.append((part[~inside], part[inside]))
    return folds


def split_pairs(pairs, config):
    """Random train, validation and test parts of labelled pairs, seeded."""
    order = np.random.default_rng(config["seed"]).permutation(len(pairs))
    n_test = max(1, int(round(config["holdout_fraction"] * len(pairs))))
    n_val = max(1, int(round(config["val_fraction"] * len(pairs))))
    if len(pairs) - n_test - n_val < 2:
        raise DataError(f"{pairs.name}: {len(pairs)} pairs are too few to split into train, validation and test")
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return tuple(pairs.subset(np.sort(part)) for part in (train, val, test))


def _side_split(y, groups, config):
    """`(train, val, test)` indices of one side's items (see `split_two_tower`)."""
    y, seed = np.asarray(y), config["seed"]
    every = np.arange(len(y))
    if config.get("holdout_classes") is not None:
        test = np.flatnonzero(np.isin(y, config["holdout_classes"]))
        rest = np.setdiff1d(every, test)
    elif groups is not None:
        test = np.flatnonzero(np.isin(groups, config["holdout_groups"]))
        rest = np.setdiff1d(every, test)
    else:
        rest, test = stratified_fraction(every, y, config["holdout_fraction"], seed=seed)
    train, val = stratified_fraction(rest, y, config["val_fraction"], seed=seed + 1)
    return train, val, test


def split_two_tower(y_a, y_b, config, groups_a=None, groups_b=None):
    """Train, validation and test items of both sides of a two-tower dataset.

    Each side is split on its own, by class:

    - `holdout_classes`: their items are the test set (classes unseen in
      training); otherwise
    - `groups_a` / `groups_b` (the side's `meta[split_by]`, e.g. a
      dataset's train/test mark or a speaker): items of `holdout_groups`
      are the test set; otherwise
    - `holdout_fraction` of every class's items is;

    then `val_fraction` of each class's remaining items validates (chooses
    the threshold and the epoch). When every class has one item per side
    (a pair CSV without labels), whole classes, that is pairs, are split
    instead, the same on both sides.

    Args:
        y_a, y_b: class labels of the two sides.
        config: a training config (`holdout_classes`, `holdout_groups`,
            `holdout_fraction`, `val_fraction`, `seed`).
        groups_a, groups_b: per-item groups, or None.

    Returns:
        `((train_a, val_a, test_a), (train_b, val_b, test_b))`.

    Example:

    >>> y = np.repeat(np.arange(3), 10)
    >>> (tr, va, te), _ = split_two_tower(y, y, {"holdout_fraction": 0.2, "val_fraction": 0.1, "seed": 0})
    >>> len(tr), len(va), len(te)
    (21, 3, 6)
    """
    y_a, y_b = np.asarray(y_a), np.asarray(y_b)
    single = (
        config.get("holdout_classes") is None and groups_a is None and groups_b is None
        and np.bincount(np.unique(y_a, return_inverse=True)[1]).max() == 1
    )
    if single:
        h, v = config["holdout_fraction"], config["val_fraction"]
        parts_a = class_disjoint_split(y_a, (1 - h - v, v, h), seed=config["seed"])
        parts_b = [np.flatnonzero(np.isin(y_b, y_a[part])) for part in parts_a]
        sides = (tuple(parts_a), tuple(parts_b))
    else:
        sides = (_side_split(y_a, groups_a, config), _side_split(y_b, groups_b, config))
    for name, (train, val, test) in zip("ab", sides):
        for part, idx in (("training", train), ("test", test)):
            if len(idx) == 0:
                raise DataError(
                    f"side {name}: the {part} part of the split is empty; add items, change holdout_fraction "
                    "or the held-out classes or groups"
                )
    return sides
