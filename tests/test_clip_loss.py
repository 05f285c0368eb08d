"""CLIP / InfoNCE and cross-modal contrastive losses against plain-Python oracles."""

import math

import keras
import numpy as np
import pytest

from siamkit import encoders, models
from siamkit.errors import ConfigError
from siamkit.losses.clip import ClipLoss, CrossModalContrastiveLoss, InfoNCELoss
from siamkit.models import CrossModalScores

pytestmark = pytest.mark.backend


def _value(loss, y, pred):
    return float(keras.ops.convert_to_numpy(loss(y, pred)))


# ---- oracles: loops over Python floats, straight from the definitions ----


def _cross_entropy(logits, targets):
    """-sum_j t_j log softmax(logits)_j."""
    top = max(logits)
    log_z = top + math.log(sum(math.exp(v - top) for v in logits))
    return -sum(t * (v - log_z) for t, v in zip(targets, logits))


def clip_oracle(labels, S):
    """(CE(S, T) + CE(S^T, T)) / 2, T[i][j] = [y_i == y_j] / #{k: y_k == y_i}; T = I for distinct labels."""
    n = len(labels)
    size = [sum(labels[k] == labels[i] for k in range(n)) for i in range(n)]
    T = [[float(labels[i] == labels[j]) / size[i] for j in range(n)] for i in range(n)]
    rows = [_cross_entropy([S[i][j] for j in range(n)], T[i]) for i in range(n)]
    cols = [_cross_entropy([S[i][j] for i in range(n)], [T[i][j] for i in range(n)]) for j in range(n)]
    return (sum(rows) / n + sum(cols) / n) / 2


def mil_nce_oracle(labels, S):
    """Symmetric -log(softmax mass on the positives), rows and columns."""
    n = len(labels)

    def term(scores, positive):
        top = max(scores)
        total = sum(math.exp(v - top) for v in scores)
        return -math.log(sum(math.exp(v - top) for v, p in zip(scores, positive) if p) / total)

    rows = [term([S[i][j] for j in range(n)], [labels[j] == labels[i] for j in range(n)]) for i in range(n)]
    cols = [term([S[i][j] for i in range(n)], [labels[i] == labels[j] for i in range(n)]) for j in range(n)]
    return (sum(rows) / n + sum(cols) / n) / 2


def crossmodal_contrastive_oracle(labels, D, margin, balanced):
    pos, neg = [], []
    for i, yi in enumerate(labels):
        for j, yj in enumerate(labels):
            d = D[i][j]
            (pos if yi == yj else neg).append(d * d / 2 if yi == yj else max(0.0, margin - d) ** 2 / 2)
    if not balanced:
        return sum(pos + neg) / len(pos + neg)
    return (sum(pos) / max(len(pos), 1) + sum(neg) / max(len(neg), 1)) / 2


def _logits(n, seed, scale=10.0):
    return (np.random.default_rng(seed).uniform(-1, 1, size=(n, n)) * scale).astype("float32")


# ---- ClipLoss ----


@pytest.mark.parametrize("n, seed", [(2, 0), (5, 1), (16, 2)])
def test_clip_loss_identity_targets_match_oracle(n, seed):
    S = _logits(n, seed)
    assert _value(ClipLoss(), np.arange(n), S) == pytest.approx(clip_oracle(list(range(n)), S.tolist()), rel=1e-5)


@pytest.mark.parametrize("seed", [3, 4])
def test_clip_loss_class_targets_match_oracle(seed):
    labels = np.random.default_rng(seed).integers(0, 4, size=12)
    S = _logits(12, seed)
    assert _value(ClipLoss(), labels, S) == pytest.approx(clip_oracle(labels.tolist(), S.tolist()), rel=1e-5)


@pytest.mark.parametrize("seed", [5, 6])
def test_clip_loss_summed_positives_match_oracle(seed):
    labels = np.random.default_rng(seed).integers(0, 3, size=10)
    S = _logits(10, seed)
    loss = ClipLoss(positives="sum")
    assert _value(loss, labels, S) == pytest.approx(mil_nce_oracle(labels.tolist(), S.tolist()), rel=1e-5)
    # One positive per row: both kinds are CLIP's loss.
    assert _value(loss, np.arange(10), S) == pytest.approx(_value(ClipLoss(), np.arange(10), S), rel=1e-6)
    with pytest.raises(ConfigError, match="positives"):
        ClipLoss(positives="max")


def test_clip_loss_is_symmetric_and_the_formula_of_clip():
    S = _logits(6, 5)
    y = np.arange(6)
    assert _value(ClipLoss(), y, S) == pytest.approx(_value(ClipLoss(), y, S.T.copy()), rel=1e-6)
    # CLIP's pseudo-code: (CE(logits, labels) + CE(logits.T, labels)) / 2 with sparse labels arange(n).
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    reference = 0.5 * (_value(ce, y, S) + _value(ce, y, S.T.copy()))
    assert _value(ClipLoss(), y, S) == pytest.approx(reference, rel=1e-5)
    # Perfectly separated logits cost almost nothing; uniform logits cost log(n).
    assert _value(ClipLoss(), y, 50.0 * np.eye(6, dtype="float32")) < 1e-6
    assert _value(ClipLoss(), y, np.zeros((6, 6), "float32")) == pytest.approx(math.log(6), rel=1e-6)


