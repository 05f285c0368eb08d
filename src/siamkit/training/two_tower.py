"""Two-tower (multi-modal Siamese) training: one encoder per modality, one embedding space.

`train_two_tower(config)` is what `siamkit.training.train` runs for a config
with `towers = 2`: it loads and splits both sides
(`siamkit.evaluation.crossmodal.two_tower_parts`), builds a tower per side
(`build_tower`: any image encoder, the audio encoder, the text encoder or an
MLP over feature vectors), fits a `TwoTowerNetwork` through
`siamkit.models.CrossModalScores` on class-matched batches with in-batch
negatives (`siamkit.data.crossmodal.CrossModalPairs`), with the run
directory, resumption and callbacks of Siamese training
(`trainer.fit_with_callbacks`), and evaluates the held-out items in both
directions (`evaluate_two_tower`). With `rotate_by`, a meta field of side b
such as FSDD's `"speaker"`, it then trains once more per group with that
group held out, and reports retrieval of each held-out group.

Example:

>>> run, metrics = train_two_tower(resolve("configs/mnist_fsdd.toml"))   # doctest: +SKIP
>>> metrics["retrieval"]["audio_to_image"]["R@1"]                         # doctest: +SKIP
1.0
"""

import os
import time

import keras
import numpy as np

from .. import _io, audio, encoders, losses, models, runs
from ..audio.augment import WaveformAugment
from ..data.crossmodal import CrossModalPairs
from ..datasets.inputs import record_inputs
from ..errors import ConfigError, DataError
from ..evaluation.crossmodal import crossmodal_retrieval, evaluate_two_tower, recall_table, side_names, two_tower_parts
from .distribute import scope
from .feed import fit_sampler
from .stopping import PairAUC
from .trainer import build_optimizer, finish, fit_with_callbacks, new_run_dir, resuming

# The encoder each modality gets when none is named, and the encoders it may take.
DEFAULT_ENCODERS = {"image": "cnn", "audio": "audio", "text": "text", "features": "mlp"}
ROTATION_DIR = "rotation"


def tower_encoder(config, side, modality):
    """The encoder name of `side` (`"a"` or `"b"`) for its `modality`, checked."""
    given = config["encoder"] if side == "a" else config["encoder_b"]
    name = given or DEFAULT_ENCODERS[modality]
    allowed = {
        "image": [e for e in encoders.ENCODERS if e != "text"],
        "audio": ["audio"],
        "text": ["text"],
        "features": ["mlp"],
    }[modality]
    if name not in allowed:
        flag = "encoder" if side == "a" else "encoder_b"
        raise ConfigError(f"{flag} {name!r} cannot read {modality} (side {side}); use one of {', '.join(allowed)}")
    return name


def build_tower(config, side, modality, input_shape, sample_rate=None):
    """The encoder of one side: `embedding_dim` outputs from that side's inputs.

    Args:
        config: a two-tower training config.
        side: `"a"` or `"b"`; side b reads `encoder_b`, `encoder_options_b`.
        modality: `"image"`, `"audio"`, `"text"` or `"features"`.
        input_shape: one input's shape.
        sample_rate: of audio inputs.
    """
    name = tower_encoder(config, side, modality)
    options = {
        "embedding_dim": config["embedding_dim"],
        **config["encoder_options" if side == "a" else "encoder_options_b"],
        "name": f"tower_{side}_{name}",
    }
    try:
        if name == "audio":
            return audio.audio_encoder(tuple(input_shape), sample_rate=sample_rate, seed=config["seed"], **options)
        return encoders.build(name, tuple(input_shape), **options)
    except TypeError as err:  # an option the factory does not take
        raise ConfigError(f"tower {side} ({name}): {err}") from None


def build_network(config, shapes, modalities, sample_rate=None):
    """The `TwoTowerNetwork` of a config: two towers, an optional shared projection, cosine head."""
    towers = [build_tower(config, s, m, shape, sample_rate) for s, m, shape in zip("ab", modalities, shapes)]
    projection = keras.layers.Dense(config["embedding_dim"], name="projection") if config["projection"] else None
    return models.TwoTowerNetwork(
        *towers, head=models.DistanceHead("cosine"), projection=projection, normalize=config["normalize"],
        learn_temperature=config["learn_temperature"] and config["loss"] == "clip",
    )


