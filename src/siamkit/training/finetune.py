"""Starting points and fine-tuning: weights from another run, a frozen backbone, mixed precision.

Training runs in phases of epochs. With `freeze_backbone_epochs = N`, epochs
`0..N-1` train the head (the `embedding` projection and what follows it)
with the backbone frozen, at `learning_rate`; the remaining epochs train
the backbone too (only its top `trainable_layers` layers when that is set)
at `fine_tune_learning_rate`. Whenever a run fine-tunes (it freezes first, or
starts from `weights` or `init_from`), the backbone's BatchNormalization
layers stay frozen, which in Keras 3 also keeps them in inference mode:
their statistics are the pretrained ones, as the Keras transfer-learning
guide prescribes.

A finished frozen phase leaves its weights in `FROZEN_DIR/FROZEN_WEIGHTS`,
so a run interrupted after it resumes in the unfrozen phase, from those
weights or from the unfrozen phase's own backup.
"""

import contextlib
import dataclasses
import os
import shutil

import keras

from .. import _io, runs
from ..errors import ConfigError

# The frozen phase's folder: its backup (`BACKUP`) while it trains, then its final weights.
FROZEN_DIR = "frozen"
FROZEN_BACKUP = "backup"
FROZEN_WEIGHTS = "encoder-frozen.weights.h5"
# The layers `siamkit.encoders.common.embedding_head` adds (and the float32 cast of mixed precision): the head.
HEAD_LAYERS = ("embedding_dropout", "embedding", "embedding_bn", "l2_normalize", "float32_embedding")


@dataclasses.dataclass(frozen=True)
class Phase:
    """Epochs `start..end-1`, trained with the backbone `frozen` or not, at `learning_rate`."""

    start: int
    end: int
    frozen: bool
    learning_rate: float

    @property
    def last(self):
        return not self.frozen


def phases(config):
    """The training phases of a config: one, or the frozen phase then the unfrozen one.

    Example:

    >>> [p.frozen for p in phases({"freeze_backbone_epochs": 2, "epochs": 5, "learning_rate": 1e-3,
    ...                            "fine_tune_learning_rate": 1e-4})]
    [True, False]
    """
    n, epochs = config.get("freeze_backbone_epochs", 0), config["epochs"]
    if not n:
        return [Phase(0, epochs, False, config["learning_rate"])]
    return [Phase(0, n, True, config["learning_rate"]), Phase(n, epochs, False, config["fine_tune_learning_rate"])]


def fine_tunes(config):
    """True when the run adapts weights it did not start from random: BatchNorm then stays in inference mode."""
    return bool(config.get("freeze_backbone_epochs") or config.get("weights") or config.get("init_from"))


def _leaves(layer):
    if isinstance(layer, keras.Model):
        return [leaf for sub in layer.layers for leaf in _leaves(sub)]
    return [layer]


def backbone_layers(encoder):
    """The encoder's layers below its embedding projection, nested models expanded, bottom first.

    Raises a `ConfigError` for an encoder without an `embedding` layer, which
    has no head to train on its own.
    """
    names = [layer.name for layer in encoder.layers]
    if "embedding" not in names:
        raise ConfigError(
            f"encoder {encoder.name!r} has no `embedding` projection, so it has no head to train while its "
            "backbone is frozen; use one of siamkit's encoders or leave freeze_backbone_epochs and "
            "trainable_layers unset"
        )
    return [
        leaf for layer in encoder.layers
        if layer.name not in HEAD_LAYERS and not isinstance(layer, keras.layers.InputLayer)
        for leaf in _leaves(layer)
    ]


