"""Training options: defaults, validation, and TOML files.

A config is a flat dict. `siamkit train` builds it from the defaults, then a
`--config FILE.toml` (same keys as the flags, with underscores), then the
flags given on the command line; later sources win.

One schema covers both kinds of model. `towers = 1` trains a Siamese network
(one shared encoder); `towers = 2` a two-tower (multi-modal) network, one
encoder per modality: side a takes `data` / `dataset`, `modality_a`,
`encoder`, `encoder_options`, `image_size`, `channels`; side b the same keys
with `_b`. `towers` is 2 by itself when a second side is given (`data_b`
without a pair CSV, `dataset_b`, `modality_b` or `encoder_b`). In TOML the
sides may be written as tables: `[tower_a]` / `[tower_b]` with the keys
`data`, `dataset`, `subset`, `modality`, `encoder`, `encoder_options`,
`image_size`, `channels`.
"""

import sys

from ..errors import ConfigError, check_choice

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULTS = {
    # data
    "dataset": None,  # digits when no data is given
    "subset": None,
    "data": None,
    "data_b": None,
    "pairs_csv": None,
    "data_dir": None,
    "image_size": None,
    "channels": None,
    "skip_bad": False,
    "max_pixels": None,
    "stream": False,
    "cache_dir": None,
    "holdout_classes": None,
    "holdout_fraction": 0.3,
    "val_fraction": 0.15,
    "validation": "auto",  # "classes": whole training classes; "images": images of them; "auto": classes if 5+ remain
    "calibration_folds": 1,  # K > 1: the threshold is chosen on the validation classes of K class folds
    "split_by": None,  # a `meta` key (e.g. "alphabet"): split by whole groups, not classes
    "holdout_groups": None,  # with split_by: the groups held out as the test set
    "augment": None,
    "rotations": 1,  # 4: training classes also in 90/180/270 degree rotations, as new classes
    # two towers (multi-modal): side b, and what each side holds
    "towers": None,  # 1: Siamese, 2: two-tower; None: 2 when a second side is given
    "dataset_b": None,
    "subset_b": None,
    "modality_a": None,  # image, audio, text or features; None: what the data holds
    "modality_b": None,
    "image_size_b": None,
    "channels_b": None,
    "clip_seconds": 1.0,  # audio towers: clips are zero-padded or cropped to this length
    "speed": None,  # audio towers: [low, high] random speed change of training clips
    "time_shift": 0.0,  # audio towers: random delay of training clips, seconds
    "test_speeds": None,  # audio towers: embeddings averaged over these speed factors (test-time augmentation)
    "text_length": 64,  # text towers: UTF-8 bytes kept per text
    "rotate_by": None,  # a side-b `meta` key (e.g. "speaker"): after training, hold out each group in turn
    # model
    "encoder": "cnn",
    "embedding_dim": 64,
    "encoder_options": {},
    "head": "distance",
    "distance": "euclidean",
    "encoder_b": None,  # two towers: side b's encoder (default: by modality: cnn, audio, text, mlp)
    "encoder_options_b": {},
    "projection": False,  # two towers: a shared Dense projection after both encoders
    "normalize": True,  # two towers: L2-normalised embeddings
    "learn_temperature": True,  # two towers, loss clip: a learned temperature
    "positives": "mean",  # two towers, loss clip: how several same-class positives of a row count
    # objective
    "loss": "triplet",
    "margin": None,  # None: the loss's own default, MARGINS below
    "mining": "hard",
    "soft_margin": False,
    "temperature": 1.0,  # prototypical: logits are -distance / temperature
    "positive_fraction": 0.5,
    "pairs_per_epoch": None,
    "classes_per_batch": None,  # P of P x K batches; None: min(16, classes)
    "samples_per_class": 4,
    "batches_per_epoch": None,  # P x K batches per epoch (default: training images // (P * K))
    "batch_groups": None,  # a `meta` key (e.g. "alphabet"): P x K batches take their classes group by group
    "ensemble": 1,  # N > 1: N encoders trained in turn (seeds seed..seed+N-1), embeddings concatenated
    # starting point
    "weights": None,  # keras.applications backbones: "imagenet" (Keras' download cache) or a local weights file
    "init_from": None,  # a run directory whose encoder weights (same architecture) the training starts from
    "freeze_backbone_epochs": 0,  # N > 0: the first N epochs train the head with the backbone frozen
    "fine_tune_learning_rate": None,  # learning rate once the backbone is unfrozen (default: learning_rate / 10)
    "trainable_layers": None,  # K: unfreeze only the backbone's top K layers (default: all)
    "mixed_precision": None,  # "mixed_float16" or "mixed_bfloat16": float16/bfloat16 compute, float32 distances
    # optimisation
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "lr_schedule": "constant",  # or "cosine": decay to 0 over all epochs
    "epochs": 15,
    "batch_size": 128,
    "seed": 0,
    "early_stopping": True,  # stop when validation stops improving, keep the best epoch's weights
    "patience": 5,  # epochs without improvement before stopping
    "monitor": "val_roc_auc",  # what early stopping watches: "val_roc_auc" (of validation pairs) or "val_loss"
    "on_nan": "stop",  # a NaN or infinite batch loss: "stop" with a message, or "skip-batch" (no update)
    "distribute": None,  # "data-parallel": every batch split between the devices (see siamkit.training.distribute)
    # output
    "out": None,
    "eval_pairs": 2000,
}

