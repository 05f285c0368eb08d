"""Verification metrics: is each pair "same class" or "different class"?

Every function takes `labels` (1 = same, 0 = different) and `scores`, one per
pair, and `higher_is_similar`: True for similarities and probabilities, False
for distances, so callers never flip signs. Internally scores become
similarities; thresholds are always reported back in the scores' own units,
and a pair is accepted as "same" when `score >= threshold` (similarities) or
`score <= threshold` (distances). FAR is the share of different-class pairs
accepted, TAR the share of same-class pairs accepted, FRR = 1 - TAR.

Example:

>>> labels = [1, 1, 0, 0]
>>> distances = [0.1, 0.4, 0.35, 0.9]
>>> round(roc_auc(labels, distances, higher_is_similar=False), 2)
0.75
"""

import numpy as np

from ..errors import DataError, check_choice
from ..runs import THRESHOLD_METHODS


def check_pairs(labels, scores, what="pairs"):
    """Validate binary labels and finite scores; return `(bool, float64)` arrays.

    Raises a `DataError` for empty or mismatched inputs, labels other than
    0/1, a single label value, or NaN/infinite scores.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype="float64")
    if labels.ndim != 1 or scores.ndim != 1 or len(labels) != len(scores):
        raise DataError(
            f"{what}: labels and scores must be 1-D arrays of one length, got shapes {labels.shape} and {scores.shape}"
        )
    if len(labels) == 0:
        raise DataError(f"{what}: no pairs to evaluate")
    values = np.unique(labels)
    if not np.isin(values, [0, 1]).all():
        raise DataError(f"{what}: labels must be 1 (same) or 0 (different), got values {values[:5].tolist()}")
    if len(values) < 2:
        raise DataError(
            f"{what}: every pair has label {values[0].item()!r}; verification metrics need both "
            "same-class and different-class pairs"
        )
    bad = ~np.isfinite(scores)
    if bad.any():
        raise DataError(
            f"{what}: {int(bad.sum())} of {len(scores)} scores are NaN or infinite "
            f"(first at pair {int(np.argmax(bad))}); the model diverged or the inputs are broken"
        )
    return labels.astype(bool), scores


def _as_similarity(scores, higher_is_similar):
    return scores if higher_is_similar else -scores


def _to_units(threshold, higher_is_similar):
    """A similarity-space threshold, in the caller's score units."""
    return float(threshold if higher_is_similar else -threshold)


class _Operating:
    """Every achievable operating point of a score set, from strictest to loosest.

    Vertex 0 accepts nothing; vertex `v` accepts the `v` highest distinct
    similarity values; the last vertex accepts everything.
    """

    def __init__(self, labels, scores, higher_is_similar, what="pairs"):
        y, s = check_pairs(labels, scores, what)
        sim = _as_similarity(s, higher_is_similar)
        self.higher_is_similar = higher_is_similar
        order = np.argsort(-sim, kind="stable")
        sim, y = sim[order], y[order]
        last = np.r_[np.flatnonzero(np.diff(sim)), len(sim) - 1]  # last pair of each distinct value
        self.values = sim[last]  # distinct similarities, descending
        self.tp = np.r_[0, np.cumsum(y)[last]]
        self.fp = np.r_[0, last + 1 - self.tp[1:]]
        self.n_pos, self.n_neg = int(y.sum()), int((~y).sum())

    @property
    def tar(self):
        return self.tp / self.n_pos

    @property
    def far(self):
        return self.fp / self.n_neg

    @property
    def accuracy(self):
        return (self.tp + self.n_neg - self.fp) / (self.n_pos + self.n_neg)

    def auc(self):
        return float(np.sum(np.diff(self.far) * (self.tar[1:] + self.tar[:-1])) / 2.0)

    def average_precision(self):
        tp, fp = self.tp[1:], self.fp[1:]
        return float(np.sum(np.diff(np.r_[0.0, tp / self.n_pos]) * tp / (tp + fp)))

    def threshold(self, vertex):
        """A threshold (caller's units) that accepts exactly the pairs of `vertex`.

        It sits halfway between the last accepted and the first rejected
        distinct score, so that it generalises to new pairs.
        """
        v = self.values
        if vertex == 0:
            t = np.nextafter(v[0], np.inf)
        elif vertex == len(v):
            t = v[-1]
        else:
            t = (v[vertex - 1] + v[vertex]) / 2.0
            t = t if t > v[vertex] else v[vertex - 1]  # adjacent floats: the midpoint can round down
        return _to_units(t, self.higher_is_similar)

    def eer_point(self):
        """`(eer, vertex)`: the ROC's crossing with FAR = FRR, and the closer vertex."""
        diff = (1.0 - self.tar) - self.far  # FRR - FAR: 1 at vertex 0, -1 at the last, non-increasing
        k = int(np.argmax(diff <= 0))
        alpha = diff[k - 1] / (diff[k - 1] - diff[k])
        far = self.far
        eer = far[k - 1] + alpha * (far[k] - far[k - 1])
        vertex = k if abs(diff[k]) <= abs(diff[k - 1]) else k - 1
        return float(eer), vertex

    def far_vertex(self, target_far):
        """The loosest vertex whose FAR does not exceed `target_far`."""
        return int(np.flatnonzero(self.far <= target_far)[-1])


