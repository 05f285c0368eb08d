"""Read and write PCM WAV files with the standard library's `wave` module.

Decoding itself (`decode_wav`, `to_pcm16`) lives in the Keras-free
`siamkit.datasets.wav`, which the dataset loaders use too; this module adds
the sample rate and clip length a model needs.
"""

import io
import os
import wave

from .. import _io
from ..datasets.memory import MemoryFile
from ..datasets.wav import decode_wav, to_pcm16
from ..errors import DataError, check_choice
from .signal import fix_length, resample

RESAMPLE_POLICIES = ("error", "linear")


def read_wav(path, sample_rate=None, resample_policy="error"):
    """Read a PCM WAV file as mono float32 samples in [-1, 1].

    Multi-channel files are averaged to mono (see `decode_wav`).

    Args:
        path: the `.wav` file, or a `siamkit.datasets.memory.MemoryFile`.
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
    if isinstance(path, MemoryFile):
        audio, rate = decode_wav(io.BytesIO(path.data), path.name)
        path = path.name
    else:
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
