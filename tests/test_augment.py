"""Koch-style affine augmentation: exact against scipy.ndimage, deterministic, serializable."""

import json

import numpy as np
import pytest

from siamkit.data.augment import Augment, from_config, thicken, warp, zoom
from siamkit.errors import ConfigError, DataError

ndimage = pytest.importorskip("scipy.ndimage")
RNG = np.random.default_rng(0)


def _batch(n=4, h=9, w=11, c=2):
    return RNG.random((n, h, w, c)).astype("float32")


def _scipy_reference(image, a, t, mode, cval):
    """`out = A (in - c) + c + t` in (x, y), resampled bilinearly by scipy in (row, col)."""
    h, w = image.shape[:2]
    center = np.array([(w - 1) / 2, (h - 1) / 2])
    inv = np.linalg.inv(a)
    swap = np.array([[0, 1], [1, 0]])
    matrix = swap @ inv @ swap
    offset = swap @ (center - inv @ (center + t))
    return np.stack(
        [
            ndimage.affine_transform(image[..., k].astype("float64"), matrix, offset, order=1, mode=mode, cval=cval)
            for k in range(image.shape[-1])
        ],
        axis=-1,
    )


@pytest.mark.parametrize("fill_mode, scipy_mode", [("constant", "grid-constant"), ("nearest", "nearest")])
def test_random_maps_match_scipy(fill_mode, scipy_mode):
    aug = Augment(
        rotation=30,
        shear=0.3,
        scale=0.2,
        translation=0.2,
        crop=0.7,
        probability=1.0,
        flip_horizontal=True,
        flip_vertical=True,
        fill_mode=fill_mode,
        fill_value=0.25,
    )
    batch = _batch()
    a, t, changed = aug.matrices(len(batch), 9, 11, np.random.default_rng(1))
    assert changed.all()
    out = aug(batch, np.random.default_rng(1))
    for i in range(len(batch)):
        expected = _scipy_reference(batch[i], a[i], t[i], scipy_mode, 0.25)
        np.testing.assert_allclose(out[i], expected, atol=2e-5)


def test_known_maps():
    image = RNG.random((1, 7, 7, 1)).astype("float32")
    quarter = np.array([[[0.0, -1.0], [1.0, 0.0]]])  # 90 degrees in image (x right, y down) coordinates
    np.testing.assert_allclose(
        warp(image, quarter, np.zeros((1, 2)))[0, ..., 0], np.rot90(image[0, ..., 0], k=-1), atol=1e-6
    )
    shifted = warp(image, np.eye(2)[None], np.array([[2.0, 0.0]]))  # 2 pixels right, zeros enter
    np.testing.assert_allclose(shifted[0, :, 2:], image[0, :, :-2], atol=1e-6)
    assert np.all(shifted[0, :, :2] == 0)


@pytest.mark.parametrize("factor", [0.9, 1.1, 2.0])
def test_zoom_matches_scipy_and_keeps_the_centre(factor):
    batch = _batch(n=3, h=9, w=9, c=1)
    out = zoom(batch, factor, chunk=2)  # chunked: the same as one pass
    a = np.eye(2) * factor
    for i in range(len(batch)):
        np.testing.assert_allclose(out[i], _scipy_reference(batch[i], a, np.zeros(2), "grid-constant", 0.0), atol=2e-5)
    np.testing.assert_allclose(out[:, 4, 4], batch[:, 4, 4], atol=1e-6)  # the centre pixel stays put
    assert out.dtype == np.float32 and out.shape == batch.shape
    np.testing.assert_array_equal(zoom(batch, 1.0), batch)
    assert zoom(np.zeros((0, 9, 9, 1)), 0.9).shape == (0, 9, 9, 1)


def test_zoom_validation():
    with pytest.raises(ConfigError, match="zoom factor must be positive, got 0"):
        zoom(_batch(), 0)
    with pytest.raises(DataError, match=r"got shape \(9, 11\)"):
        zoom(np.zeros((9, 11)), 0.9)


def test_no_transform_returns_the_input_exactly():
    batch = _batch()
    out = Augment.koch(probability=0.0)(batch, np.random.default_rng(0))
    np.testing.assert_array_equal(out, batch)
    assert out is not batch


def test_flips_are_exact_mirrors():
    batch = _batch(n=16)
    out = Augment(flip_horizontal=True)(batch, np.random.default_rng(3))
    mirrored = [np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch)]
    same = [np.array_equal(o, b) for o, b in zip(out, batch)]
    assert all(m or s for m, s in zip(mirrored, same)) and 0 < sum(mirrored) < 16


def test_probability_controls_how_often_each_part_applies():
    aug = Augment(rotation=10, probability={"rotation": 0.25})
    _, _, changed = aug.matrices(4000, 20, 20, np.random.default_rng(0))
    assert abs(changed.mean() - 0.25) < 0.03
    koch = Augment.koch()
    _, _, changed = koch.matrices(4000, 105, 105, np.random.default_rng(0))
    assert abs(changed.mean() - (1 - 0.5**4)) < 0.03  # Koch: each of 4 parts with p = 0.5


