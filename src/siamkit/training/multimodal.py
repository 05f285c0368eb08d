"""Two-tower (multi-modal) training: handwritten digits <-> spoken digits.

`train(config)` fits a `TwoTowerNetwork` (tower a: images, tower b: raw
audio with its front end inside) on in-batch score matrices
(`CrossModalScores` + `ClipLoss` or `CrossModalContrastiveLoss`), sampled by
class with `CrossModalPairs`, and writes a run directory like `siamkit
train` does. Evaluation is cross-modal retrieval against the MNIST test
images: on the official FSDD test split (takes 0-4), and optionally with
each of the six speakers held out in turn (`speaker_rotation`).

Configs are TOML files with `task = "multimodal"` (see
`configs/mnist_fsdd.toml`); `is_multimodal_config` tells them apart.

Example:

>>> run, metrics = train(resolve("configs/mnist_fsdd.toml"))        # doctest: +SKIP
>>> metrics["fsdd_test"]["audio_to_image"]["R@1"]                  # doctest: +SKIP
0.98
"""

import math
import os
import sys
import time

import keras
import numpy as np
from keras import ops

from .. import _io, audio, datasets, distances, evaluation, models, runs
from ..audio.augment import WaveformAugment
from ..data.crossmodal import CrossModalPairs
from ..errors import ConfigError, DataError, check_choice
from ..evaluation.crossmodal import crossmodal_retrieval, recall_table
from ..losses.clip import POSITIVES, ClipLoss, CrossModalContrastiveLoss
from .config import LR_SCHEDULES, OPTIMIZERS
from .feed import fit_sampler
from .trainer import BACKUP_DIR, build_encoder, build_optimizer, new_run_dir, resuming

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TASK = "multimodal"
MODALITIES = {"a": "image", "b": "audio"}
DEFAULTS = {
    "task": TASK,
    # data: images (tower a) and recordings (tower b), matched by digit
    "dataset": "mnist",
    "dataset_b": "fsdd",
    "data_dir": None,
    "clip_seconds": 1.0,
    "val_takes": 5,
    "holdout_speakers": False,
    # model
    "encoder": "cnn",
    "encoder_options": {},
    "audio_options": {},
    "embedding_dim": 64,
    "learn_temperature": True,
    "temperature": 0.07,
    # objective and augmentation
    "loss": "clip",
    "positives": "mean",
    "margin": 0.5,
    "speed": [0.85, 1.15],
    "time_shift": 0.1,
    # test time: audio embeddings averaged over these speed factors (`audio.speed_averaged`)
    "test_speeds": [1.0],
    # optimisation
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "lr_schedule": "cosine",
    "epochs": 12,
    "batch_size": 64,
    "seed": 0,
    "out": None,
}
LOSSES = ("clip", "contrastive")
DISTANCE = "cosine"
# FSDD's official test split is takes 0-4 of every (speaker, digit).
TEST_TAKES = 5
# The last MNIST training images: validation partners, never trained on.
MNIST_VALIDATION = 5000
SCORES = ("logits", "distance")
# CLIP clips the learned logit scale at 100 so the softmax cannot collapse.
MAX_LOGIT_SCALE = math.log(100.0)


def is_multimodal_config(path):
    """True when the TOML file at `path` sets `task = "multimodal"`."""
    return bool(path) and _read_toml(path).get("task") == TASK


def _read_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def resolve(file=None, overrides=None):
    """Defaults, then a TOML file, then overrides (None = not given); validated.

    Args:
        file: path of a TOML config with `task = "multimodal"`, or None.
        overrides: dict of options, e.g. from command-line flags.
    """
    config = dict(DEFAULTS)
    sources = [(file, _read_toml(file) if file else {}), ("options", overrides or {})]
    for where, values in sources:
        values = {k: v for k, v in values.items() if v is not None}
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown multimodal option(s) {unknown}; valid options are: {', '.join(sorted(DEFAULTS))}"
            )
        config.update(values)
    return validate(config)


