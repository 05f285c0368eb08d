"""A run directory: what `siamkit train` writes, and what every later command reads.

Layout of `RUN_DIR`:

- `model.keras`: the pair model (`SiameseNetwork` or `TwoTowerNetwork`);
- `config.json`: every resolved training option, plus `input_shape` (and
  `input_shape_b` for two-tower runs) and the image policy (`image_size`,
  `channels`) used to turn files into arrays;
- `history.csv`: Keras' per-epoch log;
- `metrics.json`: held-out metrics;
- `calibration.json`: decision thresholds (written by evaluation), optional;
- `report.html`: the run's report (written by `siamkit report`), optional.

Files become model inputs only through `Run.read_inputs` and `Run.read_pairs`,
so every command reads a file the way the run was trained: images under its
image policy (size, channels, `invert`), audio at its sample rate and clip
length.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from . import _io
from .datasets.memory import MemoryFile
from .errors import DataError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CALIBRATION_FILE = "calibration.json"
# The thresholds `calibration.json` holds, by the method that chose them (see `evaluation.verification`).
THRESHOLD_METHODS = ("accuracy", "eer", "far")
HISTORY_FILE = "history.csv"
REPORT_FILE = "report.html"


def embed_side(forward, x, side, modality, test_speeds=None):
    """Embeddings of one side by `forward(x, side)`; audio averaged over `test_speeds` when given.

    Args:
        forward: `forward(x, side) -> (n, dim)`, e.g. a Keras model's `embed`
            or an exported model's runtime.
        x: that side's inputs.
        side: `"a"` or `"b"`.
        modality: what the side reads; only `"audio"` sides are speed-averaged.
        test_speeds: speed factors of test-time augmentation
            (`siamkit.audio.speed_averaged`), or None.
    """
    if test_speeds and modality == "audio":
        from .audio import speed_averaged

        return speed_averaged(lambda clips: forward(clips, side), x, test_speeds)
    return forward(x, side)


class Run:
    """A trained run, opened from its directory.

    Args:
        path: the run directory.

    Example:

    >>> run = Run("runs/20260101-120000")            # doctest: +SKIP
    >>> z = run.embed(images)                        # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        for name in (CONFIG_FILE, MODEL_FILE):
            if not os.path.isfile(self.file(name)):
                raise DataError(
                    f"{self.path!r} is not a siamkit run directory: {name} is missing "
                    "(pass the folder that `siamkit train` wrote)"
                )
        with open(self.file(CONFIG_FILE), encoding="utf-8") as f:
            self.config = json.load(f)
        self._model = None

    def file(self, name):
        """Path of a file inside the run directory."""
        return os.path.join(self.path, name)

    @property
    def model(self):
        """The pair model, loaded on first use with `safe_mode=True`."""
        if self._model is None:
            import keras

            from . import audio, distances, losses, models  # noqa: F401  (register custom objects)

            self._model = keras.saving.load_model(self.file(MODEL_FILE), safe_mode=True, compile=False)
        return self._model

    @property
    def input_shape(self):
        return tuple(self.config["input_shape"])

    @property
    def is_two_tower(self):
        return "input_shape_b" in self.config

    def modality(self, side="a"):
        """What tower `side` reads: `"image"`, `"audio"`, `"text"` or `"features"` (from the config, else the shape)."""
        side = "b" if side == "b" and self.is_two_tower else "a"
        recorded = self.config.get(f"modality_{side}")
        if recorded:
            return recorded
        shape = self.config["input_shape_b" if side == "b" else "input_shape"]
        if len(shape) == 3:
            return "image"
        return "audio" if side == "b" and len(shape) == 1 else "features"  # as the first two-tower runs were

    def side_for(self, kind):
        """The side (`"a"` or `"b"`) whose tower reads inputs of `kind` (`"image"`, `"audio"`, ...).

        When both sides read that kind (say two image towers) it is side a.
        Raises a `DataError` when no tower reads it.
        """
        sides = ("a", "b") if self.is_two_tower else ("a",)
        for side in sides:
            if self.modality(side) == kind:
                return side
        takes = " and ".join(self.modality(s) for s in sides)
        raise DataError(f"the run {self.path!r} takes no {kind} input; its towers read {takes}")

    @property
    def higher_is_similar(self):
        """True when the model's pair score grows with similarity."""
        recorded = self.config.get("higher_is_similar")  # loads the model only when the config does not say
        return bool(self.model.higher_is_similar if recorded is None else recorded)

    @property
    def distance(self):
        """Name of the embedding distance used for search and one-shot."""
        return self.config.get("distance", "euclidean")

    def fingerprint(self):
        """SHA-256 of `model.keras`: identifies the model that made embeddings."""
        digest = hashlib.sha256()
        with open(self.file(MODEL_FILE), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def check_inputs(self, x, modality="a"):
        expected = tuple(self.config["input_shape_b" if modality == "b" else "input_shape"])
        x = np.asarray(x, dtype="float32")
        if x.shape[1:] != expected:
            raise DataError(
                f"inputs of shape {x.shape[1:]} do not fit this run's model, which expects {expected} "
                f"(run {self.path!r}); resize them or use the run's image policy"
            )
        return x

    def _inverted(self, invert):
        """Whether images are read with flipped intensities: `invert`, else the run config's (False when absent)."""
        return bool(self.config.get("invert", False) if invert is None else invert)

    def read_inputs(self, paths, modality="a", invert=None):
        """Files as inputs of one tower, read the way the run was trained.

        A tower with image inputs `(h, w, c)` reads image files resized to
        `(h, w)` with `c` channels (the run's image policy); a tower with
        waveform inputs `(n,)` reads PCM WAV files at the run's `sample_rate`,
        padded or cropped to `n` samples; a text tower reads UTF-8 `.txt`
        files as byte codes of the run's `text_length`; a feature tower reads
        one vector per `.npy` / `.npz` file.

        Args:
            paths: files of the tower's type: paths, or
                `siamkit.datasets.memory.MemoryFile`s (bytes already in memory).
            modality: `"a"`, or `"b"` for the second tower of a two-tower run.
            invert: for images, flip intensities (`1 - x`), for files whose
                ink is dark when the run was trained on ink-high data;
                default: the run config's `invert` (False when absent).

        Returns:
            float32 inputs, `(len(paths), *input_shape)`.

        Example:

        >>> x = Run("runs/digits").read_inputs(["a.png", "b.png"])   # doctest: +SKIP
        >>> x.shape                                                  # doctest: +SKIP
        (2, 28, 28, 1)
        """
        shape = self.config["input_shape_b" if modality == "b" else "input_shape"]
        paths = [p if isinstance(p, MemoryFile) else os.fspath(p) for p in paths]
        kind = self.modality(modality)
        if kind == "text":
            from .datasets import encode_text, read_texts

            return encode_text(read_texts(paths), shape[0], names=paths)
        if kind == "features":
            from .datasets import read_features

            return read_features(paths, shape[0])
        if len(shape) == 3:
            from .datasets import images

            h, w, c = shape
            decoded = images.read_images(paths, image_size=(h, w), channels=c, progress=False)
            x = images.to_float(decoded.images)
            return 1.0 - x if self._inverted(invert) else x
        if len(shape) == 1:
            from .audio import read_wavs

            rate = self.config.get("sample_rate")
            if rate is None:
                raise DataError(f"the run {self.path!r} records no sample_rate in config.json; cannot read .wav files")
            return read_wavs(paths, rate, shape[0])
        raise DataError(f"the run {self.path!r} has inputs of shape {tuple(shape)}, which are not read from files")

    def read_pairs(self, csv_path, invert=None):
        """A pair CSV (`path_a,path_b,label`) as a `siamkit.datasets.Pairs`, read as by `read_inputs`.

        Args:
            csv_path: the CSV; paths are relative to its folder.
            invert: as for `read_inputs`.
        """
        from .datasets import load_pairs

        h, w, c = self.input_shape
        loaded = load_pairs(csv_path, image_size=(h, w), channels=c, progress=False)
        x = 1.0 - loaded.x_a if self._inverted(invert) else loaded.x_a
        return dataclasses.replace(loaded, x_a=x, x_b=x)

    def embed(self, x, modality="a", batch_size=256):
        """Embeddings of `x` as a NumPy array.

        Args:
            x: inputs shaped like the training inputs.
            modality: `"a"` or `"b"` for two-tower runs; ignored otherwise.
            batch_size: inputs per forward pass.
        """
        return self.embed_with(lambda x_, side: self.model.embed(x_, modality=side, batch_size=batch_size), x, modality)

    def embed_with(self, forward, x, modality="a"):
        """Embeddings of `x` by `forward(x, modality)`, with the run's input check and test-time averaging.

        What `embed` does with the Keras model, for another runtime of the same
        encoder (an exported model): inputs are checked against the run's input
        shape, and a two-tower run's audio tower is averaged over its
        `test_speeds`.

        Args:
            forward: `forward(x, modality) -> (n, dim)` embeddings of one tower.
            x: inputs shaped like the training inputs.
            modality: `"a"` or `"b"` for two-tower runs; ignored otherwise.
        """
        x = self.check_inputs(x, modality)
        if not self.is_two_tower:
            return forward(x, "a")
        return embed_side(forward, x, modality, self.modality(modality), self.config.get("test_speeds"))

    def score_pairs(self, xa, xb, batch_size=256):
        """The model's score for each pair `(xa[i], xb[i])`."""
        za = self.embed(xa, "a", batch_size)
        zb = self.embed(xb, "b" if self.is_two_tower else "a", batch_size)
        return self.model.score_embeddings(za, zb)

    def read_json(self, name):
        """A JSON file of the run, or None when it does not exist."""
        if not os.path.isfile(self.file(name)):
            return None
        with open(self.file(name), encoding="utf-8") as f:
            return json.load(f)

    def write_json(self, name, data):
        """Atomically write a JSON file into the run directory."""
        _io.write_json(self.file(name), data)

    @property
    def calibration(self):
        """The contents of `calibration.json`, or None."""
        return self.read_json(CALIBRATION_FILE)
