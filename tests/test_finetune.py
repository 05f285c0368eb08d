"""Starting points and fine-tuning: a frozen backbone, BatchNorm in inference mode, resuming across the
freeze -> unfreeze boundary, init_from, mixed precision."""

import csv
import os

import keras
import numpy as np
import pytest

from siamkit import encoders, losses, runs
from siamkit.cli import main
from siamkit.errors import ConfigError
from siamkit.training import finetune, resolve, train, trainer
from siamkit.training.guards import NonFiniteGuard

QUICK = {"epochs": 3, "embedding_dim": 8, "eval_pairs": 200, "pairs_per_epoch": 256, "encoder": "cnn"}


def _weights(layers):
    return [keras.ops.convert_to_numpy(w).copy() for layer in layers for w in layer.weights]


@pytest.mark.backend
def test_phases_split_the_epochs():
    config = resolve(overrides={**QUICK, "epochs": 5, "freeze_backbone_epochs": 2, "learning_rate": 0.01})
    assert [(p.start, p.end, p.frozen, p.learning_rate) for p in finetune.phases(config)] == [
        (0, 2, True, 0.01), (2, 5, False, pytest.approx(0.001)),
    ]
    assert [(p.start, p.end, p.frozen) for p in finetune.phases(resolve(overrides=QUICK))] == [(0, 3, False)]
    for bad in (3, -1, 1.5):
        with pytest.raises(ConfigError, match="freeze_backbone_epochs must be a whole number from 0 to epochs - 1"):
            resolve(overrides={**QUICK, "freeze_backbone_epochs": bad})
    with pytest.raises(ConfigError, match="weights apply to keras.applications backbones"):
        resolve(overrides={**QUICK, "weights": "imagenet"})
    with pytest.raises(ConfigError, match="invalid mixed_precision 'float16'"):
        resolve(overrides={**QUICK, "mixed_precision": "float16"})


def test_top_layers_train_and_batch_norm_stays_in_inference_mode():
    enc = encoders.build("mobilenetv3small", (32, 32, 3), embedding_dim=8)
    config = {"freeze_backbone_epochs": 1, "trainable_layers": 10}
    backbone = finetune.backbone_layers(enc)
    assert len(backbone) > 100 and enc.get_layer("embedding") not in backbone

    finetune.set_trainable(enc, config, frozen=True)
    assert {w.path.split("/")[0] for w in enc.trainable_weights} == {"embedding"}

    finetune.set_trainable(enc, config, frozen=False)
    top = backbone[-10:]
    expected = {id(w) for layer in top if not isinstance(layer, keras.layers.BatchNormalization) for w in layer.weights}
    expected |= {id(w) for w in enc.get_layer("embedding").weights}
    assert {id(w) for w in enc.trainable_weights} == expected and any(layer.weights for layer in top)
    norms = [layer for layer in backbone if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)

    # Frozen BatchNorm runs in inference mode: a training-mode call neither uses batch statistics nor updates them.
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    before = _weights(norms)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(enc(x, training=True)), keras.ops.convert_to_numpy(enc(x, training=False)),
        atol=1e-5,
    )
    for a, b in zip(before, _weights(norms)):
        np.testing.assert_array_equal(a, b)


class _Snapshot(NonFiniteGuard):
    """Keeps the encoder's weights at the end of every epoch, in place of the trainer's first callback."""

    seen = []

    def on_epoch_end(self, epoch, logs=None):
        encoder = getattr(self.model, "encoder", self.model)
        _Snapshot.seen.append((epoch, _weights(encoder.layers[:-2]), _weights([encoder.get_layer("embedding")])))


def test_frozen_epochs_train_the_head_only(tmp_path, monkeypatch):
    _Snapshot.seen = []
    monkeypatch.setattr(trainer, "NonFiniteGuard", _Snapshot)
    keras.utils.set_random_seed(0)
    initial = encoders.build("cnn", (8, 8, 1), embedding_dim=8)  # the run's first encoder: same seed, same weights
    train({**QUICK, "epochs": 2, "freeze_backbone_epochs": 1, "out": str(tmp_path / "run"),
           "early_stopping": False}, verbose=0)
    (_, body0, head0), (_, body1, head1) = _Snapshot.seen
    start = _weights(initial.layers[:-2])
    assert all(np.array_equal(a, b) for a, b in zip(start, body0)), "the backbone is frozen in epoch 0"
    assert not np.allclose(head0[0], _weights([initial.get_layer("embedding")])[0]), "the head trains in epoch 0"
    assert not all(np.allclose(a, b) for a, b in zip(body0, body1)), "the backbone trains once unfrozen"


class _Interrupt(NonFiniteGuard):
    at = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch == _Interrupt.at:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("at", [0, 1], ids=["end-of-frozen-phase", "first-unfrozen-epoch"])