def _augmenter(config, modality, sample_rate):
    if modality == "image" and config["augment"]:
        from ..data.augment import from_config

        return from_config(config["augment"], seed=config["seed"])
    shift = int(round(config["time_shift"] * (sample_rate or 0)))
    if modality == "audio" and (config["speed"] or shift):
        return WaveformAugment(speed=config["speed"], shift=shift)
    return None


def _scores_and_loss(config, network):
    if config["loss"] == "clip":
        scores = models.CrossModalScores(network, "logits", config["temperature"])
        return scores, losses.ClipLoss(positives=config["positives"])
    return models.CrossModalScores(network, "distance"), losses.CrossModalContrastiveLoss(config["margin"])


def _sample_rate(parts):
    rates = {parts[s]["info"]["sample_rate"] for s in "ab" if "sample_rate" in parts[s]["info"]}
    if len(rates) > 1:
        raise DataError(f"the two audio sides have different sample rates {sorted(rates)}; resample one")
    return rates.pop() if rates else None


def fit_network(config, parts, train_a, train_b, folder=None, resume=False, verbose="auto"):
    """Build and fit a two-tower network on the given training items of each side.

    With `folder`, the fit gets the run callbacks (backup, log, early
    stopping on the validation items); without, it just trains `epochs`.

    Returns:
        `(network, seconds, best_epoch)`.
    """
    with scope(config["distribute"]):  # the network is built, compiled and fitted in it
        return _fit_network(config, parts, train_a, train_b, folder, resume, verbose)


def _fit_network(config, parts, train_a, train_b, folder, resume, verbose):
    keras.utils.set_random_seed(config["seed"])
    a, b = parts["a"], parts["b"]
    modalities, rate = parts["modalities"], config.get("sample_rate")
    network = build_network(config, (a["x"].shape[1:], b["x"].shape[1:]), modalities, rate)
    x_a, x_b = a["x"][train_a], b["x"][train_b]
    batches = CrossModalPairs(
        x_a, a["y"][train_a], x_b, b["y"][train_b], batch_size=config["batch_size"],
        augment_a=_augmenter(config, modalities[0], rate), augment_b=_augmenter(config, modalities[1], rate),
        seed=config["seed"],
    )
    scores, loss = _scores_and_loss(config, network)
    scores([x_a[:1], x_b[:1]])  # built before fit, so that BackupAndRestore can restore it

    def compile_for(learning_rate):
        scores.compile(optimizer=build_optimizer({**config, "learning_rate": learning_rate}, len(batches)), loss=loss)

    started = time.perf_counter()
    best_epoch = None
    if folder is None:
        compile_for(config["learning_rate"])
        fit_sampler(scores, batches, epochs=config["epochs"], verbose=verbose)
    else:
        def pair_auc():
            from ..evaluation.crossmodal import cross_pairs

            ia, ib, same = cross_pairs(a["y"][a["val"]], b["y"][b["val"]], config["eval_pairs"], config["seed"])
            return PairAUC(network, a["x"][a["val"]][ia], b["x"][b["val"]][ib], same)

        validation = None
        if config["early_stopping"] and config["monitor"] == "val_loss":
            validation = CrossModalPairs(
                a["x"][a["val"]], a["y"][a["val"]], b["x"][b["val"]], b["y"][b["val"]],
                batch_size=config["batch_size"], seed=config["seed"],
            )
        best_epoch = fit_with_callbacks(config, folder, scores, compile_for, batches, resume, verbose, pair_auc,
                                        validation)
    return network, time.perf_counter() - started, best_epoch


def _check_validation(config, parts):
    if config["early_stopping"] and not (len(parts["a"]["val"]) and len(parts["b"]["val"])):
        raise DataError(
            "early stopping needs validation items on both sides, and val_fraction left none: "
            "add items per class, raise val_fraction, or set early_stopping = false"
        )


