"""Losses against plain-Python loop oracles and closed-form cases."""

import itertools
import math

import keras
import numpy as np
import pytest

from siamkit import losses
from siamkit.errors import ConfigError, DataError

pytestmark = pytest.mark.backend

MARGIN = 0.5


def _dist(u, v):
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v)))


def _value(loss, y, pred):
    return float(keras.ops.convert_to_numpy(loss(y, pred)))


# ---- oracles: loops over Python floats, straight from the definitions ----


def contrastive_oracle(y, d, margin):
    terms = [yi * di**2 / 2 + (1 - yi) * max(0.0, margin - di) ** 2 / 2 for yi, di in zip(y, d)]
    return sum(terms) / len(terms)


def triplet_oracle(labels, z, margin, mining, soft=False):
    n = len(labels)
    D = [[_dist(z[i], z[j]) for j in range(n)] for i in range(n)]
    pos = lambda a: [p for p in range(n) if p != a and labels[p] == labels[a]]  # noqa: E731
    neg = lambda a: [q for q in range(n) if labels[q] != labels[a]]  # noqa: E731
    term = (lambda ap, an: math.log1p(math.exp(ap - an))) if soft else (lambda ap, an: max(0.0, ap - an + margin))
    values = []
    for a in range(n):
        P, N = pos(a), neg(a)
        if not P or not N:
            continue
        if mining == "all":
            values += [term(D[a][p], D[a][q]) for p, q in itertools.product(P, N)]
        elif mining == "hard":
            values.append(term(max(D[a][p] for p in P), min(D[a][q] for q in N)))
        elif mining == "easy":
            values.append(term(min(D[a][p] for p in P), min(D[a][q] for q in N)))
        else:  # semi-hard
            for p in P:
                band = [D[a][q] for q in N if D[a][p] < D[a][q] < D[a][p] + margin]
                values.append(term(D[a][p], min(band) if band else min(D[a][q] for q in N)))
    if mining == "all":
        values = [v for v in values if v > 1e-16]
    return sum(values) / max(len(values), 1)


# ---- tests ----


def test_contrastive_matches_oracle():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=50).astype("float32")
    d = rng.uniform(0, 2, size=50).astype("float32")
    expected = contrastive_oracle(y.tolist(), d.tolist(), MARGIN)
    assert _value(losses.ContrastiveLoss(margin=MARGIN), y, d) == pytest.approx(expected, rel=1e-5)


def test_contrastive_on_stacked_embeddings_uses_its_distance():
    rng = np.random.default_rng(2)
    za, zb = rng.normal(size=(2, 30, 4)).astype("float32")
    y = rng.integers(0, 2, size=30).astype("float32")
    d = [_dist(u, v) for u, v in zip(za.tolist(), zb.tolist())]
    stacked = np.stack([za, zb], axis=1)
    expected = contrastive_oracle(y.tolist(), d, 3.0)
    assert _value(losses.ContrastiveLoss(margin=3.0), y, stacked) == pytest.approx(expected, rel=1e-5)


def test_contrastive_closed_form_cases():
    loss = losses.ContrastiveLoss(margin=1.0)
    # perfectly separated: positives at 0, negatives beyond the margin
    assert _value(loss, np.array([1, 1, 0, 0.0]), np.array([0, 0, 1.5, 2.0])) == 0.0
    # fully collapsed: every distance 0, so negatives cost margin^2 / 2
    assert _value(loss, np.array([1, 0, 0, 1.0]), np.zeros(4)) == pytest.approx(0.25)


@pytest.mark.parametrize("mining", ["all", "hard", "semi-hard", "easy"])
@pytest.mark.parametrize("soft", [False, True])
def test_triplet_matches_oracle(mining, soft):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=16)
    labels[-1] = 9  # a class with one sample: never an anchor, still a negative
    z = rng.normal(size=(16, 3)).astype("float32")
    expected = triplet_oracle(labels.tolist(), z.tolist(), MARGIN, mining, soft)
    loss = losses.TripletLoss(margin=MARGIN, mining=mining, soft_margin=soft)
    assert _value(loss, labels, z) == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("mining", ["all", "hard", "semi-hard", "easy"])
def test_triplet_closed_form_cases(mining):
    labels = np.array([0, 0, 1, 1, 2, 2])
    separated = np.array([[0, 0], [0, 0.01], [10, 0], [10, 0.01], [0, 10], [0, 10.01]], "float32")
    assert _value(losses.TripletLoss(margin=1.0, mining=mining), labels, separated) == 0.0
    collapsed = np.ones((6, 2), "float32")
    assert _value(losses.TripletLoss(margin=1.0, mining=mining), labels, collapsed) == pytest.approx(1.0)
    soft = losses.TripletLoss(mining=mining, soft_margin=True)
    assert _value(soft, labels, collapsed) == pytest.approx(math.log(2.0), rel=1e-5)


