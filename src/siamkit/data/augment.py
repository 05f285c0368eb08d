"""Koch-style random affine distortions of image batches, in NumPy.

Koch, Zemel & Salakhutdinov (2015) trained their Omniglot Siamese network on
images distorted by a random affine map: rotation in [-10, 10] degrees, shear
in [-0.3, 0.3], scale in [0.8, 1.2] and translation of up to 2 pixels, each
part switched on with probability 0.5. `Augment` does that, plus optional
flips and crops, as one bilinear resampling per image, and can thicken
strokes (pens differ in width). It works on NumPy arrays, so it runs inside
the samplers on every Keras backend, and draws everything from the `rng` it
is given, so a seed fixes the result.

Example:

>>> import numpy as np
>>> aug = Augment.koch()
>>> batch = np.zeros((4, 105, 105, 1), dtype="float32")
>>> aug(batch, np.random.default_rng(0)).shape
(4, 105, 105, 1)
>>> Augment.from_config(aug.get_config()) == aug
True
"""

import numpy as np
from scipy import ndimage

from ..errors import ConfigError, DataError, check_choice

TRANSFORMS = ("rotation", "shear", "scale", "translation", "crop")
PARTS = (*TRANSFORMS, "stroke")
FILL_MODES = ("constant", "nearest")


