"""Files read the way a run was trained: `Run.read_inputs`, `Run.read_pairs`, and their callers."""

import json

import numpy as np
import pytest
from PIL import Image

from siamkit import _io, audio, encoders, models, runs
from siamkit.errors import DataError
from siamkit.evaluation.compare import compare, compare_files
from siamkit.index.inputs import read_files

pytestmark = pytest.mark.backend


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 8, 8), dtype=np.uint8)
    images = []
    for i, p in enumerate(pixels):
        Image.fromarray(p, mode="L").save(tmp_path / f"{i}.png")
        images.append(str(tmp_path / f"{i}.png"))
    clip = 0.5 * np.sin(np.arange(20) / 3.0)
    audio.write_wav(tmp_path / "clip.wav", clip, 8000)
    return images, pixels.astype("float32")[..., None] / 255.0, str(tmp_path / "clip.wav"), clip


@pytest.fixture
def two_tower(tmp_path):
    """An untrained two-tower run: 8x8 grey images (tower a), 16-sample clips at 8 kHz (tower b)."""
    folder = tmp_path / "run"
    image_tower = encoders.mlp((8, 8, 1), embedding_dim=4, hidden_units=(8,))
    net = models.TwoTowerNetwork(image_tower, encoders.mlp((16,), embedding_dim=4, hidden_units=(8,)))
    net([np.zeros((1, 8, 8, 1), "float32"), np.zeros((1, 16), "float32")])
    _io.save_model(net, folder / runs.MODEL_FILE)
    config = {"input_shape": [8, 8, 1], "input_shape_b": [16], "sample_rate": 8000, "distance": "cosine"}
    (folder / runs.CONFIG_FILE).write_text(json.dumps(config))
    return runs.Run(folder)


def test_each_tower_reads_its_files(two_tower, files):
    images, pixels, wav, clip = files
    np.testing.assert_allclose(two_tower.read_inputs(images), pixels, atol=1e-6)
    np.testing.assert_allclose(two_tower.read_inputs(images, invert=True), 1.0 - pixels, atol=1e-6)
    np.testing.assert_allclose(two_tower.read_inputs([wav], "b"), audio.fix_length([clip], 16), atol=1e-4)
    # By file type, to the tower that reads it.
    x, modality = read_files(two_tower, [wav])
    assert modality == "b" and x.shape == (1, 16)
    assert read_files(two_tower, images)[1] == "a"


def test_the_run_config_sets_the_default_inversion(two_tower, files):
    images, pixels, _, _ = files
    two_tower.config["invert"] = True
    np.testing.assert_allclose(two_tower.read_inputs(images), 1.0 - pixels, atol=1e-6)
    np.testing.assert_allclose(two_tower.read_inputs(images, invert=False), pixels, atol=1e-6)


def test_audio_needs_the_sample_rate(two_tower, files):
    del two_tower.config["sample_rate"]
    with pytest.raises(DataError, match="sample_rate"):
        two_tower.read_inputs([files[2]], "b")


def test_compare_files_on_a_two_tower_run_reads_an_image_and_a_recording(two_tower, files):
    images, pixels, wav, clip = files
    got = compare_files(two_tower, images[0], wav, threshold=0.5)
    expected = compare(two_tower, pixels[:1], audio.fix_length([clip], 16), threshold=0.5)
    assert got["threshold_source"] == "given" and got["same"] == expected["same"]
    assert got["score"] == pytest.approx(expected["score"], abs=1e-4)


def test_read_pairs_reads_a_pair_csv_under_the_image_policy(two_tower, files, tmp_path):
    images, pixels, _, _ = files
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(f"{images[0]},{images[1]},0\n{images[0]},{images[0]},1\n")
    pairs = two_tower.read_pairs(csv_path, invert=True)
    assert pairs.y.tolist() == [0, 1]
    np.testing.assert_allclose(pairs.x_a[pairs.index_b[0]], 1.0 - pixels[1], atol=1e-6)
