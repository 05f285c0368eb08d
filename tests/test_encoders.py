import keras
import numpy as np
import pytest

from siamkit import encoders
from siamkit.errors import ConfigError


@pytest.mark.parametrize("name", ["mlp", "cnn", "koch", "resnet", "alexnet", "vgg"])
@pytest.mark.parametrize("shape", [pytest.param((8, 8, 1), marks=pytest.mark.backend), (28, 28, 3)])
def test_factories_map_inputs_to_embeddings(name, shape):
    enc = encoders.build(name, shape, embedding_dim=12)
    x = np.random.default_rng(0).random((2, *shape)).astype("float32")
    assert enc.predict(x, verbose=0).shape == (2, 12)


def test_koch_is_the_paper_network_at_105():
    enc = encoders.koch((105, 105, 1))
    convs = [layer for layer in enc.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size) for c in convs] == [(64, (10, 10)), (128, (7, 7)), (128, (4, 4)), (256, (4, 4))]
    assert all(c.padding == "valid" for c in convs)
    assert enc.get_layer("embedding").units == 4096
    assert enc.get_layer("embedding").activation.__name__ == "sigmoid"
    assert enc.get_layer("flatten").output.shape[-1] == 6 * 6 * 256


def test_options_are_applied():
    enc = encoders.cnn((16, 16, 1), embedding_dim=8, l2_normalize=True, batch_norm=True, dropout=0.2, weight_decay=1e-3)
    z = enc.predict(np.random.default_rng(1).random((4, 16, 16, 1)).astype("float32"), verbose=0)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in enc.layers)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in enc.layers)
    enc(np.zeros((1, 16, 16, 1), "float32"))
    assert len(enc.losses) > 0, "weight decay adds regularization losses"


def test_cnn_pool_first_normalises_pooled_maps():
    after = encoders.cnn((16, 16, 1), embedding_dim=8, filters=(4, 8), dense_units=(), batch_norm=True)
    first = encoders.cnn((16, 16, 1), embedding_dim=8, filters=(4, 8), dense_units=(), batch_norm=True, pool_first=True)
    assert after.count_params() == first.count_params(), "the same weights, only the order of the layers differs"
    assert first.get_layer("block0_bn").input.shape[1:3] == (8, 8)
    assert after.get_layer("block0_bn").input.shape[1:3] == (16, 16)
    assert first.output_shape == after.output_shape == (None, 8)
    order = [layer.name for layer in first.layers]
    assert order.index("block0_pool") < order.index("block0_bn") < order.index("block0_relu")


def test_resnet_depth_and_width():
    small = encoders.resnet((16, 16, 1), depth=(1, 1), width=8)
    big = encoders.resnet((16, 16, 1), depth=(2, 2, 2), width=16)
    adds = lambda m: sum(isinstance(layer, keras.layers.Add) for layer in m.layers)  # noqa: E731
    assert adds(small) == 2 and adds(big) == 6
    assert big.count_params() > small.count_params()


def test_application_backbone_adapts_one_channel():
    enc = encoders.build("MobileNetV3Small", (28, 28, 1), embedding_dim=16)
    assert enc.get_layer("gray_to_rgb") is not None
    assert enc.get_layer("resize_to_backbone") is not None
    assert enc.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 16)


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.h5' does not exist"):
        encoders.build("resnet50", (32, 32, 3), weights=str(tmp_path / "nope.h5"))


def _photo(side=32):
    """A real RGB photograph's crop (scikit-learn's bundled sample image), as [0, 1] floats."""
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")[100 : 100 + side, 200 : 200 + side].astype("float32")[None] / 255.0


@pytest.mark.backend
@pytest.mark.parametrize("key", sorted(encoders.BACKBONES))
def test_preprocessing_layer_matches_the_family_preprocess_input(key):
    _, family, mode, _ = encoders.BACKBONES[key]
    x = _photo()
    expected = getattr(keras.applications, family).preprocess_input(255.0 * x.copy())
    got = keras.ops.convert_to_numpy(encoders.BackbonePreprocessing(mode)(x))
    np.testing.assert_allclose(got, np.asarray(expected), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(encoders.BACKBONES))