class Augment:
    """Random affine distortions, each part applied with a probability.

    Args:
        rotation: largest rotation in degrees (angle ~ U[-rotation, rotation]).
        shear: largest shear factor, drawn for x and y independently.
        scale: largest relative change of size; x and y scale by factors in
            [1 - scale, 1 + scale] independently.
        translation: largest shift as a fraction of the image's side.
        crop: None, or the smallest crop as a fraction of each side; a crop
            of side in [crop, 1] at a random place is resized to the full image.
        stroke: largest thickening of bright strokes on a dark ground, as a
            fraction of the side: after the affine map, an image's strokes
            grow by `r` pixels on every side (a `2r + 1` square max filter),
            `r` uniform in `0 .. round(stroke * side)`. 0 (the default)
            draws nothing, so it leaves the other parts' draws as they were.
        probability: chance that each part (rotation, shear, scale,
            translation, crop, stroke) is applied to an image: one number for
            all, or a dict by part (parts left out get 0.5).
        flip_horizontal, flip_vertical: mirror half of the images.
        fill_mode: `"constant"` (pixels from outside the image are
            `fill_value`) or `"nearest"` (the nearest edge pixel).
        fill_value: the constant fill; 0 suits ink-high images.
        seed: seeds the generator used when a call passes no `rng`.
    """

    def __init__(
        self,
        rotation=0.0,
        shear=0.0,
        scale=0.0,
        translation=0.0,
        crop=None,
        stroke=0.0,
        probability=0.5,
        flip_horizontal=False,
        flip_vertical=False,
        fill_mode="constant",
        fill_value=0.0,
        seed=None,
    ):
        for name, value, high in (
            ("rotation", rotation, 180),
            ("shear", shear, 10),
            ("scale", scale, 0.99),
            ("translation", translation, 1),
            ("stroke", stroke, 0.25),
        ):
            if not 0 <= float(value) <= high:
                raise ConfigError(f"augment {name} must be in [0, {high}], got {value!r}")
        if crop is not None and not 0 < float(crop) <= 1:
            raise ConfigError(f"augment crop must be in (0, 1] (smallest side fraction kept), got {crop!r}")
        if isinstance(probability, dict):
            unknown = sorted(set(probability) - set(PARTS))
            if unknown:
                raise ConfigError(f"augment probability has unknown part(s) {unknown}; parts are {list(PARTS)}")
            probs = {t: float(probability.get(t, 0.5)) for t in PARTS}
        else:
            probs = dict.fromkeys(PARTS, float(probability))
        if not all(0 <= p <= 1 for p in probs.values()):
            raise ConfigError(f"augment probabilities must be in [0, 1], got {probability!r}")
        self.rotation, self.shear, self.scale = float(rotation), float(shear), float(scale)
        self.translation = float(translation)
        self.crop = None if crop is None else float(crop)
        self.stroke = float(stroke)
        self.probability = probs
        self.flip_horizontal, self.flip_vertical = bool(flip_horizontal), bool(flip_vertical)
        self.fill_mode = check_choice("augment fill_mode", fill_mode, FILL_MODES)
        self.fill_value = float(fill_value)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @classmethod
    def koch(cls, **overrides):
        """Koch et al.'s Omniglot distortions (2 pixels taken on a 105-pixel image)."""
        options = dict(rotation=10.0, shear=0.3, scale=0.2, translation=2 / 105, probability=0.5)
        return cls(**{**options, **overrides})

    def get_config(self):
        """The constructor arguments, as plain JSON-able values."""
        return {
            "rotation": self.rotation,
            "shear": self.shear,
            "scale": self.scale,
            "translation": self.translation,
            "crop": self.crop,
            "stroke": self.stroke,
            "probability": dict(self.probability),
            "flip_horizontal": self.flip_horizontal,
            "flip_vertical": self.flip_vertical,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Augment) and self.get_config() == other.get_config()

    def __repr__(self):
        return f"Augment({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"

    def matrices(self, n, height, width, rng):
        """Draw `n` maps `out = A (in - center) + center + t` in (x, y) pixel units.

        Returns:
            `(A, t, changed)`: `(n, 2, 2)`, `(n, 2)` and a bool mask of the
            images whose map is not the identity.
        """
        size = np.array([width, height], dtype="float64")
        on = {name: rng.random(n) < self.probability[name] for name in TRANSFORMS}
        # Every parameter is drawn whether used or not, so one option does not shift another's draws.
        angle = np.deg2rad(rng.uniform(-self.rotation, self.rotation, n)) * on["rotation"]
        shear = rng.uniform(-self.shear, self.shear, (n, 2)) * on["shear"][:, None]
        scale = 1 + rng.uniform(-self.scale, self.scale, (n, 2)) * on["scale"][:, None]
        shift = rng.uniform(-self.translation, self.translation, (n, 2)) * size * on["translation"][:, None]
        side = rng.uniform(self.crop or 1.0, 1.0, n)
        side = np.where(on["crop"] & (self.crop is not None), side, 1.0)
        window = rng.uniform(-0.5, 0.5, (n, 2)) * (1 - side[:, None]) * size  # crop centre offset
        flips = rng.random((n, 2)) < 0.5
        flips &= np.array([self.flip_horizontal, self.flip_vertical])

        a = np.eye(2)[None].repeat(n, axis=0) / side[:, None, None]  # zoom the crop window to full size
        t = -window / side[:, None]
        for b, s in (
            (np.array([np.diag(np.where(f, -1.0, 1.0)) for f in flips]).reshape(n, 2, 2), 0),
            (scale[:, :, None] * np.eye(2), 0),
            (np.stack([np.ones(n), shear[:, 0], shear[:, 1], np.ones(n)], -1).reshape(n, 2, 2), 0),
            (np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(n, 2, 2), 0),
            (np.eye(2)[None], shift),
        ):
            a = b @ a
            t = np.einsum("nij,nj->ni", np.broadcast_to(b, a.shape), t) + s
        changed = ~(np.all(np.isclose(a, np.eye(2)), axis=(1, 2)) & np.all(np.isclose(t, 0), axis=1))
        return a, t, changed

    def __call__(self, batch, rng=None):
        """Distort a float batch `(n, h, w, c)`; returns a new float32 array."""
        batch = np.asarray(batch, dtype="float32")
        if batch.ndim != 4:
            raise DataError(f"augment expects a batch of images (n, height, width, channels), got shape {batch.shape}")
        rng = self._rng if rng is None else rng
        n, h, w, c = batch.shape
        a, t, changed = self.matrices(n, h, w, rng)
        out = batch.copy()
        if changed.any():
            out[changed] = warp(batch[changed], a[changed], t[changed], self.fill_mode, self.fill_value)
        if self.stroke > 0:
            on = rng.random(n) < self.probability["stroke"]
            radius = rng.integers(0, round(self.stroke * min(h, w)) + 1, n) * on
            for r in np.unique(radius[radius > 0]):
                out[radius == r] = thicken(out[radius == r], int(r))
        return out