def test_koch_ranges():
    a, t, _ = Augment.koch(probability=1.0).matrices(2000, 105, 105, np.random.default_rng(0))
    assert np.abs(t).max() <= 2.0 + 1e-9  # at most 2 pixels on a 105-pixel image
    det = np.linalg.det(a)
    assert det.min() >= 0.8**2 * (1 - 0.3**2) - 1e-9 and det.max() <= 1.2**2 * (1 + 0.3**2) + 1e-9


def test_deterministic_under_a_seed():
    batch = _batch()
    aug = Augment.koch()
    np.testing.assert_array_equal(aug(batch, np.random.default_rng(7)), aug(batch, np.random.default_rng(7)))
    assert not np.array_equal(aug(batch, np.random.default_rng(7)), aug(batch, np.random.default_rng(8)))
    seeded = [Augment.koch(seed=5)(batch) for _ in range(2)]
    np.testing.assert_array_equal(*seeded)


def test_config_round_trip_through_json():
    aug = Augment(
        rotation=5, crop=0.8, stroke=0.1, probability={"crop": 1.0}, flip_vertical=True, fill_mode="nearest"
    )
    again = Augment.from_config(json.loads(json.dumps(aug.get_config())))
    assert again == aug
    batch = _batch()
    np.testing.assert_array_equal(again(batch, np.random.default_rng(2)), aug(batch, np.random.default_rng(2)))


def test_from_config():
    assert from_config(None) is None and from_config(False) is None
    assert from_config("koch", seed=3) == Augment.koch(seed=3)
    assert from_config(True) == Augment.koch()
    assert from_config({"preset": "koch", "probability": 1.0}, seed=1) == Augment.koch(probability=1.0, seed=1)
    assert from_config({"rotation": 4}).rotation == 4.0
    with pytest.raises(ConfigError, match="unknown augment option"):
        from_config({"rotate": 4})
    with pytest.raises(ConfigError, match=r"unknown augment option\(s\) \['rotaton'\]"):
        from_config({"preset": "koch", "rotaton": 5})
    with pytest.raises(ConfigError, match="augment preset"):
        from_config("strong")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rotation": -1}, "rotation"),
        ({"scale": 1.5}, "scale"),
        ({"crop": 0}, "crop"),
        ({"probability": 2}, "probabilities"),
        ({"probability": {"spin": 1}}, "unknown part"),
        ({"stroke": 0.5}, "stroke"),
        ({"fill_mode": "wrap"}, "fill_mode"),
    ],
)
def test_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Augment(**kwargs)


@pytest.mark.parametrize("radius", [1, 2, 5])
def test_thicken_is_a_square_max_filter(radius):
    batch = _batch(n=3, h=9, w=11, c=2)
    expected = ndimage.maximum_filter(batch, size=(1, 2 * radius + 1, 2 * radius + 1, 1), mode="nearest")
    np.testing.assert_array_equal(thicken(batch, radius), expected)


def test_stroke_thickens_lines_and_leaves_the_affine_draws_alone():
    line = np.zeros((64, 28, 28, 1), "float32")
    line[:, 13, 4:24] = 1.0  # a 1-pixel stroke
    plain = Augment.koch()(line, np.random.default_rng(4))
    thick = Augment.koch(stroke=2 / 28)(line, np.random.default_rng(4))
    grown = thick.sum(axis=(1, 2, 3)) - plain.sum(axis=(1, 2, 3))
    assert (grown >= -1e-4).all()  # dilation never removes ink
    assert 0.2 < np.mean(grown > 1) < 0.6  # half the images drawn, a third of those with r = 0
    # those thickened are the plain image max-filtered by r = 1 or 2: never wider than 2 * 2 + 1 rows
    for i in np.flatnonzero(grown > 1):
        assert any(np.allclose(thick[i], thicken(plain[i : i + 1], r)[0]) for r in (1, 2))
    # stroke = 0 draws nothing extra, so earlier recipes augment exactly as before
    np.testing.assert_array_equal(Augment.koch(stroke=0.0)(line, np.random.default_rng(4)), plain)
    assert Augment.koch(stroke=0.1, probability={"stroke": 0.0})(line, np.random.default_rng(4)).sum() == plain.sum()


def test_rejects_non_batches():
    with pytest.raises(DataError, match=r"got shape \(9, 11, 2\)"):
        Augment.koch()(_batch()[0])


def test_inside_a_sampler_is_reproducible():
    from siamkit.data import PairDataset

    x, y = _batch(n=20, c=1), np.repeat(np.arange(4), 5)
    first = PairDataset(x, y, batch_size=8, augment=Augment.koch(), seed=1)[0]
    second = PairDataset(x, y, batch_size=8, augment=Augment.koch(), seed=1)[0]
    np.testing.assert_array_equal(first[0][0], second[0][0])
    plain = PairDataset(x, y, batch_size=8, seed=1)[0]
    assert not np.array_equal(first[0][0], plain[0][0])