# The default job (no data given: digits, classes 7-9 held out) trains an ensemble of five: on five
# training classes (two more validate) single networks vary a lot with their initial weights, and
# peak on the validation classes after one or two epochs. Two validation classes make a single
# negative class pair, so the threshold is chosen on three class folds (`calibration_folds`).
# Applied only when no option beyond `_JOB_OPTIONS` is given, so that any recipe of one's own starts
# from `DEFAULTS`.
DEFAULT_JOB = {"ensemble": 5, "epochs": 10, "calibration_folds": 3}
# Options that leave the default job what it is: where it goes, its seed, and how it is validated.
_JOB_OPTIONS = {"out", "seed", "data_dir", "eval_pairs", "validation", "early_stopping", "patience", "monitor",
                "on_nan", "distribute", "calibration_folds"}

# Dataset jobs: `siamkit train --dataset NAME` with no option beyond `_JOB_OPTIONS` trains that
# dataset's recipe. MNIST's is `configs/mnist_fast.toml` (docs/benchmarks/time-to-accuracy.md): a
# 3-block CNN, prototypical loss over P x K batches of all 10 digits, a cosine schedule, tested on
# MNIST's official test images (the meta field "split": 1) with validation images held out of training.
DATASET_JOBS = {
    "mnist": {
        "split_by": "split", "holdout_groups": [1], "val_fraction": 0.05,
        "encoder": "cnn", "embedding_dim": 64,
        "encoder_options": {"filters": [32, 64, 128], "dense_units": [], "l2_normalize": True},
        "distance": "sqeuclidean", "loss": "prototypical", "temperature": 0.125, "margin": 0.4,
        "classes_per_batch": 10, "samples_per_class": 16, "batches_per_epoch": 100,
        "optimizer": "adam", "learning_rate": 0.003, "lr_schedule": "cosine", "epochs": 24,
        "early_stopping": False, "eval_pairs": 10000,
    },
}

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# Default margins: contrastive pushes negatives past 1.0; triplet asks for a 0.2 gap; prototypical
# is Snell et al.'s softmax without one.
MARGINS = {"contrastive": 1.0, "triplet": 0.2, "prototypical": 0.0}
LR_SCHEDULES = ("constant", "cosine")
# What a two-tower network trains with: the in-batch CLIP loss, or the contrastive loss on every pair of a batch.
TWO_TOWER_LOSSES = ("clip", "contrastive")
# The options that only a two-tower network uses, with their defaults.
TWO_TOWER_ONLY = (
    "dataset_b", "subset_b", "modality_a", "modality_b", "image_size_b", "channels_b", "speed", "time_shift",
    "test_speeds", "rotate_by", "encoder_b", "encoder_options_b", "projection", "learn_temperature", "positives",
    "normalize", "clip_seconds", "text_length",
)
# Where a two-tower network's defaults differ from a Siamese network's. `encoder` None: by side a's modality.
TWO_TOWER_DEFAULTS = {"loss": "clip", "encoder": None}
# The cross-modal contrastive loss's default margin on cosine distances.
TWO_TOWER_MARGIN = 0.5
# Options that a two-tower network does not use (they shape Siamese pairs, P x K batches or ensembles).
SIAMESE_ONLY = (
    "head", "mining", "soft_margin", "positive_fraction", "pairs_per_epoch", "classes_per_batch",
    "samples_per_class", "batches_per_epoch", "batch_groups", "ensemble", "rotations", "stream", "cache_dir",
    "validation", "calibration_folds", "init_from", "freeze_backbone_epochs", "fine_tune_learning_rate", "trainable_layers",
    "mixed_precision", "weights",
)
# `[tower_a]` / `[tower_b]` TOML tables: their keys, and the flat key each becomes on side a (side b adds `_b`).
TOWER_KEYS = {
    "data": "data", "dataset": "dataset", "subset": "subset", "modality": "modality_a", "encoder": "encoder",
    "encoder_options": "encoder_options", "image_size": "image_size", "channels": "channels",
}
MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")
# What early stopping may watch, and which way is better.
MONITORS = {"val_loss": "min", "val_roc_auc": "max"}


