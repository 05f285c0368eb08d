"""Audio front end, WAV reading and the audio encoder, against NumPy and librosa references."""

import math
import os
import wave

import keras
import numpy as np
import pytest

from siamkit import audio
from siamkit.audio.frontend import hz_to_mel, mel_to_hz
from siamkit.errors import ConfigError, DataError

pytestmark = pytest.mark.backend

RATE = 8000


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _speechlike(n, seed=0):
    """A decaying harmonic tone in noise, scaled like 16-bit speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) / (h + 1) for h, f in enumerate((220.0, 440.0, 1250.0, 2600.0)))
    return (0.3 * tone * np.exp(-2.0 * t) + 0.01 * rng.normal(size=n)).astype("float32")


# ---- NumPy references, written from the definitions ----


def filterbank_oracle(rate, n_fft, n_mels, fmin, fmax, scale, area_normalize):
    """Loop over (band, bin): a triangle linear in Hz between mel-spaced edges."""
    lo, hi = hz_to_mel(fmin, scale), hz_to_mel(fmax, scale)
    edges = [float(mel_to_hz(lo + (hi - lo) * i / (n_mels + 1), scale)) for i in range(n_mels + 2)]
    out = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        left, centre, right = edges[m], edges[m + 1], edges[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * rate / n_fft
            if left < f <= centre:
                out[k, m] = (f - left) / (centre - left)
            elif centre < f < right:
                out[k, m] = (right - f) / (right - centre)
        if area_normalize:
            out[:, m] *= 2.0 / (right - left)
    return out


def logmel_oracle(x, frames, frame_length=256, step=128, n_fft=None, n_mels=40, center=True, offset=1e-6):
    """Pad/crop with zeros, frame, periodic Hann, numpy rfft, |.|^2, mel (librosa defaults), log."""
    n_fft = n_fft or frame_length
    left = frame_length // 2 if center else 0
    total = frame_length + (frames - 1) * step
    padded = np.zeros(total)
    body = x[: total - left]
    padded[left : left + len(body)] = body
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame_length) / frame_length)
    spec = np.stack([np.fft.rfft(padded[t * step : t * step + frame_length] * window, n_fft) for t in range(frames)])
    mel = np.abs(spec) ** 2 @ filterbank_oracle(RATE, n_fft, n_mels, 0.0, RATE / 2, "slaney", True)
    return np.log(mel + offset)


def normalize_oracle(logmel, voiced, mode):
    out = np.zeros_like(logmel)
    v = logmel[voiced]
    if mode == "instance":
        out[voiced] = (v - v.mean()) / np.sqrt(v.var() + 1e-5)
    else:
        out[voiced] = (v - v.mean(axis=0)) / np.sqrt(v.var(axis=0) + 1e-5)
    return out


# ---- mel filterbank ----


def test_mel_scales_known_values():
    assert hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert hz_to_mel(1000.0, "htk") == pytest.approx(2595 * math.log10(1 + 1000 / 700))
    f = np.array([0.0, 300.0, 999.0, 1000.0, 3999.0])
    for scale in ("slaney", "htk"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-9)


@pytest.mark.parametrize("scale", ["slaney", "htk"])
@pytest.mark.parametrize("norm", [True, False])
def test_filterbank_matches_oracle(scale, norm):
    got = audio.mel_filterbank(RATE, 256, 40, fmin=50.0, fmax=3800.0, scale=scale, area_normalize=norm)
    np.testing.assert_allclose(got, filterbank_oracle(RATE, 256, 40, 50.0, 3800.0, scale, norm), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("htk", [False, True])
def test_filterbank_matches_librosa(htk):
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=20.0, htk=htk).T
    got = audio.mel_filterbank(16000, 512, 64, fmin=20.0, scale="htk" if htk else "slaney")
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-8)


def test_filterbank_rejects_bad_range():
    with pytest.raises(ConfigError, match="fmax"):
        audio.mel_filterbank(RATE, 256, 40, fmin=100.0, fmax=5000.0)
    with pytest.raises(ConfigError, match="mel_scale"):
        audio.mel_filterbank(RATE, 256, 40, scale="bark")


# ---- LogMelSpectrogram ----


@pytest.mark.parametrize(
    "length, frames", [(2000, 64), (8000, 64), (12000, 64), (3000, None)], ids=["pad", "exact", "crop", "natural"]
)
def test_logmel_matches_numpy_stft(length, frames):
    x = _speechlike(length)
    layer = audio.LogMelSpectrogram(sample_rate=RATE, num_frames=frames)
    got = _np(layer(x[None]))[0]
    expected_frames = frames or 1 + length // 128
    assert got.shape == (expected_frames, 40)
    np.testing.assert_allclose(got, logmel_oracle(x, expected_frames), rtol=1e-4, atol=2e-3)


def test_logmel_options_match_numpy_stft():
    x = _speechlike(4000, seed=1)
    layer = audio.LogMelSpectrogram(
        sample_rate=RATE, frame_length=200, frame_step=80, fft_length=256, num_frames=30, center=False, log_offset=1e-3
    )
    expected = logmel_oracle(x, 30, frame_length=200, step=80, n_fft=256, center=False, offset=1e-3)
    np.testing.assert_allclose(_np(layer(x[None]))[0], expected, rtol=1e-4, atol=2e-3)


def test_logmel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    x = _speechlike(5000, seed=2)
    ref = librosa.feature.melspectrogram(
        y=x, sr=RATE, n_fft=256, hop_length=128, n_mels=40, center=True, pad_mode="constant", power=2.0
    ).T
    got = _np(audio.LogMelSpectrogram(sample_rate=RATE)(x[None]))[0]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, np.log(ref + 1e-6), rtol=1e-4, atol=2e-3)


def test_top_db_floors_each_spectrogram_below_its_peak():
    clips = np.stack([_speechlike(8000, seed=6), 0.3 * _speechlike(8000, seed=7)])
    clips[:, 4000:] *= 1e-4  # a quiet tail, far below the peak
    raw = _np(audio.LogMelSpectrogram(num_frames=64)(clips))
    got = _np(audio.LogMelSpectrogram(num_frames=64, top_db=40.0)(clips))
    floor = raw.max(axis=(1, 2), keepdims=True) - 4.0 * np.log(10.0)  # 40 dB in natural-log units
    np.testing.assert_allclose(got, np.maximum(raw, floor), rtol=1e-6)
    assert np.isclose(got, floor, rtol=1e-6).any(axis=(1, 2)).all()  # each clip's own peak sets its floor


def test_cepstra_are_the_orthonormal_dct_of_log_mels():
    fft = pytest.importorskip("scipy.fft")
    x = _speechlike(6000, seed=4)
    logmel = _np(audio.LogMelSpectrogram(num_frames=40)(x[None]))[0]
    mfcc = _np(audio.LogMelSpectrogram(num_frames=40, num_cepstra=13)(x[None]))[0]
    np.testing.assert_allclose(mfcc, fft.dct(logmel, type=2, norm="ortho", axis=1)[:, :13], rtol=1e-4, atol=1e-3)
    with pytest.raises(ConfigError, match="num_cepstra"):
        audio.LogMelSpectrogram(num_mels=20, num_cepstra=21)


def test_cepstra_match_librosa_mfcc():
    librosa = pytest.importorskip("librosa")
    x = _speechlike(5000, seed=5)
    # librosa's MFCCs are of dB (10 log10) mels; the layer's natural log scales them by ln(10) / 10.
    mel = librosa.feature.melspectrogram(y=x, sr=RATE, n_fft=256, hop_length=128, n_mels=40)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, amin=1e-10, top_db=None), n_mfcc=13).T
    layer = audio.LogMelSpectrogram(num_cepstra=13, log_offset=1e-10)
    np.testing.assert_allclose(_np(layer(x[None]))[0] * 10 / np.log(10), ref, rtol=1e-3, atol=5e-2)


@pytest.mark.parametrize("mode", ["instance", "frequency"])
def test_normalization_skips_silent_frames(mode):
    clips = np.zeros((2, 8000), "float32")
    clips[0, :3000] = _speechlike(3000)
    clips[1] = _speechlike(8000, seed=3)
    raw = _np(audio.LogMelSpectrogram(num_frames=64)(clips))
    got = _np(audio.LogMelSpectrogram(num_frames=64, normalize=mode)(clips))
    for i in range(2):
        voiced = logmel_oracle_voiced(clips[i], 64)
        np.testing.assert_allclose(got[i], normalize_oracle(raw[i], voiced, mode), rtol=1e-4, atol=1e-4)
    assert (got[0, 30:] == 0).all() and (got[1] != 0).any(axis=1).all()


def logmel_oracle_voiced(x, frames):
    """Frames that overlap a non-zero sample (centred frames of 256, step 128)."""
    nonzero = np.flatnonzero(x)
    last = nonzero.max() if len(nonzero) else -1
    return np.array([t * 128 - 128 <= last for t in range(frames)])


def test_logmel_output_shape_and_config_round_trip():
    layer = audio.LogMelSpectrogram(num_mels=32, num_frames=50, normalize="frequency", fmin=30.0, mel_scale="htk")
    assert layer.compute_output_shape((None, 8000)) == (None, 50, 32)
    clone = audio.LogMelSpectrogram.from_config(layer.get_config())
    x = _speechlike(6000)[None]
    np.testing.assert_array_equal(_np(clone(x)), _np(layer(x)))
    with pytest.raises(ConfigError, match="normalize"):
        audio.LogMelSpectrogram(normalize="global")
    with pytest.raises(ConfigError, match="fft_length"):
        audio.LogMelSpectrogram(frame_length=300, fft_length=256)


# ---- SpecAugment ----


def test_spec_augment_masks_bands_in_training_only():
    x = np.random.default_rng(0).normal(size=(16, 64, 40)).astype("float32") + 5.0
    aug = audio.SpecAugment(time_masks=2, time_mask_width=8, freq_masks=1, freq_mask_width=6, seed=3)
    np.testing.assert_array_equal(_np(aug(x)), x)
    np.testing.assert_array_equal(_np(aug(x, training=False)), x)
    y = _np(aug(x, training=True))
    masked = y == 0.0
    np.testing.assert_array_equal(y[~masked], x[~masked])  # unmasked cells untouched
    for m in masked:
        rows = m.all(axis=1)  # masked frames
        cols = m.all(axis=0)  # masked channels
        np.testing.assert_array_equal(m, rows[:, None] | cols[None, :])  # masks are whole bands
        assert rows.sum() <= 16 and cols.sum() <= 6
    assert masked.any()


def test_spec_augment_is_seeded():
    x = np.ones((4, 32, 20), "float32")
    first = _np(audio.SpecAugment(seed=7)(x, training=True))
    again = _np(audio.SpecAugment(seed=7)(x, training=True))
    other = _np(audio.SpecAugment(seed=8)(x, training=True))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    clone = audio.SpecAugment.from_config(audio.SpecAugment(seed=7, time_masks=1).get_config())
    assert clone.time_masks == 1 and clone.seed == 7


def test_waveform_augment_stretches_and_delays():
    t = np.arange(8000) / RATE
    tone = np.zeros((1, 8000), "float32")
    tone[0, :4000] = np.sin(2 * np.pi * 500 * t[:4000])
    faster = audio.WaveformAugment(speed=(1.25, 1.25))(tone, np.random.default_rng(0))
    np.testing.assert_allclose(faster[0, :3000], np.sin(2 * np.pi * 625 * t[:3000]), atol=0.06)  # pitch x 1.25
    assert np.abs(faster[0, 3201:]).max() == 0.0  # 4000 samples now last 3200; the rest stays silence
    delayed = audio.WaveformAugment(speed=None, shift=100)(tone, np.random.default_rng(1))
    delay = np.flatnonzero(delayed[0])[0] - 1  # sin(0) = 0: the first non-zero sample follows the onset
    assert 0 <= delay <= 100
    np.testing.assert_array_equal(delayed[0, delay : delay + 3000], tone[0, :3000])
    again = audio.WaveformAugment(speed=None, shift=100)(tone, np.random.default_rng(1))
    np.testing.assert_array_equal(again, delayed)
    with pytest.raises(ConfigError, match="speed"):
        audio.WaveformAugment(speed=(1.2, 0.8))


def test_change_speed_is_the_augments_speed_change():
    rng = np.random.default_rng(3)
    clips = rng.normal(size=(3, 800)).astype("float32")
    for factor in (0.9, 1.1):
        np.testing.assert_array_equal(
            audio.change_speed(clips, factor), audio.WaveformAugment(speed=(factor, factor))(clips, rng)
        )
    np.testing.assert_array_equal(audio.change_speed(clips, 1.0), clips)
    with pytest.raises(ConfigError, match="positive"):
        audio.change_speed(clips, 0.0)


def test_speed_averaged_means_the_views_and_renormalises_unit_embeddings():
    clips = np.random.default_rng(4).normal(size=(5, 400)).astype("float32")

    def unit(x):  # a toy "embedding": the first 3 samples, on the unit sphere
        z = x[:, 1:4]
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    speeds = (0.8, 1.0, 1.25)
    views = [unit(audio.change_speed(clips, s)) for s in speeds]
    expected = np.mean(views, axis=0)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(audio.speed_averaged(unit, clips, speeds), expected, rtol=1e-6)
    raw = audio.speed_averaged(lambda x: 3 * x[:, 1:4], clips, speeds)  # not unit length: a plain mean
    np.testing.assert_allclose(raw, np.mean([3 * audio.change_speed(clips, s)[:, 1:4] for s in speeds], 0), rtol=1e-6)
    np.testing.assert_array_equal(audio.speed_averaged(unit, clips, [1.0]), unit(clips))
    with pytest.raises(ConfigError, match="at least one speed"):
        audio.speed_averaged(unit, clips, [])


# ---- WAV files ----


def _write_raw(path, frames_bytes, channels, width, rate):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames_bytes)


def test_read_wav_pcm_widths_and_stereo(tmp_path):
    ints16 = np.array([0, 16384, -32768, 32767], "<i2")
    _write_raw(tmp_path / "s16.wav", ints16.tobytes(), 1, 2, RATE)
    got, rate = audio.read_wav(tmp_path / "s16.wav")
    assert rate == RATE and got.dtype == np.float32
    np.testing.assert_allclose(got, ints16 / 32768.0)

    u8 = np.array([128, 255, 0, 192], "u1")
    _write_raw(tmp_path / "u8.wav", u8.tobytes(), 1, 1, RATE)
    np.testing.assert_allclose(audio.read_wav(tmp_path / "u8.wav")[0], (u8.astype(float) - 128) / 128)

    ints24 = np.array([0, 1 << 22, -(1 << 23), (1 << 23) - 1])
    raw24 = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints24)
    _write_raw(tmp_path / "s24.wav", raw24, 1, 3, RATE)
    np.testing.assert_allclose(audio.read_wav(tmp_path / "s24.wav")[0], ints24 / float(1 << 23))

    ints32 = np.array([0, 1 << 30, -(1 << 31)], "<i4")
    _write_raw(tmp_path / "s32.wav", ints32.tobytes(), 1, 4, RATE)
    np.testing.assert_allclose(audio.read_wav(tmp_path / "s32.wav")[0], ints32 / float(1 << 31))

    stereo = np.array([[1000, 3000], [-2000, 0]], "<i2")  # frames x channels, interleaved
    _write_raw(tmp_path / "st.wav", stereo.tobytes(), 2, 2, RATE)
    np.testing.assert_allclose(audio.read_wav(tmp_path / "st.wav")[0], stereo.mean(axis=1) / 32768.0)


def test_write_then_read_round_trip(tmp_path):
    x = _speechlike(1234)
    audio.write_wav(tmp_path / "clip.wav", x, RATE)
    got, rate = audio.read_wav(tmp_path / "clip.wav", sample_rate=RATE)
    assert rate == RATE
    np.testing.assert_allclose(got, x, atol=1.0 / 32768)
    assert os.listdir(tmp_path) == ["clip.wav"]  # no temporary left behind


def test_read_wav_rate_policy(tmp_path):
    t = np.arange(16000) / 16000
    audio.write_wav(tmp_path / "hi.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    with pytest.raises(DataError, match=r"hi\.wav.*16000 Hz.*8000 Hz"):
        audio.read_wav(tmp_path / "hi.wav", sample_rate=8000)
    got, rate = audio.read_wav(tmp_path / "hi.wav", sample_rate=8000, resample_policy="linear")
    assert rate == 8000 and len(got) == 8000
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    np.testing.assert_allclose(got[200:-200], ref[200:-200], atol=5e-3)
    with pytest.raises(ConfigError, match="resample_policy"):
        audio.read_wav(tmp_path / "hi.wav", resample_policy="sinc")


@pytest.mark.parametrize(
    "content", [b"", b"RIFF\x00\x00", b"not a wav file at all, just text" * 4], ids=["empty", "truncated", "text"]
)
def test_bad_wav_names_the_file(tmp_path, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"broken\.wav.*PCM WAV"):
        audio.read_wav(path)


def test_wav_without_samples_or_file(tmp_path):
    _write_raw(tmp_path / "silent.wav", b"", 1, 2, RATE)
    with pytest.raises(DataError, match=r"silent\.wav.*no audio"):
        audio.read_wav(tmp_path / "silent.wav")
    with pytest.raises(DataError, match=r"missing\.wav.*does not exist"):
        audio.read_wav(tmp_path / "missing.wav")


def test_read_wavs_pads_and_crops(tmp_path):
    audio.write_wav(tmp_path / "a.wav", np.full(100, 0.25), RATE)
    audio.write_wav(tmp_path / "b.wav", np.full(300, -0.5), RATE)
    batch = audio.read_wavs([tmp_path / "a.wav", tmp_path / "b.wav"], RATE, 200)
    expected = np.zeros((2, 200), "float32")
    expected[0, :100], expected[1] = 0.25, -0.5
    np.testing.assert_array_equal(batch, expected)


def test_read_wav_from_memory_matches_the_file(tmp_path):
    from siamkit.datasets.memory import MemoryFile

    audio.write_wav(tmp_path / "a.wav", np.linspace(-0.5, 0.5, 120), RATE)
    data = (tmp_path / "a.wav").read_bytes()
    from_disk = audio.read_wavs([tmp_path / "a.wav"], RATE, 100)
    np.testing.assert_array_equal(audio.read_wavs([MemoryFile("upload.wav", data)], RATE, 100), from_disk)
    with pytest.raises(DataError, match=r"upload\.wav.*PCM WAV"):
        audio.read_wav(MemoryFile("upload.wav", data[:20]))


# ---- resampling ----


def test_resample_keeps_low_and_removes_high_frequencies():
    t = np.arange(32000) / 32000
    low = audio.resample(np.sin(2 * np.pi * 300 * t), 32000, 8000)
    np.testing.assert_allclose(low[100:-100], np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)[100:-100], atol=5e-3)
    high = audio.resample(np.sin(2 * np.pi * 6000 * t), 32000, 8000)  # above the new Nyquist
    assert np.sqrt(np.mean(high[100:-100] ** 2)) < 0.02  # aliasing would leave an RMS near 0.7
    up = audio.resample(low, 8000, 11025)
    assert len(up) == round(8000 * 11025 / 8000)


def test_resample_matches_scipy_polyphase():
    signal = pytest.importorskip("scipy.signal")
    x = _speechlike(16000).astype("float64")
    got = audio.resample(x, 16000, 8000)
    ref = signal.resample_poly(x, 1, 2)
    assert np.sqrt(np.mean((got[200:-200] - ref[200:-200]) ** 2)) < 0.02 * np.sqrt(np.mean(ref**2))


# ---- encoder ----


def test_audio_encoder_embeds_waveforms_and_reloads(tmp_path):
    enc = audio.audio_encoder((4000,), embedding_dim=16, filters=(8, 16), seed=0)
    x = np.stack([_speechlike(4000, seed=s) for s in range(3)])
    z = enc.predict(x, verbose=0)
    assert z.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(enc.predict(x, verbose=0), z)  # SpecAugment is off at inference
    path = tmp_path / "enc.keras"
    enc.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), z, rtol=1e-5, atol=1e-6)
    logmel = audio.audio_encoder((4000,), embedding_dim=8, num_cepstra=None, spec_augment=False, filters=(4,))
    assert logmel.get_layer("features").compute_output_shape((None, 4000)) == (None, 32, 40)
    assert "spec_augment" not in [layer.name for layer in logmel.layers]
    with pytest.raises(ConfigError, match="samples"):
        audio.audio_encoder((28, 28, 1))


@pytest.mark.data
def test_fsdd_recording_through_front_end(shared_data_dir, tmp_path):
    """A real recording: the .wav round trip is exact and the layer matches the reference."""
    from siamkit import datasets

    ds = datasets.load("fsdd", subset="test", data_dir=shared_data_dir, download=False)
    clip = ds.x[0]
    audio.write_wav(tmp_path / "0.wav", clip / 32768.0, ds.info["sample_rate"])
    got, rate = audio.read_wav(tmp_path / "0.wav", sample_rate=8000)
    np.testing.assert_array_equal(got, clip / np.float32(32768.0))
    spec = _np(audio.LogMelSpectrogram(num_frames=64)(got[None]))[0]
    np.testing.assert_allclose(spec, logmel_oracle(got, 64), rtol=1e-4, atol=2e-3)
