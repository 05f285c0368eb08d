"""Embedding throughput: Keras (`Run.embed`) against ONNX Runtime on the same exported model.

For each model, a run directory is written (the network untrained: speed does
not depend on the weights), exported with `siamkit export --format onnx`
(`siamkit.export.export_run`), and the same images are embedded by

- **keras**: `Run.embed(x, batch_size=B)`, the run's model on the default
  Keras backend (TensorFlow), as every siamkit command embeds;
- **onnx**: `siamkit.export.OnnxRun(run).embed(x, batch_size=B)`, ONNX
  Runtime's CPU provider on the exported file, as `siamkit embed --runtime onnx`
  does.

Both go through the run's input check. Images/s is the median of `--repeats`
passes over `--images` images at each batch size, after one warm-up batch;
the embeddings of the two runtimes are compared too (largest absolute
difference). Threads are each runtime's default (all cores).

Models: `cnn`, siamkit's default encoder, on 28x28x1 MNIST images, and
`mobilenetv3small` (a keras.applications backbone with its preprocessing
inside) on 64x64x3 images (MNIST digits repeated to RGB and resized).

Usage:

    SIAMKIT_DATA_DIR=/path/to/data python benchmarks/inference.py
    python benchmarks/inference.py --quick      # a short smoke run

Prints a table and writes `benchmarks/results/inference.json`; a `--quick`
run writes `runs/benchmarks/inference.json` instead.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _output import output_path  # noqa: E402

BATCH_SIZES = (1, 16, 64, 256, 1024)
MODELS = {"cnn": (28, 28, 1), "mobilenetv3small": (64, 64, 3)}
TARGET_RATIO = 1.5  # ONNX Runtime's best batch against Keras' best batch


def _images(shape, n):
    """MNIST test images shaped for `shape` in [0, 1], else random images."""
    import numpy as np

    from siamkit import datasets
    from siamkit.errors import SiamkitError

    try:
        x = datasets.load("mnist", subset="test", download=False).x[:n]
        source = "mnist"
    except (SiamkitError, OSError) as err:
        print(f"note: MNIST not available ({err}); timing on random images", file=sys.stderr)
        return np.random.default_rng(0).random((n, *shape), dtype="float32"), "random"
    if x.shape[1:] != shape:
        import keras

        x = keras.ops.convert_to_numpy(keras.ops.image.resize(np.repeat(x, shape[-1], axis=-1), shape[:2]))
    return x.astype("float32"), source


def _run(folder, name, shape):
    """A run directory of an untrained Siamese network with encoder `name`."""
    import keras
    import numpy as np

    from siamkit import _io, encoders, models, runs

    keras.utils.set_random_seed(0)
    net = models.SiameseNetwork(encoders.build(name, shape, embedding_dim=64))
    x = np.zeros((1, *shape), "float32")
    net([x, x])
    _io.save_model(net, os.path.join(folder, runs.MODEL_FILE))
    _io.write_json(os.path.join(folder, runs.CONFIG_FILE), {"input_shape": list(shape), "encoder": name})
    return runs.Run(folder)


def _rates(embed, x, batch_sizes, repeats):
    out = {}
    for batch_size in batch_sizes:
        n = min(len(x), max(batch_size * 4, 256))  # small batches: fewer images, so each pass stays short
        embed(x[:batch_size], batch_size)
        passes = []
        for _ in range(repeats):
            start = time.perf_counter()
            embed(x[:n], batch_size)
            passes.append(n / (time.perf_counter() - start))
        out[str(batch_size)] = round(statistics.median(passes), 1)
    return out


def measure(name, shape, images, batch_sizes, repeats):
    import numpy as np

    from siamkit.export import OnnxRun, export_run

    x, source = _images(shape, images)
    with tempfile.TemporaryDirectory() as folder:
        run = _run(folder, name, shape)
        start = time.perf_counter()
        export_run(run, "onnx")
        export_seconds = time.perf_counter() - start
        onnx_run = OnnxRun(run)
        difference = float(np.abs(onnx_run.embed(x[:256]) - run.embed(x[:256])).max())
        keras_rates = _rates(lambda v, b: run.embed(v, batch_size=b), x, batch_sizes, repeats)
        onnx_rates = _rates(lambda v, b: onnx_run.embed(v, batch_size=b), x, batch_sizes, repeats)
    best_keras, best_onnx = max(keras_rates.values()), max(onnx_rates.values())
    return {
        "input_shape": list(shape), "data": source, "images": len(x), "export_seconds": round(export_seconds, 1),
        "max_abs_difference": difference,
        "keras_images_per_s": keras_rates, "onnx_images_per_s": onnx_rates,
        "ratio_by_batch": {b: round(onnx_rates[b] / keras_rates[b], 2) for b in keras_rates},
        "best_keras": {"batch_size": int(max(keras_rates, key=keras_rates.get)), "images_per_s": best_keras},
        "best_onnx": {"batch_size": int(max(onnx_rates, key=onnx_rates.get)), "images_per_s": best_onnx},
        "best_ratio": round(best_onnx / best_keras, 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096, help="images per pass at the largest batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per batch size (median)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few images, two batch sizes, cnn only")
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/inference.json)")
    args = parser.parse_args(argv)
    out = output_path("inference.json", args.out, args.quick)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import onnxruntime

    chosen = {"cnn": MODELS["cnn"]} if args.quick else MODELS
    batch_sizes = (1, 64) if args.quick else BATCH_SIZES
    images, repeats = (128, 1) if args.quick else (args.images, args.repeats)
    load_before = os.getloadavg()
    results = {name: measure(name, shape, images, batch_sizes, repeats) for name, shape in chosen.items()}
    report = {
        "benchmark": "inference", "quick": args.quick, "target_best_ratio": TARGET_RATIO, "models": results,
        "environment": {
            "python": platform.python_version(), "cpus": os.cpu_count(), "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "onnxruntime": onnxruntime.__version__,
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    for name, r in results.items():
        print(f"\n{name} {tuple(r['input_shape'])}: images/s (max |difference| {r['max_abs_difference']:.1e})")
        print(f"{'batch':>6} {'keras':>10} {'onnx':>10} {'ratio':>6}")
        for b in r["keras_images_per_s"]:
            print(f"{b:>6} {r['keras_images_per_s'][b]:>10.1f} {r['onnx_images_per_s'][b]:>10.1f} "
                  f"{r['ratio_by_batch'][b]:>6.2f}")
        print(f"best against best: {r['best_ratio']:.2f}x (target {TARGET_RATIO}x)")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