def _choices():
    from .. import distances, encoders, losses, miners, models
    from ..data.splits import VALIDATION
    from .guards import ON_NAN

    return {
        "encoder": list(encoders.ENCODERS),
        "head": list(models.HEADS),
        "loss": [*losses.LOSSES, "clip"],
        "distance": list(distances.DISTANCES),
        "mining": list(miners.MINERS),
        "optimizer": list(OPTIMIZERS),
        "lr_schedule": list(LR_SCHEDULES),
        "validation": list(VALIDATION),
        "monitor": list(MONITORS),
        "on_nan": list(ON_NAN),
    }


def read_toml(path):
    """Read a TOML config file; unknown keys are an error."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    for side in ("a", "b"):
        table = data.pop(f"tower_{side}", None)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: tower_{side} must be a table, e.g. [tower_{side}] with encoder = \"cnn\"")
        unknown = sorted(set(table) - set(TOWER_KEYS))
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {unknown} in [tower_{side}]; valid keys are: {', '.join(TOWER_KEYS)}"
            )
        for key, value in table.items():
            flat = TOWER_KEYS[key] if side == "a" else TOWER_KEYS[key].removesuffix("_a") + "_b"
            if flat in data:
                raise ConfigError(f"{path}: {flat} is given twice, at the top and in [tower_{side}]; keep one")
            data[flat] = value
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; valid keys are: {', '.join(sorted(DEFAULTS))}")
    return data


def resolve(file=None, overrides=None):
    """Merge defaults, a TOML file and explicit overrides, then validate.

    With no file and no options but those of `_JOB_OPTIONS`, the result is
    the default job: `DEFAULTS` with `DEFAULT_JOB`; with only a `dataset`
    of `DATASET_JOBS` besides them, that dataset's recipe.

    Args:
        file: path of a TOML config, or None.
        overrides: dict of options; `None` values mean "not given".

    Returns:
        The complete, validated config dict.
    """
    given = read_toml(file) if file else {}
    given.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config = dict(DEFAULTS)
    if not file and set(given) <= _JOB_OPTIONS:
        config.update(DEFAULT_JOB)
    elif not file and given.get("dataset") in DATASET_JOBS and set(given) - {"dataset"} <= _JOB_OPTIONS:
        config.update(DATASET_JOBS[given["dataset"]])
    config.update(given)
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}; valid options are: {', '.join(sorted(DEFAULTS))}")
    if _resolve_towers(config) == 2:
        config.update({k: v for k, v in TWO_TOWER_DEFAULTS.items() if k not in given})
    return validate(config)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(config, key, kind=int):
    value = config[key]
    if not _is_number(value) or value <= 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}")
    config[key] = kind(value)


def _resolve_towers(config):
    """`config["towers"]`: as given, else 2 when a second side is given, else 1."""
    towers = config["towers"]
    if towers is None:
        second = (config["data_b"] and not config["pairs_csv"]) or any(
            config[k] is not None for k in ("dataset_b", "modality_b", "encoder_b")
        )
        towers = 2 if second else 1
    check_choice("towers", towers, [1, 2])
    config["towers"] = towers
    return towers


def _validate_two_tower(config):
    from ..data import augment

    used = [k for k in SIAMESE_ONLY if config[k] != DEFAULTS[k]]
    if used:
        raise ConfigError(f"option(s) {used} do not apply to a two-tower network (towers = 2); remove them")
    check_choice("loss", config["loss"], TWO_TOWER_LOSSES)
    check_choice("positives", config["positives"], ["mean", "sum"])
    for side in ("a", "b"):
        if config[f"modality_{side}"] is not None:
            check_choice(f"modality_{side}", config[f"modality_{side}"], ["image", "audio", "text", "features"])
    if not isinstance(config["encoder_options_b"], dict):
        raise ConfigError(
            f"encoder_options_b must be a table of encoder arguments, got {config['encoder_options_b']!r}"
        )
    for key in ("projection", "normalize", "learn_temperature"):
        if not isinstance(config[key], bool):
            raise ConfigError(f"{key} must be true or false, got {config[key]!r}")
    _positive(config, "clip_seconds", float)
    _positive(config, "text_length")
    if config["batch_size"] < 2:
        raise ConfigError("batch_size must be at least 2: the other rows of a batch are its negatives")
    speed = config["speed"]
    if speed is not None and (
        not isinstance(speed, list) or len(speed) != 2 or not all(_is_number(v) for v in speed)
        or not 0 < speed[0] <= speed[1]
    ):
        raise ConfigError(f"speed must be [low, high] with 0 < low <= high (or omitted), got {speed!r}")
    if not _is_number(config["time_shift"]) or not 0 <= config["time_shift"] < config["clip_seconds"]:
        raise ConfigError(f"time_shift must be in [0, clip_seconds), got {config['time_shift']!r}")
    speeds = config["test_speeds"]
    if speeds is not None and (
        not isinstance(speeds, list) or not speeds or not all(_is_number(v) and v > 0 for v in speeds)
    ):
        raise ConfigError(
            f"test_speeds must be a list of positive speed factors such as [0.9, 1.0, 1.1], got {speeds!r}"
        )
    if config["rotate_by"] is not None and config["split_by"] == config["rotate_by"]:
        raise ConfigError("rotate_by holds out each group in turn; it cannot also be split_by with fixed holdout_groups")
    if config["split_by"] is not None and config["holdout_groups"] is None:
        raise ConfigError(
            "a two-tower split_by needs holdout_groups, the groups of that meta key held out as the test set"
        )
    augment.from_config(config["augment"])
    if config["margin"] is None:
        config["margin"] = TWO_TOWER_MARGIN
    for key in ("learning_rate", "margin"):
        _positive(config, key, float)
    for key in ("val_fraction", "holdout_fraction"):
        if not (_is_number(config[key]) and 0.0 < config[key] < 1.0):
            raise ConfigError(f"{key} must be in (0, 1), got {config[key]!r}")
    for key in ("embedding_dim", "epochs", "batch_size", "eval_pairs", "patience"):
        _positive(config, key)
    _positive(config, "temperature", float)
    check_choice("optimizer", config["optimizer"], list(OPTIMIZERS))
    check_choice("lr_schedule", config["lr_schedule"], list(LR_SCHEDULES))
    check_choice("monitor", config["monitor"], list(MONITORS))
    if not isinstance(config["early_stopping"], bool):
        raise ConfigError(f"early_stopping must be true or false, got {config['early_stopping']!r}")
    config["distance"] = "cosine"  # the towers meet in cosine space: CLIP's logits and the contrastive distance
    return config


def validate(config):
    """Check every option's type and range; returns the config."""
    from .. import losses  # Keras loads here, not when the config helpers are imported
    from ..data import augment
    from .distribute import check

    config["distribute"] = check(config["distribute"])  # also refused on a backend without an engine for it
    if _resolve_towers(config) == 2:
        return _validate_two_tower(config)
    used = [k for k in TWO_TOWER_ONLY if config[k] != DEFAULTS[k]]
    if used:
        raise ConfigError(
            f"option(s) {used} belong to two-tower training; give a second side (data_b, dataset_b, "
            "modality_b or encoder_b) or set towers = 2"
        )
    for key, choices in _choices().items():
        check_choice(key, config[key], choices)
    for key in (
        "embedding_dim", "epochs", "batch_size", "samples_per_class", "eval_pairs", "ensemble", "patience",
        "calibration_folds",
    ):
        _positive(config, key)
    if config["classes_per_batch"] is not None:
        _positive(config, "classes_per_batch")
    if config["batches_per_epoch"] is not None:
        _positive(config, "batches_per_epoch")
    check_choice("rotations", config["rotations"], [1, 2, 4])
    if config["calibration_folds"] > 1 and config["pairs_csv"]:
        raise ConfigError(
            "calibration_folds holds out training classes, which a pair CSV lacks: set calibration_folds = 1"
        )
    if not isinstance(config["early_stopping"], bool):
        raise ConfigError(f"early_stopping must be true or false, got {config['early_stopping']!r}")
    if config["rotations"] > 1 and config["stream"]:
        raise ConfigError("rotations turn the whole training set in memory, which stream avoids: use one or the other")
    augment.from_config(config["augment"])  # a mistyped option fails here, before any data is read
    if config["holdout_groups"] is not None and config["split_by"] is None:
        raise ConfigError("holdout_groups needs split_by, the meta key the groups belong to (e.g. 'alphabet')")
    if config["batch_groups"] is not None and config["loss"] not in losses.BATCH_LOSSES:
        raise ConfigError(
            f"batch_groups shapes P x K batches, which loss {config['loss']!r} does not use; "
            f"use one of {', '.join(sorted(losses.BATCH_LOSSES))}"
        )
    if config["loss"] in losses.BATCH_LOSSES:
        for key in ("classes_per_batch", "samples_per_class"):
            value = config[key]
            if value is not None and value < 2:
                raise ConfigError(
                    f"{key} must be at least 2 for loss {config['loss']!r}: every P x K batch needs two classes "
                    f"and two images of each (a positive and a negative for every anchor), got {value}"
                )
    if config["margin"] is None:
        config["margin"] = MARGINS.get(config["loss"], 1.0)
    for key in ("learning_rate", "temperature"):
        _positive(config, key, float)
    if config["loss"] != "prototypical":
        _positive(config, "margin", float)
    elif _is_number(config["margin"]) and config["margin"] >= 0:
        config["margin"] = float(config["margin"])
    else:
        raise ConfigError(f"margin of the prototypical loss must be zero or positive, got {config['margin']!r}")
    fractions = ["val_fraction"]
    if config["holdout_classes"] is None and config["holdout_groups"] is None:
        fractions.append("holdout_fraction")  # otherwise unused
    for key in fractions:  # each part must hold something
        if not (_is_number(config[key]) and 0.0 < config[key] < 1.0):
            raise ConfigError(f"{key} must be in (0, 1), got {config[key]!r}")
    if not (_is_number(config["positive_fraction"]) and 0.0 <= config["positive_fraction"] < 1.0):
        raise ConfigError(f"positive_fraction must be in [0, 1), got {config['positive_fraction']!r}")
    if config["loss"] == "bce" and config["head"] == "distance":
        raise ConfigError("loss 'bce' needs a probability head: use --head l1 or --head concat")
    if config["loss"] in losses.DISTANCE_LOSSES and config["head"] != "distance":
        raise ConfigError(f"loss {config['loss']!r} trains distances: use --head distance (or --loss bce)")
    if config["loss"] in losses.DISTANCE_LOSSES and config["distance"] == "dot":
        raise ConfigError(f"loss {config['loss']!r} needs a distance, not the similarity 'dot'")
    if config["ensemble"] > 1 and config["head"] != "distance":
        raise ConfigError(
            f"ensemble = {config['ensemble']} concatenates the members' embeddings, which head "
            f"{config['head']!r} cannot score: use --head distance or ensemble = 1"
        )
    _validate_starting_point(config)
    if not isinstance(config["encoder_options"], dict):
        raise ConfigError(f"encoder_options must be a table of encoder arguments, got {config['encoder_options']!r}")
    return config


