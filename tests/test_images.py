"""Decoding image files, image folders, pair CSVs, cross-modal roots and streaming."""

import os
import wave

import numpy as np
import pytest
from PIL import Image

from siamkit import datasets
from siamkit.datasets import images
from siamkit.errors import ConfigError, DataError

RNG = np.random.default_rng(0)


def _gray(h=6, w=5):
    return RNG.integers(0, 256, (h, w), dtype="uint8")


def _rgb(h=6, w=5):
    return RNG.integers(0, 256, (h, w, 3), dtype="uint8")


def _save(path, array, mode=None, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path, **kwargs)
    return str(path)


# --- single files -------------------------------------------------------


def test_files_in_memory_read_like_paths(tmp_path):
    from siamkit.datasets.memory import MemoryFile

    path = _save(str(tmp_path / "a.png"), _gray())
    with open(path, "rb") as f:
        data = f.read()
    from_disk = images.read_images([path], progress=False).images
    from_memory = images.read_images([MemoryFile("upload.png", data)], progress=False).images
    np.testing.assert_array_equal(from_memory, from_disk)
    with pytest.raises(DataError, match=r"^upload\.png: corrupt or truncated"):
        images.decode(MemoryFile("upload.png", data[: len(data) // 2]))
    with pytest.raises(DataError, match=r"^empty\.png: is empty"):
        images.read_header(MemoryFile("empty.png", b""))


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp", ".gif"])
def test_lossless_formats_decode_exactly(tmp_path, ext):
    gray = _gray()
    options = {"lossless": True} if ext == ".webp" else {}
    path = _save(tmp_path / f"g{ext}", gray, **options)
    out = images.decode(path, channels=1)  # WebP stores grey as RGB
    assert out.dtype == np.uint8 and out.shape == (6, 5, 1)
    np.testing.assert_array_equal(out[..., 0], gray)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp"])
def test_rgb_formats_decode_exactly(tmp_path, ext):
    rgb = _rgb()
    options = {"lossless": True} if ext == ".webp" else {}
    out = images.decode(_save(tmp_path / f"c{ext}", rgb, **options))
    np.testing.assert_array_equal(out, rgb)


def test_jpeg_decodes_close_to_source(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 16, dtype="uint8"), (16, 1))
    out = images.decode(_save(tmp_path / "a.jpg", np.stack([smooth] * 3, -1), quality=95))
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - smooth[..., None]).max() <= 8


def test_rgba_is_composited_onto_white_unless_four_channels(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype="uint8")
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[1, 1] = (0, 0, 255, 0)  # fully transparent blue -> white
    path = _save(tmp_path / "a.png", rgba, "RGBA")
    out = images.decode(path, channels=3)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])
    np.testing.assert_array_equal(images.decode(path, channels=4), rgba)


def test_palette_image_decodes_to_its_colours(tmp_path):
    rgb = _rgb(8, 8) // 64 * 64  # few colours, so the palette is exact
    pal = Image.fromarray(rgb).quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    pal.save(tmp_path / "p.png")
    expected = np.asarray(pal.convert("RGB"))
    np.testing.assert_array_equal(images.decode(tmp_path / "p.png"), expected)


def test_gray_palette_counts_as_grayscale(tmp_path):
    gray = _gray()
    Image.fromarray(gray).convert("P").save(tmp_path / "p.png")  # L -> P keeps a grey palette
    assert images.read_header(tmp_path / "p.png").gray
    np.testing.assert_array_equal(images.decode(tmp_path / "p.png")[..., 0], gray)


def test_gif_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((4, 4), v, dtype="uint8")) for v in (10, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "a.gif").n_frames == 2
    np.testing.assert_array_equal(images.decode(tmp_path / "a.gif"), np.full((4, 4, 1), 10))


def test_sixteen_bit_png_scales_to_eight_bits(tmp_path):
    values = np.array([[0, 257, 65535]], dtype="uint16")
    Image.fromarray(values).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode.startswith("I")
    np.testing.assert_array_equal(images.decode(tmp_path / "a.png")[..., 0], [[0, 1, 255]])


def test_exif_orientation_is_applied(tmp_path):
    rgb = _rgb(4, 6)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = _save(tmp_path / "a.webp", rgb, lossless=True, exif=exif.tobytes())
    header = images.read_header(path)
    assert (header.height, header.width) == (6, 4)
    np.testing.assert_array_equal(images.decode(path), np.rot90(rgb, k=-1))


