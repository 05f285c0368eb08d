"""The Musgrave et al. (2020) retrieval metrics."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from siamkit.errors import ConfigError, DataError
from siamkit.evaluation.retrieval import retrieval_metrics


def test_hand_computed_metrics_with_ties_and_a_singleton_class():
    """Same-set retrieval; each query leaves itself out.

    x: 0 1 -1 2 5 3, labels A A B A C B. Ties go to the lower index:
    q0 (R=2): 1A 2B 3A 5B 4C -> RP 1/2, MAP@R (1/2)(1) = 1/2, P@1 1
    q1 (R=2): 0A 3A ...      -> RP 1,   MAP@R 1,               P@1 1
    q2 (R=1): 0A 1A 3A 5B 4C -> RP 0,   MAP@R 0,  hit at rank 4
    q3 (R=2): 1A 5B 0A 2B 4C -> RP 1/2, MAP@R 1/2,             P@1 1
    q4: class C has no other member -> left out
    q5 (R=1): 3A 1A 4C 0A 2B -> RP 0,   MAP@R 0,  hit at rank 5
    """
    z = np.array([[0.0], [1.0], [-1.0], [2.0], [5.0], [3.0]])
    y = np.array(["A", "A", "B", "A", "C", "B"])
    m = retrieval_metrics(z, y, ks=(1, 2, 4, 5))
    assert m["n_queries"] == 5 and m["n_queries_without_match"] == 1
    assert m["precision_at_1"] == pytest.approx(3 / 5)
    assert m["r_precision"] == pytest.approx((0.5 + 1 + 0 + 0.5 + 0) / 5)
    assert m["map_at_r"] == pytest.approx((0.5 + 1 + 0 + 0.5 + 0) / 5)
    assert m["recall_at_k"] == pytest.approx({"1": 3 / 5, "2": 3 / 5, "4": 4 / 5, "5": 1.0})


def test_hand_computed_map_at_r_differs_from_r_precision_and_classes_smaller_than_k():
    """Separate references r = 1B 2A 3A 4B 5A; classes have 2 or 3 members, fewer than K = 5.

    q=0 A   (R=3): B A A B A -> RP 2/3, MAP@R (0 + 1/2 + 2/3) / 3 = 7/18
    q=6 B   (R=2): A B A A B -> RP 1/2, MAP@R (0 + 1/2) / 2 = 1/4
    q=2.1 A (R=3): A A B B A -> RP 2/3, MAP@R (1 + 1) / 3 = 2/3, P@1 1
    q=2.5 C (R=0): left out
    """
    refs = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    ref_y = np.array([1, 0, 0, 1, 0])
    q = np.array([[0.0], [6.0], [2.1], [2.5]])
    qy = np.array([0, 1, 0, 2])
    m = retrieval_metrics(q, qy, refs, ref_y, ks=(1, 2, 5))
    assert m["n_queries"] == 3 and m["n_queries_without_match"] == 1
    assert m["precision_at_1"] == pytest.approx(1 / 3)
    assert m["r_precision"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert m["map_at_r"] == pytest.approx((7 / 18 + 1 / 4 + 2 / 3) / 3)
    assert m["recall_at_k"] == pytest.approx({"1": 1 / 3, "2": 1.0, "5": 1.0})


def _brute_metrics(q, qy, r, ry, ks, same_set):
    cost = cdist(q, r)
    if same_set:
        np.fill_diagonal(cost, np.inf)
    p1, rp, mapr, rec = [], [], [], {k: [] for k in ks}
    for i in range(len(q)):
        order = np.argsort(cost[i], kind="stable")
        if same_set:
            order = order[order != i]
        rel = (ry[order] == qy[i]).astype(float)
        big_r = int(rel.sum())
        if big_r == 0:
            continue
        p1.append(rel[0])
        rp.append(rel[:big_r].sum() / big_r)
        precision = np.cumsum(rel) / np.arange(1, len(rel) + 1)
        mapr.append(np.sum((precision * rel)[:big_r]) / big_r)
        for k in ks:
            rec[k].append(rel[:k].max())
    return np.mean(p1), np.mean(rp), np.mean(mapr), {str(k): np.mean(v) for k, v in rec.items()}


@pytest.mark.parametrize("same_set", [True, False])
def test_metrics_match_a_loop_reference(same_set):
    rng = np.random.default_rng(4)
    sizes = [1, 2, 3, 7, 12]  # a singleton, and classes smaller and larger than K
    y = np.repeat(np.arange(len(sizes)), sizes)
    z = rng.normal(size=(len(y), 3)) + y[:, None] * 0.7
    if same_set:
        q, qy, r, ry = z, y, None, None
    else:
        q, qy = rng.normal(size=(20, 3)) + np.arange(20)[:, None] % 5 * 0.7, np.arange(20) % 5
        r, ry = z, y
    m = retrieval_metrics(q, qy, r, ry, ks=(1, 3, 10), chunk_size=4)
    p1, rp, mapr, rec = _brute_metrics(q, qy, z, y, (1, 3, 10), same_set)
    assert m["precision_at_1"] == pytest.approx(p1)
    assert m["r_precision"] == pytest.approx(rp)
    assert m["map_at_r"] == pytest.approx(mapr)
    assert m["recall_at_k"] == pytest.approx(rec)


def test_retrieval_degenerate_inputs():
    z = np.eye(3)
    with pytest.raises(DataError, match="no query has a reference of its own class"):
        retrieval_metrics(z, [0, 1, 2], ks=(1,))
    with pytest.raises(ConfigError, match="recall@K"):
        retrieval_metrics(z, [0, 0, 1], ks=(3,))
    with pytest.raises(DataError, match="one label per embedding"):
        retrieval_metrics(z, [0, 0], ks=(1,))
    with pytest.raises(DataError, match="NaN"):
        retrieval_metrics(np.array([[np.nan], [0.0]]), [0, 0], ks=(1,))
