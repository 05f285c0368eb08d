import keras
import numpy as np
import pytest

from siamkit import encoders, losses, models
from siamkit.errors import ConfigError, DataError

pytestmark = pytest.mark.backend


def _images(n=8, seed=0):
    return np.random.default_rng(seed).random((n, 8, 8, 1)).astype("float32")


def _variable_ids(variables):
    return sorted(id(v) for v in variables)


@pytest.mark.parametrize("head", [models.DistanceHead("euclidean"), models.L1Head(), models.ConcatHead((8,))])
def test_siamese_shares_one_encoder(head):
    encoder = encoders.mlp((8, 8, 1), embedding_dim=4, hidden_units=(16,))
    net = models.SiameseNetwork(encoder, head)
    x = _images()
    net([x, x])
    # exactly the encoder's variables plus the head's: no second copy of the encoder
    expected = _variable_ids(encoder.trainable_variables + head.trainable_variables)
    assert _variable_ids(net.trainable_variables) == expected


def test_branches_stay_identical_after_a_training_step():
    encoder = encoders.cnn((8, 8, 1), embedding_dim=4, filters=(4,), dense_units=(8,))
    net = models.SiameseNetwork(encoder, models.DistanceHead("euclidean"))
    net.compile(optimizer=keras.optimizers.SGD(0.1), loss=losses.ContrastiveLoss())
    xa, xb = _images(16, 1), _images(16, 2)
    before = net.embed(xa)
    net.fit([xa, xb], np.tile([0.0, 1.0], 8), epochs=1, batch_size=16, verbose=0)
    after = net.embed(xa)
    assert not np.allclose(before, after), "the step did not change the encoder"
    # identical inputs in the two branches give identical embeddings, so distance 0
    np.testing.assert_allclose(net.predict([xa, xa], verbose=0), 0.0, atol=1e-5)


@pytest.mark.parametrize(
    "head", [models.DistanceHead("cosine"), models.DistanceHead("dot"), models.L1Head(), models.ConcatHead((8,), 0.1)]
)
def test_save_and_load_in_safe_mode_gives_identical_outputs(tmp_path, head):
    net = models.SiameseNetwork(encoders.cnn((8, 8, 1), embedding_dim=6, filters=(4,), dense_units=(8,)), head)
    xa, xb = _images(5, 3), _images(5, 4)
    expected = net.predict([xa, xb], verbose=0)
    path = str(tmp_path / "m.keras")
    net.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, models.SiameseNetwork)
    np.testing.assert_allclose(loaded.predict([xa, xb], verbose=0), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loaded.embed(xa), net.embed(xa), rtol=1e-6, atol=1e-6)
    assert loaded.output_kind == net.output_kind


def test_two_tower_round_trip_and_modalities(tmp_path):
    net = models.TwoTowerNetwork(
        encoders.mlp((8, 8, 1), embedding_dim=8, hidden_units=(16,)),
        encoders.mlp((20,), embedding_dim=8, hidden_units=(16,)),
        projection=keras.layers.Dense(6),
        learn_temperature=True,
    )
    xa = _images(4)
    xb = np.random.default_rng(5).random((4, 20)).astype("float32")
    scores = net.predict([xa, xb], verbose=0)
    assert scores.shape == (4,)
    za, zb = net.embed(xa, "a"), net.embed(xb, "b")
    assert za.shape == zb.shape == (4, 6)
    np.testing.assert_allclose(np.linalg.norm(za, axis=1), 1.0, rtol=1e-5)
    path = str(tmp_path / "t.keras")
    net.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict([xa, xb], verbose=0), scores, rtol=1e-6, atol=1e-6)
    assert float(keras.ops.convert_to_numpy(loaded.logit_scale)) == pytest.approx(np.log(1 / 0.07), rel=1e-5)


def test_shared_projection_needs_equal_tower_sizes():
    with pytest.raises(ConfigError, match="same size, got 8 and 12"):
        models.TwoTowerNetwork(
            encoders.mlp((4,), embedding_dim=8), encoders.mlp((4,), embedding_dim=12), projection=keras.layers.Dense(6)
        )


def test_heads_symmetry_and_kinds():
    rng = np.random.default_rng(6)
    z1, z2 = rng.normal(size=(2, 10, 5)).astype("float32")
    l1, concat = models.L1Head(), models.ConcatHead((16,))
    score = lambda head, a, b: keras.ops.convert_to_numpy(head([a, b]))  # noqa: E731
    np.testing.assert_allclose(score(l1, z1, z2), score(l1, z2, z1), rtol=1e-6)
    assert not np.allclose(score(concat, z1, z2), score(concat, z2, z1)), "concat head is documented as asymmetric"
    assert models.DistanceHead("euclidean").output_kind == "distance"
    assert models.DistanceHead("dot").output_kind == "similarity"
    assert l1.output_kind == concat.output_kind == "probability"
    p = score(concat, z1, z2)
    assert ((p > 0) & (p < 1)).all()


def test_user_built_model_is_accepted_as_encoder():
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    net = models.SiameseNetwork(keras.Model(inputs, outputs))
    assert net.embed(_images(3)).shape == (3, 3)


def test_both_networks_embed_with_one_signature():
    import inspect

    siamese = models.SiameseNetwork(encoders.mlp((8, 8, 1), embedding_dim=4, hidden_units=(16,)))
    two_tower = models.TwoTowerNetwork(
        encoders.mlp((8, 8, 1), embedding_dim=4, hidden_units=(16,)), encoders.mlp((20,), embedding_dim=4)
    )
    params = [list(inspect.signature(net.embed).parameters.items()) for net in (siamese, two_tower)]
    assert params[0] == params[1]
    assert [(name, p.default) for name, p in params[0]] == [("x", inspect.Parameter.empty), ("modality", "a"),
                                                             ("batch_size", 256)]
    x = _images(5)
    # Both sides of a Siamese pair go through the one encoder.
    np.testing.assert_allclose(siamese.embed(x, "b", batch_size=2), siamese.embed(x), rtol=1e-5, atol=1e-6)
    for net in (siamese, two_tower):
        with pytest.raises(ConfigError, match="invalid modality 'c'; valid choices are: 'a', 'b'"):
            net.embed(x, "c")
        with pytest.raises(DataError, match="cannot embed an empty array"):
            net.embed(x[:0])