def rotation(config, parts, verbose=0):
    """Hold out each group of side b's `rotate_by` field in turn: train without it, test on it.

    Training uses side a's training items and every side-b item outside the
    group; the group's items query side a's test items (and back).

    Returns:
        `{group: {direction: {"R@1": .., "map_at_r": ..}}, ..., "mean": ..., "train_seconds": ...}`.
    """
    a, b = parts["a"], parts["b"]
    field = config["rotate_by"]
    if field not in b["meta"]:
        raise DataError(f"rotate_by {field!r} is not a meta field of side b; it has {sorted(b['meta'])}")
    groups = np.asarray(b["meta"][field])
    names = b["info"].get(f"{field}_names")
    names_ab = side_names(parts["modalities"])
    results, seconds = {}, 0.0
    for group in np.unique(groups):
        network, took, _ = fit_network(config, parts, a["train"], np.flatnonzero(groups != group), verbose=verbose)
        seconds += took
        held = np.flatnonzero(groups == group)
        forward = lambda x, side: network.embed(x, modality=side)  # noqa: E731
        z_a = runs.embed_side(forward, a["x"][a["test"]], "a", parts["modalities"][0], config["test_speeds"])
        z_b = runs.embed_side(forward, b["x"][held], "b", parts["modalities"][1], config["test_speeds"])
        details = crossmodal_retrieval(z_a, a["y"][a["test"]], z_b, b["y"][held], distance="cosine", names=names_ab)
        label = str(names[int(group)]) if names is not None else str(group)
        results[label] = {
            d: {**t, "map_at_r": details[d]["map_at_r"]} for d, t in recall_table(details).items()
        }
        keras.backend.clear_session()
    tables = list(results.values())
    results["mean"] = {
        d: {k: float(np.mean([t[d][k] for t in tables])) for k in tables[0][d]} for d in tables[0]
    }
    results["train_seconds"] = round(seconds, 2)
    return results


def train_two_tower(config, verbose="auto"):
    """Train a two-tower network and write its run directory (see the module docstring).

    Args:
        config: a resolved config with `towers = 2`.
        verbose: Keras' `fit` verbosity; 0 also hides reading progress.

    Returns:
        `(run, metrics)`: the `siamkit.runs.Run` and its `metrics.json`.
    """
    # Everything about the data is checked before the run directory exists.
    parts = two_tower_parts({**config, "progress": verbose != 0})
    config.update(
        encoder=tower_encoder(config, "a", parts["modalities"][0]),
        encoder_b=tower_encoder(config, "b", parts["modalities"][1]),
    )
    _check_validation(config, parts)
    run_dir = new_run_dir(config["out"])
    config["out"] = run_dir
    if config["data"] or config["pairs_csv"]:
        record_inputs(parts["loaded"], run_dir, config["skip_bad"])
    a, b = parts["a"], parts["b"]
    config.update(
        modality_a=parts["modalities"][0],
        modality_b=parts["modalities"][1],
        sample_rate=_sample_rate(parts),
        input_shape=list(a["x"].shape[1:]),
        input_shape_b=list(b["x"].shape[1:]),
        class_names=parts["class_names"],
        higher_is_similar=False,
        keras_backend=keras.backend.backend(),
    )
    for side, key in (("a", ""), ("b", "_b")):
        shape = parts[side]["x"].shape[1:]
        if parts["modalities"]["ab".index(side)] == "image":
            config[f"image_size{key}"], config[f"channels{key}"] = list(shape[:2]), int(shape[2])
    resume = resuming(run_dir, config)
    if not resume:
        _io.write_json(os.path.join(run_dir, runs.CONFIG_FILE), config)
    network, seconds, best_epoch = fit_network(config, parts, a["train"], b["train"], run_dir, resume, verbose)
    _io.save_model(network, os.path.join(run_dir, runs.MODEL_FILE))
    run = runs.Run(run_dir)
    report = evaluate_two_tower(run, parts, n_pairs=config["eval_pairs"], seed=config["seed"])
    metrics = {**summary(report), "train_seconds": round(seconds, 2), "train_items": {
        "a": int(len(a["train"])), "b": int(len(b["train"]))}}
    if config["early_stopping"]:
        metrics["best_epoch"] = best_epoch
    if config["rotate_by"]:
        metrics["rotation"] = rotation(config, parts, verbose=0)
    _io.write_json(os.path.join(run_dir, runs.METRICS_FILE), metrics)
    finish(run_dir)
    return run, metrics


def summary(report):
    """The headline numbers of `evaluate_two_tower`'s report, for `metrics.json`."""
    out = {"retrieval": report["retrieval"], "test_items": report["test_items"]}
    verification = report.get("verification")
    if verification:
        out.update(
            test_roc_auc=verification["roc_auc"], test_eer=verification["eer"], test_pairs=verification["n_pairs"]
        )
        at = verification["at_threshold"].get("accuracy")
        if at:
            out.update(test_accuracy=at["accuracy"], threshold=at["threshold"])
    return out