def validate(config):
    """Check the options of a multimodal config; returns it."""
    if config["task"] != TASK:
        raise ConfigError(f"task must be {TASK!r} for two-tower training, got {config['task']!r}")
    check_choice("dataset", config["dataset"], ["mnist", "fashion_mnist"])
    check_choice("dataset_b", config["dataset_b"], ["fsdd"])
    check_choice("loss", config["loss"], LOSSES)
    check_choice("positives", config["positives"], POSITIVES)
    check_choice("optimizer", config["optimizer"], OPTIMIZERS)
    check_choice("lr_schedule", config["lr_schedule"], LR_SCHEDULES)
    for key, kind in (("epochs", int), ("batch_size", int), ("embedding_dim", int), ("learning_rate", float),
                      ("clip_seconds", float), ("temperature", float), ("margin", float)):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{key} must be a positive number, got {value!r}")
        config[key] = kind(value)
    if not isinstance(config["val_takes"], int) or not 0 <= config["val_takes"] < 40:
        raise ConfigError(f"val_takes must be an integer in [0, 40), got {config['val_takes']!r}")
    if config["batch_size"] < 2:
        raise ConfigError("batch_size must be at least 2: the other rows of a batch are its negatives")
    for key in ("encoder_options", "audio_options"):
        if not isinstance(config[key], dict):
            raise ConfigError(f"{key} must be a table of encoder arguments, got {config[key]!r}")
    speed = config["speed"]
    if speed is not None and (len(speed) != 2 or not 0 < speed[0] <= speed[1]):
        raise ConfigError(f"speed must be [low, high] with 0 < low <= high (or omitted), got {speed!r}")
    speeds = config["test_speeds"]
    if (not isinstance(speeds, list) or not speeds
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in speeds)):
        raise ConfigError(f"test_speeds must be a list of positive speed factors such as [0.9, 1.0, 1.1], got {speeds!r}")
    if not 0 <= float(config["time_shift"]) < config["clip_seconds"]:
        raise ConfigError(f"time_shift must be in [0, clip_seconds), got {config['time_shift']!r}")
    return config


