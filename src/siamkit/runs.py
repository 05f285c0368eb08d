"""A run directory: what `siamkit train` writes, and what every later command reads.

Layout of `RUN_DIR`:

- `model.keras`: the pair model (`SiameseNetwork` or `TwoTowerNetwork`);
- `config.json`: every resolved training option, plus `input_shape` (and
  `input_shape_b` for two-tower runs) and the image policy (`image_size`,
  `channels`) used to turn files into arrays;
- `history.csv`: Keras' per-epoch log;
- `metrics.json`: held-out metrics;
- `calibration.json`: decision thresholds (written by evaluation), optional.
"""

import hashlib
import json
import os

import numpy as np

from . import _io
from .errors import DataError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CALIBRATION_FILE = "calibration.json"
# The thresholds `calibration.json` holds, by the method that chose them (see `evaluation.verification`).
THRESHOLD_METHODS = ("accuracy", "eer", "far")
HISTORY_FILE = "history.csv"


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

    @property
    def higher_is_similar(self):
        """True when the model's pair score grows with similarity."""
        return bool(self.config.get("higher_is_similar", self.model.higher_is_similar))

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

    def embed(self, x, modality="a", batch_size=256):
        """Embeddings of `x` as a NumPy array.

        Args:
            x: inputs shaped like the training inputs.
            modality: `"a"` or `"b"` for two-tower runs; ignored otherwise.
            batch_size: inputs per forward pass.
        """
        x = self.check_inputs(x, modality)
        if not self.is_two_tower:
            return self.model.embed(x, batch_size=batch_size)
        if modality == "b" and self.config.get("test_speeds"):  # audio runs average over speeds
            from .audio import speed_averaged

            return speed_averaged(
                lambda clips: self.model.embed(clips, modality="b", batch_size=batch_size), x, self.config["test_speeds"]
            )
        return self.model.embed(x, modality=modality, batch_size=batch_size)

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