def test_clip_loss_fixed_temperature_divides_similarities():
    sims = _logits(7, 6, scale=1.0)
    y = np.arange(7)
    assert _value(ClipLoss(temperature=0.1), y, sims) == pytest.approx(_value(ClipLoss(), y, sims / 0.1), rel=1e-6)
    with pytest.raises(ConfigError, match="temperature"):
        ClipLoss(temperature=0.0)


def test_clip_loss_needs_a_square_matrix_and_serializes():
    with pytest.raises(ConfigError, match=r"\(n, n\)"):
        ClipLoss()(np.arange(3), np.zeros((3, 4), "float32"))
    assert InfoNCELoss is ClipLoss
    loss = ClipLoss(temperature=0.2, positives="sum")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(clone, ClipLoss) and clone.temperature == 0.2 and clone.positives == "sum"


# ---- CrossModalContrastiveLoss ----


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_crossmodal_contrastive_matches_oracle(balanced, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=9)
    D = rng.uniform(0, 2, size=(9, 9)).astype("float32")
    loss = CrossModalContrastiveLoss(margin=1.2, balanced=balanced)
    expected = crossmodal_contrastive_oracle(labels.tolist(), D.tolist(), 1.2, balanced)
    assert _value(loss, labels, D) == pytest.approx(expected, rel=1e-5)
    clone = CrossModalContrastiveLoss.from_config(loss.get_config())
    assert clone.margin == pytest.approx(1.2) and clone.balanced == balanced


# ---- the model side: CrossModalScores reads the learned temperature ----


def _network(learn_temperature=True, distance="cosine"):
    keras.utils.set_random_seed(0)
    return models.TwoTowerNetwork(
        encoders.mlp((6,), embedding_dim=8, hidden_units=(16,)),
        encoders.mlp((4,), embedding_dim=8, hidden_units=(16,)),
        head=models.DistanceHead(distance),
        learn_temperature=learn_temperature,
    )


def _cosine_matrix(za, zb):
    za = za / np.linalg.norm(za, axis=1, keepdims=True)
    zb = zb / np.linalg.norm(zb, axis=1, keepdims=True)
    return za @ zb.T


def test_scores_are_scaled_cosines_and_distances():
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(5, 6)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")
    net = _network()
    za, zb = net.embed(xa, "a"), net.embed(xb, "b")
    logits = keras.ops.convert_to_numpy(CrossModalScores(net)([xa, xb]))
    np.testing.assert_allclose(logits, (1 / 0.07) * _cosine_matrix(za, zb), rtol=1e-4, atol=1e-5)
    net.logit_scale.assign(10.0)  # beyond CLIP's cap of 100
    logits = keras.ops.convert_to_numpy(CrossModalScores(net)([xa, xb]))
    np.testing.assert_allclose(logits, 100.0 * _cosine_matrix(za, zb), rtol=1e-4, atol=1e-4)

    net_fixed = _network(False)
    fixed = keras.ops.convert_to_numpy(CrossModalScores(net_fixed, temperature=0.5)([xa, xb]))
    expected = 2.0 * _cosine_matrix(net_fixed.embed(xa, "a"), net_fixed.embed(xb, "b"))
    np.testing.assert_allclose(fixed, expected, rtol=1e-4, atol=1e-5)

    euclid = _network(distance="euclidean")
    d = keras.ops.convert_to_numpy(CrossModalScores(euclid, scores="distance")([xa, xb]))
    ea, eb = euclid.embed(xa, "a"), euclid.embed(xb, "b")
    np.testing.assert_allclose(d, np.linalg.norm(ea[:, None] - eb[None], axis=-1), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="DistanceHead"):
        CrossModalScores(_network(distance="dot"), scores="distance")


@pytest.mark.parametrize("positives", ["mean", "sum"])
def test_clip_training_learns_the_temperature_and_aligns_the_towers(positives):
    """A few steps on toy data: the logit scale gets gradients and the loss falls."""
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 4, size=64)
    centres_a, centres_b = rng.normal(size=(4, 6)), rng.normal(size=(4, 4))
    xa = (centres_a[classes] + 0.1 * rng.normal(size=(64, 6))).astype("float32")
    xb = (centres_b[classes] + 0.1 * rng.normal(size=(64, 4))).astype("float32")
    net = _network()
    scores = CrossModalScores(net)
    scores.compile(optimizer=keras.optimizers.Adam(0.01), loss=ClipLoss(positives=positives))
    before = float(keras.ops.convert_to_numpy(net.logit_scale))
    history = scores.fit([xa, xb], classes, batch_size=16, epochs=8, shuffle=False, verbose=0).history["loss"]
    assert float(keras.ops.convert_to_numpy(net.logit_scale)) != pytest.approx(before, abs=1e-4)
    # Spread evenly over the positives, the floor is the targets' entropy, log(#same-class items in the batch).
    floor = np.mean([np.log(np.sum(b == b[:, None], axis=1)).mean() for b in classes.reshape(4, 16)])
    floor = floor if positives == "mean" else 0.0
    assert history[-1] - floor < 0.2 * (history[0] - floor)