def test_every_backbone_preprocesses_inside_the_encoder(key):
    class_name, family, mode, _ = encoders.BACKBONES[key]
    x = _photo()
    gray = x.mean(axis=-1, keepdims=True)
    for image, shape in ((x, (32, 32, 3)), (gray, (32, 32, 1))):
        enc = encoders.build(key, shape, embedding_dim=8)
        inside = keras.Model(enc.input, enc.get_layer("backbone_preprocessing").output).predict(image, verbose=0)
        rgb = np.repeat(image, 3, axis=-1) if shape[-1] == 1 else image
        expected = getattr(keras.applications, family).preprocess_input(255.0 * rgb)
        np.testing.assert_allclose(inside, np.asarray(expected), atol=1e-4)
    if mode == "pixels":  # these families keep the rest of their preprocessing in the backbone itself
        base = next(layer for layer in enc.layers if isinstance(layer, keras.Model))
        scaling = (keras.layers.Rescaling, keras.layers.Normalization)
        assert any(isinstance(layer, scaling) for layer in base._flatten_layers()), class_name


def test_local_weights_file_is_loaded(tmp_path):
    source = encoders.build("mobilenetv3small", (32, 32, 3), embedding_dim=8)
    base = next(layer for layer in source.layers if isinstance(layer, keras.Model))
    path = tmp_path / "mobilenet_v3_small_notop.weights.h5"
    base.save_weights(path)
    keras.utils.set_random_seed(1)  # a different initialisation, which the file replaces
    loaded = encoders.build("mobilenetv3small", (32, 32, 3), embedding_dim=8, weights=str(path))
    loaded_base = next(layer for layer in loaded.layers if isinstance(layer, keras.Model))
    assert len(loaded_base.weights) == len(base.weights) > 100
    for a, b in zip(loaded_base.weights, base.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_imagenet_weights_offline_names_the_file_and_the_cache(monkeypatch):
    import os
    import re
    import socket

    from siamkit.encoders.applications import keras_cache_dir

    def offline(*args, **kwargs):
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline)  # no name resolves: the machine is offline
    with pytest.raises(ConfigError) as err:
        encoders.build("mobilenetv3small", (32, 32, 1), weights="imagenet")
    message = str(err.value)
    named = re.search(r"place the file (\S+) \(from (\S+)\) in (\S+),", message)
    assert named, message
    assert re.fullmatch(r".*small.*no_?top.*\.h5", named.group(1)), named.group(1)  # the backbone without its top
    assert named.group(2).endswith("/" + named.group(1)) and named.group(3) == keras_cache_dir()
    assert not os.path.isfile(os.path.join(keras_cache_dir(), named.group(1)))


def test_unknown_encoder_lists_choices():
    with pytest.raises(ConfigError, match="valid choices are: 'mlp', 'cnn', 'koch'"):
        encoders.build("transformer", (8, 8, 1))


@pytest.mark.backend
def test_ensemble_concatenates_members_and_survives_safe_loading(tmp_path):
    a = encoders.build("cnn", (8, 8, 1), embedding_dim=4, name="a")
    b = encoders.build("mlp", (8, 8, 1), embedding_dim=6, name="b")
    both = encoders.ensemble([a, b])
    x = np.random.default_rng(3).random((5, 8, 8, 1)).astype("float32")
    z = both.predict(x, verbose=0)
    np.testing.assert_allclose(z, np.hstack([a.predict(x, verbose=0), b.predict(x, verbose=0)]), rtol=1e-6)
    # squared Euclidean distances of the ensemble are the members' summed
    d = lambda e: ((e[:, None] - e[None]) ** 2).sum(-1)  # noqa: E731
    np.testing.assert_allclose(d(z), d(z[:, :4]) + d(z[:, 4:]), rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "ensemble.keras")
    both.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path, safe_mode=True).predict(x, verbose=0), z, rtol=1e-6)


@pytest.mark.parametrize(
    "members, message",
    [
        (lambda: [encoders.mlp((8,), name="a")], "at least 2 encoders, got 1"),
        (lambda: [encoders.mlp((8,), name="a"), encoders.mlp((9,), name="b")], "share one input shape"),
        (lambda: [encoders.mlp((8,)), encoders.mlp((8,))], "distinct names, got \\['mlp', 'mlp'\\]"),
    ],
)
def test_ensemble_refuses_members_that_do_not_fit(members, message):
    with pytest.raises(ConfigError, match=message):
        encoders.ensemble(members())