def warp(batch, a, t, fill_mode="constant", fill_value=0.0):
    """Bilinear resampling of `batch` `(n, h, w, c)` under the affine maps `(a, t)`.

    Output pixel `p` of image `i` reads the input at `inv(a[i]) @ (p - centre - t[i]) + centre`,
    so `a` `(n, 2, 2)` maps input to output coordinates about the image centre and `t` `(n, 2)`
    shifts in pixels (x, y). `fill_mode` and `fill_value` are as in `Augment`.
    """
    n, h, w, c = batch.shape
    center = np.array([(w - 1) / 2, (h - 1) / 2])
    ys, xs = np.mgrid[0:h, 0:w]
    out_xy = np.stack([xs.ravel(), ys.ravel()]).astype("float64")  # (2, h*w)
    src = np.linalg.inv(a) @ (out_xy[None] - (center + t)[:, :, None]) + center[None, :, None]
    if fill_mode == "constant":
        # A 1-pixel border of fill_value; coordinates past it read the border.
        batch = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=fill_value)
        src += 1
    ph, pw = batch.shape[1:3]
    sx = np.clip(src[:, 0], 0, pw - 1).astype("float32")
    sy = np.clip(src[:, 1], 0, ph - 1).astype("float32")
    x0 = np.minimum(sx.astype("int64"), max(pw - 2, 0))
    y0 = np.minimum(sy.astype("int64"), max(ph - 2, 0))
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    dx, dy = int(pw > 1), int(ph > 1) * pw
    flat = batch.reshape(n * ph * pw, c)
    i00 = np.arange(n)[:, None] * (ph * pw) + y0 * pw + x0  # flat index of each top-left neighbor
    at = lambda i: np.take(flat, i, axis=0)  # noqa: E731  (faster than flat[i])
    top = at(i00) * (1 - fx) + at(i00 + dx) * fx
    bottom = at(i00 + dy) * (1 - fx) + at(i00 + dy + dx) * fx
    return (top * (1 - fy) + bottom * fy).reshape(n, h, w, c)


def zoom(batch, factor, chunk=1024):
    """`batch` `(n, h, w, c)` scaled by `factor` about each image's centre, bilinear, zero fill.

    A fixed view for test-time averaging (the random maps of `Augment` are for training).

    Args:
        batch: float images `(n, h, w, c)`.
        factor: positive scale; above 1 enlarges (the border is cropped), below 1 shrinks
            (zeros enter at the border).
        chunk: images resampled at a time, which bounds the memory of the coordinate grids.

    Example:

    >>> small = zoom(np.ones((2, 8, 8, 1), "float32"), 0.5)
    >>> small.shape, float(small[0, 0, 0, 0]), float(small[0, 4, 4, 0])
    ((2, 8, 8, 1), 0.0, 1.0)
    """
    batch = np.asarray(batch, dtype="float32")
    if batch.ndim != 4:
        raise DataError(f"zoom expects a batch of images (n, height, width, channels), got shape {batch.shape}")
    if not float(factor) > 0:
        raise ConfigError(f"zoom factor must be positive, got {factor!r}")
    if float(factor) == 1.0 or len(batch) == 0:
        return batch.copy()
    a, t = np.eye(2)[None] * float(factor), np.zeros((1, 2))
    parts = [batch[i : i + chunk] for i in range(0, len(batch), chunk)]
    return np.concatenate([warp(p, a.repeat(len(p), 0), t.repeat(len(p), 0)).astype("float32") for p in parts])


def thicken(batch, radius):
    """Grey dilation of `batch` `(n, h, w, c)` by a `2 * radius + 1` square: bright strokes grow."""
    return ndimage.maximum_filter(batch, size=(1, 2 * radius + 1, 2 * radius + 1, 1), mode="nearest")


def from_config(spec, seed=None):
    """Build an augmenter from a config value.

    Args:
        spec: None/False (none), True or `"koch"` (Koch's preset), a dict of
            `Augment` arguments (with an optional `"preset": "koch"` to start
            from), or an `Augment`.
        seed: the seed used when the augmenter is called without an `rng`.

    Returns:
        An `Augment`, or None.
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, Augment):
        return spec
    if spec is True or isinstance(spec, str):
        check_choice("augment preset", "koch" if spec is True else spec, ["koch"])
        return Augment.koch(seed=seed)
    if not isinstance(spec, dict):
        raise ConfigError(f"augment must be a preset name ('koch') or a table of options, got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "preset"}
    options.setdefault("seed", seed)
    valid = set(Augment().get_config())
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"unknown augment option(s) {unknown}; valid options are: {', '.join(sorted(valid))}")
    preset = spec.get("preset")
    if preset is not None:
        check_choice("augment preset", preset, ["koch"])
        return Augment.koch(**options)
    return Augment(**options)
