"""`LogMelSpectrogram`: waveforms to (normalised) log-mel spectrograms, as a layer.

The layer holds no weights: its DFT and mel matrices are rebuilt from the
config, so it saves and loads with the model. Framing, the Hann window and
the DFT are one strided convolution (the kernel is the windowed DFT basis),
which runs the same on TensorFlow, JAX and torch and needs no FFT op.
"""

import math

import keras
import numpy as np
from keras import ops

from ..errors import ConfigError, check_choice

MEL_SCALES = ("slaney", "htk")
NORMALIZATIONS = ("instance", "frequency")


def hz_to_mel(hz, scale="slaney"):
    """Frequency in Hz to mels (`"htk"`, or `"slaney"` as in librosa's default)."""
    hz = np.asarray(hz, dtype="float64")
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # Slaney (Auditory Toolbox): linear below 1 kHz, logarithmic above.
    linear = hz / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def mel_to_hz(mel, scale="slaney"):
    """Inverse of `hz_to_mel`."""
    mel = np.asarray(mel, dtype="float64")
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * (200.0 / 3.0)
    log = 1000.0 * np.exp((mel - 15.0) * (math.log(6.4) / 27.0))
    return np.where(mel >= 15.0, log, linear)


def mel_filterbank(sample_rate, fft_length, num_mels, fmin=0.0, fmax=None, scale="slaney", area_normalize=True):
    """Triangular mel filters, shape `(fft_length // 2 + 1, num_mels)`.

    Triangles are linear in Hz between mel-spaced edges, as in librosa's
    `filters.mel`; `area_normalize` scales each to unit area (librosa's
    `norm="slaney"`), so wide high-frequency filters do not dominate.

    Args:
        sample_rate: sampling rate in Hz.
        fft_length: DFT size.
        num_mels: number of filters.
        fmin, fmax: frequency range in Hz (`fmax` defaults to Nyquist).
        scale: `"slaney"` or `"htk"` mel scale.
        area_normalize: divide each triangle by its width in Hz (times 2).

    Example:

    >>> mel_filterbank(8000, 256, 40).shape
    (129, 40)
    """
    check_choice("mel_scale", scale, MEL_SCALES)
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ConfigError(f"need 0 <= fmin < fmax <= sample_rate / 2 = {sample_rate / 2}; got fmin={fmin}, fmax={fmax}")
    bins = np.linspace(0.0, sample_rate / 2.0, fft_length // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), num_mels + 2), scale)
    widths = np.diff(edges)
    rising = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if area_normalize:
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype("float32")


def dct_matrix(num_mels, num_cepstra):
    """Orthonormal DCT-II, `(num_mels, num_cepstra)`: log-mels to cepstral coefficients (MFCCs)."""
    n = np.arange(num_mels)[:, None]
    k = np.arange(num_cepstra)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * num_mels)) * np.sqrt(2.0 / num_mels)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype("float32")


def windowed_dft(frame_length, fft_length):
    """Conv kernel `(frame_length, 1, 2 * bins)`: periodic Hann window times the
    real and imaginary DFT bases (frames shorter than `fft_length` are
    implicitly zero-padded at the end)."""
    n = np.arange(frame_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / frame_length)
    k = np.arange(fft_length // 2 + 1)
    angle = 2.0 * np.pi * np.outer(n, k) / fft_length
    basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None]
    return basis[:, None, :].astype("float32")


