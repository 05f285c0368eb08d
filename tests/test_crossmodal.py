"""Cross-modal pair sampling, retrieval metrics and two-tower training."""

import json
import pathlib

import keras
import numpy as np
import pytest

from siamkit import _io, encoders, models, runs
from siamkit.data.crossmodal import CrossModalPairs
from siamkit.errors import ConfigError, DataError
from siamkit.training import trainer
from siamkit.training.guards import NonFiniteGuard
from siamkit.evaluation.crossmodal import crossmodal_retrieval, evaluate_run, recall_table

pytestmark = pytest.mark.backend


def _modalities(n_a=60, n_b=37, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    y_a, y_b = np.arange(n_a) % classes, rng.permutation(np.arange(n_b) % classes)
    # Each sample's first feature is its own index, so batches can be traced back.
    x_a = np.concatenate([np.arange(n_a)[:, None], rng.normal(size=(n_a, 3))], axis=1).astype("float32")
    x_b = np.concatenate([np.arange(n_b)[:, None], rng.normal(size=(n_b, 5))], axis=1).astype("float32")
    return x_a, y_a, x_b, y_b


# ---- sampling ----


def test_in_batch_pairs_are_positives_covering_modality_b_each_epoch():
    x_a, y_a, x_b, y_b = _modalities()
    ds = CrossModalPairs(x_a, y_a, x_b, y_b, batch_size=8, seed=1)
    assert len(ds) == 5  # ceil(37 / 8)
    for _ in range(2):
        seen_b = []
        for i in range(len(ds)):
            (xa, xb), classes = ds[i]
            a, b = xa[:, 0].astype(int), xb[:, 0].astype(int)
            np.testing.assert_array_equal(y_a[a], classes)
            np.testing.assert_array_equal(y_b[b], classes)
            np.testing.assert_array_equal(xa, x_a[a])
            seen_b.extend(b)
        assert sorted(seen_b[:37]) == list(range(37))  # one full pass over modality b
        ds.on_epoch_end()


def test_pairs_mode_labels_and_fraction():
    x_a, y_a, x_b, y_b = _modalities()
    ds = CrossModalPairs(x_a, y_a, x_b, y_b, batch_size=10, mode="pairs", positive_fraction=0.3, pairs_per_epoch=40)
    for i in range(len(ds)):
        (xa, xb), same = ds[i]
        a, b = xa[:, 0].astype(int), xb[:, 0].astype(int)
        np.testing.assert_array_equal(same, (y_a[a] == y_b[b]).astype("float32"))
        assert same.sum() == 3


def test_partners_are_uniform_within_and_outside_the_class():
    x_a, y_a, x_b, y_b = _modalities(n_a=12, classes=3)
    ds = CrossModalPairs(x_a, y_a, x_b, y_b, seed=0)
    rng = np.random.default_rng(0)
    classes = np.full(30000, 1)
    pos = ds.partners(classes, np.ones(30000, bool), rng)
    neg = ds.partners(classes, np.zeros(30000, bool), rng)
    assert set(pos) == set(np.flatnonzero(y_a == 1)) and set(neg) == set(np.flatnonzero(y_a != 1))
    for drawn, members in ((pos, y_a == 1), (neg, y_a != 1)):
        freq = np.bincount(drawn, minlength=12)[members] / len(drawn)
        assert abs(freq - 1 / members.sum()).max() < 0.015


def test_sampling_is_seeded():
    x_a, y_a, x_b, y_b = _modalities()
    first = CrossModalPairs(x_a, y_a, x_b, y_b, batch_size=8, seed=3)
    again = CrossModalPairs(x_a, y_a, x_b, y_b, batch_size=8, seed=3)
    other = CrossModalPairs(x_a, y_a, x_b, y_b, batch_size=8, seed=4)
    np.testing.assert_array_equal(first[2][0][0], again[2][0][0])
    np.testing.assert_array_equal(first[1][0][1], again[1][0][1])
    assert not np.array_equal(first[2][0][0], other[2][0][0])
    batch = first[0][0][1].copy()
    first.on_epoch_end()
    assert not np.array_equal(first[0][0][1], batch)  # a fresh draw each epoch


def test_augment_hooks_get_each_modality():
    x_a, y_a, x_b, y_b = _modalities()
    ds = CrossModalPairs(
        x_a, y_a, x_b, y_b, batch_size=4, augment_a=lambda x, rng: x * 0 + 1, augment_b=lambda x, rng: -x
    )
    (xa, xb), _ = ds[0]
    assert (xa == 1).all() and (xb[:, 0] <= 0).all()


def test_sampler_rejects_bad_inputs():
    x_a, y_a, x_b, y_b = _modalities()
    with pytest.raises(DataError, match=r"classes \[7\]"):
        CrossModalPairs(x_a, y_a, x_b, np.where(y_b == 0, 7, y_b))
    with pytest.raises(DataError, match="labels"):
        CrossModalPairs(x_a, y_a[:-1], x_b, y_b)
    with pytest.raises(ConfigError, match="mode"):
        CrossModalPairs(x_a, y_a, x_b, y_b, mode="triplets")
    with pytest.raises(DataError, match="2 classes"):
        CrossModalPairs(x_a, np.zeros_like(y_a), x_b, np.zeros_like(y_b), mode="pairs")
    with pytest.raises(IndexError):
        CrossModalPairs(x_a, y_a, x_b, y_b, batch_size=8)[5]


# ---- retrieval metrics ----


def brute_force_recall(q, yq, r, yr, k, distance):
    """R@K from the full distance matrix, stable argsort: ties go to the lower reference index."""
    if distance == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        r = r / np.linalg.norm(r, axis=1, keepdims=True)
        D = 1 - q @ r.T
    else:
        D = np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1))
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return float(np.mean([(yr[o] == y).any() for o, y in zip(order, yq)]))


