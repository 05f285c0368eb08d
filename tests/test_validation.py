"""Validation on classes the model has not seen: the split, its fallback, early stopping, the oracle accuracy."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from siamkit import datasets
from siamkit.cli import main
from siamkit.data import MIN_TRAIN_CLASSES, resolve_validation, split_indices
from siamkit.errors import ConfigError, DataError
from siamkit.training import resolve, train, trainer
from siamkit.training.guards import NonFiniteGuard
from siamkit.training.stopping import BestEpoch

QUICK = {"encoder": "mlp", "embedding_dim": 8, "eval_pairs": 200}


def _parts(ds, config):
    return [set(np.unique(ds.y[idx]).tolist()) for idx in split_indices(ds, config)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_validation_holds_out_whole_training_classes(seed):
    ds = datasets.load("digits")
    config = resolve(overrides={"seed": seed, "holdout_classes": [7, 8, 9]})
    assert resolve_validation(ds, config)[0] == "classes"
    train_classes, val_classes, test_classes = _parts(ds, config)
    assert not train_classes & val_classes and not val_classes & test_classes and not train_classes & test_classes
    assert len(val_classes) == 2 and train_classes | val_classes == set(range(7)) and test_classes == {7, 8, 9}


def test_class_validation_by_groups_holds_out_whole_groups():
    ds = datasets.load("digits")
    group = (ds.y * 3 + np.random.default_rng(0).integers(0, 3, len(ds.y))) % 20  # 20 groups across the classes
    ds = datasets.Dataset("digits", ds.x, ds.y, meta={"group": group})
    config = resolve(overrides={"split_by": "group", "holdout_fraction": 0.3, "seed": 1})
    assert resolve_validation(ds, config)[0] == "classes"
    train_idx, val_idx, test_idx = split_indices(ds, config)
    train_groups, val_groups, test_groups = (set(group[idx].tolist()) for idx in (train_idx, val_idx, test_idx))
    assert not train_groups & val_groups and not val_groups & test_groups and not train_groups & test_groups
    assert len(val_groups) == 2 and len(train_groups) == 12 and len(test_groups) == 6


def test_too_few_training_classes_fall_back_to_images_and_say_so(tmp_path, capsys):
    ds = datasets.load("digits")
    config = resolve(overrides={"holdout_classes": [5, 6, 7, 8, 9]})  # 5 training classes: 2 out would leave 3
    mode, reason = resolve_validation(ds, config)
    assert mode == "images" and f"fewer than {MIN_TRAIN_CLASSES}" in reason and "seen classes" in reason
    train_classes, val_classes, _ = _parts(ds, config)
    assert train_classes == val_classes == {0, 1, 2, 3, 4}

    out = tmp_path / "fallback"
    argv = ["train", "--holdout-classes", "5", "6", "7", "8", "9", "--encoder", "mlp", "--embedding-dim", "8",
            "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "warning:" in printed and "seen classes" in printed
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["validation"] == "seen-classes" and "fewer than 5" in calibration["validation_reason"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation"] == "seen-classes"
    assert json.loads((out / "config.json").read_text())["validation"] == "images"


def test_validation_can_be_chosen_and_class_validation_needs_classes():
    ds = datasets.load("digits")
    config = resolve(overrides={"validation": "images", "holdout_classes": [7, 8, 9]})
    assert resolve_validation(ds, config) == ("images", "validation = 'images' was set")
    assert _parts(ds, config)[0] == _parts(ds, config)[1] == set(range(7))
    forced = resolve(overrides={"validation": "classes", "holdout_classes": [2, 3, 4, 5, 6, 7, 8, 9]})
    with pytest.raises(DataError, match="leaving none to train on"):
        split_indices(ds, forced)


def test_default_run_validates_on_unseen_classes_and_reports_the_oracle(tmp_path):
    run, metrics = train({**QUICK, "epochs": 2, "out": str(tmp_path / "run")}, verbose=0)
    config = run.config
    assert config["validation"] == "classes" and len(config["validation_classes"]) == 2
    assert not set(config["validation_classes"]) & set(config["train_classes"])
    assert metrics["validation"] == "unseen-classes" and "held out for validation" in metrics["validation_reason"]
    assert run.read_json("calibration.json")["validation"] == "unseen-classes"
    evaluation = run.read_json("eval/metrics.json")
    assert evaluation["validation"] == "unseen-classes"
    oracle = evaluation["verification"]["oracle"]
    assert metrics["test_oracle_accuracy"] == oracle["accuracy"] >= metrics["test_accuracy"]


def test_oracle_accuracy_is_the_best_of_every_threshold():
    from siamkit.evaluation import verification

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # ties on purpose
    for higher in (True, False):
        s = scores if higher else -scores
        result = verification.verification_metrics(labels, s, higher)["oracle"]
        candidates = np.r_[np.unique(s), np.inf, -np.inf]
        brute = max(np.mean(verification.decide(s, t, higher) == labels.astype(bool)) for t in candidates)
        assert result["accuracy"] == pytest.approx(brute)
        at = verification.threshold_metrics(labels, s, result["threshold"], higher)
        assert at["accuracy"] == pytest.approx(brute)


class _Monitored(keras.callbacks.Callback):
    """Puts `values[epoch]` in the logs as `val_loss` and keeps each epoch's weights."""

    def __init__(self, values):
        super().__init__()
        self.values, self.weights = values, []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.weights.append([w.copy() for w in self.model.get_weights()])


