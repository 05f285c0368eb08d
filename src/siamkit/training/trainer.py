"""`train(config)`: data -> split -> model -> fit -> run directory.

A Siamese network (`towers = 1`) is trained here; a two-tower network
(`towers = 2`) by `siamkit.training.two_tower`, with the same run
directory, resumption and callbacks (`fit_with_callbacks`).

An interrupted run resumes: `keras.callbacks.BackupAndRestore` keeps the
weights and optimizer state of the last finished epoch in `RUN_DIR/backup`,
and training the same config into the same `--out` picks up from there. An
ensemble (`ensemble = N`) keeps each member's backup in `RUN_DIR/members/K/`
and each finished member there too, so it resumes inside the member it was
training.
"""

import csv
import io
import json
import os
import shutil
import time

import keras
import numpy as np

from .. import _io, encoders, evaluation, losses, models, runs
from ..data import (
    ClassBalancedBatches,
    LabelledPairs,
    PairDataset,
    meta_field,
    resolve_validation,
    sample_pairs,
    split_indices,
    split_pairs,
    validation_folds,
)
from ..errors import ConfigError, DataError
from .config import DEFAULTS, MONITORS, resolve
from ..datasets import Pairs, load_inputs
from ..datasets.base import select
from . import distribute, finetune, holdout
from .feed import fit_sampler
from .guards import NonFiniteGuard, guard_optimizer
from .stopping import BestEpoch, PairAUC

BACKUP_DIR = "backup"
# Early stopping's best weights and state (`BestEpoch`), beside the backup.
BEST_DIR = "best"
# An ensemble trains its members in RUN_DIR/members/K/ and keeps each finished one there as encoder.keras.
MEMBERS_DIR = "members"
MEMBER_FILE = "encoder.keras"
# `calibration_folds = K`: fold k's models train in RUN_DIR/folds/k/ and leave their scored validation pairs there.
FOLDS_DIR = "folds"
# Options that may differ between an interrupted run and its resumption.
_RESUMABLE_KEYS = ("out", "epochs", "on_nan", "distribute")
# What an unfinished run keeps in its directory; removed once its metrics are written.
_LEFTOVERS = (BACKUP_DIR, BEST_DIR, MEMBERS_DIR, FOLDS_DIR, finetune.FROZEN_DIR)


def new_run_dir(out):
    """Create the run directory `out` (default: `runs/DATE-TIME`, made unique) and return its path.

    Raises a `ConfigError` when `out` already holds a finished run: its
    model and no backup (a run stopped during its final evaluation keeps its
    backup, and a rerun evaluates it).
    """
    if out is None:
        out = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
        base, n = out, 1
        while os.path.exists(out):
            out, n = f"{base}-{n}", n + 1
    if os.path.isfile(os.path.join(out, runs.MODEL_FILE)) and not _started(out):
        raise ConfigError(f"{out!r} already holds a trained model; choose a new --out directory")
    os.makedirs(out, exist_ok=True)
    return out


def _started(run_dir):
    """True when `run_dir` holds what an unfinished run keeps (a backup, early stopping's state, members)."""
    return any(os.path.isdir(os.path.join(run_dir, d)) for d in _LEFTOVERS)


def finish(run_dir):
    """Remove what a run kept to resume; called once its metrics are written, which makes it finished."""
    for leftover in _LEFTOVERS:
        shutil.rmtree(os.path.join(run_dir, leftover), ignore_errors=True)


def resuming(run_dir, config, defaults=DEFAULTS):
    """True when `run_dir` holds an interrupted run of the same config (`defaults`: its kind's options)."""
    config_path = os.path.join(run_dir, runs.CONFIG_FILE)
    if not (_started(run_dir) and os.path.isfile(config_path)):
        return False
    with open(config_path, encoding="utf-8") as f:
        saved = json.load(f)
    # An option newer than the saved config had its default value then.
    changed = sorted(k for k in config if k not in _RESUMABLE_KEYS and saved.get(k, defaults.get(k)) != config[k])
    if changed:
        raise ConfigError(
            f"{run_dir!r} holds an interrupted run with different options {changed}; "
            "resume with the same options or choose a new --out"
        )
    return True