def brute_force_map_at_r(q, yq, r, yr, distance):
    """MAP@R from the full distance matrix: mean over queries of sum_{i<=R} P(i) rel(i) / R."""
    if distance == "cosine":
        D = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (r / np.linalg.norm(r, axis=1, keepdims=True)).T
    else:
        D = np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1))
    scores = []
    for row, y in zip(np.argsort(D, axis=1, kind="stable"), yq):
        R = int((yr == y).sum())
        if R == 0:
            continue
        rel = (yr[row[:R]] == y).astype(float)
        scores.append(float(np.sum(np.cumsum(rel) / np.arange(1, R + 1) * rel) / R))
    return float(np.mean(scores))


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_crossmodal_recall_matches_brute_force(distance):
    rng = np.random.default_rng(5)
    y_a, y_b = rng.integers(0, 6, 80), rng.integers(0, 6, 50)
    centres = rng.normal(size=(6, 8))
    z_a = centres[y_a] + 1.2 * rng.normal(size=(80, 8))
    z_b = centres[y_b] + 1.2 * rng.normal(size=(50, 8))
    m = crossmodal_retrieval(z_a, y_a, z_b, y_b, distance=distance, names=("image", "audio"))
    assert set(m) == {"audio_to_image", "image_to_audio"}
    table = recall_table(m)
    for k in (1, 5, 10):
        assert table["audio_to_image"][f"R@{k}"] == pytest.approx(brute_force_recall(z_b, y_b, z_a, y_a, k, distance))
        assert table["image_to_audio"][f"R@{k}"] == pytest.approx(brute_force_recall(z_a, y_a, z_b, y_b, k, distance))
    assert 0.2 < table["audio_to_image"]["R@1"] < table["audio_to_image"]["R@10"] <= 1.0  # a non-trivial case
    assert m["audio_to_image"]["map_at_r"] == pytest.approx(brute_force_map_at_r(z_b, y_b, z_a, y_a, distance))
    assert m["image_to_audio"]["map_at_r"] == pytest.approx(brute_force_map_at_r(z_a, y_a, z_b, y_b, distance))


def test_recall_counts_class_hits_not_identity():
    z_a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    z_b = np.array([[0.9, 0.2], [0.1, 1.0]])
    m = recall_table(crossmodal_retrieval(z_a, [3, 4, 3], z_b, [3, 3], ks=(1, 2)))
    assert m["b_to_a"] == {"R@1": 0.5, "R@2": 1.0}  # the second clip finds the class-4 image first, then a 3
    assert m["a_to_b"]["R@1"] == 1.0  # the class-4 image has no match and is left out


