"""Export a run's encoder (each tower of a two-tower run) for serving outside siamkit.

`export_run(run, "onnx", out)` writes, with Keras' own `Model.export`:

- `savedmodel`: a TensorFlow SavedModel folder per tower (`tf_saved_model`;
  load with `tf.saved_model.load(path).serve(x)`, or serve with TF Serving);
- `onnx`: an `.onnx` file per tower (Keras' ONNX export, through tf2onnx on
  TensorFlow), for ONNX Runtime or Triton;
- `tflite`: a `.tflite` file per tower (Keras' `litert` export, which runs
  TensorFlow's `TFLiteConverter`), for the TFLite / LiteRT interpreter;

and `siamkit-export.json`, the manifest: per tower the input shape, dtype,
channel order and value range, the embedding size; the distance, the
calibrated threshold and the model's fingerprint. Each exported model holds
everything between a file's pixels (or samples) and the embedding: a
backbone's input preprocessing and the final normalisation are layers of
the encoder, and a two-tower run's shared projection is part of each
tower. The batch dimension stays dynamic.

`OnnxRun` embeds with ONNX Runtime from an ONNX export, in place of
`Run.embed` (`siamkit embed --runtime onnx`).
"""

import json
import os
import shutil
import tempfile

import numpy as np

from . import __version__, _io
from .errors import ConfigError, DataError, check_choice
from .runs import THRESHOLD_METHODS

MANIFEST_FILE = "siamkit-export.json"
# format -> (Keras' name for it, file suffix; "" for a folder)
FORMATS = {"savedmodel": ("tf_saved_model", ""), "onnx": ("onnx", ".onnx"), "tflite": ("litert", ".tflite")}
# Where `siamkit export` writes by default and `siamkit embed --runtime` looks: RUN_DIR/export/<format>.
EXPORT_DIR = "export"
INPUT_NAME = "input"
_CHANNELS = {1: "grayscale", 3: "RGB", 4: "RGBA"}


def default_dir(run, fmt):
    """`RUN_DIR/export/<format>`: the export folder `siamkit export` writes when no `--out` is given."""
    return os.path.join(run.path, EXPORT_DIR, fmt)


def tower_models(run):
    """`{modality: keras.Model}`: the functional model from one input to its final embedding, per tower.

    A Siamese run has one tower, `"a"`, its shared encoder; a two-tower run
    has `"a"` and `"b"`, each with the shared projection and normalisation
    that `TwoTowerNetwork` applies after its encoder.
    """
    import keras

    model = run.model
    towers = {}
    for modality in ("a", "b") if run.is_two_tower else ("a",):
        key = "input_shape_b" if modality == "b" else "input_shape"
        inputs = keras.Input(tuple(run.config[key]), name=INPUT_NAME)
        outputs = model.embed_b(inputs) if modality == "b" else (
            model.embed_a(inputs) if run.is_two_tower else model.encoder(inputs)
        )
        tower = keras.Model(inputs, outputs, name=f"tower_{modality}")
        tower(np.zeros((1, *run.config[key]), "float32"))  # Keras exports only models that have been called
        towers[modality] = tower
    return towers


def _input_description(run, modality):
    """What a tower's input is: shape, dtype, and how files become values."""
    shape = run.config["input_shape_b" if modality == "b" else "input_shape"]
    described = {"input_name": INPUT_NAME, "input_shape": [None, *shape], "dtype": "float32"}
    if len(shape) == 3:
        described.update(
            kind="image", layout="NHWC", channel_order=_CHANNELS.get(shape[-1], f"{shape[-1]} channels"),
            value_range=[0.0, 1.0], inverted=bool(run.config.get("invert", False)),
        )
    elif len(shape) == 1 and run.config.get("sample_rate"):
        described.update(
            kind="waveform", value_range=[-1.0, 1.0], sample_rate=run.config["sample_rate"],
            test_speeds=run.config.get("test_speeds") or [1.0],
        )
    else:
        described.update(kind="array")
    return described


def _decision(run):
    """The distance and the calibrated threshold, when the score is a distance of embeddings."""
    config = run.config
    head = config.get("head", "distance")
    decision = {"head": head, "distance": run.distance, "higher_is_similar": run.higher_is_similar}
    calibration = run.calibration
    if head != "distance":
        decision["threshold"] = None
        decision["note"] = f"pairs are scored by the learned {head!r} head, which is not exported"
    elif calibration:
        method = calibration["default"]
        decision.update(
            threshold=float(calibration["thresholds"][method]["threshold"]), threshold_method=method,
            thresholds={m: float(t["threshold"]) for m, t in calibration["thresholds"].items() if m in THRESHOLD_METHODS},
        )
    else:
        decision["threshold"] = None
        decision["note"] = "the run has no calibration.json: run `siamkit evaluate` on it, then export again"
    return decision