def build_encoder(config, input_shape, **extra):
    options = {"embedding_dim": config["embedding_dim"], **config["encoder_options"], **extra}
    if config.get("weights") is not None:  # keras.applications backbones: "imagenet" or a local file
        options["weights"] = config["weights"]
    try:
        return encoders.build(config["encoder"], input_shape, **options)
    except TypeError as err:  # an encoder_options key the factory does not take
        raise ConfigError(f"encoder {config['encoder']!r}: {err}") from None


def build_head(config):
    if config["head"] == "distance":
        return models.DistanceHead(config["distance"])
    return models.HEADS[config["head"]]()


def build_loss(config):
    if config["loss"] == "contrastive":
        return losses.ContrastiveLoss(margin=config["margin"], distance=config["distance"])
    if config["loss"] == "triplet":
        return losses.TripletLoss(
            margin=config["margin"], mining=config["mining"], soft_margin=config["soft_margin"],
            distance=config["distance"],
        )
    if config["loss"] == "prototypical":
        return losses.PrototypicalLoss(
            distance=config["distance"], temperature=config["temperature"], margin=config["margin"]
        )
    return losses.BinaryCrossEntropy()


def build_optimizer(config, steps_per_epoch=1):
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    learning_rate = config["learning_rate"]
    if config.get("lr_schedule") == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, config["epochs"] * steps_per_epoch)
    optimizer = finetune.loss_scaled(config, classes[config["optimizer"]](learning_rate=learning_rate))
    return guard_optimizer(optimizer, config.get("on_nan", "stop"))


def _augmenter(config):
    if not config["augment"]:
        return None
    from ..data.augment import from_config

    return from_config(config["augment"], seed=config["seed"])


def _turned_ids(ids, rotations):
    """`ids` (any labels) as 0..n-1 once per turn, each turn's shifted past the previous turn's."""
    codes = np.unique(ids, return_inverse=True)[1].reshape(-1).astype(np.int64)  # no overflow of uint8 ids
    offset = int(codes.max()) + 1
    return np.concatenate([codes + k * offset for k in range(rotations)])


def _rotated(x, y, rotations, groups=None):
    """`x` also turned by 360 / `rotations` degree steps, each turn a new set of classes (and groups)."""
    if rotations == 1:
        return x, y, groups
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ConfigError(f"rotations need square images (n, side, side, channels), got shape {x.shape}")
    step = 4 // rotations
    turned = np.concatenate([np.rot90(x, k * step, axes=(1, 2)) for k in range(rotations)])
    return turned, _turned_ids(y, rotations), None if groups is None else _turned_ids(groups, rotations)


def _validation_pairs(config, x_val, y_val):
    """`([x1, x2], same)`: fixed, seeded pairs of the validation images."""
    try:
        first, second, same = sample_pairs(y_val, config["eval_pairs"], rng=config["seed"])
    except DataError as err:
        part = (
            f"the validation images (val_fraction {config['val_fraction']} of each training class's images)"
            if config["validation"] == "images" else "the validation classes"
        )
        raise DataError(
            f"{part} cannot form pairs: {err}. Use classes with more images or a larger val_fraction"
        ) from None
    return [x_val[first], x_val[second]], same


def _class_data(config, x, y, train_idx, val_idx, groups=None):
    """The sampler to fit on and fixed validation data, for class-labelled data.

    `groups` (per sample, from `batch_groups`) make P x K batches take their
    classes group by group.
    """
    seed = config["seed"]
    augment = _augmenter(config)
    # `select` keeps a streamed folder (`ImageStore`) lazy: the samplers decode it batch by batch.
    x_train, y_train, g_train = _rotated(
        select(x, train_idx), y[train_idx], config.get("rotations", 1), None if groups is None else groups[train_idx]
    )
    if config["loss"] in losses.BATCH_LOSSES:
        classes = config["classes_per_batch"] or min(16, len(np.unique(y_train)))
        train = ClassBalancedBatches(
            x_train, y_train, classes, config["samples_per_class"],
            batches_per_epoch=config.get("batches_per_epoch"), augment=augment, seed=seed, groups=g_train,
        )
        # In a seeded random order, so that validation batches mix classes as training batches do.
        val_idx = np.random.default_rng(seed).permutation(val_idx)
        return train, (x[val_idx], y[val_idx])
    train = PairDataset(
        x_train, y_train, batch_size=config["batch_size"], positive_fraction=config["positive_fraction"],
        pairs_per_epoch=config["pairs_per_epoch"], augment=augment, seed=seed,
    )
    return train, _validation_pairs(config, x[val_idx], y[val_idx])


