"""Audio augmentation: `SpecAugment` (a layer), `WaveformAugment` (NumPy) and its test-time counterpart."""

import keras
import numpy as np
from keras import ops

from ..errors import ConfigError


@keras.saving.register_keras_serializable(package="siamkit")
class SpecAugment(keras.layers.Layer):
    """Masks random bands of frames and of mel channels (Park et al. 2019).

    Each example gets `time_masks` bands of `0..time_mask_width` consecutive
    frames and `freq_masks` bands of `0..freq_mask_width` channels set to
    `mask_value`. Put it after a normalising front end, where 0 is the mean.
    At inference (`training` false) the input passes through unchanged.

    Args:
        time_masks: number of time masks per example.
        time_mask_width: largest width of a time mask, in frames.
        freq_masks: number of frequency masks per example.
        freq_mask_width: largest width of a frequency mask, in channels.
        mask_value: value written into the masked cells.
        seed: seed of the masks (an int makes training reproducible).

    Example:

    >>> import numpy as np
    >>> x = np.ones((2, 64, 40), "float32")
    >>> aug = SpecAugment(seed=0)
    >>> bool((np.asarray(aug(x, training=True)) == 0).any()), bool((np.asarray(aug(x)) == 1).all())
    (True, True)
    """

    def __init__(
        self, time_masks=2, time_mask_width=8, freq_masks=2, freq_mask_width=6, mask_value=0.0, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.time_masks = int(time_masks)
        self.time_mask_width = int(time_mask_width)
        self.freq_masks = int(freq_masks)
        self.freq_mask_width = int(freq_mask_width)
        self.mask_value = float(mask_value)
        self.seed = seed
        for name in ("time_masks", "time_mask_width", "freq_masks", "freq_mask_width"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SpecAugment: {name} must be >= 0, got {getattr(self, name)}")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _bands(self, batch, size, count, max_width):
        """Boolean `(batch, size)`: True inside any of `count` random bands."""
        if count == 0 or max_width == 0:
            return None
        max_width = min(max_width, size)
        u = keras.random.uniform((batch, count, 2), seed=self.seed_generator)
        width = ops.floor(u[..., 0] * (max_width + 1))
        start = ops.floor(u[..., 1] * (size - width + 1))
        position = ops.reshape(ops.arange(size, dtype="float32"), (1, 1, size))
        inside = ops.logical_and(
            position >= ops.expand_dims(start, -1), position < ops.expand_dims(start + width, -1)
        )
        return ops.any(inside, axis=1)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        batch, frames, channels = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2]
        mask = ops.zeros_like(inputs, dtype="bool")
        in_time = self._bands(batch, frames, self.time_masks, self.time_mask_width)
        if in_time is not None:
            mask = ops.logical_or(mask, ops.expand_dims(in_time, 2))
        in_freq = self._bands(batch, channels, self.freq_masks, self.freq_mask_width)
        if in_freq is not None:
            mask = ops.logical_or(mask, ops.expand_dims(in_freq, 1))
        return ops.where(mask, ops.cast(self.mask_value, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "time_masks": self.time_masks,
            "time_mask_width": self.time_mask_width,
            "freq_masks": self.freq_masks,
            "freq_mask_width": self.freq_mask_width,
            "mask_value": self.mask_value,
            "seed": self.seed,
        }


class WaveformAugment:
    """Random speed change and time shift of fixed-length waveform batches (NumPy).

    A speed factor `s` plays a clip `s` times faster, which also scales
    pitch and formants by `s`: a cheap stand-in for new speakers (Ko et al.
    2015). Zero padding stays silence. Use as the `augment(batch, rng)` hook
    of the samplers.

    Args:
        speed: `(low, high)` range of the speed factor; None for no change.
        shift: largest delay in samples added before each clip (its end is
            cropped); 0 for none.

    Example:

    >>> import numpy as np
    >>> aug = WaveformAugment(speed=(0.9, 1.1), shift=80)
    >>> aug(np.ones((2, 800), "float32"), np.random.default_rng(0)).shape
    (2, 800)
    """

    def __init__(self, speed=(0.9, 1.1), shift=0):
        self.speed = None if speed is None else (float(speed[0]), float(speed[1]))
        if self.speed is not None and not 0 < self.speed[0] <= self.speed[1]:
            raise ConfigError(f"speed must be a range (low, high) with 0 < low <= high, got {speed}")
        self.shift = int(shift)
        if self.shift < 0:
            raise ConfigError(f"shift must be >= 0 samples, got {shift}")

    def __call__(self, batch, rng):
        batch = np.asarray(batch, dtype="float32")
        n, length = batch.shape
        out = np.empty_like(batch)
        factors = rng.uniform(*self.speed, size=n) if self.speed else np.ones(n)
        delays = rng.integers(0, self.shift + 1, size=n) if self.shift else np.zeros(n, int)
        for row, clip, factor, delay in zip(out, batch, factors, delays):
            row[:delay] = 0.0
            row[delay:] = _stretch(clip, factor)[: length - delay]
        return out


def _stretch(clip, factor):
    """`clip` played `factor` times faster (linear interpolation), zero-padded to its length."""
    positions = np.arange(len(clip), dtype="float64")
    return np.interp(positions * factor, positions, clip, right=0.0)


def change_speed(clips, factor):
    """Fixed-length waveforms `(n, samples)` played `factor` times faster, zero-padded.

    Example:

    >>> import numpy as np
    >>> change_speed(np.arange(6.0)[None], 2.0)
    array([[0., 2., 4., 0., 0., 0.]], dtype=float32)
    """
    clips = np.asarray(clips, dtype="float32")
    if factor <= 0:
        raise ConfigError(f"a speed factor must be positive, got {factor}")
    if factor == 1.0:
        return clips
    return np.stack([_stretch(clip, factor) for clip in clips]).astype("float32")


def speed_averaged(embed, clips, speeds):
    """Test-time averaging: the mean embedding of `clips` played at each of `speeds`.

    The test-time counterpart of training with `WaveformAugment(speed=...)`:
    a new speaker's formants sit somewhere in the range the model saw, and
    averaging over a few speeds in that range moves the embedding toward
    the digit rather than the voice. When the single-speed embeddings are
    unit length (cosine models), the mean is put back on the unit sphere.

    Args:
        embed: `embed(clips) -> (n, dim)` NumPy embeddings.
        clips: fixed-length waveforms `(n, samples)`.
        speeds: speed factors, e.g. `(0.9, 1.0, 1.1)`.

    Example:

    >>> import numpy as np
    >>> speed_averaged(lambda x: x[:, :2], np.ones((3, 8)), (0.9, 1.0, 1.1)).shape
    (3, 2)
    """
    speeds = [float(s) for s in speeds]
    if not speeds:
        raise ConfigError("speeds must name at least one speed factor, e.g. [0.9, 1.0, 1.1]")
    views = [np.asarray(embed(change_speed(clips, s)), dtype="float32") for s in speeds]
    if len(views) == 1:
        return views[0]
    mean = np.mean(views, axis=0)
    norms = np.linalg.norm(views[0], axis=1)
    if len(norms) and np.allclose(norms, 1.0, atol=1e-3):
        mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    return mean