def test_channel_policy(tmp_path):
    rgb = _rgb()
    path = _save(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(
        images.decode(path, channels=1)[..., 0], np.asarray(Image.fromarray(rgb).convert("L"))
    )
    gray_path = _save(tmp_path / "g.png", _gray())
    assert images.decode(gray_path, channels=3).shape == (6, 5, 3)


def test_resize_matches_pil(tmp_path):
    gray = _gray(20, 30)
    out = images.decode(_save(tmp_path / "a.png", gray), image_size="10x12")
    expected = np.asarray(Image.fromarray(gray).resize((12, 10), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out[..., 0], expected)


def test_batch_helpers_match_pil():
    batch = RNG.integers(0, 256, (3, 9, 7, 3), dtype="uint8")
    gray = images.convert_channels(batch, 1)
    for img, g in zip(batch, gray):
        np.testing.assert_array_equal(g[..., 0], np.asarray(Image.fromarray(img).convert("L")))
    resized = images.resize(batch, 4)
    np.testing.assert_array_equal(
        resized[1], np.asarray(Image.fromarray(batch[1]).resize((4, 4), Image.Resampling.BILINEAR))
    )
    floats = images.to_float(batch)
    assert floats.dtype == np.float32 and floats.max() <= 1.0
    np.testing.assert_allclose(images.resize(floats[..., :1], 4), images.resize(batch[..., :1], 4) / 255, atol=0.01)
    np.testing.assert_array_equal(images.convert_channels(gray, 3), np.repeat(gray, 3, -1))


@pytest.mark.parametrize(
    "value, expected", [(None, None), (28, (28, 28)), ("28", (28, 28)), ("64x48", (64, 48)), ((5, 6), (5, 6))]
)
def test_parse_image_size(value, expected):
    assert images.parse_image_size(value) == expected


@pytest.mark.parametrize("value", [0, "big", (1, 2, 3), -4, True])
def test_parse_image_size_rejects(value):
    with pytest.raises(ConfigError, match="image_size"):
        images.parse_image_size(value)


def test_check_channels():
    assert images.check_channels(None) is None and images.check_channels("3") == 3
    with pytest.raises(ConfigError, match="channels"):
        images.check_channels(2)


# --- image folders -------------------------------------------------------


def make_folder(root, classes=("cat", "dog", "owl"), per_class=3, size=(8, 10)):
    """A folder of random grayscale PNGs; returns {relative path: array}."""
    arrays = {}
    for name in classes:
        for i in range(per_class):
            rel = os.path.join(name, f"{i}.png")
            arrays[rel] = _gray(*size)
            _save(os.path.join(root, rel), arrays[rel])
    return arrays


def test_load_folder_labels_paths_and_pixels(tmp_path):
    arrays = make_folder(tmp_path)
    os.makedirs(tmp_path / "dog" / "nested")
    _save(str(tmp_path / "dog" / "nested" / "x.png"), arrays["dog/0.png"])
    (tmp_path / "cat" / "notes.txt").write_text("not an image, ignored")
    (tmp_path / ".hidden").mkdir()
    ds = datasets.load_folder(tmp_path)
    assert ds.info["class_names"] == ["cat", "dog", "owl"]
    assert ds.x.shape == (10, 8, 10, 1) and ds.x.dtype == np.float32
    assert np.bincount(ds.y).tolist() == [3, 4, 3]
    assert ds.info["image_size"] == (8, 10) and ds.info["channels"] == 1 and ds.info["bad_files"] == []
    for path, x in zip(ds.meta["path"], ds.x):
        reference = arrays.get(path, arrays["dog/0.png"])
        np.testing.assert_allclose(x[..., 0], reference / 255, atol=1e-7)


def test_folder_with_colour_image_gets_three_channels(tmp_path):
    make_folder(tmp_path)
    _save(str(tmp_path / "owl" / "c.png"), _rgb(8, 10))
    assert datasets.load_folder(tmp_path).x.shape[-1] == 3
    assert datasets.load_folder(tmp_path, channels=1).x.shape[-1] == 1


def test_folder_mixed_sizes_resize_when_size_given(tmp_path):
    make_folder(tmp_path)
    _save(str(tmp_path / "owl" / "big.png"), _gray(16, 16))
    with pytest.raises(DataError, match="mixed image sizes.*--image-size"):
        datasets.load_folder(tmp_path)
    ds = datasets.load_folder(tmp_path, image_size=12, channels=3)
    assert ds.x.shape == (10, 12, 12, 3)


def test_manifest_and_bad_files_report(tmp_path):
    root = tmp_path / "data"
    make_folder(root)
    (root / "dog" / "broken.png").write_bytes(b"")
    from siamkit.datasets import load_inputs

    run_dir = tmp_path / "run"
    ds = load_inputs({"data": str(root), "skip_bad": True, "image_size": 8}, run_dir=str(run_dir))
    assert len(ds) == 9
    manifest = (run_dir / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "path,label,class" and len(manifest) == 10
    assert manifest[4] == f"{os.path.join('dog', '0.png')},1,dog"
    report = (run_dir / "bad_files.csv").read_text().splitlines()
    assert report[0] == "file,reason"
    assert report[1].startswith(str(root / "dog" / "broken.png")) and "empty" in report[1]


def test_load_inputs_standard_dataset_and_conflicts(tmp_path):
    from siamkit.datasets import load_inputs

    ds = load_inputs({"dataset": "digits", "image_size": 12, "channels": 3})
    assert ds.x.shape == (1797, 12, 12, 3)
    with pytest.raises(ConfigError, match="either --dataset mnist or --data"):
        load_inputs({"dataset": "mnist", "data": str(tmp_path)})
    with pytest.raises(ConfigError, match="both roots"):
        load_inputs({"pairs_csv": "p.csv", "data": str(tmp_path)})


# --- pair CSVs and cross-modal roots ---------------------------------------


def test_pairs_csv(tmp_path):
    arrays = make_folder(tmp_path / "imgs")
    (tmp_path / "pairs.csv").write_text(
        "path_a,path_b,label\n"
        "imgs/cat/0.png,imgs/cat/1.png,1\n"
        "\n"
        "imgs/cat/0.png,imgs/dog/2.png,0\n"
        f"{tmp_path / 'imgs' / 'owl' / '0.png'},imgs/owl/1.png,1\n"
    )
    pairs = datasets.load_pairs(tmp_path / "pairs.csv")
    assert len(pairs) == 3 and pairs.same_pool
    assert pairs.y.tolist() == [1, 0, 1] and pairs.meta["line"].tolist() == [2, 4, 5]
    assert len(pairs.x_a) == 5  # cat/0 decoded once though used twice
    np.testing.assert_allclose(pairs.first[1, ..., 0], arrays["cat/0.png"] / 255, atol=1e-7)
    np.testing.assert_allclose(pairs.second[1, ..., 0], arrays["dog/2.png"] / 255, atol=1e-7)
    datasets.write_manifest(pairs, tmp_path / "m.csv")
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert (
        lines[0] == "path_a,path_b,label"
        and lines[2] == f"{os.path.join('imgs', 'cat', '0.png')},{os.path.join('imgs', 'dog', '2.png')},0"
    )


@pytest.mark.parametrize(
    "row, message",
    [
        ("a.png,b.png,2", "label '2' is not 0 or 1"),
        ("a.png,b.png", "has 2 field"),
        ("a.png,zz.png,1", "path_b 'zz.png' does not exist"),
    ],
)
def test_pairs_csv_bad_rows(tmp_path, row, message):
    for name in ("a.png", "b.png"):
        _save(str(tmp_path / name), _gray())
    (tmp_path / "p.csv").write_text(f"a.png,b.png,1\n{row}\n")
    with pytest.raises(DataError, match=f"p.csv, line 2: {message}"):
        datasets.load_pairs(tmp_path / "p.csv")
    pairs = datasets.load_pairs(tmp_path / "p.csv", skip_bad=True)
    assert len(pairs) == 1 and pairs.info["bad_files"][0][0].endswith("p.csv:2")


def _write_wav(path, samples, rate=8000):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def test_cross_modal_by_class_name(tmp_path):
    make_folder(tmp_path / "img", classes=("one", "two"), per_class=2)
    clips = {}
    for name in ("one", "two"):
        clips[name] = RNG.integers(-3000, 3000, 50 + len(name))
        _write_wav(tmp_path / "aud" / name / "0.wav", clips[name])
    a, b = datasets.load_cross_modal(tmp_path / "img", tmp_path / "aud")
    assert a.x.shape == (4, 8, 10, 1) and a.y.tolist() == [0, 0, 1, 1]
    assert isinstance(b.x, datasets.Waveforms) and b.x.sample_rate == 8000 and b.y.tolist() == [0, 1]
    np.testing.assert_array_equal(b.x[1], clips["two"])
    assert a.info["class_names"] == b.info["class_names"] == ["one", "two"]
    _write_wav(tmp_path / "aud" / "three" / "0.wav", clips["one"])
    with pytest.raises(DataError, match=r"aud/three: class 'three' has no folder in .*img"):
        datasets.load_cross_modal(tmp_path / "img", tmp_path / "aud")
    # with skip_bad the one-sided class is left out and reported
    a, b = datasets.load_cross_modal(tmp_path / "img", tmp_path / "aud", skip_bad=True)
    assert b.y.tolist() == [0, 1] and b.info["class_names"] == ["one", "two"]
    assert [reason for _, reason in a.info["bad_files"]] == ["class folder in one root only"]


def test_cross_modal_pairs_csv_with_two_roots(tmp_path):
    make_folder(tmp_path / "img", classes=("one", "two"), per_class=2)
    _write_wav(tmp_path / "aud" / "one.wav", [1, 2, 3])
    _write_wav(tmp_path / "aud" / "two.wav", [4, 5])
    (tmp_path / "p.csv").write_text("one/0.png,one.wav,1\ntwo/1.png,two.wav,1\none/1.png,two.wav,0\n")
    pairs = datasets.load_pairs(tmp_path / "p.csv", root_a=tmp_path / "img", root_b=tmp_path / "aud")
    assert not pairs.same_pool and pairs.x_a.shape == (3, 8, 10, 1)
    assert [w.tolist() for w in pairs.second] == [[1, 2, 3], [4, 5], [4, 5]]


# --- streaming -----------------------------------------------------------


def test_stream_matches_in_memory_and_fills_cache(tmp_path):
    make_folder(tmp_path / "d", per_class=4)
    eager = datasets.load_folder(tmp_path / "d", image_size=6, channels=3)
    lazy = datasets.load_folder(tmp_path / "d", image_size=6, channels=3, stream=True, cache_dir=tmp_path / "c")
    store = lazy.x
    assert isinstance(store, datasets.ImageStore) and store.shape == eager.x.shape
    idx = np.array([5, 0, 11])
    np.testing.assert_array_equal(store[idx], eager.x[idx])
    filled = np.load(next((tmp_path / "c").glob("*.filled.npy")))
    assert sorted(np.flatnonzero(filled)) == [0, 5, 11]
    np.testing.assert_array_equal(np.asarray(store), eager.x)  # second read comes from the cache
    sub = lazy.subset(lazy.y == 2)
    assert isinstance(sub.x, datasets.ImageStore)
    np.testing.assert_array_equal(sub.x[:], eager.x[eager.y == 2])


def test_streamed_training_decodes_batch_by_batch(tmp_path, monkeypatch):
    from siamkit import cli
    from siamkit.datasets import store

    make_folder(tmp_path / "d", classes=[f"c{i}" for i in range(10)], per_class=10)
    decoded = []
    original = store.ImageStore.__getitem__

    def recording(self, key):
        out = original(self, key)
        decoded.append(len(out) if out.ndim == 4 else 1)
        return out

    monkeypatch.setattr(store.ImageStore, "__getitem__", recording)
    argv = ["train", "--data", str(tmp_path / "d"), "--stream", "--encoder", "mlp", "--epochs", "1",
            "--loss", "contrastive", "--batch-size", "8", "--pairs-per-epoch", "64", "--out", str(tmp_path / "run"),
            "--quiet"]
    assert cli.main(argv) == 0
    # 7 training classes x 8 images; no single read may take them all (the old path decoded the whole part)
    assert decoded and max(decoded) < 56, decoded
    assert decoded.count(8) >= 2 * 8  # 8 pair batches, two branches each


def test_stream_cache_is_invalidated_when_files_change(tmp_path):
    make_folder(tmp_path / "d")
    first = datasets.load_folder(tmp_path / "d", stream=True, cache_dir=tmp_path / "c").x
    first[:]
    new = _gray(8, 10)
    _save(str(tmp_path / "d" / "cat" / "0.png"), new)
    os.utime(tmp_path / "d" / "cat" / "0.png", ns=(1, 1))
    second = datasets.load_folder(tmp_path / "d", stream=True, cache_dir=tmp_path / "c").x
    np.testing.assert_allclose(second[0][..., 0], new / 255, atol=1e-7)
    assert len(list((tmp_path / "c").glob("*.images.npy"))) == 2


def test_image_batches_with_worker_processes(tmp_path):
    keras = pytest.importorskip("keras")
    from siamkit.datasets.streaming import ImageBatches

    make_folder(tmp_path / "d", per_class=5)
    ds = datasets.load_folder(tmp_path / "d", stream=True, cache_dir=tmp_path / "c")
    eager = datasets.load_folder(tmp_path / "d")
    model = keras.Sequential([keras.Input((8, 10, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    batches = ImageBatches(ds.x, batch_size=4, workers=2, use_multiprocessing=True)
    np.testing.assert_allclose(model.predict(batches, verbose=0), model.predict(eager.x, verbose=0), atol=1e-5)
    shuffled = ImageBatches(ds.x, ds.y, batch_size=4, shuffle=True, seed=3)
    x0, y0 = shuffled[0]
    np.testing.assert_array_equal(x0, eager.x[shuffled.order[:4]])
    np.testing.assert_array_equal(y0, eager.y[shuffled.order[:4]])


@pytest.fixture(scope="module")
def png_folder_2000(tmp_path_factory):
    """2,000 PNGs in 10 class folders: sklearn's digits at 28x28 (repeats mirrored)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images / 16 * 255).astype("uint8")
    root = tmp_path_factory.mktemp("png2000") / "digits2000"
    written = {}
    for i in range(2000):
        j = i % len(pixels)
        img = Image.fromarray(pixels[j]).resize((28, 28), Image.Resampling.NEAREST)
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i >= len(pixels) else img
        rel = os.path.join(str(digits.target[j]), f"{i:04d}.png")
        os.makedirs(root / str(digits.target[j]), exist_ok=True)
        img.save(root / rel)
        written[rel] = np.asarray(img)
    return root, written


def test_2000_image_png_folder(png_folder_2000):
    root, written = png_folder_2000
    ds = datasets.load_folder(root)
    assert ds.x.shape == (2000, 28, 28, 1) and ds.num_classes == 10
    got = dict(zip(ds.meta["path"], ds.x))
    for rel in list(written)[::97]:
        np.testing.assert_allclose(got[rel][..., 0], written[rel] / 255, atol=1e-7)


@pytest.mark.slow
def test_train_on_2000_image_folder_from_one_command(png_folder_2000, tmp_path):
    from siamkit import cli

    root, _ = png_folder_2000
    out = tmp_path / "run"
    argv = ["train", "--data", str(root), "--epochs", "1", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    assert (out / "model.keras").is_file()
    assert len((out / "manifest.csv").read_text().splitlines()) == 2001


def test_quiet_training_reads_the_folder_without_progress_bars(tmp_path, monkeypatch):
    from siamkit import cli
    from siamkit.datasets import images

    make_folder(tmp_path / "data", classes=[f"c{i}" for i in range(8)], per_class=10)
    shown = []

    def recording(iterable, desc, enabled=True, **kwargs):
        shown.append((desc, enabled))
        return iter(iterable)

    monkeypatch.setattr(images, "progress_bar", recording)
    argv = ["train", "--data", str(tmp_path / "data"), "--encoder", "mlp", "--epochs", "1", "--loss", "contrastive",
            "--pairs-per-epoch", "64", "--out", str(tmp_path / "run"), "--quiet"]
    assert cli.main(argv) == 0
    assert shown and not any(enabled for _, enabled in shown), shown


def test_too_few_images_per_class_for_validation_pairs_is_explained(tmp_path, capsys):
    from siamkit import cli

    make_folder(tmp_path / "data", classes=[f"c{i}" for i in range(8)], per_class=4)  # 1 validation image each
    argv = ["train", "--data", str(tmp_path / "data"), "--encoder", "mlp", "--loss", "contrastive", "--quiet",
            "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    assert "the validation images (val_fraction 0.15 of each training class's images) cannot form pairs" in (
        capsys.readouterr().err
    )