def _validate_starting_point(config):
    """Check the weights, fine-tuning and precision options."""
    from ..encoders import BACKBONES

    if config["weights"] is not None and config["encoder"] not in BACKBONES:
        raise ConfigError(
            f"weights apply to keras.applications backbones ({', '.join(sorted(BACKBONES))}), "
            f"not to encoder {config['encoder']!r}; use init_from to start from a run of your own"
        )
    if config["weights"] is not None and config["init_from"] is not None:
        raise ConfigError("weights and init_from both set the starting weights: give one of them")
    if config["init_from"] is not None and config["ensemble"] > 1:
        raise ConfigError("init_from starts one encoder from a run's encoder: use it with ensemble = 1")
    freeze = config["freeze_backbone_epochs"]
    if not (_is_number(freeze) and int(freeze) == freeze and 0 <= freeze < config["epochs"]):
        raise ConfigError(
            f"freeze_backbone_epochs must be a whole number from 0 to epochs - 1 ({config['epochs'] - 1}): "
            f"the backbone is unfrozen for the epochs after it, got {freeze!r}"
        )
    config["freeze_backbone_epochs"] = int(freeze)
    if config["fine_tune_learning_rate"] is None and freeze:
        config["fine_tune_learning_rate"] = config["learning_rate"] / 10.0
    if config["fine_tune_learning_rate"] is not None:
        _positive(config, "fine_tune_learning_rate", float)
    if config["trainable_layers"] is not None:
        _positive(config, "trainable_layers")
    if config["mixed_precision"] is not None:
        check_choice("mixed_precision", config["mixed_precision"], list(MIXED_PRECISION))