def roc_curve(labels, scores, higher_is_similar=True):
    """The ROC curve at every distinct score.

    Args:
        labels: 1 = same class, 0 = different.
        scores: one score per pair.
        higher_is_similar: False when `scores` are distances.

    Returns:
        `(far, tar, thresholds)`, ordered from the strictest threshold (first,
        `inf` for similarities / `-inf` for distances, accepting nothing) to
        the loosest. Matches `sklearn.metrics.roc_curve(...,
        drop_intermediate=False)` on similarity scores.
    """
    op = _Operating(labels, scores, higher_is_similar)
    sim_thresholds = np.r_[np.inf, op.values]
    return op.far, op.tar, sim_thresholds if higher_is_similar else -sim_thresholds


def roc_auc(labels, scores, higher_is_similar=True):
    """Area under the ROC curve (ties count one half)."""
    return _Operating(labels, scores, higher_is_similar).auc()


def average_precision(labels, scores, higher_is_similar=True):
    """Average precision: `sum_k (R_k - R_{k-1}) P_k` over distinct thresholds.

    The same step-wise definition as `sklearn.metrics.average_precision_score`.
    """
    return _Operating(labels, scores, higher_is_similar).average_precision()


def eer(labels, scores, higher_is_similar=True):
    """Equal error rate and a threshold that comes close to it.

    The EER is where the piecewise-linear ROC curve meets FAR = FRR. The
    threshold is that of the achievable operating point nearest the crossing.

    Returns:
        `(eer, threshold)`.
    """
    op = _Operating(labels, scores, higher_is_similar)
    rate, vertex = op.eer_point()
    return rate, op.threshold(vertex)


def tar_at_far(labels, scores, far=1e-3, higher_is_similar=True):
    """Highest TAR among thresholds whose FAR is at most `far`.

    With `n` different-class pairs, FARs below `1 / n` mean no false accept.

    Returns:
        `(tar, threshold)`.
    """
    _check_far(far)
    op = _Operating(labels, scores, higher_is_similar)
    vertex = op.far_vertex(far)
    return float(op.tar[vertex]), op.threshold(vertex)


def _check_far(far):
    if not 0.0 <= far <= 1.0:
        raise DataError(f"a target FAR must be in [0, 1], got {far}")