def _pairs_data(config, train_pairs, val_pairs):
    """The sampler to fit on and validation data, for labelled pairs."""
    if config["loss"] in losses.BATCH_LOSSES:
        raise ConfigError(
            f"loss {config['loss']!r} needs class labels, which a pair CSV lacks: use --loss contrastive or bce"
        )
    train = LabelledPairs(
        train_pairs.x_a, train_pairs.x_b, train_pairs.index_a, train_pairs.index_b, train_pairs.y,
        batch_size=config["batch_size"], augment=_augmenter(config), seed=config["seed"],
    )
    return train, ([val_pairs.first, val_pairs.second], val_pairs.y.astype("float32"))


def _record_input_policy(config, loaded):
    """Store the image policy the data was read with, for reading files later."""
    info = loaded.info
    if info.get("image_size") is not None:
        config["image_size"] = list(info["image_size"])
    if info.get("channels") is not None:
        config["channels"] = int(info["channels"])


def train(config=None, verbose="auto", distribution=None):
    """Train a Siamese network and write its run directory.

    Data with classes (a standard dataset or an image folder) is split by
    class: the test classes are never seen in training, and validation pairs
    come from held-out training classes (`validation = "classes"`, the
    default when 5 or more training classes remain) or from held-out images
    of the training classes (`"images"`); see
    `siamkit.data.resolve_validation`. Validation chooses the decision
    threshold and, with `early_stopping`, the epoch whose weights are kept:
    training stops after `patience` epochs in which `monitor` (the ROC AUC
    of the validation pairs, or the validation loss) did not improve.
    Labelled pairs (a pair CSV) are split at random into train, validation
    and test pairs.

    With `calibration_folds = K > 1` and class validation, K - 1 further
    models of the same recipe, each trained without another fold of
    validation classes, score that fold's pairs; the threshold is chosen on
    the validation pairs of all K folds (`siamkit.data.validation_folds`).

    With `ensemble = N > 1`, N encoders are trained one after another on the
    same split, member k with seed `seed + k` (initial weights, batches,
    augmentation) for `epochs` each, and the saved model's encoder is
    `siamkit.encoders.ensemble` of them: their embeddings concatenated.

    With `distribution = "data-parallel"` (or `distribute` in the config)
    every batch is split between the devices, and the losses still see the
    whole batch; see `siamkit.training.distribute`.

    Args:
        config: options (see `siamkit.training.config.DEFAULTS`); missing
            keys take their defaults.
        verbose: Keras' `fit` verbosity; 0 also hides the progress bars of reading image files.
        distribution: `"data-parallel"` or `"none"`; overrides the config's `distribute`.

    Returns:
        `(run, metrics)`: the `siamkit.runs.Run` and its held-out metrics.

    Example:

    >>> run, metrics = train({"epochs": 1, "out": "runs/demo"})  # doctest: +SKIP
    """
    config = resolve(overrides=config if distribution is None else {**(config or {}), "distribute": distribution})
    distribute.engine(config["distribute"])  # a cluster is joined before anything runs on the devices
    if config["towers"] == 2:
        from .two_tower import train_two_tower

        return train_two_tower(config, verbose)
    finetune.check_init_from(config)
    run_dir = new_run_dir(config["out"])
    config["out"] = run_dir
    keras.utils.set_random_seed(config["seed"])

    loaded = load_inputs({**config, "progress": verbose != 0}, run_dir)  # quiet fits read files quietly too
    _record_input_policy(config, loaded)
    if isinstance(loaded, Pairs):
        train_pairs, val_pairs, test_pairs = split_pairs(loaded, config)
        sample = train_pairs.x_a[train_pairs.index_a[:1]]  # one image, not every first image of the pairs

        def member_data(member_config):
            return _pairs_data(member_config, train_pairs, val_pairs)

    else:
        x, y = loaded.x, loaded.y
        if config["holdout_classes"] is None and not (config["data"] or config["dataset"] not in (None, "digits")):
            config["holdout_classes"] = [7, 8, 9]  # the embedded default: train on 0-6, test on 7-9
        config["validation"], config["validation_reason"] = resolve_validation(loaded, config)
        train_idx, val_idx, test_idx = split_indices(loaded, config)
        folds = validation_folds(loaded, config)
        config["calibration_folds"] = len(folds)  # image-level validation has one
        config["train_classes"] = np.unique(y[train_idx]).tolist()
        config["validation_classes"] = np.unique(y[val_idx]).tolist()
        config["test_classes"] = np.unique(y[test_idx]).tolist()
        sample = x[:1]
        groups = meta_field(loaded, config, "batch_groups")

        def member_data(member_config):
            return _class_data(member_config, x, y, train_idx, val_idx, groups)

    resume = resuming(run_dir, config)
    config["input_shape"] = list(sample.shape[1:])
    config["higher_is_similar"] = build_head(config).higher_is_similar
    config["keras_backend"] = keras.backend.backend()
    if not resume:
        _io.write_json(os.path.join(run_dir, runs.CONFIG_FILE), config)

    started = time.perf_counter()
    members, best_epochs = zip(
        *(_train_member(config, k, member_data, sample, resume, verbose) for k in range(config["ensemble"]))
    )
    train_seconds = time.perf_counter() - started
    model = _joined(config, members, sample)
    if len(members) > 1:
        _join_histories(run_dir, len(members))
    fold_seconds = 0.0
    if not isinstance(loaded, Pairs) and len(folds) > 1:  # before the model is saved: an interruption resumes here
        started = time.perf_counter()
        evaluation.write_fold_pairs(run_dir, *_fold_pairs(config, folds, x, y, groups, sample, verbose))
        fold_seconds = time.perf_counter() - started

    _io.save_model(model, os.path.join(run_dir, runs.MODEL_FILE))
    run = runs.Run(run_dir)
    if isinstance(loaded, Pairs):
        report = holdout.evaluate_pairs(run, val_pairs, test_pairs)
    else:
        report = holdout.evaluate_classes(run, loaded, val_idx, test_idx, config)
    metrics = {**holdout.summary(report), "train_seconds": round(train_seconds, 2)}
    if fold_seconds:  # training the further folds' models, which only choose the threshold
        metrics["calibration_seconds"] = round(fold_seconds, 2)
    if config["early_stopping"]:  # the epoch (0-based, as in history.csv) whose weights were kept
        metrics["best_epoch"] = best_epochs[0] if len(best_epochs) == 1 else list(best_epochs)
    _io.write_json(os.path.join(run_dir, runs.METRICS_FILE), metrics)
    finish(run_dir)
    return run, metrics