@keras.saving.register_keras_serializable(package="siamkit")
class CrossModalScores(keras.Model):
    """A `TwoTowerNetwork`'s scores between every pair of a batch, for in-batch negatives.

    Called on `[x_a, x_b]` (n items each), returns the `(n, n)` matrix whose
    entry `[i, j]` compares `x_a[i]` with `x_b[j]`. It shares the network's
    weights: fit this wrapper, then save the network itself.

    Args:
        network: a `siamkit.models.TwoTowerNetwork`.
        scores: `"logits"`, `exp(logit_scale) * cos(z_a_i, z_b_j)` for
            `siamkit.losses.ClipLoss`, with the network's learned
            `logit_scale` (`learn_temperature=True`, clipped at 100) or else
            the fixed `1 / temperature`; or `"distance"`, the network head's
            distance for `siamkit.losses.CrossModalContrastiveLoss`.
        temperature: the fixed temperature when the network learns none.

    Example:

    >>> import numpy as np
    >>> from siamkit import encoders, models
    >>> net = models.TwoTowerNetwork(encoders.mlp((4,), embedding_dim=8),
    ...                              encoders.mlp((6,), embedding_dim=8), learn_temperature=True)
    >>> CrossModalScores(net)([np.zeros((3, 4)), np.zeros((5, 6))]).shape
    (3, 5)
    """

    def __init__(self, network, scores="logits", temperature=0.07, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.scores = check_choice("scores", scores, SCORES)
        self.temperature = float(temperature)
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        if self.scores == "distance":
            distance = getattr(network.head, "distance", None)
            if distance is None or distance.higher_is_similar:
                raise ConfigError("scores='distance' needs a network whose head is a DistanceHead with a distance")
        self.cosine = distances.get("cosine")

    def build(self, input_shape):
        if not self.network.built:
            # One forward pass on an all-zero pair creates the towers' weights before training.
            self.network([ops.zeros((1, *shape[1:])) for shape in input_shape])

    def logit_scale(self):
        """The multiplier of the cosine similarities (`1 / temperature`)."""
        if self.network.learn_temperature:
            return ops.exp(ops.minimum(self.network.logit_scale, MAX_LOGIT_SCALE))
        return ops.convert_to_tensor(1.0 / self.temperature)

    def call(self, inputs, training=None):
        a, b = inputs
        z_a = self.network.embed_a(a, training=training)
        z_b = self.network.embed_b(b, training=training)
        if self.scores == "distance":
            return self.network.head.distance.pairwise(z_a, z_b)
        return self.logit_scale() * (1.0 - self.cosine.pairwise(z_a, z_b))

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "scores": self.scores,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


# ---- data ----


def load_data(config):
    """Images and fixed-length recordings, with their digits and metadata.

    Returns:
        A dict: `images` and `audio`, each `{"train", "test"}` of `(x, y)`;
        `images["val"]` (the last MNIST training images); `audio["meta"]`
        with the `speaker`, `index` (take) and `split` of every clip in
        `audio["x"]`; `speaker_names`; `sample_rate`; `num_samples`.
    """
    data_dir = config["data_dir"]
    train = datasets.load(config["dataset"], subset="train", data_dir=data_dir)
    test = datasets.load(config["dataset"], subset="test", data_dir=data_dir)
    fsdd = datasets.load(config["dataset_b"], data_dir=data_dir)
    rate = int(fsdd.info["sample_rate"])
    num_samples = int(round(config["clip_seconds"] * rate))
    # int16 PCM -> [-1, 1), as `audio.read_wav` returns it, so files and the dataset agree.
    clips = audio.fix_length([c / np.float32(32768.0) for c in fsdd.x], num_samples)
    cut = len(train.y) - MNIST_VALIDATION
    return {
        "images": {
            "train": (train.x[:cut], train.y[:cut]),
            "val": (train.x[cut:], train.y[cut:]),
            "test": (test.x, test.y),
        },
        "audio": {"x": clips, "y": fsdd.y, "meta": fsdd.meta},
        "speaker_names": fsdd.info["speaker_names"],
        "sample_rate": rate,
        "num_samples": num_samples,
        "image_shape": tuple(train.x.shape[1:]),
    }


# ---- model and fitting ----


def build_network(config, image_shape, num_samples, sample_rate):
    """The `TwoTowerNetwork`: config's image encoder (a), `audio.audio_encoder` (b)."""
    image_tower = build_encoder(config, image_shape)
    options = {"embedding_dim": config["embedding_dim"], "sample_rate": sample_rate, "seed": config["seed"],
               **config["audio_options"]}
    try:
        audio_tower = audio.audio_encoder((num_samples,), **options)
    except TypeError as err:  # an audio_options key the factory does not take
        raise ConfigError(f"audio_options: {err}") from None
    return models.TwoTowerNetwork(
        image_tower, audio_tower, head=models.DistanceHead(DISTANCE), learn_temperature=config["learn_temperature"]
    )


def fit_network(config, images, digits, clips, spoken, callbacks=(), verbose="auto"):
    """Build and fit a network on images and clips matched by digit.

    Returns:
        `(network, seconds)`: the trained `TwoTowerNetwork` and the fit time.
    """
    keras.utils.set_random_seed(config["seed"])
    network = build_network(config, images.shape[1:], clips.shape[1], config["sample_rate"])
    network([images[:1], clips[:1]])
    speed, shift = config["speed"], int(round(config["time_shift"] * config["sample_rate"]))
    augment = WaveformAugment(speed=speed, shift=shift) if speed or shift else None
    batches = CrossModalPairs(
        images, digits, clips, spoken, batch_size=config["batch_size"], augment_b=augment, seed=config["seed"]
    )
    if config["loss"] == "clip":
        scores = CrossModalScores(network, "logits", config["temperature"])
        loss = ClipLoss(positives=config["positives"])
    else:
        scores, loss = CrossModalScores(network, "distance"), CrossModalContrastiveLoss(config["margin"])
    scores([images[:1], clips[:1]])  # built before fit, so that BackupAndRestore can restore it
    scores.compile(optimizer=build_optimizer(config, len(batches)), loss=loss)
    started = time.perf_counter()
    fit_sampler(scores, batches, callbacks, epochs=config["epochs"], verbose=verbose)
    return network, time.perf_counter() - started


def embed_audio(network, clips, config):
    """Audio embeddings, averaged over `config["test_speeds"]`."""
    return audio.speed_averaged(lambda x: network.embed(x, "b"), clips, config.get("test_speeds") or [1.0])


def _retrieval(network, images, digits, clips, spoken, config):
    z_image = network.embed(images, "a")
    z_audio = embed_audio(network, clips, config)
    return crossmodal_retrieval(z_image, digits, z_audio, spoken, distance=DISTANCE, names=("image", "audio"))


def _calibrate(run, network, data, val_clips, config, n_pairs=2000):
    """Thresholds for `siamkit compare` from balanced (image, clip) validation pairs."""
    x_img, y_img = data["images"]["val"]
    x_aud, y_aud = val_clips
    seed = config["seed"]
    rng = np.random.default_rng(seed)
    clip_idx = rng.integers(0, len(y_aud), n_pairs)
    same = np.arange(n_pairs) % 2 == 0
    pool = CrossModalPairs(x_img, y_img, x_aud, y_aud, seed=seed)
    img_idx = pool.partners(y_aud[clip_idx], same, rng)
    z_img = network.embed(x_img[img_idx], "a")
    z_aud = embed_audio(network, x_aud[clip_idx], config)
    scores = network.score_embeddings(z_img, z_aud)
    calibration = evaluation.calibrate(same.astype(int), scores, higher_is_similar=False, output_kind="distance")
    evaluation.write_calibration(run, calibration)
    return calibration


# ---- entry points ----


def speaker_rotation(config, data=None, verbose=0):
    """Train on five speakers, test on the sixth, for each of the six.

    Every clip of the held-out speaker queries the test images of
    `config["dataset"]`; training uses all clips of the other speakers.

    Returns:
        `{speaker: recall table, ..., "mean": mean recall table,
        "train_seconds": total fit time}`.
    """
    data = data or load_data(config)
    config = {**config, "sample_rate": data["sample_rate"]}
    x_img, y_img = data["images"]["train"]
    x_test, y_test = data["images"]["test"]
    clips, spoken, speaker = data["audio"]["x"], data["audio"]["y"], data["audio"]["meta"]["speaker"]
    results, seconds = {}, 0.0
    for s, name in enumerate(data["speaker_names"]):
        network, took = fit_network(config, x_img, y_img, clips[speaker != s], spoken[speaker != s], verbose=verbose)
        seconds += took
        held_out = speaker == s
        results[name] = recall_table(_retrieval(network, x_test, y_test, clips[held_out], spoken[held_out], config))
        keras.backend.clear_session()
    tables = list(results.values())
    results["mean"] = {
        direction: {k: float(np.mean([t[direction][k] for t in tables])) for k in tables[0][direction]}
        for direction in tables[0]
    }
    results["train_seconds"] = round(seconds, 2)
    return results


def train(config=None, verbose="auto"):
    """Train the two-tower image/audio model and write its run directory.

    Trains on FSDD takes `5 + val_takes` and up (all speakers), calibrates
    the compare threshold on takes 5 .. 4 + val_takes, and reports
    cross-modal retrieval of the official test split (takes 0-4) against
    the MNIST test images; with `holdout_speakers`, also `speaker_rotation`.

    Args:
        config: options (see `DEFAULTS`); missing keys take their defaults.
        verbose: Keras' `fit` verbosity.

    Returns:
        `(run, metrics)`: the `siamkit.runs.Run` and the metrics written to
        its `metrics.json`.
    """
    config = resolve(overrides=config)
    run_dir = new_run_dir(config["out"])
    config["out"] = run_dir
    data = load_data(config)
    config.update(
        sample_rate=data["sample_rate"],
        input_shape=list(data["image_shape"]),
        input_shape_b=[data["num_samples"]],
        image_size=list(data["image_shape"][:2]),
        channels=int(data["image_shape"][2]),
        distance=DISTANCE,
        higher_is_similar=False,
        modalities=MODALITIES,
        keras_backend=keras.backend.backend(),
    )
    resume = resuming(run_dir, config, DEFAULTS)
    _io.write_json(os.path.join(run_dir, runs.CONFIG_FILE), config)

    clips, spoken, take = data["audio"]["x"], data["audio"]["y"], data["audio"]["meta"]["index"]
    test = take < TEST_TAKES
    val = (take >= TEST_TAKES) & (take < TEST_TAKES + config["val_takes"])
    fit = take >= TEST_TAKES + config["val_takes"]
    x_img, y_img = data["images"]["train"]
    history = os.path.join(run_dir, runs.HISTORY_FILE)
    callbacks = [  # as in single-model training: an interrupted run resumes from its last epoch
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, BACKUP_DIR)),
        keras.callbacks.CSVLogger(history, append=resume and os.path.isfile(history)),
        keras.callbacks.TerminateOnNaN(),
    ]
    network, seconds = fit_network(config, x_img, y_img, clips[fit], spoken[fit], callbacks, verbose)
    _io.save_model(network, os.path.join(run_dir, runs.MODEL_FILE))
    run = runs.Run(run_dir)

    x_test, y_test = data["images"]["test"]
    details = _retrieval(network, x_test, y_test, clips[test], spoken[test], config)
    metrics = {
        "fsdd_test": recall_table(details),
        "fsdd_test_map_at_r": {direction: m["map_at_r"] for direction, m in details.items()},
        "train_seconds": round(seconds, 2),
        "train_clips": int(fit.sum()),
    }
    if config["val_takes"]:
        calibration = _calibrate(run, network, data, (clips[val], spoken[val]), config)
        metrics["calibration"] = {name: t["threshold"] for name, t in calibration["thresholds"].items()}
    if config["holdout_speakers"]:
        metrics["holdout_speakers"] = speaker_rotation(config, data, verbose=0)
    _io.write_json(os.path.join(run_dir, runs.METRICS_FILE), metrics)
    return run, metrics


