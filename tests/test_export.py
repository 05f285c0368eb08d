"""Export: each format, run in its own runtime, embeds real inputs as `Run.embed` does (to 1e-4), for the
`cnn` encoder, a `keras.applications` backbone and the audio tower of a two-tower run; the manifest; the CLI."""

import json
import os

import keras
import numpy as np
import pytest

from siamkit import _io, audio, encoders, models, runs
from siamkit.cli import main

from conftest import digit_pngs

pytest.importorskip("tensorflow", reason="the SavedModel and TFLite runtimes are TensorFlow's")
pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed: pip install 'siamkit[export]'")
pytest.importorskip("tf2onnx", reason="Keras exports ONNX through tf2onnx: pip install 'siamkit[export]'")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="exports on the TensorFlow backend")

FORMATS = ("savedmodel", "onnx", "tflite")


def run_exported(fmt, folder, tower, x):
    """Embeddings of `x` by the exported `tower` file, in the format's own runtime."""
    path = os.path.join(folder, tower["file"])
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # held: its functions reference its variables
        return loaded.serve(x).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {tower["input_name"]: x})[0]
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=path)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _saved_run(folder, network, config, sample):
    """A run directory of an untrained network (the exporters see the same graph as after training)."""
    network(sample)
    _io.save_model(network, os.path.join(folder, runs.MODEL_FILE))
    _io.write_json(os.path.join(folder, runs.CONFIG_FILE), config)
    return runs.Run(folder)


@pytest.fixture(scope="module")
def backbone_run(tmp_path_factory):
    """MobileNetV3Small (weights=None) on 32x32 RGB, with a calibration: input preprocessing inside the model."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("backbone")
    net = models.SiameseNetwork(encoders.build("mobilenetv3small", (32, 32, 3), embedding_dim=16))
    x = np.zeros((1, 32, 32, 3), "float32")
    run = _saved_run(folder, net, {"input_shape": [32, 32, 3], "distance": "euclidean", "head": "distance"}, [x, x])
    calibration = {"default": "eer", "higher_is_similar": False,
                   "thresholds": {"eer": {"threshold": 0.7}, "accuracy": {"threshold": 0.6}}}
    run.write_json(runs.CALIBRATION_FILE, calibration)
    return run


def _photos(n=6):
    """Real RGB photographs: 32x32 crops of scikit-learn's two sample images, in [0, 1]."""
    from sklearn.datasets import load_sample_image

    crops = [load_sample_image(name)[r : r + 32, c : c + 32] for name in ("china.jpg", "flower.jpg")
             for r, c in ((60, 80), (200, 300), (300, 500))]
    return np.stack(crops[:n]).astype("float32") / 255.0


@pytest.fixture(scope="module")
def two_tower_run(shared_data_dir, tmp_path_factory):
    """A cnn (MNIST 28x28) / audio (FSDD, 1 s at 8 kHz, MFCC front end) two-tower run, averaged over 3 speeds."""
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("two_tower")
    net = models.TwoTowerNetwork(
        encoders.build("cnn", (28, 28, 1), embedding_dim=16),
        audio.audio_encoder((8000,), embedding_dim=16, filters=(16, 16), seed=0),
        head=models.DistanceHead("cosine"), learn_temperature=True,
    )
    config = {"input_shape": [28, 28, 1], "input_shape_b": [8000], "sample_rate": 8000, "distance": "cosine",
              "head": "distance", "test_speeds": [0.9, 1.0, 1.1]}
    return _saved_run(folder, net, config, [np.zeros((1, 28, 28, 1), "float32"), np.zeros((1, 8000), "float32")])


def _mnist(shared_data_dir, n=8):
    with np.load(shared_data_dir / "mnist.npz") as data:
        return data["test_images"][:n, :, :, None].astype("float32") / 255.0