def test_evaluate_run_embeds_each_modality_with_its_tower(tmp_path):
    rng = np.random.default_rng(0)
    net = models.TwoTowerNetwork(encoders.mlp((6,), embedding_dim=4), encoders.mlp((3,), embedding_dim=4))
    x_a, x_b = rng.normal(size=(20, 6)).astype("float32"), rng.normal(size=(15, 3)).astype("float32")
    y_a, y_b = np.arange(20) % 4, np.arange(15) % 4
    net([x_a[:1], x_b[:1]])
    _io.save_model(net, tmp_path / runs.MODEL_FILE)
    config = {"input_shape": [6], "input_shape_b": [3], "distance": "cosine"}
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps(config))
    got = evaluate_run(runs.Run(tmp_path), x_a, y_a, x_b, y_b, ks=(1, 3), names=("image", "audio"))
    expected = crossmodal_retrieval(
        net.embed(x_a, "a"), y_a, net.embed(x_b, "b"), y_b, distance="cosine", ks=(1, 3), names=("image", "audio")
    )
    assert recall_table(got) == recall_table(expected)

    # With test_speeds, a run embeds audio (tower b) averaged over speed-changed copies; images as before.
    from siamkit import audio

    clips = rng.normal(size=(4, 3)).astype("float32")
    config["test_speeds"] = [0.9, 1.0, 1.1]
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps(config))
    run = runs.Run(tmp_path)
    np.testing.assert_allclose(
        run.embed(clips, "b"), audio.speed_averaged(lambda x: net.embed(x, "b"), clips, [0.9, 1.0, 1.1]), rtol=1e-5
    )
    assert not np.allclose(run.embed(clips, "b"), net.embed(clips, "b"))
    np.testing.assert_allclose(run.embed(x_a, "a"), net.embed(x_a, "a"), rtol=1e-5)


# ---- two-tower training on the real data ----


def _mnist_fsdd(shared_data_dir, out, **extra):
    """configs/mnist_fsdd.toml, small: a narrow audio tower, one epoch of a few hundred clips."""
    from siamkit.training import resolve

    shipped = pathlib.Path(__file__).resolve().parent.parent / "configs" / "mnist_fsdd.toml"
    overrides = {
        "data_dir": str(shared_data_dir), "out": str(out), "epochs": 1, "encoder_options_b": {"filters": [16, 16]},
        "embedding_dim": 16, "val_fraction": 0.85, **extra,
    }
    return resolve(shipped, overrides)


@pytest.mark.data
@pytest.mark.slow
def test_mnist_fsdd_trains_on_the_general_trainer(shared_data_dir, tmp_path):
    from siamkit import audio
    from siamkit.evaluation.crossmodal import evaluate_two_tower, two_tower_parts
    from siamkit.training import train

    config = _mnist_fsdd(shared_data_dir, tmp_path / "run")
    run, metrics = train(config, verbose=0)
    # FSDD takes 5-49 of 60 (speaker, digit) pairs, 15% of each digit's left for training after validation
    assert 300 < metrics["train_items"]["b"] < 450
    assert metrics["test_items"] == {"a": 10000, "b": 300}  # MNIST's test images, FSDD's takes 0-4
    for name in ("model.keras", "config.json", "metrics.json", "calibration.json", "history.csv"):
        assert (tmp_path / "run" / name).is_file()
    assert run.is_two_tower and run.config["input_shape_b"] == [8000] and run.config["sample_rate"] == 8000
    assert (run.modality("a"), run.modality("b")) == ("image", "audio")
    again = evaluate_two_tower(run, two_tower_parts(run.config), seed=run.config["seed"])
    assert again["retrieval"] == metrics["retrieval"]
    table = metrics["retrieval"]["audio_to_image"]
    assert 0.0 <= table["R@1"] <= table["R@5"] <= table["R@10"] <= 1.0
    assert 0.0 <= metrics["test_roc_auc"] <= 1.0

    # A spoken digit saved as .wav embeds through the reloaded run like the array it came from.
    fsdd = np.load(shared_data_dir / "fsdd.npz")
    clip = fsdd["audio"][fsdd["offsets"][0] : fsdd["offsets"][1]] / 32768.0
    audio.write_wav(tmp_path / "clip.wav", clip, 8000)
    x = audio.read_wavs([tmp_path / "clip.wav"], run.config["sample_rate"], run.config["input_shape_b"][0])
    np.testing.assert_allclose(run.embed(x, "b"), run.embed(audio.fix_length([clip], 8000), "b"), atol=1e-5)

    # Its report shows cross-modal examples both ways, audio as a spectrogram with a player.
    from siamkit import report

    path, missing = report.build(run, tmp_path / "report.html", progress=False)
    html = open(path, encoding="utf-8").read()
    assert '<section id="crossmodal"' in html and "<h3>Image to audio</h3>" in html and "<h3>Audio to image</h3>" in html
    assert html.count("<audio controls") >= 8 * 8 and 'class="spec' in html
    assert missing == []