def _joined(config, members, sample):
    """One `SiameseNetwork` of the trained members: the member itself, or their ensemble."""
    if len(members) == 1:
        return members[0]
    # distance heads only (the config checks it): nothing of the members' heads is lost
    model = models.SiameseNetwork(encoders.ensemble([m.encoder for m in members]), build_head(config))
    model([sample, sample])
    return model


def _fold_pairs(config, folds, x, y, groups, sample, verbose):
    """`(labels, scores, fold)`: the validation pairs of folds 1.. (see `siamkit.data.validation_folds`).

    Fold k's model is the run's recipe (all its members, seeds `seed + k *
    ensemble` on) trained on the training classes outside fold k, with early
    stopping on fold k's classes; it scores `eval_pairs` balanced random
    pairs of them, drawn as fold 0's are. The model is then discarded. A
    fold scored before an interruption is read back from its folder.
    """
    parts = []
    for k, (train_idx, val_idx) in enumerate(folds[1:], 1):
        folder = os.path.join(config["out"], FOLDS_DIR, str(k))
        scored = evaluation.read_fold_pairs(folder)
        if scored is None:
            fold_config = {**config, "out": folder, "seed": config["seed"] + k * config["ensemble"]}
            resume = os.path.isdir(folder)
            os.makedirs(folder, exist_ok=True)
            keras.utils.set_random_seed(fold_config["seed"])

            def fold_data(member_config, train_idx=train_idx, val_idx=val_idx):
                return _class_data(member_config, x, y, train_idx, val_idx, groups)

            members = [
                _train_member(fold_config, m, fold_data, sample, resume, verbose)[0] for m in range(config["ensemble"])
            ]
            model = _joined(config, members, sample)
            z = model.embed(x[val_idx])
            first, second, same = evaluation.random_pairs(y[val_idx], config["eval_pairs"], config["seed"])
            scores = evaluation.pairs.pair_scores(model.score_embeddings, z, z, first, second)
            scored = same, scores, np.full(len(same), k)
            evaluation.write_fold_pairs(folder, *scored)
        parts.append(scored)
    return tuple(np.concatenate(column) for column in zip(*parts))