def _tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def test_best_epoch_stops_and_restores_the_best_weights(tmp_path):
    x, y = np.random.default_rng(0).random((16, 3)), np.random.default_rng(1).random((16, 2))
    model = _tiny_model()
    monitored = _Monitored([3.0, 1.0, 2.0, 2.5, 4.0, 0.5, 0.1])
    best = BestEpoch(tmp_path / "best", "val_loss", patience=3)
    history = model.fit(x, y, epochs=7, callbacks=[monitored, best], verbose=0, shuffle=False)
    assert len(history.epoch) == 5, "epochs 2, 3 and 4 did not improve on epoch 1: stopped after epoch 4"
    assert best.state["best_epoch"] == 1 and best.state["best"] == 1.0 and best.stopped
    for got, want in zip(model.get_weights(), monitored.weights[1]):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(monitored.weights[1][0], monitored.weights[4][0])
    # A callback on the same folder resumes its state (a resumed run keeps its best epoch and patience count).
    again = BestEpoch(tmp_path / "best", "val_loss", patience=3)
    assert again.state == best.state and again.stopped


def test_training_keeps_the_best_validation_epoch(tmp_path, monkeypatch):
    monitored = []

    class Recorder(NonFiniteGuard):  # the trainer's first callback of every fit
        def on_epoch_end(self, epoch, logs=None):
            monitored.append([w.copy() for w in self.model.get_weights()])

    monkeypatch.setattr(trainer, "NonFiniteGuard", Recorder)
    config = {**QUICK, "epochs": 8, "patience": 2, "learning_rate": 0.01, "out": str(tmp_path / "run")}
    run, metrics = train(config, verbose=0)
    with open(run.file("history.csv")) as f:
        auc = [float(row["val_roc_auc"]) for row in csv.DictReader(f)]  # the default monitor
    assert all(0.0 <= a <= 1.0 for a in auc) and metrics["best_epoch"] == int(np.argmax(auc))
    assert len(auc) == 8 or len(auc) == metrics["best_epoch"] + 3, "stops 2 epochs after the best"
    for got, want in zip(run.model.encoder.get_weights(), monitored[metrics["best_epoch"]]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not os.path.exists(run.file("best")), "the best weights are removed once the model is saved"
    # Without early stopping the last epoch is kept.
    run2, metrics2 = train({**config, "early_stopping": False, "out": str(tmp_path / "last")}, verbose=0)
    with open(run2.file("history.csv")) as f:
        assert len(list(csv.DictReader(f))) == 8
    assert "best_epoch" not in metrics2


def test_early_stopping_on_validation_loss(tmp_path):
    run, metrics = train({**QUICK, "epochs": 3, "monitor": "val_loss", "out": str(tmp_path / "run")}, verbose=0)
    with open(run.file("history.csv")) as f:
        rows = list(csv.DictReader(f))
    val_loss = [float(row["val_loss"]) for row in rows]
    assert "val_roc_auc" not in rows[0] and metrics["best_epoch"] == int(np.argmin(val_loss))


def test_only_the_bare_default_job_trains_the_ensemble():
    from siamkit.training.config import DEFAULT_JOB

    assert resolve()["ensemble"] == DEFAULT_JOB["ensemble"] > 1
    assert resolve(overrides={"seed": 3, "validation": "images", "out": "x"})["ensemble"] == DEFAULT_JOB["ensemble"]
    assert resolve(overrides={"encoder": "mlp"})["ensemble"] == 1
    assert resolve(overrides={"data": "photos"})["epochs"] == 15


def test_bare_dataset_mnist_trains_the_fast_recipe_of_its_config_file():
    import pathlib

    from siamkit.training.config import DATASET_JOBS, read_toml

    recipe = pathlib.Path(__file__).resolve().parent.parent / "configs" / "mnist_fast.toml"
    assert resolve(recipe) == resolve(overrides={"dataset": "mnist"})  # the file and the bare flag agree
    bare = resolve(overrides={"dataset": "mnist", "seed": 2, "out": "x"})
    assert {k: bare[k] for k in DATASET_JOBS["mnist"]} == DATASET_JOBS["mnist"]
    assert bare["ensemble"] == 1 and bare["loss"] == "prototypical"
    assert read_toml(recipe).items() >= DATASET_JOBS["mnist"].items()
    # Any option of one's own starts from the defaults, as for the default job.
    assert resolve(overrides={"dataset": "mnist", "loss": "contrastive"})["epochs"] == 15
    assert resolve(overrides={"dataset": "omniglot"})["loss"] == "triplet"


def test_cli_validation_and_early_stopping_flags(tmp_path):
    out = tmp_path / "cli"
    argv = ["train", "--encoder", "mlp", "--embedding-dim", "8", "--epochs", "1", "--validation", "images",
            "--patience", "3", "--no-early-stopping", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["validation"], config["patience"], config["early_stopping"]) == ("images", 3, False)


@pytest.mark.parametrize("seed", [0, 1])
def test_validation_folds_hold_out_disjoint_unseen_classes(seed):
    from siamkit.data import validation_folds

    ds = datasets.load("digits")
    config = resolve(overrides={"seed": seed, "holdout_classes": [7, 8, 9], "calibration_folds": 3})
    folds = validation_folds(ds, config)
    assert len(folds) == 3
    train0, val0, _ = split_indices(ds, config)
    assert np.array_equal(folds[0][0], train0) and np.array_equal(folds[0][1], val0)
    held = [set(ds.y[val].tolist()) for _, val in folds]
    for (train, val), classes in zip(folds, held):
        assert len(classes) == 2 and not classes & set(ds.y[train].tolist())  # no validation class is trained on
        assert set(ds.y[train].tolist()) | classes == set(range(7))  # every fold keeps the test classes out
    assert not held[0] & held[1] and not held[0] & held[2] and not held[1] & held[2]
    with pytest.raises(ConfigError, match="calibration_folds = 4 needs 8 training classes"):
        validation_folds(ds, {**config, "calibration_folds": 4})
    assert len(validation_folds(ds, {**config, "validation": "images"})) == 1  # image validation: one fold


def test_calibration_folds_choose_the_threshold_on_every_folds_pairs(tmp_path):
    from siamkit.evaluation import evaluate_run, read_fold_pairs

    out = tmp_path / "folds"
    run, metrics = train({**QUICK, "epochs": 1, "calibration_folds": 2, "out": str(out)}, verbose=0)
    labels, scores, fold = read_fold_pairs(run.path)
    assert len(labels) == len(scores) == QUICK["eval_pairs"] and set(fold.tolist()) == {1}
    assert not (out / trainer.FOLDS_DIR).exists()  # the fold models are gone, their scored pairs kept
    calibration = run.read_json("calibration.json")
    assert calibration["validation_folds"] == metrics["validation_folds"] == 2
    assert calibration["n_pairs"] == 2 * QUICK["eval_pairs"] and "further class folds" in calibration["protocol"]
    assert metrics["calibration_seconds"] > 0
    # Re-evaluating the run chooses the same threshold from the same pooled pairs.
    again = evaluate_run(run.path, protocol="verification", plot=False)["verification"]
    assert again["calibration"]["accuracy"]["threshold"] == calibration["thresholds"]["accuracy"]["threshold"]
    assert again["validation_folds"] == 2


def test_calibration_folds_keep_the_default_job_and_need_classes():
    from siamkit.training.config import DEFAULT_JOB

    assert resolve(overrides={"calibration_folds": 1})["ensemble"] == DEFAULT_JOB["ensemble"]
    with pytest.raises(ConfigError, match="calibration_folds must be a positive number"):
        resolve(overrides={"calibration_folds": 0})
    with pytest.raises(ConfigError, match="calibration_folds holds out training classes"):
        resolve(overrides={"pairs_csv": "pairs.csv", "calibration_folds": 2})


def test_an_interrupted_run_keeps_the_folds_it_scored(tmp_path, monkeypatch):
    from siamkit import _io
    from siamkit.evaluation import read_fold_pairs

    out = str(tmp_path / "run")
    config = {**QUICK, "epochs": 1, "calibration_folds": 2, "out": out}
    save_model = _io.save_model

    def interrupted(model, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(_io, "save_model", interrupted)  # stops after the folds, as the run's model is saved
    with pytest.raises(KeyboardInterrupt):
        train(config, verbose=0)
    scored = read_fold_pairs(os.path.join(out, trainer.FOLDS_DIR, "1"))
    assert scored is not None
    monkeypatch.setattr(_io, "save_model", save_model)
    trained, train_member = [], trainer._train_member
    monkeypatch.setattr(trainer, "_train_member", lambda *a: trained.append(a[1]) or train_member(*a))
    run, _ = train(config, verbose=0)
    assert trained == [0]  # the run's own member resumes; fold 1 is read back, not trained again
    np.testing.assert_array_equal(read_fold_pairs(run.path)[1], scored[1])
