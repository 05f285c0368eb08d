"""Multi-modal (two-tower) benchmark: three pairings, all through `siamkit train`'s one trainer.

Jobs:

- `mnist_fsdd`: `configs/mnist_fsdd.toml` (MNIST images <-> FSDD spoken
  digits). Audio -> image and image -> audio R@1 on the FSDD test split
  (takes 0-4, 300 clips) against the 10,000 MNIST test images, per seed; and
  the held-out-speaker rotation (`rotate_by = "speaker"`: train on five
  speakers, query with all 500 clips of the sixth, for each of the six),
  its mean audio -> image R@1 per seed and over the seeds.
- `mnist_digits`: MNIST (28x28, `cnn`) <-> scikit-learn's 8x8 digits
  (`mlp`), both written by this script as PNG class folders, trained with
  `--data` / `--data-b`; R@1 both ways on the held-out images (30% of each
  digit's images on each side).
- `text_image`: the same 8x8 digit PNGs <-> number words ("seven", "Seven",
  "SEVEN", "sieben", "sept", "siete", "sette", "zeven", "7", ...), a CSV of
  matching `path_a,text,label` rows (`--pairs-csv`, `--modality-b text`);
  R@1 both ways on the held-out rows.

Usage:

    python benchmarks/multimodal.py                  # every job, 3 seeds of mnist_fsdd
    python benchmarks/multimodal.py --rotation-seeds 1   # 3 seeds, the held-out-speaker rotation for the first
    python benchmarks/multimodal.py --quick          # tiny data, 1-2 epochs: a smoke test

A full run prints a table and writes `benchmarks/results/multimodal.json`;
`--quick` writes under `runs/benchmarks/` (see `_output.py`).
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _output import output_path  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "configs", "mnist_fsdd.toml")
# Number words: several spellings and languages per digit.
WORDS = {
    0: ["zero", "Zero", "ZERO", "null", "zéro", "cero", "zero", "nul", "0"],
    1: ["one", "One", "ONE", "eins", "un", "uno", "uno", "een", "1"],
    2: ["two", "Two", "TWO", "zwei", "deux", "dos", "due", "twee", "2"],
    3: ["three", "Three", "THREE", "drei", "trois", "tres", "tre", "drie", "3"],
    4: ["four", "Four", "FOUR", "vier", "quatre", "cuatro", "quattro", "vier", "4"],
    5: ["five", "Five", "FIVE", "fünf", "cinq", "cinco", "cinque", "vijf", "5"],
    6: ["six", "Six", "SIX", "sechs", "six", "seis", "sei", "zes", "6"],
    7: ["seven", "Seven", "SEVEN", "sieben", "sept", "siete", "sette", "zeven", "7"],
    8: ["eight", "Eight", "EIGHT", "acht", "huit", "ocho", "otto", "acht", "8"],
    9: ["nine", "Nine", "NINE", "neun", "neuf", "nueve", "nove", "negen", "9"],
}


def _data_dir():
    folder = os.environ.get("SIAMKIT_DATA_DIR")
    if not folder or not all(os.path.isfile(os.path.join(folder, f)) for f in ("mnist.npz", "fsdd.npz")):
        sys.exit("set SIAMKIT_DATA_DIR to a folder holding mnist.npz and fsdd.npz")
    return folder


def _png_folder(root, images, labels):
    """`root/<digit>/<i>.png` per image (uint8, ink high); returns the relative paths."""
    from PIL import Image

    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        relative = os.path.join(str(int(label)), f"{i:05d}.png")
        os.makedirs(os.path.join(root, str(int(label))), exist_ok=True)
        Image.fromarray(image).save(os.path.join(root, relative))
        paths.append(relative)
    return paths


def write_folders(work, data_dir, mnist_per_class, seed=0):
    """MNIST (`mnist_per_class` training images per digit) and all 1,797 sklearn digits, as PNG class folders."""
    from sklearn.datasets import load_digits

    with np.load(os.path.join(data_dir, "mnist.npz"), allow_pickle=False) as d:
        x, y = d["train_images"], d["train_labels"]
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), mnist_per_class, replace=False)
                                   for c in range(10)]))
    mnist = os.path.join(work, "mnist")
    _png_folder(mnist, x[keep], y[keep])
    digits = load_digits()
    small = os.path.join(work, "digits")
    paths = _png_folder(small, np.round(digits.images * 255 / 16).astype(np.uint8), digits.target)
    return mnist, small, paths, digits.target


def write_word_csv(work, paths, labels, seed=0):
    """`path_a,text,label` rows: each digit image with a random number word of its digit."""
    import csv

    rng = np.random.default_rng(seed)
    path = os.path.join(work, "words.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path_a", "path_b", "label"])
        for p, label in zip(paths, labels):
            words = WORDS[int(label)]
            writer.writerow([p, words[rng.integers(len(words))], int(label)])
    return path


def _train(overrides, config_file=None):
    import keras

    from siamkit.training import resolve, train

    started = time.perf_counter()
    run, metrics = train(resolve(config_file, overrides), verbose=0)
    keras.backend.clear_session()
    r1 = {direction: table["R@1"] for direction, table in metrics["retrieval"].items()}
    return {
        "R@1": r1,
        "retrieval": metrics["retrieval"],
        "test_items": metrics["test_items"],
        "test_roc_auc": metrics.get("test_roc_auc"),
        "test_eer": metrics.get("test_eer"),
        "rotation": metrics.get("rotation"),
        "train_seconds": metrics["train_seconds"],
        "seconds": round(time.perf_counter() - started, 1),
        "encoders": [run.config["encoder"], run.config["encoder_b"]],
    }


def mnist_fsdd(work, data_dir, seeds, rotation_seeds, quick):
    overrides = {"data_dir": data_dir}
    if quick:
        overrides.update(epochs=1, encoder_options_b={"filters": [16, 16]}, val_fraction=0.85, embedding_dim=16)
    runs = []
    for seed in seeds:
        rotate = seed in rotation_seeds
        result = _train({**overrides, "seed": seed, "out": os.path.join(work, f"mnist_fsdd-{seed}"),
                         "rotate_by": "speaker" if rotate else None}, CONFIG)
        result["seed"] = seed
        runs.append(result)
        print(f"mnist_fsdd seed {seed}: {json.dumps({k: result[k] for k in ('R@1', 'seconds')})}", flush=True)
        if rotate:
            mean = result["rotation"]["mean"]["audio_to_image"]["R@1"]
            print(f"  held-out speakers, mean audio->image R@1: {mean:.4f}", flush=True)
    summary = {"audio_to_image_R@1": [r["R@1"]["audio_to_image"] for r in runs],
               "image_to_audio_R@1": [r["R@1"]["image_to_audio"] for r in runs]}
    if rotation_seeds:
        summary["holdout_speaker_mean_R@1"] = [r["rotation"]["mean"]["audio_to_image"]["R@1"] for r in runs
                                               if r["rotation"]]
    summary = {k: {"per_seed": v, "mean": float(np.mean(v))} for k, v in summary.items()}
    return {"summary": summary, "runs": runs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny data, 1-2 epochs (a smoke test)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the MNIST <-> FSDD job")
    parser.add_argument("--rotation-seeds", type=int, help="of those, how many (the first) also run the "
                        "held-out-speaker rotation, six more trainings each (default: all)")
    parser.add_argument("--jobs", default="mnist_fsdd,mnist_digits,text_image", help="comma-separated jobs")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the folder and CSV jobs")
    parser.add_argument("--mnist-per-class", type=int, default=300)
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/multimodal.json)")
    args = parser.parse_args(argv)
    out = output_path("multimodal.json", args.out, args.quick)
    data_dir = _data_dir()
    jobs = args.jobs.split(",")
    seeds = list(range(1 if args.quick else args.seeds))
    epochs = 2 if args.quick else args.epochs

    work = tempfile.mkdtemp(prefix="siamkit-multimodal-")
    results = {}
    started = time.perf_counter()
    try:
        mnist, small, paths, labels = write_folders(work, data_dir, 12 if args.quick else args.mnist_per_class)
        if args.quick:
            keep = np.concatenate([np.flatnonzero(labels == c)[:12] for c in range(10)])
            paths, labels = [paths[i] for i in keep], labels[keep]
        folder = {"epochs": epochs, "batch_size": 64, "seed": 0, "embedding_dim": 64, "holdout_fraction": 0.3}
        if "mnist_digits" in jobs:
            results["mnist_digits"] = _train({
                **folder, "data": mnist, "data_b": small, "encoder": "cnn",
                "encoder_b": "mlp", "image_size": 28, "channels": 1, "image_size_b": 8, "channels_b": 1,
                "out": os.path.join(work, "mnist_digits"),
            })
            print(f"mnist_digits: {json.dumps(results['mnist_digits']['R@1'])}", flush=True)
        if "text_image" in jobs:
            words = write_word_csv(work, paths, labels)
            results["text_image"] = _train({
                **folder, "pairs_csv": words, "data": small, "towers": 2, "modality_b": "text", "encoder": "mlp",
                "channels": 1, "out": os.path.join(work, "text_image"),
            })
            print(f"text_image: {json.dumps(results['text_image']['R@1'])}", flush=True)
        if "mnist_fsdd" in jobs:
            rotation_seeds = seeds if args.rotation_seeds is None else seeds[: args.rotation_seeds]
            results["mnist_fsdd"] = mnist_fsdd(work, data_dir, seeds, rotation_seeds, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [f"{'job':<14}{'direction':<18}{'R@1':>10}", "-" * 42]
    for job in ("mnist_digits", "text_image"):
        for direction, value in results.get(job, {}).get("R@1", {}).items():
            lines.append(f"{job:<14}{direction:<18}{value:>10.4f}")
    for key, entry in results.get("mnist_fsdd", {}).get("summary", {}).items():
        per_seed = ", ".join(f"{v:.4f}" for v in entry["per_seed"])
        lines.append(f"{'mnist_fsdd':<14}{key:<32} mean {entry['mean']:.4f} (seeds: {per_seed})")
    print("\n" + "\n".join(lines))
    report = {
        "command": " ".join(["python benchmarks/multimodal.py", *(sys.argv[1:] if argv is None else argv)]),
        "config": {"quick": args.quick, "seeds": seeds, "epochs": epochs, "mnist_per_class": args.mnist_per_class,
                   "rotation_seeds": args.rotation_seeds, "jobs": jobs},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    from siamkit import _io

    _io.write_json(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