class _InterruptAfterFirstEpoch(NonFiniteGuard):  # the trainer's first callback of every fit
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:  # epoch 0 is logged and backed up
            raise KeyboardInterrupt


@pytest.mark.data
@pytest.mark.slow
def test_interrupted_two_tower_run_resumes(shared_data_dir, tmp_path, monkeypatch):
    import csv

    from siamkit.training import train

    out = tmp_path / "run"
    config = _mnist_fsdd(shared_data_dir, out, epochs=2)
    monkeypatch.setattr(trainer, "NonFiniteGuard", _InterruptAfterFirstEpoch)
    with pytest.raises(KeyboardInterrupt):
        train(dict(config), verbose=0)
    assert (out / "backup").is_dir() and not (out / "model.keras").exists()
    monkeypatch.setattr(trainer, "NonFiniteGuard", NonFiniteGuard)
    with pytest.raises(ConfigError, match=r"different options \['embedding_dim'\]"):
        train({**config, "embedding_dim": 8}, verbose=0)
    train(dict(config), verbose=0)
    with open(out / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1], "epoch 0 before, 1 after resuming"
    assert (out / "model.keras").is_file() and not (out / "backup").exists()


def test_one_config_schema_for_both_kinds_of_network(tmp_path):
    from siamkit.training import resolve

    shipped = pathlib.Path(__file__).resolve().parent.parent / "configs" / "mnist_fsdd.toml"
    config = resolve(shipped)
    assert config["towers"] == 2 and config["loss"] == "clip" and config["distance"] == "cosine"
    assert (config["dataset"], config["dataset_b"], config["encoder_b"]) == ("mnist", "fsdd", "audio")
    assert resolve()["towers"] == 1 and resolve()["loss"] == "triplet"
    # a second side makes it two-tower; its defaults are the two-tower ones
    two = resolve(overrides={"data": "a", "data_b": "b"})
    assert two["towers"] == 2 and two["loss"] == "clip" and two["encoder"] is None
    # a pair CSV with two roots stays a Siamese pair set unless towers = 2
    assert resolve(overrides={"pairs_csv": "p.csv", "data": "a", "data_b": "b", "loss": "contrastive"})["towers"] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[tower_b]\ndataset = "fsdd"\nbatch_sise = 32\n')
    with pytest.raises(ConfigError, match="batch_sise"):
        resolve(bad)
    twice = tmp_path / "twice.toml"
    twice.write_text('encoder_b = "audio"\n[tower_b]\nencoder = "audio"\n')
    with pytest.raises(ConfigError, match="encoder_b is given twice"):
        resolve(twice)
    two_tower = {"dataset": "mnist", "dataset_b": "fsdd"}
    for bad_options, key in (
        ({"batch_size": 1}, "batch_size"),
        ({"speed": [1.2, 0.8]}, "speed"),
        ({"test_speeds": []}, "test_speeds"),
        ({"test_speeds": [0.9, -1.0]}, "test_speeds"),
        ({"loss": "triplet"}, "loss"),
        ({"ensemble": 3}, "ensemble"),
        ({"modality_b": "smell"}, "modality_b"),
    ):
        with pytest.raises(ConfigError, match=key):
            resolve(overrides={**two_tower, **bad_options})
    with pytest.raises(ConfigError, match="two-tower"):  # a side-b option on a Siamese network
        resolve(overrides={"test_speeds": [1.0]})
