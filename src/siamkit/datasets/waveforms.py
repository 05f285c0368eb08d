"""Ragged audio: many int16 recordings stored end to end, and WAV reading.

Recordings differ in length, so a `Waveforms` keeps one flat int16 array and
the offsets where each recording starts; indexing returns views.

Example:

>>> import numpy as np
>>> w = Waveforms.from_list([np.arange(3), np.arange(5)], sample_rate=8000)
>>> len(w), w.lengths.tolist(), w[1].tolist()
(2, [3, 5], [0, 1, 2, 3, 4])
"""

import numpy as np

from ..errors import DataError
from ._progress import progress as progress_bar
from .wav import decode_wav, to_pcm16


class Waveforms:
    """A sequence of mono int16 recordings at one sample rate.

    Args:
        samples: 1-D int16 array, all recordings end to end.
        offsets: int64 array of length `n + 1`; recording `j` is
            `samples[offsets[j]:offsets[j + 1]]`.
        sample_rate: samples per second.
    """

    def __init__(self, samples, offsets, sample_rate):
        self.samples = np.asarray(samples, dtype="int16")
        self.offsets = np.asarray(offsets, dtype="int64")
        self.sample_rate = int(sample_rate)
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[-1] != len(self.samples):
            raise DataError(f"offsets must be 1-D and end at len(samples) = {len(self.samples)}, got {self.offsets[-5:]}")
        if np.any(np.diff(self.offsets) < 0):
            raise DataError("offsets must not decrease: each recording starts where the previous one ends")

    @classmethod
    def from_list(cls, clips, sample_rate):
        """Pack a list of 1-D arrays."""
        lengths = [len(c) for c in clips]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype="int64")])
        samples = np.concatenate(clips).astype("int16") if clips else np.zeros(0, "int16")
        return cls(samples, offsets, sample_rate)

    @property
    def lengths(self):
        """Samples per recording, int64 `(n,)`."""
        return np.diff(self.offsets)

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            j = range(len(self))[key]  # negative indices and bounds, as for lists
            return self.samples[self.offsets[j] : self.offsets[j + 1]]
        return self.subset(key)

    def subset(self, sel):
        """Recordings selected by a slice, a boolean mask or an index array."""
        index = np.arange(len(self))[sel]
        return Waveforms.from_list([self[int(j)] for j in index], self.sample_rate)

    def __iter__(self):
        return (self[j] for j in range(len(self)))

    def __repr__(self):
        seconds = len(self.samples) / max(self.sample_rate, 1)
        return f"Waveforms(n={len(self)}, sample_rate={self.sample_rate}, seconds={seconds:.1f})"


def read_wav(source, name=None):
    """Read a PCM WAV file (any width, channels mixed to mono) as 16-bit samples.

    Decoding is `siamkit.datasets.wav.decode_wav`'s; samples are stored as int16,
    the format of `Waveforms` (exact for 16-bit files).

    Args:
        source: a path or a binary file object.
        name: the file's name for messages (default: `source`).

    Returns:
        `(samples, sample_rate)`: an int16 array and an int.
    """
    samples, rate = decode_wav(source, name)
    return to_pcm16(samples).astype("int16", copy=False), rate


def read_wavs(paths, progress=False):
    """Read WAV files that share one sample rate into a `Waveforms`."""
    clips, rate = [], None
    for path in progress_bar(paths, "reading audio", enabled=progress):
        samples, r = read_wav(path)
        if rate is not None and r != rate:
            raise DataError(f"{path}: sample rate {r} Hz differs from {rate} Hz of the other files; resample it")
        clips.append(samples)
        rate = r
    return Waveforms.from_list(clips, rate or 0)