def _member_dir(config, k):
    """Where member `k` keeps its backup and log: the run directory itself when there is one member."""
    return config["out"] if config["ensemble"] == 1 else os.path.join(config["out"], MEMBERS_DIR, str(k))


def _train_member(config, k, member_data, sample, resume, verbose):
    """Train member `k` of the run (seed `seed + k`); a finished one is loaded.

    Returns:
        `(SiameseNetwork, best epoch)`; the epoch is None without early stopping.
    """
    member_dir = _member_dir(config, k)
    stopping = config["early_stopping"]
    finished = os.path.join(member_dir, MEMBER_FILE) if config["ensemble"] > 1 else None
    if finished and os.path.isfile(finished):  # trained before an interruption
        encoder = keras.saving.load_model(finished, safe_mode=True, compile=False)
        best = _best_epoch(config, member_dir)
        return models.SiameseNetwork(encoder, build_head(config)), best.state["best_epoch"] if stopping else None
    os.makedirs(member_dir, exist_ok=True)
    if k:
        config = {**config, "seed": config["seed"] + k}
        keras.utils.set_random_seed(config["seed"])
    train_data, val_data = member_data(config)
    with distribute.scope(config["distribute"]):  # the model is built, compiled and fitted in it
        return _fit_member(config, member_dir, finished, train_data, val_data, k, sample, resume, verbose)


def _fit_member(config, member_dir, finished, train_data, val_data, k, sample, resume, verbose):
    """Build and fit member `k` on its data; see `_train_member`."""
    name = {} if config["ensemble"] == 1 else {"name": f"{config['encoder']}_member{k}"}
    with finetune.precision(config):
        encoder = build_encoder(config, tuple(sample.shape[1:]), **name)
    if config["mixed_precision"]:
        encoder = finetune.float32_output(encoder)
    if config["init_from"]:
        finetune.init_from(encoder, config["init_from"])
    model = models.SiameseNetwork(encoder, build_head(config))
    model([sample, sample])  # build, so BackupAndRestore can restore weights

    fit_model = encoder if config["loss"] in losses.BATCH_LOSSES else model
    def compile_for(learning_rate):
        fit_model.compile(
            optimizer=build_optimizer({**config, "learning_rate": learning_rate}, len(train_data)),
            loss=build_loss(config),
            metrics=["binary_accuracy"] if config["loss"] == "bce" else None,
        )

    def pair_auc():
        # Pair losses validate on pairs already; P x K batch losses on labelled images, paired here.
        (first, second), same = val_data if isinstance(val_data[0], list) else _validation_pairs(config, *val_data)
        return PairAUC(model, first, second, same)

    best_epoch = fit_with_callbacks(
        config, member_dir, fit_model, compile_for, train_data, resume, verbose, pair_auc, validation_data=val_data,
        encoder=encoder,
    )
    if finished:
        _io.save_model(encoder, finished)
        shutil.rmtree(os.path.join(member_dir, BACKUP_DIR), ignore_errors=True)
    return model, best_epoch


