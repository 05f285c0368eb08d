"""Read and write PCM WAV files with the standard library's `wave` module."""

import os
import wave

import numpy as np

from .. import _io
from ..errors import DataError, check_choice
from .signal import fix_length, resample

RESAMPLE_POLICIES = ("error", "linear")
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
    except (wave.Error, EOFError) as err:
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


def read_wav(path, sample_rate=None, resample_policy="error"):
    """Read a PCM WAV file as mono float32 samples in [-1, 1].

    Multi-channel files are averaged to mono (see `decode_wav`).

    Args:
        path: the `.wav` file.
        sample_rate: the rate the caller needs; None accepts the file's rate.
        resample_policy: what to do when the file's rate differs from
            `sample_rate`: `"error"` raises a `DataError`, `"linear"`
            resamples (`siamkit.audio.resample`).

    Returns:
        `(samples, rate)`: a 1-D float32 array and its sampling rate.

    Raises:
        DataError: the file is missing, not a PCM WAV, empty, or at the wrong
            rate under `resample_policy="error"`.

    Example:

    >>> audio, rate = read_wav("seven.wav", sample_rate=8000)  # doctest: +SKIP
    """
    check_choice("resample_policy", resample_policy, RESAMPLE_POLICIES)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"audio file {path!r} does not exist")
    audio, rate = decode_wav(path)
    if sample_rate is not None and rate != sample_rate:
        if resample_policy == "error":
            raise DataError(
                f"{path!r} is sampled at {rate} Hz but {sample_rate} Hz is needed; resample the file "
                f"(e.g. `sox IN.wav -r {sample_rate} OUT.wav`), or in Python read it with resample_policy='linear'"
            )
        audio, rate = resample(audio, rate, sample_rate), int(sample_rate)
    return audio.astype("float32"), rate


def read_wavs(paths, sample_rate, num_samples, resample_policy="error"):
    """Read WAV files into one `(n, num_samples)` float32 batch (padded or cropped)."""
    return fix_length([read_wav(p, sample_rate, resample_policy)[0] for p in paths], num_samples)


def write_wav(path, audio, sample_rate):
    """Atomically write mono float samples in [-1, 1] as a 16-bit PCM WAV file.

    Args:
        path: destination `.wav` file.
        audio: 1-D array; values outside [-1, 1] are clipped.
        sample_rate: sampling rate in Hz.
    """
    pcm = to_pcm16(audio)
    with _io.atomic_path(path, suffix=".wav") as tmp:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())
