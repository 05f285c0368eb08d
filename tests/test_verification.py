"""Verification metrics against scikit-learn and brute-force definitions."""

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn import metrics as skm

from siamkit.errors import ConfigError, DataError
from siamkit.evaluation import verification as v


def _scores(seed, n=400, tie_round=1):
    """Labels and similarity scores with many ties (rounded)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + 1.2 * y, tie_round)
    return y, s


def _brute_rates(y, sim):
    """FAR and FRR at every threshold `sim >= t`, t over the distinct scores and +inf."""
    y = np.asarray(y, bool)
    ts = np.r_[np.inf, np.unique(sim)[::-1]]
    far = np.array([np.mean(sim[~y] >= t) for t in ts])
    frr = np.array([np.mean(sim[y] < t) for t in ts])
    return ts, far, frr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_matches_sklearn_for_similarities_and_distances(seed):
    y, s = _scores(seed)
    far, tar, thr = v.roc_curve(y, s)
    ref_far, ref_tar, ref_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(far, ref_far)
    np.testing.assert_allclose(tar, ref_tar)
    np.testing.assert_allclose(thr, ref_thr)
    # The same pairs given as distances: same curve, thresholds in distance units.
    far_d, tar_d, thr_d = v.roc_curve(y, -s, higher_is_similar=False)
    np.testing.assert_allclose(far_d, ref_far)
    np.testing.assert_allclose(tar_d, ref_tar)
    np.testing.assert_allclose(thr_d, -ref_thr)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_and_average_precision_match_sklearn(seed):
    y, s = _scores(seed, n=300 + 50 * seed)
    assert v.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert v.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    d = 3.0 - s  # distances: lower = more similar
    assert v.roc_auc(y, d, higher_is_similar=False) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert v.average_precision(y, d, higher_is_similar=False) == pytest.approx(
        skm.average_precision_score(y, s), abs=1e-12
    )


def test_auc_is_not_flipped_for_distances():
    y = np.array([1, 1, 0, 0])
    d = np.array([0.1, 0.2, 0.8, 0.9])
    assert v.roc_auc(y, d, higher_is_similar=False) == 1.0
    assert v.roc_auc(y, d, higher_is_similar=True) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("tie_round", [1, 6])
def test_eer_matches_brentq_reference_and_brute_force_threshold(seed, tie_round):
    y, s = _scores(seed, tie_round=tie_round)
    rate, threshold = v.eer(y, s)
    fpr, tpr, _ = skm.roc_curve(y, s)
    reference = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    assert rate == pytest.approx(reference, abs=1e-9)
    # The threshold is an operating point with the smallest |FAR - FRR| of all thresholds.
    _, far, frr = _brute_rates(y, s)
    at_far, at_frr = np.mean(s[y == 0] >= threshold), np.mean(s[y == 1] < threshold)
    assert abs(at_far - at_frr) == pytest.approx(np.min(np.abs(far - frr)))
    assert min(at_far, at_frr) - 1e-12 <= rate <= max(at_far, at_frr) + 1e-12


def test_eer_same_for_distances_with_threshold_in_distance_units():
    y, s = _scores(7)
    rate, t_sim = v.eer(y, s)
    rate_d, t_dist = v.eer(y, -s, higher_is_similar=False)
    assert rate_d == pytest.approx(rate)
    assert t_dist == pytest.approx(-t_sim)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("far", [1e-2, 1e-3, 0.05, 0.2, 0.0])
def test_tar_at_far_matches_brute_force(seed, far):
    y, s = _scores(seed, n=3000, tie_round=2)
    tar, threshold = v.tar_at_far(y, s, far)
    ts, fars, frrs = _brute_rates(y, s)
    expected = np.max((1.0 - frrs)[fars <= far])
    assert tar == pytest.approx(expected)
    # Its threshold achieves it.
    accepted = v.decide(s, threshold)
    assert np.mean(accepted[y == 1]) == pytest.approx(tar)
    assert np.mean(accepted[y == 0]) <= far
    # Distances give the same TAR and the negated threshold.
    tar_d, thr_d = v.tar_at_far(y, -s, far, higher_is_similar=False)
    assert tar_d == pytest.approx(tar)
    assert thr_d == pytest.approx(-threshold)


def test_threshold_metrics_match_sklearn():
    y, s = _scores(3)
    t = 0.55
    got = v.threshold_metrics(y, s, t)
    pred = (s >= t).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["far"] == pytest.approx(np.mean(pred[y == 0]))
    # Distances: accepted when <= threshold.
    got_d = v.threshold_metrics(y, -s, -t, higher_is_similar=False)
    assert got_d["f1"] == pytest.approx(got["f1"])


def test_precision_is_zero_when_nothing_is_accepted():
    got = v.threshold_metrics([1, 0], [0.2, 0.1], threshold=0.9)
    assert got["precision"] == 0.0 and got["recall"] == 0.0 and got["f1"] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_accuracy_threshold_is_optimal_and_applies(seed):
    y, s = _scores(seed)
    chosen = v.choose_threshold(y, s, "accuracy")
    ts, far, frr = _brute_rates(y, s)
    p = np.mean(y)
    best = np.max(p * (1 - frr) + (1 - p) * (1 - far))
    assert chosen["accuracy"] == pytest.approx(best)
    assert np.mean(v.decide(s, chosen["threshold"]) == y) == pytest.approx(best)


def test_thresholds_sit_between_adjacent_validation_scores():
    # Distances: the best split is between 0.3 (last same) and 0.5 (first different).
    y = [1, 1, 1, 0, 0, 0]
    d = [0.1, 0.2, 0.3, 0.5, 0.6, 0.7]
    assert v.choose_threshold(y, d, "accuracy", higher_is_similar=False)["threshold"] == pytest.approx(0.4)
    # Probabilities: the same, in probability units.
    assert v.choose_threshold(y, [0.9, 0.8, 0.7, 0.2, 0.1, 0.0], "accuracy")["threshold"] == pytest.approx(0.45)


def test_threshold_chosen_on_validation_is_applied_to_test():
    """Validation and test differ; the reported accuracy must use the validation threshold."""
    val_y = [1, 1, 1, 0, 0, 0]
    val_d = [0.1, 0.2, 0.3, 0.5, 0.6, 0.7]  # best threshold 0.4
    test_y = [1, 1, 1, 0, 0, 0]
    test_d = [0.45, 0.5, 0.55, 0.8, 0.9, 1.0]  # separable at 0.7, but not at 0.4
    chosen = v.choose_threshold(val_y, val_d, "accuracy", higher_is_similar=False)
    result = v.verification_metrics(test_y, test_d, False, thresholds={"accuracy": chosen["threshold"]})
    at = result["at_threshold"]["accuracy"]
    assert at["threshold"] == pytest.approx(0.4)
    assert at["accuracy"] == pytest.approx(0.5)  # every test pair called "different"
    assert at["recall"] == 0.0 and at["far"] == 0.0
    # The test's own best threshold would have been perfect: it must not have been used.
    assert v.choose_threshold(test_y, test_d, "accuracy", higher_is_similar=False)["accuracy"] == 1.0
    assert result["roc_auc"] == 1.0


def test_eer_and_far_threshold_methods():
    y, s = _scores(11, n=2000, tie_round=3)
    eer_choice = v.choose_threshold(y, s, "eer")
    rate, threshold = v.eer(y, s)
    assert eer_choice["threshold"] == threshold and eer_choice["eer"] == pytest.approx(rate)
    far_choice = v.choose_threshold(y, s, "far", target_far=0.01)
    tar, far_threshold = v.tar_at_far(y, s, 0.01)
    assert far_choice["threshold"] == far_threshold
    assert far_choice["tar"] == pytest.approx(tar) and far_choice["far"] <= 0.01
    with pytest.raises(ConfigError, match="threshold method"):
        v.choose_threshold(y, s, "median")


def test_verification_metrics_combines_the_references():
    y, s = _scores(5)
    out = v.verification_metrics(y, s, fars=(1e-2, 1e-3))
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert out["average_precision"] == pytest.approx(skm.average_precision_score(y, s))
    assert out["eer"] == pytest.approx(v.eer(y, s)[0])
    assert out["tar_at_far"]["0.01"] == pytest.approx(v.tar_at_far(y, s, 1e-2)[0])
    assert out["tar_at_far"]["0.001"] == pytest.approx(v.tar_at_far(y, s, 1e-3)[0])
    assert out["n_positive"] + out["n_negative"] == out["n_pairs"] == len(y)


@pytest.mark.parametrize(
    "labels, scores, message",
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "both same-class and different-class"),
        ([0, 0], [0.1, 0.2], "both same-class and different-class"),
        ([1, 0, 1], [0.1, np.nan, 0.3], "NaN or infinite"),
        ([1, 0, 1], [0.1, np.inf, 0.3], "NaN or infinite"),
        ([1, 0, 2], [0.1, 0.2, 0.3], "1 \\(same\\) or 0"),
        ([1, 0], [0.1, 0.2, 0.3], "one length"),
        ([], [], "one length|no pairs"),
    ],
)
def test_degenerate_inputs_raise_data_error(labels, scores, message):
    for fn in (v.roc_auc, v.eer, v.average_precision, v.roc_curve, v.verification_metrics):
        with pytest.raises(DataError, match=message):
            fn(labels, scores)
    with pytest.raises(DataError, match=message):
        v.choose_threshold(labels, scores)


def test_far_out_of_range():
    with pytest.raises(DataError, match="target FAR"):
        v.tar_at_far([1, 0], [0.9, 0.1], far=1.5)
