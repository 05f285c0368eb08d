"""Decode PCM WAV files to NumPy samples with the standard library's `wave` module.

Pure NumPy, no Keras: the dataset loaders read audio here, and
`siamkit.audio` builds on it (sample rates, clip lengths, writing).

Example:

>>> import io, wave
>>> buffer = io.BytesIO()
>>> with wave.open(buffer, "wb") as w:
...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
...     w.writeframes(to_pcm16([0.0, 0.5, -0.5]).tobytes())
>>> samples, rate = decode_wav(io.BytesIO(buffer.getvalue()), name="tone.wav")
>>> samples.tolist(), rate
([0.0, 0.5, -0.5], 8000)
"""

import wave

import numpy as np

from ..errors import DataError

_CONVERT_HINT = "convert it to 8-, 16-, 24- or 32-bit PCM WAV (e.g. `ffmpeg -i IN -acodec pcm_s16le OUT.wav`)"


def _decode(data, width):
    """Little-endian PCM bytes to floats in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(data, np.uint8).astype("float32") - 128.0) / 128.0
    if width == 3:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        return (ints / float(1 << 23)).astype("float32")
    ints = np.frombuffer(data, "<i2" if width == 2 else "<i4")
    return (ints / float(1 << (8 * width - 1))).astype("float32")


def decode_wav(source, name=None):
    """Decode a PCM WAV file to mono float32 samples in [-1, 1].

    8-bit (unsigned), 16-, 24- and 32-bit PCM are read; channels are
    averaged to mono. `read_wav` and the dataset loaders both decode here.

    Args:
        source: a path or a binary file object (e.g. a member of an archive).
        name: the file's name for messages (default: `source`).

    Returns:
        `(samples, rate)`: a 1-D float32 array and its sampling rate.

    Raises:
        DataError: the file cannot be read, is not a PCM WAV or holds no samples.

    Example:

    >>> samples, rate = decode_wav("seven.wav")  # doctest: +SKIP
    """
    name = name or source
    try:
        with wave.open(source, "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError, RuntimeError) as err:  # RuntimeError: `wave` seeking past a chunk's declared size
        raise DataError(f"{name!r} is not a readable PCM WAV file ({err}); {_CONVERT_HINT}") from None
    except OSError as err:
        raise DataError(
            f"{name!r} cannot be read ({err.strerror or err}); check that it exists and its permissions"
        ) from None
    if width not in (1, 2, 3, 4) or channels < 1 or rate <= 0:
        raise DataError(
            f"{name!r} has an unsupported format ({channels} channels, {8 * width}-bit, {rate} Hz); {_CONVERT_HINT}"
        )
    frames = len(data) // (width * channels)  # a truncated last frame is dropped
    if frames == 0:
        raise DataError(f"{name!r} holds no audio samples; record or export it again")
    return _decode(data[: frames * width * channels], width).reshape(frames, channels).mean(axis=1), rate


def to_pcm16(samples):
    """Float samples in [-1, 1] as int16 PCM (values outside are clipped); the inverse of 16-bit decoding."""
    samples = np.asarray(samples, dtype="float64").reshape(-1)
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