def test_bce_matches_oracle_and_closed_form():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=40).astype("float32")
    p = rng.uniform(0.05, 0.95, size=40).astype("float32")
    expected = -np.mean([yi * math.log(pi) + (1 - yi) * math.log(1 - pi) for yi, pi in zip(y, p)])
    assert _value(losses.BinaryCrossEntropy(), y, p) == pytest.approx(expected, rel=1e-5)
    assert _value(losses.BinaryCrossEntropy(), np.array([1.0, 0.0]), np.array([1.0, 0.0])) < 1e-5


@pytest.mark.parametrize("loss", [losses.ContrastiveLoss(), losses.BinaryCrossEntropy()])
def test_pair_labels_outside_zero_one_are_an_error(loss):
    with pytest.raises(DataError, match="1 \\(same class\\) or 0"):
        loss(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(DataError):
        loss(np.array([-1.0, 1.0]), np.array([0.5, 0.5]))


def test_losses_refuse_a_similarity_and_bad_mining():
    with pytest.raises(ConfigError, match="needs a distance"):
        losses.ContrastiveLoss(distance="dot")
    with pytest.raises(ConfigError, match="valid choices are: 'all', 'hard', 'semi-hard', 'easy'"):
        losses.TripletLoss(mining="hardest")


@pytest.mark.parametrize(
    "loss",
    [
        losses.ContrastiveLoss(margin=2.0, distance="cosine"),
        losses.TripletLoss(margin=0.3, mining="hard", soft_margin=True, distance="manhattan"),
        losses.BinaryCrossEntropy(label_smoothing=0.1),
    ],
)
def test_losses_serialize(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()


def _reduction_cases():
    """(loss class, kwargs, y_true, y_pred, count): the loss's default is the sum of its terms / count."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=9).astype("float32")
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 9])  # class 9 has one sample: it counts for nothing
    z = rng.normal(size=(9, 3)).astype("float32")
    scores = rng.normal(size=(9, 9)).astype("float32")
    return [
        (losses.ContrastiveLoss, {}, y, rng.uniform(0, 2, size=9).astype("float32"), 9),
        (losses.BinaryCrossEntropy, {}, y, rng.uniform(0.05, 0.95, size=9).astype("float32"), 9),
        (losses.TripletLoss, {"mining": "hard", "margin": 5.0}, labels, z, 8),
        (losses.TripletLoss, {"mining": "semi-hard", "margin": 5.0}, labels, z, 2 * 3 + 2 * 3 + 2),
        (losses.TripletLoss, {"mining": "all", "margin": 50.0}, labels, z, 3 * 2 * 6 + 3 * 2 * 6 + 2 * 1 * 7),
        (losses.PrototypicalLoss, {}, labels, z, 8),
        (losses.ClipLoss, {}, labels, scores, 9),
        (losses.CrossModalContrastiveLoss, {}, labels, np.abs(scores), 81),
        (losses.CrossModalContrastiveLoss, {"balanced": False}, labels, np.abs(scores), 81),
    ]


@pytest.mark.parametrize("case", range(len(_reduction_cases())))
def test_losses_honour_keras_reduction(case):
    cls, kwargs, y, pred, count = _reduction_cases()[case]
    default = _value(cls(**kwargs), y, pred)
    terms = keras.ops.convert_to_numpy(cls(**kwargs, reduction="none")(y, pred))
    assert terms.shape == (len(y),)
    assert _value(cls(**kwargs, reduction="sum"), y, pred) == pytest.approx(float(terms.sum()), rel=1e-5)
    assert default == pytest.approx(float(terms.sum()) / count, rel=1e-5)
    assert _value(cls(**kwargs, reduction="sum_over_batch_size"), y, pred) == pytest.approx(default, rel=1e-6)
    assert _value(cls(**kwargs, reduction="mean"), y, pred) == pytest.approx(default, rel=1e-6)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cls(reduction="sum")))
    assert restored.reduction == "sum"


def test_loss_constructors_share_one_argument_order_and_the_cli_mining():
    import inspect

    from siamkit.training.config import DEFAULTS

    assert losses.TripletLoss().mining == DEFAULTS["mining"] == "hard"
    for cls in (losses.ContrastiveLoss, losses.TripletLoss, losses.PrototypicalLoss):
        assert list(inspect.signature(cls).parameters)[:2] == ["margin", "distance"], cls
    for cls in (*losses.LOSSES.values(), losses.ClipLoss, losses.CrossModalContrastiveLoss):
        assert list(inspect.signature(cls).parameters)[-3:] == ["reduction", "name", "kwargs"], cls
    assert losses.ContrastiveLoss(0.5, "cosine").distance.name == "cosine"
    assert losses.PrototypicalLoss(0.1, "euclidean").margin == 0.1
