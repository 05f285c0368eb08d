import keras
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from siamkit import distances
from siamkit.errors import ConfigError

pytestmark = pytest.mark.backend

SCIPY = {"euclidean": "euclidean", "sqeuclidean": "sqeuclidean", "manhattan": "cityblock", "cosine": "cosine"}


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 5)).astype("float32"), rng.normal(size=(9, 5)).astype("float32")


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_pairwise_matches_scipy(name, vectors):
    a, b = vectors
    got = keras.ops.convert_to_numpy(distances.get(name).pairwise(a, b))
    np.testing.assert_allclose(got, cdist(a, b, SCIPY[name]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_paired_matches_scipy_diagonal(name, vectors):
    a, b = vectors[0], vectors[1][:7]
    got = keras.ops.convert_to_numpy(distances.get(name).paired(a, b))
    np.testing.assert_allclose(got, np.diag(cdist(a, b, SCIPY[name])), rtol=1e-5, atol=1e-5)


def test_dot_product_is_a_similarity(vectors):
    a, b = vectors
    dot = distances.get("dot")
    assert dot.higher_is_similar and not distances.get("euclidean").higher_is_similar
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dot.pairwise(a, b)), a @ b.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dot.paired(a, b[:7])), np.sum(a * b[:7], axis=1), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", ["euclidean", "cosine", "manhattan", "sqeuclidean"])
def test_identical_points_give_zero_and_finite_gradients(name):
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], "float32")
    d = distances.get(name)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d.paired(x, x)), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.diag(keras.ops.convert_to_numpy(d.pairwise(x, x))), 0.0, atol=1e-5)
    grads = _gradient(lambda v: keras.ops.sum(d.paired(v, x)) + keras.ops.sum(d.pairwise(v, x)), x)
    assert np.isfinite(grads).all()


def _gradient(fn, x):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(x)
        with tf.GradientTape() as tape:
            out = fn(v)
        return tape.gradient(out, v).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    import torch

    v = torch.tensor(x, requires_grad=True)
    fn(v).backward()
    return v.grad.numpy()


def test_get_accepts_aliases_objects_and_configs():
    assert isinstance(distances.get("L2"), distances.EuclideanDistance)
    assert isinstance(distances.get("l1"), distances.ManhattanDistance)
    cosine = distances.CosineDistance()
    assert distances.get(cosine) is cosine
    assert distances.get(distances.serialize("cosine")) == cosine


def test_unknown_distance_lists_choices():
    with pytest.raises(ConfigError, match="valid choices are: cosine, dot, euclidean"):
        distances.get("hamming")
