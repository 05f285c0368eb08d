import csv
import json
import os

import keras
import numpy as np
import pytest

from siamkit import runs
from siamkit.cli import main
from siamkit.errors import ConfigError
from siamkit.training import resolve, train, trainer
from siamkit.training.guards import NonFiniteGuard

QUICK = {"epochs": 1, "embedding_dim": 8, "eval_pairs": 200, "pairs_per_epoch": 256}


def test_trained_run_directory_is_complete(trained_run):
    for name in ("model.keras", "config.json", "history.csv", "metrics.json"):
        assert os.path.isfile(trained_run.file(name)), name
    assert not os.path.exists(trained_run.file("backup")), "the backup is removed once training finishes"
    config = trained_run.config
    assert config["holdout_classes"] == [7, 8, 9] and config["test_classes"] == [7, 8, 9]
    assert config["train_classes"] == list(range(7)) and config["input_shape"] == [8, 8, 1]
    metrics = trained_run.read_json("metrics.json")
    assert 0.5 < metrics["test_roc_auc"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    with open(trained_run.file("history.csv")) as f:
        assert len(list(csv.DictReader(f))) == 2


def test_run_reloads_with_identical_embeddings(trained_run):
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    reopened = runs.Run(trained_run.path)
    np.testing.assert_allclose(reopened.embed(x), trained_run.model.embed(x), rtol=1e-6)
    assert reopened.score_pairs(x, x).shape == (5,)
    assert len(reopened.fingerprint()) == 64


@pytest.mark.backend
@pytest.mark.parametrize(
    "options",
    [
        {"loss": "contrastive", "encoder": "mlp"},
        {"loss": "triplet", "mining": "hard", "encoder": "mlp", "classes_per_batch": 7, "validation": "images"},
        {"loss": "bce", "head": "l1", "encoder": "cnn"},
        {"loss": "prototypical", "margin": 0.3, "encoder": "mlp", "classes_per_batch": 7, "validation": "images"},
    ],
)
def test_each_objective_trains_saves_and_reloads(tmp_path, options):
    run, metrics = train({**QUICK, **options, "out": str(tmp_path / "run")}, verbose=0)
    assert np.isfinite(metrics["test_roc_auc"])
    x = np.random.default_rng(1).random((4, 8, 8, 1)).astype("float32")
    loaded = keras.saving.load_model(run.file("model.keras"), safe_mode=True)
    np.testing.assert_allclose(loaded.predict([x, x[::-1]], verbose=0), run.score_pairs(x, x[::-1]), rtol=1e-5)


def test_same_seed_same_run(tmp_path):
    _, first = train({**QUICK, "encoder": "mlp", "out": str(tmp_path / "a")}, verbose=0)
    _, second = train({**QUICK, "encoder": "mlp", "out": str(tmp_path / "b")}, verbose=0)
    assert first["test_roc_auc"] == pytest.approx(second["test_roc_auc"], abs=1e-6)


class _Interrupt(NonFiniteGuard):  # the trainer's first callback of every fit
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_interrupted_run_resumes(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    config = {**QUICK, "encoder": "mlp", "epochs": 4, "out": out}
    monkeypatch.setattr(trainer, "NonFiniteGuard", _Interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0)
    assert os.path.isdir(os.path.join(out, "backup")) and not os.path.exists(os.path.join(out, "model.keras"))
    monkeypatch.setattr(trainer, "NonFiniteGuard", NonFiniteGuard)
    with pytest.raises(ConfigError, match="different options \\['learning_rate'\\]"):
        train({**config, "learning_rate": 0.1}, verbose=0)
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    del saved["ensemble"]  # a run interrupted before the option existed resumes with its default
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(saved, f)
    train(config, verbose=0)
    with open(os.path.join(out, "history.csv")) as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3], "epochs 0-1 before the interruption, 2-3 after resuming"
    with pytest.raises(ConfigError, match="already holds a trained model"):
        train(config, verbose=0)


def test_a_run_stopped_during_its_final_evaluation_is_evaluated_by_the_rerun(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    config = {**QUICK, "encoder": "mlp", "epochs": 2, "out": out}
    evaluate = trainer.holdout.evaluate_classes

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.holdout, "evaluate_classes", stopped)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0)
    assert os.path.isfile(os.path.join(out, "model.keras")) and os.path.isdir(os.path.join(out, "backup"))
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    trained = runs.Run(out).model.get_weights()
    monkeypatch.setattr(trainer.holdout, "evaluate_classes", evaluate)
    train(config, verbose=0)  # restores the last epoch's backup, trains no further, evaluates
    with open(os.path.join(out, "history.csv")) as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    for got, want in zip(runs.Run(out).model.get_weights(), trained):
        np.testing.assert_array_equal(got, want)
    assert os.path.isfile(os.path.join(out, "metrics.json")) and not os.path.exists(os.path.join(out, "backup"))
    with pytest.raises(ConfigError, match="already holds a trained model"):
        train(config, verbose=0)


