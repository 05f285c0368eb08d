"""Audio for multi-modal models: WAV files, a log-mel front end, an encoder.

Everything inside a model is a Keras layer built on `keras.ops` (any
backend, saved with the model); NumPy handles the edges (files, batching).

- `read_wav`, `read_wavs`, `write_wav`, `decode_wav`: PCM WAV through the standard library.
- `resample`, `fix_length`: NumPy helpers to reach one rate and one length.
- `LogMelSpectrogram`: waveform -> (normalised) log-mel or MFCC layer.
- `SpecAugment`: time and frequency masking, in training only;
  `WaveformAugment`: speed and shift of waveform batches (a sampler hook);
  `change_speed`, `speed_averaged`: the same speed change at test time.
- `audio_encoder`: waveform -> embedding conv net, front end included.

Example:

>>> from siamkit import audio
>>> enc = audio.audio_encoder((8000,), embedding_dim=32)
>>> clips = audio.read_wavs(["three.wav"], 8000, 8000)   # doctest: +SKIP
>>> enc.predict(clips).shape                              # doctest: +SKIP
(1, 32)
"""

from .augment import SpecAugment, WaveformAugment, change_speed, speed_averaged
from .encoder import audio_encoder
from .frontend import LogMelSpectrogram, mel_filterbank
from .signal import fix_length, resample
from .wav import decode_wav, read_wav, read_wavs, write_wav

__all__ = [
    "LogMelSpectrogram",
    "SpecAugment",
    "WaveformAugment",
    "audio_encoder",
    "change_speed",
    "decode_wav",
    "fix_length",
    "mel_filterbank",
    "read_wav",
    "read_wavs",
    "resample",
    "speed_averaged",
    "write_wav",
]