def choose_threshold(labels, scores, method="accuracy", higher_is_similar=True, target_far=1e-3):
    """Pick a decision threshold on (validation) pairs.

    Args:
        labels: 1 = same class, 0 = different.
        scores: one score per pair.
        method: `"accuracy"` (best accuracy; ties go to the stricter
            threshold), `"eer"` (the operating point nearest the EER) or
            `"far"` (the loosest threshold with FAR <= `target_far`).
        higher_is_similar: False when `scores` are distances.
        target_far: the FAR for `method="far"`.

    Returns:
        A dict with `threshold` (score units), `method`, and the validation
        `accuracy`, `far` and `tar` at that threshold (plus `target_far` or
        `eer` for those methods).

    Example:

    >>> choose_threshold([1, 1, 0, 0], [0.1, 0.2, 0.6, 0.8], higher_is_similar=False)["threshold"]
    0.4
    """
    check_choice("threshold method", method, THRESHOLD_METHODS)
    op = _Operating(labels, scores, higher_is_similar, what="validation pairs")
    extra = {}
    if method == "accuracy":
        vertex = int(np.argmax(op.accuracy))
    elif method == "eer":
        extra["eer"], vertex = op.eer_point()
    else:
        _check_far(target_far)
        vertex = op.far_vertex(target_far)
        extra["target_far"] = float(target_far)
    return {
        "method": method,
        "threshold": op.threshold(vertex),
        "accuracy": float(op.accuracy[vertex]),
        "far": float(op.far[vertex]),
        "tar": float(op.tar[vertex]),
        **extra,
    }


def decide(scores, threshold, higher_is_similar=True):
    """True where a pair is accepted as "same" at `threshold`."""
    scores = np.asarray(scores, dtype="float64")
    return scores >= threshold if higher_is_similar else scores <= threshold


def threshold_metrics(labels, scores, threshold, higher_is_similar=True):
    """Accuracy, precision, recall (= TAR), F1 and FAR at a fixed threshold.

    Precision is 0 when nothing is accepted.
    """
    y, s = check_pairs(labels, scores)
    pred = decide(s, threshold, higher_is_similar)
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": float(threshold),
        "accuracy": float(np.mean(pred == y)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "far": fp / int(np.sum(~y)),
    }


def verification_metrics(labels, scores, higher_is_similar=True, thresholds=None, fars=(1e-2, 1e-3)):
    """All verification metrics of one (test) set of pairs.

    Args:
        labels: 1 = same class, 0 = different.
        scores: one score per pair.
        higher_is_similar: False when `scores` are distances.
        thresholds: `{name: threshold}` chosen beforehand **on other
            (validation) pairs**, e.g. from `siamkit.evaluation.calibrate`;
            accuracy, precision, recall and F1 are reported at each.
        fars: FARs at which to report the TAR.

    Returns:
        A dict: `n_pairs`, `n_positive`, `n_negative`, `roc_auc`,
        `average_precision`, `eer`, `tar_at_far` (`{"0.01": tar, ...}`),
        `oracle` and, per threshold name, the `threshold_metrics` in
        `at_threshold`. `oracle` is the best accuracy any threshold reaches
        on these pairs, `max_t (TP(t) + TN(t)) / n`, and that threshold:
        chosen on the test pairs themselves, it is a bound that shows what a
        validation threshold costs, never a threshold to decide with.
    """
    op = _Operating(labels, scores, higher_is_similar)
    out = {
        "n_pairs": op.n_pos + op.n_neg,
        "n_positive": op.n_pos,
        "n_negative": op.n_neg,
        "roc_auc": op.auc(),
        "average_precision": op.average_precision(),
        "eer": op.eer_point()[0],
        "tar_at_far": {},
        "oracle": {"accuracy": float(op.accuracy.max()), "threshold": op.threshold(int(np.argmax(op.accuracy)))},
        "at_threshold": {},
    }
    for far in fars:
        _check_far(far)
        out["tar_at_far"][f"{far:g}"] = float(op.tar[op.far_vertex(far)])
    for name, threshold in (thresholds or {}).items():
        out["at_threshold"][name] = threshold_metrics(labels, scores, threshold, higher_is_similar)
    return out
