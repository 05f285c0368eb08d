"""Training guards: a NaN or infinite loss stops training with a message, or its batch is skipped."""

import os

import keras
import numpy as np
import pytest

from siamkit.errors import ConfigError
from siamkit.training.guards import NonFiniteGuard, TrainingDiverged, guard_optimizer


def _data(poisoned=()):
    """16 batches of 4 rows; the batches in `poisoned` hold an infinite input (a NaN loss)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5], "float32")
    for b in poisoned:
        x[4 * b] = np.inf
    return x, y


def _model(guard, learning_rate=0.01):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=guard_optimizer(keras.optimizers.SGD(learning_rate), guard.on_nan), loss="mse")
    return model


def test_stop_names_epoch_step_and_learning_rate_and_keeps_the_last_epochs_checkpoint(tmp_path):
    x, y = _data()
    guard = NonFiniteGuard("stop")
    model = _model(guard)
    backup = str(tmp_path / "backup")
    keep_backup = lambda: keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)  # noqa: E731
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0,
              callbacks=[guard, keep_backup()])
    good = [w.copy() for w in model.get_weights()]
    x_bad, _ = _data(poisoned=[5])
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, step 6 \(learning rate 0\.01\).*--on-nan skip-batch"):
        model.fit(x_bad, y, batch_size=4, epochs=2, shuffle=False, verbose=0,
                  callbacks=[guard, keep_backup()])
    restored = _model(NonFiniteGuard("stop"))
    restored.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0,
                 callbacks=[keep_backup()])  # epoch 1 is done: nothing runs
    for a, b in zip(restored.get_weights(), good):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in restored.get_weights())


def test_skip_batch_leaves_the_weights_as_training_without_the_bad_batches():
    poisoned = [3, 9]
    x, y = _data(poisoned)
    guard = NonFiniteGuard("skip-batch")
    model = _model(guard)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[guard])
    assert guard.skipped == len(poisoned)
    keep = np.ones(len(x), bool)
    for b in poisoned:
        keep[4 * b : 4 * b + 4] = False
    reference = _model(NonFiniteGuard("stop"))
    reference.fit(x[keep], y[keep], batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_skip_batch_stops_when_too_many_batches_in_a_row_are_bad():
    x, y = _data(poisoned=range(2, 16))
    guard = NonFiniteGuard("skip-batch", max_skipped=3)
    with pytest.raises(TrainingDiverged, match=r"4 batches in a row .* skipped at epoch 1, step 6"):
        _model(guard).fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[guard])


def test_unknown_policy_is_refused():
    with pytest.raises(ConfigError, match="on_nan"):
        NonFiniteGuard("ignore")


def test_train_stops_on_a_diverging_loss_with_one_line_and_saves_no_model(tmp_path, capsys):
    from siamkit.cli import main

    out = tmp_path / "run"
    code = main(["train", "--learning-rate", "1e30", "--optimizer", "sgd", "--epochs", "2", "--embedding-dim", "8",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "at epoch 1, step" in err and "learning rate 1e+30" in err and "--on-nan skip-batch" in err
    assert (out / "config.json").is_file() and not (out / "model.keras").exists()