def evaluate(run, data_dir=None):
    """Cross-modal retrieval of a multimodal run on the FSDD test split vs the test images.

    Returns:
        `{"audio_to_image": {"R@1": ..}, "image_to_audio": {..}}`.
    """
    run = run if isinstance(run, runs.Run) else runs.Run(run)
    test = test_data(run, data_dir)
    return recall_table(_retrieval(run.model, test["images"], test["digits"], test["clips"], test["spoken"], run.config))


def test_data(run, data_dir=None):
    """The test split a multimodal run is evaluated on: MNIST test images and the FSDD test takes.

    Returns:
        A dict: `images`, `digits` (their labels), `clips`, `spoken` (their
        digits) and `sample_rate`.
    """
    if run.config.get("task") != TASK:
        raise DataError(f"{run.path!r} is not a multimodal run (its config has no task = {TASK!r})")
    config = {**run.config, "data_dir": data_dir or run.config.get("data_dir")}
    data = load_data(config)
    if data["num_samples"] != run.config["input_shape_b"][0]:
        raise DataError(f"the run expects clips of {run.config['input_shape_b'][0]} samples, the data has "
                        f"{data['num_samples']}")
    test = data["audio"]["meta"]["index"] < TEST_TAKES
    x_test, y_test = data["images"]["test"]
    return {
        "images": x_test, "digits": y_test, "clips": data["audio"]["x"][test], "spoken": data["audio"]["y"][test],
        "sample_rate": data["sample_rate"],
    }


def format_metrics(metrics):
    """The recall tables of `train` or `evaluate` as text lines for a terminal."""
    sections = [("FSDD test split (takes 0-4) vs MNIST test images", metrics.get("fsdd_test", metrics))]
    rotation = metrics.get("holdout_speakers")
    if rotation:
        speakers = [k for k in rotation if k not in ("mean", "train_seconds")]
        sections += [(f"held-out speaker {name}", rotation[name]) for name in speakers]
        sections.append(("held-out speakers, mean of six", rotation["mean"]))
    lines = []
    for title, table in sections:
        lines.append(title)
        for direction, recalls in table.items():
            values = "  ".join(f"{k} {v:.4f}" for k, v in recalls.items())
            lines.append(f"  {direction:<16} {values}")
    if "train_seconds" in metrics:
        lines.append(f"training time: {metrics['train_seconds']:.0f} s")
    return "\n".join(lines)