class _InterruptSecondMember(NonFiniteGuard):
    """Stops the run in member 1's second epoch (member 0 trains with seed 0, member 1 with seed 1)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1 and self.model.name.endswith("member1"):
            raise KeyboardInterrupt


def test_ensemble_concatenates_members_and_resumes_after_the_finished_one(tmp_path, monkeypatch):
    out = str(tmp_path / "ensemble")
    config = {**QUICK, "encoder": "mlp", "epochs": 3, "ensemble": 2, "out": out}
    monkeypatch.setattr(trainer, "NonFiniteGuard", _InterruptSecondMember)
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0)
    member0 = os.path.join(out, "members", "0", "encoder.keras")
    assert os.path.isfile(member0) and os.path.isdir(os.path.join(out, "members", "1", "backup"))
    finished = keras.saving.load_model(member0, safe_mode=True, compile=False)
    monkeypatch.setattr(trainer, "NonFiniteGuard", NonFiniteGuard)
    run, metrics = train(config, verbose=0)

    assert not os.path.exists(os.path.join(out, "members")) and not os.path.exists(os.path.join(out, "backup"))
    encoder = run.model.encoder
    assert encoder.output_shape == (None, 16) and np.isfinite(metrics["test_roc_auc"])
    x = np.random.default_rng(2).random((6, 8, 8, 1)).astype("float32")
    parts = [encoder.get_layer(f"mlp_member{k}").predict(x, verbose=0) for k in range(2)]
    np.testing.assert_allclose(run.embed(x), np.hstack(parts), rtol=1e-6)
    np.testing.assert_allclose(parts[0], finished.predict(x, verbose=0), rtol=1e-6)  # member 0 was not retrained
    assert not np.allclose(parts[0], parts[1], atol=1e-3), "members start from different seeds"
    with open(run.file("history.csv")) as f:
        rows = [(int(r["member"]), int(r["epoch"])) for r in csv.DictReader(f)]
    assert rows == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    # Member 0 of an ensemble is the single-encoder run of the same seed.
    single, _ = train({**config, "ensemble": 1, "out": str(tmp_path / "single")}, verbose=0)
    np.testing.assert_allclose(single.embed(x), parts[0], rtol=1e-4, atol=1e-5)


def test_config_file_and_flag_precedence(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('encoder = "mlp"\nepochs = 3\nmargin = 0.5\n[encoder_options]\nhidden_units = [32]\n')
    config = resolve(str(path), {"epochs": 2, "margin": None})
    assert config["encoder"] == "mlp" and config["epochs"] == 2 and config["margin"] == 0.5
    assert config["encoder_options"] == {"hidden_units": [32]}
    path.write_text("epochz = 3\n")
    with pytest.raises(ConfigError, match="unknown key\\(s\\) \\['epochz'\\]"):
        resolve(str(path))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss": "bce"}, "needs a probability head"),
        ({"head": "l1"}, "trains distances"),
        ({"epochs": 0}, "epochs must be a positive number"),
        ({"val_fraction": 1.5}, "val_fraction must be in"),
        ({"holdout_fraction": 0}, r"holdout_fraction must be in \(0, 1\)"),
        ({"augment": {"preset": "koch", "rotaton": 5}}, "unknown augment option"),
        ({"rotations": 4, "stream": True}, "rotations turn the whole training set in memory"),
        ({"loss": "contrastive", "batch_groups": "alphabet"}, "batch_groups shapes P x K batches"),
        ({"loss": "bce", "head": "l1", "ensemble": 2}, "which head 'l1' cannot score"),
        ({"ensemble": 0}, "ensemble must be a positive number"),
        ({"loss": "contrastive", "margin": 0}, "margin must be a positive number"),
        ({"loss": "prototypical", "margin": -0.5}, "margin of the prototypical loss must be zero or positive"),
        ({"samples_per_class": 1}, "samples_per_class must be at least 2 for loss 'triplet'"),
        ({"loss": "prototypical", "classes_per_batch": 1}, "classes_per_batch must be at least 2"),
    ],
)
def test_inconsistent_options_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve(overrides=overrides)


def test_an_unused_holdout_fraction_is_not_checked():
    assert resolve(overrides={"holdout_fraction": 0, "holdout_classes": [7, 8, 9]})["holdout_classes"] == [7, 8, 9]


def test_cli_trains_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main([
        "train", "--encoder", "mlp", "--epochs", "1", "--embedding-dim", "8", "--out", str(out), "--quiet",
        "--classes-per-batch", "4", "--samples-per-class", "3",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test_roc_auc" in printed and str(out) in printed
    config = json.loads((out / "config.json").read_text())
    assert (config["encoder"], config["classes_per_batch"], config["samples_per_class"]) == ("mlp", 4, 3)


def test_cli_refuses_p_x_k_batches_without_two_images_of_a_class(tmp_path, capsys):
    assert main(["train", "--samples-per-class", "1", "--epochs", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "samples_per_class must be at least 2" in err and "got 1" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # refused before any data is read or any directory made


def test_cli_unknown_choice_lists_valid_ones(capsys):
    assert main(["train", "--encoder", "transformer"]) == 2
    err = capsys.readouterr().err
    assert "invalid encoder 'transformer'" in err and "'cnn'" in err and "Traceback" not in err


def test_pair_csv_trains_end_to_end(tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    for i in range(120):
        Image.fromarray((digits.images[i] * 15).astype("uint8")).save(tmp_path / f"{i}.png")
    rows = ["path_a,path_b,label"]
    for _ in range(300):
        a, b = rng.integers(0, 120, size=2)
        rows.append(f"{a}.png,{b}.png,{int(digits.target[a] == digits.target[b])}")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    run, metrics = train(
        {**QUICK, "encoder": "mlp", "loss": "contrastive", "pairs_csv": str(tmp_path / "pairs.csv"),
         "out": str(tmp_path / "run")},
        verbose=0,
    )
    assert metrics["test_pairs"] == 90  # holdout_fraction 0.3 of 300 pairs
    assert run.config["input_shape"] == [8, 8, 1] and run.config["channels"] == 1
    assert os.path.isfile(run.file("manifest.csv"))
    with pytest.raises(ConfigError, match="needs class labels, which a pair CSV lacks"):
        train({**QUICK, "loss": "triplet", "pairs_csv": str(tmp_path / "pairs.csv"), "out": str(tmp_path / "t")})


@pytest.mark.data
@pytest.mark.slow
def test_cli_trains_the_multimodal_config(shared_data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SIAMKIT_DATA_DIR", str(shared_data_dir))
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "mnist_fsdd.toml")
    out = tmp_path / "mm"
    assert main(["train", "--config", config, "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert "audio_to_image" in capsys.readouterr().out
    run = runs.Run(str(out))
    assert run.is_two_tower and run.config["input_shape_b"] == [8000]
    assert set(run.read_json("metrics.json")["retrieval"]) == {"audio_to_image", "image_to_audio"}
    assert main(["evaluate", str(out)]) == 0
    assert "audio_to_image" in capsys.readouterr().out
    evaluated = run.read_json("eval/metrics.json")
    assert set(evaluated["retrieval"]) == {"audio_to_image", "image_to_audio"}
    assert set(evaluated["retrieval"]["audio_to_image"]) == {"R@1", "R@5", "R@10", "map_at_r"}
    assert 0.0 <= evaluated["verification"]["roc_auc"] <= 1.0
    # one handwritten digit against one recording, at the calibrated threshold
    import wave

    from PIL import Image

    fsdd, mnist = np.load(shared_data_dir / "fsdd.npz"), np.load(shared_data_dir / "mnist.npz")
    clip = fsdd["audio"][fsdd["offsets"][0] : fsdd["offsets"][1]]
    with wave.open(str(tmp_path / "clip.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(clip.astype("<i2").tobytes())
    Image.fromarray(mnist["test_images"][0]).save(tmp_path / "digit.png")
    assert main(["compare", str(out), str(tmp_path / "digit.png"), str(tmp_path / "clip.wav")]) == 0
    printed = capsys.readouterr().out
    assert "cosine" in printed and ("decision    same" in printed or "decision    different" in printed)
    # a spoken digit searches an index of handwritten digits
    x = (mnist["test_images"][:200] / 255.0).astype("float32")[..., None]
    np.savez(tmp_path / "gallery.npz", x=x, y=mnist["test_labels"][:200])
    index_dir = str(tmp_path / "gallery.index")
    assert main(["index", "build", str(out), "--data", str(tmp_path / "gallery.npz"), "--out", index_dir]) == 0
    capsys.readouterr()
    assert main(["search", index_dir, str(tmp_path / "clip.wav"), "-k", "3", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(json.dumps(found)) > 0 and "clip.wav" in json.dumps(found)


def test_batch_groups_must_name_a_field_of_the_data(tmp_path):
    with pytest.raises(ConfigError, match=r"batch_groups 'alphabet' is not a per-sample field of dataset 'digits'"):
        train({"epochs": 1, "batch_groups": "alphabet", "out": str(tmp_path / "run")})


def test_rotations_turn_groups_into_groups_of_their_own():
    from siamkit.training.trainer import _class_data

    x = np.random.default_rng(0).random((40, 4, 4, 1), dtype="float32")
    y = np.repeat(np.arange(10), 4)
    alphabet = np.repeat(np.array([0, 0, 0, 1, 1, 1, 1, 200, 200, 200], dtype=np.uint8), 4)
    config = resolve(overrides={"loss": "prototypical", "classes_per_batch": 4, "rotations": 4,
                                "batch_groups": "alphabet"})
    sampler, _ = _class_data(config, x, y, np.arange(40), np.arange(0), alphabet)
    assert len(sampler.x) == 160 and sampler.index.num_classes == 40
    # 3 alphabets x 4 turns = 12 groups, each class (a character in one turn) in one of them.
    assert len(sampler.group_classes) == 12
    assert sorted(len(g) for g in sampler.group_classes) == [3] * 8 + [4] * 4


def test_cli_rotate_by_flag_reaches_the_two_tower_trainer(tmp_path, monkeypatch, capsys):
    from siamkit.training import two_tower

    seen = {}

    def fake_train(config, verbose):
        seen.update(config)
        raise SystemExit(0)

    monkeypatch.setattr(two_tower, "train_two_tower", fake_train)
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "mnist_fsdd.toml")
    with pytest.raises(SystemExit):
        main(["train", "--config", config, "--rotate-by", "speaker", "--out", str(tmp_path / "mm")])
    assert seen["rotate_by"] == "speaker" and seen["test_speeds"] == [0.9, 1.0, 1.1] and seen["towers"] == 2
    assert main(["train", "--rotate-by", "speaker", "--out", str(tmp_path / "single")]) == 2
    assert "belong to two-tower training" in capsys.readouterr().err
    # flags of Siamese training are refused, not dropped
    assert main(["train", "--config", config, "--ensemble", "3", "--stream", "--out", str(tmp_path / "mm2")]) == 2
    err = capsys.readouterr().err
    assert "['ensemble', 'stream'] do not apply to a two-tower network" in err


def test_prototypical_margin_defaults_to_zero_and_reaches_the_loss():
    from siamkit.training.trainer import build_loss

    assert build_loss(resolve(overrides={"loss": "prototypical"})).margin == 0.0
    assert build_loss(resolve(overrides={"loss": "prototypical", "margin": 0.4})).margin == 0.4
    assert build_loss(resolve(overrides={"loss": "triplet"})).margin == 0.2


def test_summary_leaves_out_a_skipped_oneshot_protocol():
    from siamkit.training import holdout

    at = {"accuracy": {"accuracy": 0.9, "threshold": 0.5}}
    report = {
        "verification": {"roc_auc": 0.95, "at_threshold": at, "oracle": {"accuracy": 0.92}, "eer": 0.1, "n_pairs": 10},
        "oneshot": {"5-way 1-shot": {"accuracy": 0.8},
                    "omniglot within-alphabet 20-way": {"skipped": "no held-out evaluation alphabet has 20 characters"}},
    }
    summary = holdout.summary(report)
    assert summary["oneshot_5-way_1-shot"] == 0.8 and not any("within" in key for key in summary)
