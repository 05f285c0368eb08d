"""PrototypicalLoss against a NumPy oracle written from the definition."""

import keras
import numpy as np
import pytest

from siamkit import distances, losses
from siamkit.errors import ConfigError

pytestmark = pytest.mark.backend


def _d(name, a, b):
    if name == "sqeuclidean":
        return float(np.sum((a - b) ** 2))
    if name == "euclidean":
        return float(np.sqrt(np.sum((a - b) ** 2)))
    if name == "cosine":
        return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    raise AssertionError(name)


def oracle(labels, z, distance="sqeuclidean", temperature=1.0, margin=0.0):
    """Loop over queries: leave-one-out own prototype, full means of the other classes."""
    terms = []
    for i, c in enumerate(labels):
        mates = [j for j in range(len(labels)) if labels[j] == c and j != i]
        if not mates:
            continue
        classes = sorted(set(labels))
        logits = []
        for k in classes:
            members = mates if k == c else [j for j in range(len(labels)) if labels[j] == k]
            d = _d(distance, z[i], z[members].mean(axis=0)) + (margin if k == c else 0.0)
            logits.append(-d / temperature)
        logits = np.array(logits)
        log_softmax = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        terms.append(-log_softmax[classes.index(c)])
    return float(np.mean(terms)) if terms else 0.0


def _value(loss, y, z):
    return float(keras.ops.convert_to_numpy(loss(y, z)))


@pytest.mark.parametrize("distance", ["sqeuclidean", "euclidean", "cosine"])
@pytest.mark.parametrize("temperature", [1.0, 0.1])
@pytest.mark.parametrize("margin", [0.0, 0.4])
def test_matches_oracle_on_pk_batch(distance, temperature, margin):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 4)
    z = rng.normal(size=(20, 6)).astype("float32")
    loss = losses.PrototypicalLoss(distance=distance, temperature=temperature, margin=margin)
    expected = oracle(y, z, distance, temperature, margin)
    assert _value(loss, y, z) == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_margin_charges_a_separated_batch():
    """Classes 0.1 apart inside and 5 apart across cost nothing, until the margin exceeds the gap."""
    y = np.array([0, 0, 1, 1])
    z = np.array([[0.0], [0.1], [5.0], [5.1]], "float32")
    assert _value(losses.PrototypicalLoss(margin=1.0), y, z) == pytest.approx(0.0, abs=1e-6)
    # own distance 0.01 + 30 against 24.01 to the other class: the query now sits on the wrong side
    assert _value(losses.PrototypicalLoss(margin=30.0), y, z) > 5


def test_unordered_uneven_batch_and_singletons():
    """Any batch order and class sizes; a class of one is a negative only, never a query."""
    rng = np.random.default_rng(1)
    y = rng.permutation(np.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4]))
    z = rng.normal(size=(len(y), 3)).astype("float32")
    value = _value(losses.PrototypicalLoss(), y, z)
    assert value == pytest.approx(oracle(y, z), rel=1e-4)
    assert value > 0


def test_separated_classes_cost_nothing_and_swapped_cost_a_lot():
    y = np.array([0, 0, 1, 1])
    z = np.array([[0.0], [0.1], [5.0], [5.1]], "float32")
    assert _value(losses.PrototypicalLoss(), y, z) == pytest.approx(0.0, abs=1e-6)
    assert _value(losses.PrototypicalLoss(), np.array([0, 1, 0, 1]), z) > 5


def test_gradient_is_finite_with_duplicate_embeddings():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written for TensorFlow")
    z = tf.Variable(np.zeros((4, 3), "float32"))
    with tf.GradientTape() as tape:
        value = losses.PrototypicalLoss(distance="euclidean")(np.array([0, 0, 1, 1]), z)
    assert np.isfinite(tape.gradient(value, z).numpy()).all()


def test_serialization_round_trip():
    loss = losses.PrototypicalLoss(distance=distances.get("cosine"), temperature=0.05, margin=0.2)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, losses.PrototypicalLoss)
    assert again.distance == loss.distance and again.temperature == 0.05 and again.margin == 0.2
    assert "prototypical" in losses.LOSSES and "prototypical" in losses.BATCH_LOSSES


def test_bad_options():
    with pytest.raises(ConfigError, match="temperature"):
        losses.PrototypicalLoss(temperature=0)
    with pytest.raises(ConfigError, match="margin"):
        losses.PrototypicalLoss(margin=-0.1)
    with pytest.raises(ConfigError, match="distance"):
        losses.PrototypicalLoss(distance="dot")
