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
from .errors import DataError

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CALIBRATION_FILE = "calibration.json"
# The thresholds `calibration.json` holds, by the method that chose them (see `evaluation.verification`).
THRESHOLD_METHODS = ("accuracy", "eer", "far")
HISTORY_FILE = "history.csv"
REPORT_FILE = "report.html"


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
        padded or cropped to `n` samples.

        Args:
            paths: files of the tower's type.
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
        paths = [os.fspath(p) for p in paths]
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