def export_run(run, fmt, out=None, verbose=False):
    """Write a run's towers in `fmt` and the manifest to the folder `out`.

    The folder is written whole or not at all (built beside `out`, then
    moved into place); an existing `out` is refused.

    Args:
        run: a `siamkit.runs.Run`.
        fmt: one of `FORMATS`: `"savedmodel"`, `"onnx"` or `"tflite"`.
        out: the folder to create (default: `RUN_DIR/export/<fmt>`).
        verbose: let Keras print what it exports.

    Returns:
        The manifest (a dict), as written to `out/siamkit-export.json`.

    Example:

    >>> manifest = export_run(Run("runs/photos"), "onnx", "deploy/photos")   # doctest: +SKIP
    >>> manifest["towers"]["a"]["file"]                                       # doctest: +SKIP
    'tower_a.onnx'
    """
    import keras

    check_choice("export format", fmt, list(FORMATS))
    out = os.fspath(out or default_dir(run, fmt))
    if os.path.exists(out):
        raise ConfigError(f"{out!r} already exists; choose a new --out folder or remove it")
    keras_format, suffix = FORMATS[fmt]
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".", dir=parent)
    try:
        towers = {}
        for modality, model in tower_models(run).items():
            name = f"tower_{modality}{suffix}"
            try:
                model.export(os.path.join(staging, name), format=keras_format, verbose=verbose)
            except ImportError as err:
                raise ConfigError(
                    f"exporting to {fmt} needs a package that is not installed ({err}); "
                    "pip install 'siamkit[export]'"
                ) from None
            except ValueError as err:  # e.g. a format this Keras backend cannot export
                raise ConfigError(f"cannot export to {fmt} on the {keras.backend.backend()} backend: {err}") from None
            towers[modality] = {"file": name, **_input_description(run, modality),
                                "embedding_size": int(model.output_shape[-1])}
        manifest = {
            "format": fmt,
            "towers": towers,
            **_decision(run),
            "fingerprint": run.fingerprint(),
            "run": os.path.abspath(run.path),
            "siamkit_version": __version__,
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
        }
        _io.write_json(os.path.join(staging, MANIFEST_FILE), manifest)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def read_manifest(folder):
    """The manifest of an export folder; a `DataError` names the folder when it is not one."""
    path = os.path.join(os.fspath(folder), MANIFEST_FILE)
    if not os.path.isfile(path):
        raise DataError(f"{folder!r} is not a siamkit export: {MANIFEST_FILE} is missing (run `siamkit export` first)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class OnnxRun:
    """A run whose embeddings come from its ONNX export, run by ONNX Runtime.

    It reads files and checks inputs as the `Run` does, and stands in for it
    wherever a run embeds (`siamkit.index.embed_data`, `siamkit embed`).

    Args:
        run: the `siamkit.runs.Run` that was exported.
        folder: its ONNX export (default: `RUN_DIR/export/onnx`); its
            fingerprint must be the run's.
        threads: ONNX Runtime's intra-op threads (0: its default, one per core).

    Example:

    >>> onnx_run = OnnxRun(Run("runs/photos"))    # doctest: +SKIP
    >>> z = onnx_run.embed(images)                # doctest: +SKIP
    """

    def __init__(self, run, folder=None, threads=0):
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("the onnx runtime needs onnxruntime: pip install 'siamkit[export]'") from None
        folder = os.fspath(folder or default_dir(run, "onnx"))
        manifest = read_manifest(folder)
        if manifest.get("format") != "onnx":
            raise DataError(f"{folder!r} holds a {manifest.get('format')!r} export, not onnx; export with --format onnx")
        if manifest.get("fingerprint") != run.fingerprint():
            raise DataError(
                f"{folder!r} was exported from another model than the run {run.path!r} (fingerprints differ); "
                "export this run again"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.run, self.folder, self.manifest = run, folder, manifest
        self.sessions = {
            modality: onnxruntime.InferenceSession(
                os.path.join(folder, tower["file"]), options, providers=["CPUExecutionProvider"]
            )
            for modality, tower in manifest["towers"].items()
        }

    def __getattr__(self, name):  # everything but embedding is the run's
        return getattr(self.run, name)

    def _forward(self, x, modality, batch_size):
        session = self.sessions["b" if modality == "b" and "b" in self.sessions else "a"]
        name = session.get_inputs()[0].name
        parts = [session.run(None, {name: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)]
        return np.concatenate(parts, axis=0).astype("float32", copy=False)

    def embed(self, x, modality="a", batch_size=256):
        """Embeddings of `x`, as `Run.embed` gives them, from ONNX Runtime."""
        if len(x) == 0:
            raise DataError("cannot embed an empty array; pass at least one input")
        return self.run.embed_with(lambda x_, side: self._forward(x_, side, batch_size), x, modality)