def _best_epoch(config, folder):
    return BestEpoch(os.path.join(folder, BEST_DIR), config["monitor"], config["patience"], MONITORS[config["monitor"]])


def fit_with_callbacks(config, folder, fit_model, compile_for, train_data, resume, verbose, pair_auc,
                       validation_data=None, encoder=None):
    """Compile and fit a model with a run's callbacks, phase by phase; returns the best epoch (None without early stopping).

    Each phase of `finetune.phases(config)` (one, or the frozen backbone then
    the whole encoder) compiles the model at its learning rate and fits it.
    The callbacks every phase gets: a `NonFiniteGuard` under
    `config["on_nan"]`; with `early_stopping`, `BestEpoch` in `folder/best`,
    fed by `pair_auc()` (a `PairAUC`) when the monitor is `val_roc_auc`;
    `BackupAndRestore` in `folder/backup` (an interrupted fit resumes; kept
    until the caller saves the model); a `CSVLogger` of `folder/history.csv`.

    Args:
        config: the training config (`epochs`, `batch_size`, `early_stopping`, `monitor`, `patience`, phases).
        folder: where the backups, the best epoch and the log go.
        fit_model: the model that `fit` trains.
        compile_for: `compile_for(learning_rate)` compiles `fit_model` (with `build_optimizer`).
        train_data: a siamkit sampler.
        resume: whether `folder` holds an interrupted fit of this config.
        verbose: Keras' `fit` verbosity.
        pair_auc: `() -> PairAUC`, called only when early stopping watches `val_roc_auc`.
        validation_data: `fit`'s validation data (for `val_loss`), or None.
        encoder: the encoder whose backbone a frozen phase freezes (Siamese runs).
    """
    best = _best_epoch(config, folder)
    stopping = config["early_stopping"]
    history = os.path.join(folder, runs.HISTORY_FILE)
    if stopping and best.stopped:  # stopped early before an interruption: nothing is left to train
        compile_for(config["learning_rate"])
        best.restore(fit_model)
        return best.state["best_epoch"]
    head = [NonFiniteGuard(config["on_nan"])]  # first: it stops inside a bad batch, before anything saves
    if stopping and config["monitor"] == "val_roc_auc":  # before the others: they read its value
        head.append(pair_auc())
    if stopping:
        head.append(best)  # before the backup: see `BestEpoch`
    for phase in finetune.phases(config):
        if phase.frozen and finetune.resume_after_frozen_phase(fit_model, folder):
            continue  # finished before an interruption: its weights are loaded
        if encoder is not None:
            finetune.set_trainable(encoder, config, phase.frozen)
        compile_for(phase.learning_rate)
        backup = finetune.frozen_backup_dir(folder) if phase.frozen else os.path.join(folder, BACKUP_DIR)
        callbacks = [
            *head,
            # Kept after fit: the frozen phase's until `finish_frozen_phase` keeps its weights, the last phase's
            # until the model is saved, so a failed save loses no training.
            keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False),
            keras.callbacks.CSVLogger(history, append=(resume or phase.start > 0) and os.path.isfile(history)),
        ]
        fit_sampler(
            fit_model, train_data, callbacks, validation_data=distribute.validation_input(validation_data),
            initial_epoch=phase.start,
            epochs=phase.end, verbose=verbose, validation_batch_size=config["batch_size"],
        )
        if phase.frozen:
            finetune.finish_frozen_phase(fit_model, folder)
        if stopping and best.stopped:
            break
    return best.state["best_epoch"] if stopping else None


def _join_histories(run_dir, count):
    """The members' logs as one `history.csv`, with a first column `member`."""
    rows = []
    for k in range(count):
        with open(os.path.join(run_dir, MEMBERS_DIR, str(k), runs.HISTORY_FILE), newline="", encoding="utf-8") as f:
            rows += [{"member": k, **row} for row in csv.DictReader(f)]
    text = io.StringIO()
    writer = csv.DictWriter(text, list(dict.fromkeys(key for row in rows for key in row)), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _io.write_text(os.path.join(run_dir, runs.HISTORY_FILE), text.getvalue())