def test_run_resumes_across_the_freeze_boundary(tmp_path, monkeypatch, at):
    config = {**QUICK, "freeze_backbone_epochs": 1, "early_stopping": False}
    whole, _ = train({**config, "out": str(tmp_path / "whole")}, verbose=0)

    out = str(tmp_path / "resumed")
    _Interrupt.at = at
    monkeypatch.setattr(trainer, "NonFiniteGuard", _Interrupt)
    with pytest.raises(KeyboardInterrupt):
        train({**config, "out": out}, verbose=0)
    frozen_done = os.path.isfile(finetune.frozen_weights_path(out))
    assert frozen_done == (at == 1), "the frozen phase's weights are kept once it has finished"
    monkeypatch.setattr(trainer, "NonFiniteGuard", NonFiniteGuard)
    resumed, _ = train({**config, "out": out}, verbose=0)

    with open(resumed.file(runs.HISTORY_FILE)) as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2]
    assert not os.path.exists(os.path.join(out, finetune.FROZEN_DIR))
    x = np.random.default_rng(3).random((6, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(resumed.embed(x), whole.embed(x), atol=1e-5)


def test_init_from_copies_the_encoder_and_refuses_another_architecture(trained_run, tmp_path, capsys):
    source = trained_run.model.encoder
    encoder = encoders.build("cnn", (8, 8, 1), embedding_dim=16)
    finetune.init_from(encoder, trained_run.path)
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(encoder.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-6)

    wider = encoders.build("cnn", (8, 8, 1), embedding_dim=16, filters=(32, 48))
    with pytest.raises(ConfigError, match=r"does not have this run's architecture \(first difference: kernel"):
        finetune.init_from(wider, trained_run.path)

    out = str(tmp_path / "other")
    code = main(["train", "--init-from", trained_run.path, "--embedding-dim", "8", "--epochs", "1", "--out", out,
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "init_from" in err and "embedding_dim 16 there, 8 here" in err
    assert not os.path.exists(os.path.join(out, runs.MODEL_FILE))


def test_init_from_starts_training_where_the_run_ended(trained_run, tmp_path, monkeypatch):
    _Snapshot.seen = []
    monkeypatch.setattr(trainer, "NonFiniteGuard", _Snapshot)
    config = {**QUICK, "epochs": 1, "embedding_dim": 16, "validation": "images", "init_from": trained_run.path,
              "freeze_backbone_epochs": 0, "out": str(tmp_path / "run")}
    run, metrics = train(config, verbose=0)
    assert run.config["init_from"] == trained_run.path and np.isfinite(metrics["test_roc_auc"])
    # The first epoch started from the source run's weights: the frozen-BatchNorm-free cnn trains all layers,
    # so its weights after one epoch are near the source's, not near a fresh initialisation.
    fresh = _weights(encoders.build("cnn", (8, 8, 1), embedding_dim=16).layers[:-2])
    source = _weights(trained_run.model.encoder.layers[:-2])
    after = _Snapshot.seen[0][1]
    distance = lambda a, b: sum(float(np.abs(p - q).sum()) for p, q in zip(a, b))  # noqa: E731
    assert distance(after, source) < 0.2 * distance(after, fresh)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_computes_distances_and_losses_in_float32(tmp_path, policy):
    run, metrics = train({**QUICK, "epochs": 1, "encoder": "mlp", "mixed_precision": policy,
                          "out": str(tmp_path / "run")}, verbose=0)
    assert np.isfinite(metrics["test_roc_auc"]) and keras.config.dtype_policy().name == "float32"
    encoder = run.model.encoder
    assert encoder.get_layer("embedding").dtype_policy.name == policy
    assert encoder.get_layer("embedding").compute_dtype == policy.split("_")[1]
    x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    z = run.embed(x)
    assert z.dtype == np.float32

    # Against the same weights in float32: equal up to 16-bit rounding.
    with finetune.precision({"mixed_precision": None}):
        exact = encoders.build("mlp", (8, 8, 1), embedding_dim=8)
    exact.set_weights(encoder.get_weights())
    tolerance = 2e-2 if policy == "mixed_bfloat16" else 3e-3
    np.testing.assert_allclose(z, exact.predict(x, verbose=0), atol=tolerance)

    # The head and the loss work in float32 on the float32 embeddings.
    scores = run.model.score_embeddings(z[:16], z[16:])
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.linalg.norm(z[:16].astype(float) - z[16:], axis=1), rtol=1e-5)
    y = np.arange(32) % 4
    loss = losses.TripletLoss(margin=0.2, mining="all")(y, z)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"


def test_bad_weights_and_precision_flags_are_refused_with_one_line(tmp_path, capsys):
    for argv, message in (
        (["--encoder", "cnn", "--weights", "imagenet"], "weights apply to keras.applications backbones"),
        (["--encoder", "mobilenetv3small", "--weights", str(tmp_path / "none.h5")], "none.h5' does not exist"),
        (["--mixed-precision", "float8"], "invalid mixed_precision 'float8'"),
        (["--epochs", "2", "--freeze-backbone-epochs", "2"], "freeze_backbone_epochs must be a whole number"),
    ):
        out = tmp_path / "run"
        assert main(["train", *argv, "--out", str(out), "--quiet"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not (out / runs.MODEL_FILE).exists()
