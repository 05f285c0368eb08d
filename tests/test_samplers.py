import numpy as np
import pytest

from siamkit.data import (
    ClassBalancedBatches,
    PairDataset,
    TripletDataset,
    class_disjoint_split,
    holdout_split,
    sample_pairs,
    stratified_fraction,
)
from siamkit.errors import DataError

# 6 classes of 5 samples, plus class 6 with a single sample; x[i] = i identifies samples
Y = np.concatenate([np.repeat(np.arange(6), 5), [6]])
X = np.arange(len(Y), dtype="float32").reshape(-1, 1)


def _ids(batch):
    return batch[:, 0].astype(int)


def test_pairs_are_balanced_labelled_and_never_self():
    ds = PairDataset(X, Y, batch_size=50, pairs_per_epoch=1000, seed=1)
    for i in range(len(ds)):
        (a, b), same = ds[i]
        ia, ib = _ids(a), _ids(b)
        assert (ia != ib).all()
        np.testing.assert_array_equal(same, (Y[ia] == Y[ib]).astype("float32"))
    assert ds.labels.mean() == pytest.approx(0.5)


def test_single_sample_class_appears_only_in_negatives():
    first, second, same = sample_pairs(Y, 4000, rng=2)
    lone = (first == 30) | (second == 30)
    assert lone.any() and (same[lone] == 0).all()


def test_pairs_are_deterministic_and_fresh_each_epoch():
    one, two = PairDataset(X, Y, batch_size=20, seed=3), PairDataset(X, Y, batch_size=20, seed=3)
    np.testing.assert_array_equal(one[0][0][0], two[0][0][0])
    epoch0 = one[0][0][0].copy()
    one.on_epoch_end()
    assert not np.array_equal(epoch0, one[0][0][0])
    assert not np.array_equal(epoch0, PairDataset(X, Y, batch_size=20, seed=4)[0][0][0])


def test_augment_hook_receives_a_seeded_generator():
    calls = []

    def shift(batch, rng):
        calls.append(rng.integers(1000))
        return batch + 1000

    (a, _), _ = PairDataset(X, Y, batch_size=10, augment=shift, seed=5)[0]
    assert (a >= 1000).all() and len(calls) == 2
    PairDataset(X, Y, batch_size=10, augment=shift, seed=5)[0]
    assert calls[:2] == calls[2:]


@pytest.mark.parametrize(
    "y, message",
    [(np.zeros(5), "at least 2 classes"), (np.arange(5), "no class of the dataset has 2 or more samples")],
)
def test_unpairable_data_is_refused(y, message):
    with pytest.raises(DataError, match=message):
        PairDataset(np.zeros((5, 1)), y)


def test_triplets_have_valid_roles():
    ds = TripletDataset(X, Y, batch_size=40, seed=6)
    (a, p, n), labels = ds[0]
    ia, ip, iN = _ids(a), _ids(p), _ids(n)
    assert (Y[ia] == Y[ip]).all() and (ia != ip).all() and (Y[ia] != Y[iN]).all()
    np.testing.assert_array_equal(labels, Y[ia])


def test_class_balanced_batches_are_p_by_k():
    ds = ClassBalancedBatches(X, Y, classes_per_batch=4, samples_per_class=3, batches_per_epoch=5, seed=7)
    assert len(ds) == 5
    for i in range(len(ds)):
        x, labels = ds[i]
        classes, counts = np.unique(labels, return_counts=True)
        assert len(classes) == 4 and (counts == 3).all() and 6 not in classes
        np.testing.assert_array_equal(Y[_ids(x)], labels)
    with pytest.raises(DataError, match="fewer than classes_per_batch=8"):
        ClassBalancedBatches(X, Y, classes_per_batch=8, samples_per_class=2)


def test_grouped_batches_take_classes_group_by_group():
    y = np.repeat(np.arange(12), 3)
    groups = np.repeat([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3], 3)  # groups of 3, 5, 2 and 2 classes
    x = np.arange(len(y), dtype="float32").reshape(-1, 1)
    ds = ClassBalancedBatches(x, y, classes_per_batch=4, samples_per_class=2, batches_per_epoch=40, seed=1,
                              groups=groups)
    seen = set()
    for i in range(len(ds)):
        _, labels = ds[i]
        classes = np.unique(labels)
        assert len(classes) == 4 and np.bincount(labels).max() == 2
        in_batch = groups[classes * 3]
        # Whole groups first: at most one group is cut short, and it is the last one drawn.
        counts = {g: int((in_batch == g).sum()) for g in np.unique(in_batch)}
        group_sizes = {0: 3, 1: 5, 2: 2, 3: 2}
        assert sum(counts[g] < group_sizes[g] for g in counts) <= 1
        assert len(counts) <= 2
        seen.update(classes.tolist())
    assert seen == set(range(12))
    # Seeded like every sampler: the same batch again, other batches in another epoch.
    epoch0 = [ds[i][1] for i in range(len(ds))]
    np.testing.assert_array_equal(ds[3][1], epoch0[3])
    ds.set_epoch(1)
    assert not all(np.array_equal(ds[i][1], epoch0[i]) for i in range(len(ds)))
    with pytest.raises(DataError, match="one group per sample"):
        ClassBalancedBatches(x, y, 4, 2, groups=groups[:-1])
    split = groups.copy()
    split[0] = 3  # class 0 now has samples in groups 0 and 3
    with pytest.raises(DataError, match="every class must lie in one group"):
        ClassBalancedBatches(x, y, 4, 2, groups=split)


def test_grouped_batches_leave_out_single_sample_classes():
    y = np.array([0, 0, 1, 1, 2, 3, 3, 4, 4])
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])  # class 2 has one sample
    ds = ClassBalancedBatches(np.zeros((9, 1)), y, classes_per_batch=3, samples_per_class=2, batches_per_epoch=20,
                              groups=groups, seed=0)
    assert all(2 not in ds[i][1] for i in range(len(ds)))


def test_class_disjoint_split():
    y = np.repeat(np.arange(20), 4)
    parts = class_disjoint_split(y, (0.6, 0.2, 0.2), seed=0)
    sets = [set(y[p]) for p in parts]
    assert [len(s) for s in sets] == [12, 4, 4]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(p) for p in parts) == len(y)
    np.testing.assert_array_equal(parts[0], class_disjoint_split(y, (0.6, 0.2, 0.2), seed=0)[0])


@pytest.mark.parametrize("n_classes, fractions, sizes", [(4, (0.9, 0.1), [3, 1]), (3, (0.85, 0.15), [2, 1])])
def test_class_disjoint_split_never_rounds_a_part_away(n_classes, fractions, sizes):
    # round(0.9 * 4) = 4 would leave the second part no class; it gets one from the largest
    parts = class_disjoint_split(np.repeat(np.arange(n_classes), 2), fractions, seed=0)
    assert [len(p) // 2 for p in parts] == sizes


def test_holdout_and_stratified_fraction():
    y = np.repeat(np.arange(10), 10)
    train, test = holdout_split(y, [7, 8, 9])
    assert set(y[test]) == {7, 8, 9} and set(y[train]) == set(range(7))
    rest, val = stratified_fraction(train, y, 0.2, seed=0)
    assert len(val) == 14 and set(y[val]) == set(range(7)) and not set(rest) & set(val)
    with pytest.raises(DataError, match="do not occur"):
        holdout_split(y, [11])