def _clips(shared_data_dir, n=6):
    with np.load(shared_data_dir / "fsdd.npz") as data:
        offsets, samples = data["offsets"], data["audio"]
        clips = [samples[offsets[i] : offsets[i + 1]] / 32768.0 for i in range(0, 3000, 3000 // n)][:n]
    return audio.fix_length(clips, 8000)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cnn_export_embeds_as_the_run(trained_run, tmp_path, fmt):
    from siamkit.export import MANIFEST_FILE, export_run

    x = trained_run.read_inputs(digit_pngs(tmp_path / "digits"))  # real digits, read from PNG files
    manifest = export_run(trained_run, fmt, tmp_path / "out")
    tower = manifest["towers"]["a"]
    np.testing.assert_allclose(run_exported(fmt, tmp_path / "out", tower, x), trained_run.embed(x), atol=1e-4)
    with open(tmp_path / "out" / MANIFEST_FILE) as f:
        assert json.load(f) == json.loads(json.dumps(manifest))
    assert sorted(os.listdir(tmp_path / "out")) == sorted([MANIFEST_FILE, tower["file"]])


@pytest.mark.slow  # converting MobileNetV3 takes half a minute per format on 2 cores
@pytest.mark.parametrize("fmt", FORMATS)
def test_backbone_export_holds_its_preprocessing(backbone_run, tmp_path, fmt):
    from siamkit.export import export_run

    x = _photos()
    manifest = export_run(backbone_run, fmt, tmp_path / "out")
    got = run_exported(fmt, tmp_path / "out", manifest["towers"]["a"], x)
    np.testing.assert_allclose(got, backbone_run.embed(x), atol=1e-4)
    assert manifest["towers"]["a"]["channel_order"] == "RGB" and manifest["towers"]["a"]["value_range"] == [0.0, 1.0]
    assert manifest["threshold"] == 0.7 and manifest["threshold_method"] == "eer"


@pytest.mark.data
@pytest.mark.parametrize("fmt", FORMATS)
def test_two_tower_export_writes_both_towers(two_tower_run, shared_data_dir, tmp_path, fmt):
    from siamkit.export import export_run

    manifest = export_run(two_tower_run, fmt, tmp_path / "out")
    images, clips = _mnist(shared_data_dir), _clips(shared_data_dir)
    assert set(manifest["towers"]) == {"a", "b"} and manifest["towers"]["b"]["kind"] == "waveform"
    got_a = run_exported(fmt, tmp_path / "out", manifest["towers"]["a"], images)
    np.testing.assert_allclose(got_a, two_tower_run.embed(images, "a"), atol=1e-4)
    # The audio tower embeds one speed; the run averages its speeds, so compare at speed 1 and through OnnxRun.
    got_b = run_exported(fmt, tmp_path / "out", manifest["towers"]["b"], clips)
    np.testing.assert_allclose(got_b, two_tower_run.model.embed(clips, "b"), atol=1e-4)
    assert manifest["towers"]["b"]["test_speeds"] == [0.9, 1.0, 1.1]
    if fmt == "onnx":
        from siamkit.export import OnnxRun

        onnx_run = OnnxRun(two_tower_run, tmp_path / "out")
        for x, side in ((images, "a"), (clips, "b")):
            np.testing.assert_allclose(onnx_run.embed(x, side, batch_size=4), two_tower_run.embed(x, side), atol=1e-4)


def test_caffe_preprocessing_exports_to_each_runtime(tmp_path):
    # ResNet50 and VGG's BGR mean subtraction, in a small model: the channel slices survive each converter.
    inputs = keras.Input((32, 32, 3), name="input")
    x = encoders.BackbonePreprocessing("caffe")(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, kernel_initializer=keras.initializers.GlorotUniform(seed=0))(x))
    model = keras.Model(inputs, outputs)
    x = _photos()
    model(x)  # Keras exports only models that have been called
    for fmt, (keras_format, suffix) in (("savedmodel", ("tf_saved_model", "")), ("onnx", ("onnx", ".onnx")),
                                        ("tflite", ("litert", ".tflite"))):
        model.export(tmp_path / f"m{suffix}", format=keras_format, verbose=False)
        got = run_exported(fmt, tmp_path, {"file": f"m{suffix}", "input_name": "input"}, x)
        np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-3, rtol=1e-5)


def test_export_cli_and_embed_with_onnx_runtime(trained_run, tmp_path, capsys):
    folder = digit_pngs(tmp_path / "digits")[0].parent.parent
    out = tmp_path / "onnx"
    assert main(["export", trained_run.path, "--format", "onnx", "--out", str(out)]) == 0
    manifest = json.loads((out / "siamkit-export.json").read_text())
    tower = manifest["towers"]["a"]
    assert tower["input_shape"] == [None, 8, 8, 1] and tower["channel_order"] == "grayscale"
    assert tower["dtype"] == "float32" and tower["embedding_size"] == 16
    assert manifest["fingerprint"] == trained_run.fingerprint() and manifest["distance"] == "euclidean"
    assert manifest["threshold"] == pytest.approx(trained_run.calibration["thresholds"]["accuracy"]["threshold"])

    keras_npz, onnx_npz = tmp_path / "keras.npz", tmp_path / "onnx.npz"
    assert main(["embed", trained_run.path, "--data", str(folder), "--out", str(keras_npz), "--quiet"]) == 0
    assert main(["embed", trained_run.path, "--data", str(folder), "--out", str(onnx_npz), "--quiet",
                 "--runtime", "onnx", "--export", str(out), "--batch-size", "5"]) == 0
    a, b = np.load(keras_npz), np.load(onnx_npz)
    np.testing.assert_allclose(b["embeddings"], a["embeddings"], atol=1e-4)
    assert list(a["paths"]) == list(b["paths"]) and str(b["fingerprint"]) == trained_run.fingerprint()
    capsys.readouterr()

    for argv, message in (
        (["export", trained_run.path, "--format", "torchscript"], "invalid export format 'torchscript'"),
        (["export", trained_run.path, "--format", "onnx", "--out", str(out)], "already exists"),
        (["embed", trained_run.path, "--data", str(folder), "--runtime", "tensorrt"], "invalid runtime 'tensorrt'"),
        (["embed", trained_run.path, "--data", str(folder), "--runtime", "onnx", "--export", str(tmp_path)],
         "is not a siamkit export"),
        (["embed", trained_run.path, "--data", str(folder), "--export", str(out)], "--export does not apply"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_onnx_export_of_another_model_is_refused(trained_run, backbone_run, tmp_path):
    from siamkit.errors import DataError
    from siamkit.export import OnnxRun, export_run

    export_run(backbone_run, "onnx", tmp_path / "other")
    with pytest.raises(DataError, match="exported from another model"):
        OnnxRun(trained_run, tmp_path / "other")