@keras.saving.register_keras_serializable(package="siamkit")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveforms `(batch, samples)` to log-mel spectrograms `(batch, frames, mels)`.

    `log(mel_power + log_offset)` of the power spectrum `|STFT|^2` of
    Hann-windowed frames. The output always has `num_frames` frames: the
    waveform is zero-padded (silence) or cropped at the end to fit. With
    `center=True` frame `t` is centred on sample `t * frame_step`, as in
    librosa's `center=True, pad_mode="constant"`.

    Args:
        sample_rate: sampling rate of the input in Hz.
        frame_length: samples per frame (the window length).
        frame_step: samples between successive frames.
        fft_length: DFT size, at least `frame_length`; defaults to it.
        num_mels: number of mel bands.
        num_frames: frames of the output; None keeps the input's count
            (`1 + samples // frame_step` when centred), which needs a fixed
            input length.
        fmin, fmax: frequency range of the mel bands in Hz.
        mel_scale: `"slaney"` (librosa's default) or `"htk"`.
        area_normalize: unit-area mel triangles (librosa's `norm="slaney"`).
        center: centre frames on their time step (pad half a frame first).
        log_offset: added to the mel power before the log.
        top_db: None, or floor each spectrogram at `top_db` decibels
            below its loudest cell (librosa's `power_to_db(top_db=...)`),
            so background noise below that level looks the same in every
            recording.
        num_cepstra: None for log-mels; else keep this many DCT-II
            coefficients of them (MFCCs, librosa's `dct_type=2,
            norm="ortho"`): a smoothed spectral envelope that drops the
            pitch harmonics, so it varies less between speakers.
        normalize: None, `"instance"` (zero mean, unit variance over the
            whole spectrogram of each example) or `"frequency"` (per mel
            band over time, i.e. cepstral mean and variance normalisation).
            Statistics skip silent frames (exact zeros, e.g. padding), which
            are set to 0 so that padding carries no information.

    Example:

    >>> import numpy as np
    >>> layer = LogMelSpectrogram(sample_rate=8000, num_mels=40, num_frames=64)
    >>> tuple(layer(np.zeros((2, 8000), "float32")).shape)
    (2, 64, 40)
    """

    def __init__(
        self,
        sample_rate=8000,
        frame_length=256,
        frame_step=128,
        fft_length=None,
        num_mels=40,
        num_frames=None,
        fmin=0.0,
        fmax=None,
        mel_scale="slaney",
        area_normalize=True,
        center=True,
        log_offset=1e-6,
        top_db=None,
        num_cepstra=None,
        normalize=None,
        **kwargs,
    ):
        # Power spectra overflow float16: compute in float32 whatever the policy.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length or frame_length)
        self.num_mels = int(num_mels)
        self.num_frames = None if num_frames is None else int(num_frames)
        self.fmin = float(fmin)
        self.fmax = None if fmax is None else float(fmax)
        self.mel_scale = mel_scale
        self.area_normalize = bool(area_normalize)
        self.center = bool(center)
        self.log_offset = float(log_offset)
        self.top_db = None if top_db is None else float(top_db)
        self.num_cepstra = None if num_cepstra is None else int(num_cepstra)
        self.normalize = None if normalize is None else check_choice("normalize", normalize, NORMALIZATIONS)
        for name in ("sample_rate", "frame_length", "frame_step", "num_mels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"LogMelSpectrogram: {name} must be positive, got {getattr(self, name)}")
        if self.fft_length < self.frame_length:
            raise ConfigError(f"fft_length ({self.fft_length}) must be >= frame_length ({self.frame_length})")
        if self.num_frames is not None and self.num_frames <= 0:
            raise ConfigError(f"num_frames must be positive, got {self.num_frames}")
        if self.log_offset <= 0:
            raise ConfigError(f"log_offset must be positive, got {self.log_offset}")
        if self.top_db is not None and self.top_db <= 0:
            raise ConfigError(f"top_db must be positive, got {self.top_db}")
        if self.num_cepstra is not None and not 1 <= self.num_cepstra <= self.num_mels:
            raise ConfigError(f"num_cepstra must be in [1, num_mels={self.num_mels}], got {self.num_cepstra}")
        self._dft = windowed_dft(self.frame_length, self.fft_length)
        self._mel = mel_filterbank(
            self.sample_rate, self.fft_length, self.num_mels, self.fmin, self.fmax, mel_scale, self.area_normalize
        )

    def _frames_for(self, num_samples):
        if self.num_frames is not None:
            return self.num_frames
        if num_samples is None:
            raise ConfigError("LogMelSpectrogram needs num_frames when the input length is not fixed")
        if self.center:
            return 1 + num_samples // self.frame_step
        return max(1, 1 + (num_samples - self.frame_length) // self.frame_step)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._frames_for(input_shape[-1]), self.num_cepstra or self.num_mels)

    def call(self, waveforms):
        x = ops.cast(waveforms, "float32")
        frames = self._frames_for(x.shape[-1])
        # Exactly `frames` frames fit in `total` samples: pad with silence, then crop.
        total = self.frame_length + (frames - 1) * self.frame_step
        left = self.frame_length // 2 if self.center else 0
        length = x.shape[-1]
        right = total if length is None else max(0, total - left - length)
        x = ops.pad(x, [[0, 0], [left, right]])[:, :total]
        spectrum = ops.conv(ops.expand_dims(x, -1), ops.convert_to_tensor(self._dft), strides=self.frame_step)
        bins = self.fft_length // 2 + 1
        power = ops.square(spectrum[..., :bins]) + ops.square(spectrum[..., bins:])
        mel = ops.matmul(power, ops.convert_to_tensor(self._mel))
        features = ops.log(mel + self.log_offset)
        if self.top_db is not None:
            floor = ops.max(features, axis=(1, 2), keepdims=True) - self.top_db * math.log(10.0) / 10.0
            features = ops.maximum(features, floor)
        if self.num_cepstra is not None:
            features = ops.matmul(features, ops.convert_to_tensor(dct_matrix(self.num_mels, self.num_cepstra)))
        if self.normalize is None:
            return features
        return self._normalize(features, ops.cast(ops.sum(power, axis=-1) > 0.0, "float32"))

    def _normalize(self, features, voiced):
        """Standardise over the non-silent frames (`voiced`, shape `(batch, frames)`)."""
        mask = ops.expand_dims(voiced, -1)
        axes = (1, 2) if self.normalize == "instance" else (1,)
        count = ops.sum(ops.broadcast_to(mask, ops.shape(features)), axis=axes, keepdims=True)
        count = ops.maximum(count, 1.0)
        mean = ops.sum(features * mask, axis=axes, keepdims=True) / count
        var = ops.sum(ops.square((features - mean) * mask), axis=axes, keepdims=True) / count
        return (features - mean) * ops.rsqrt(var + 1e-5) * mask

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "num_mels": self.num_mels,
            "num_frames": self.num_frames,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "mel_scale": self.mel_scale,
            "area_normalize": self.area_normalize,
            "center": self.center,
            "log_offset": self.log_offset,
            "top_db": self.top_db,
            "num_cepstra": self.num_cepstra,
            "normalize": self.normalize,
        }