def set_trainable(encoder, config, frozen):
    """Freeze or unfreeze the backbone for a phase; the head always trains.

    Unfrozen, only the top `trainable_layers` backbone layers train when that
    option is set. When the run fine-tunes (`fine_tunes`), BatchNormalization
    layers stay frozen, so they run in inference mode.

    Args:
        encoder: the encoder being trained.
        config: the run's options.
        frozen: the phase freezes the whole backbone.
    """
    if not (frozen or config.get("trainable_layers") or fine_tunes(config)):
        return  # plain training: every layer trains
    layers = backbone_layers(encoder)
    top = config.get("trainable_layers")
    trainable = set() if frozen else {id(layer) for layer in (layers[-top:] if top else layers)}
    keep_bn = fine_tunes(config)
    for layer in layers:
        bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) in trainable and not (bn and keep_bn)


def frozen_weights_path(member_dir):
    return os.path.join(member_dir, FROZEN_DIR, FROZEN_WEIGHTS)


def frozen_backup_dir(member_dir):
    return os.path.join(member_dir, FROZEN_DIR, FROZEN_BACKUP)


def finish_frozen_phase(model, member_dir):
    """Keep the weights at the end of the frozen phase, then drop its backup."""
    with _io.atomic_path(frozen_weights_path(member_dir), suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
    shutil.rmtree(frozen_backup_dir(member_dir), ignore_errors=True)


def resume_after_frozen_phase(model, member_dir):
    """True when the frozen phase finished before an interruption: `model` gets its final weights back."""
    path = frozen_weights_path(member_dir)
    if not os.path.isfile(path):
        return False
    shutil.rmtree(frozen_backup_dir(member_dir), ignore_errors=True)
    model.load_weights(path)
    return True


@contextlib.contextmanager
def precision(config):
    """Build under the run's `mixed_precision` policy (if any); the global policy is restored after."""
    policy = config.get("mixed_precision")
    if not policy:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_output(encoder):
    """`encoder` with its embeddings cast to float32 (`float32_embedding`), for mixed-precision encoders.

    Distances, heads and losses, built under the float32 policy, then compute
    in float32, and a saved run embeds in float32.
    """
    outputs = keras.layers.Activation("linear", dtype="float32", name="float32_embedding")(encoder.outputs[0])
    return keras.Model(encoder.inputs, outputs, name=encoder.name)


def loss_scaled(config, optimizer):
    """`optimizer`, wrapped in Keras' `LossScaleOptimizer` for `mixed_float16` (float16 gradients underflow)."""
    if config.get("mixed_precision") == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def check_init_from(config):
    """Refuse an `init_from` that is not a single-encoder run with this config's encoder, before data is read."""
    path = config.get("init_from")
    if path is None:
        return
    source = runs.Run(path)
    if source.is_two_tower:
        raise ConfigError(f"init_from {path!r} is a two-tower run; start from a Siamese run's encoder")
    theirs = {key: source.config.get(key) for key in ("encoder", "embedding_dim", "ensemble")}
    ours = {key: config.get(key) for key in theirs}
    if theirs != ours:
        _mismatch(path, ", ".join(f"{k} {theirs[k]!r} there, {ours[k]!r} here" for k in theirs if theirs[k] != ours[k]))


def _mismatch(path, difference):
    raise ConfigError(
        f"init_from {path!r}: its encoder does not have this run's architecture ({difference}); train with the "
        "same encoder options and image size, or drop init_from"
    )


def init_from(encoder, path):
    """Copy the encoder weights of the run at `path` into `encoder`, after checking every weight's shape.

    Args:
        encoder: the freshly built encoder of the new run.
        path: a run directory of `siamkit train`.
    """
    source = runs.Run(path).model.encoder
    theirs = [(w.path.split("/")[-1], tuple(w.shape)) for w in source.weights]
    ours = [(w.path.split("/")[-1], tuple(w.shape)) for w in encoder.weights]
    if theirs != ours:
        first = next(
            (f"{a[0]} {a[1]} there, {b[0]} {b[1]} here" for a, b in zip(theirs, ours) if a != b),
            f"{len(theirs)} weights there, {len(ours)} here",
        )
        _mismatch(path, f"first difference: {first}")
    encoder.set_weights(source.get_weights())
