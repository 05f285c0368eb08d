"""NumPy helpers at the audio edge: resampling and fixed-length batches."""

import numpy as np

from ..errors import DataError


def resample(audio, orig_rate, target_rate, taps_per_side=16):
    """Resample a 1-D signal by linear interpolation, low-passed first when downsampling.

    Downsampling first applies a Hann-windowed sinc filter with its cutoff at
    the new Nyquist frequency, so content above it is removed rather than
    aliased. Good enough for speech features; use a dedicated resampler
    (e.g. `soxr`) for listening-quality audio.

    Args:
        audio: 1-D float array.
        orig_rate: its sampling rate in Hz.
        target_rate: the wanted rate in Hz.
        taps_per_side: filter half-length, in output samples.

    Example:

    >>> resample(np.ones(16000, "float32"), 16000, 8000).shape
    (8000,)
    """
    audio = np.asarray(audio, dtype="float64")
    if orig_rate <= 0 or target_rate <= 0:
        raise DataError(f"sampling rates must be positive, got {orig_rate} -> {target_rate}")
    if orig_rate == target_rate or len(audio) == 0:
        return audio.astype("float32")
    ratio = target_rate / orig_rate
    if ratio < 1.0:
        half = int(np.ceil(taps_per_side / ratio))
        n = np.arange(-half, half + 1)
        taps = ratio * np.sinc(ratio * n) * (0.5 + 0.5 * np.cos(np.pi * n / (half + 1)))
        audio = np.convolve(audio, taps / taps.sum(), mode="same")
    length = max(1, int(round(len(audio) * ratio)))
    return np.interp(np.arange(length) / ratio, np.arange(len(audio)), audio).astype("float32")


def fix_length(clips, num_samples):
    """Stack 1-D clips into `(n, num_samples)` float32: zero-pad or crop at the end.

    Args:
        clips: a sequence of 1-D arrays (or one 1-D array).
        num_samples: length of every row.

    Example:

    >>> fix_length([np.ones(3), np.ones(6)], 4)
    array([[1., 1., 1., 0.],
           [1., 1., 1., 1.]], dtype=float32)
    """
    if isinstance(clips, np.ndarray) and clips.ndim == 1:
        clips = [clips]
    out = np.zeros((len(clips), int(num_samples)), dtype="float32")
    for row, clip in zip(out, clips):
        clip = np.asarray(clip, dtype="float32").reshape(-1)[:num_samples]
        row[: len(clip)] = clip
    return out
