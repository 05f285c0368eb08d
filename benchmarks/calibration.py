"""Calibration benchmark: does the threshold chosen on validation hold on classes the model never saw?

`siamkit train` chooses its decision threshold on validation pairs and
applies it to test pairs of held-out classes. This benchmark trains the same
jobs twice, once validating on images of the training classes
(`validation = "images"`, seen classes) and once on whole held-out training
classes (`validation = "classes"`, unseen classes), with 3 seeds each, and
reports on the test classes:

- ROC AUC (threshold-free),
- accuracy at the threshold chosen on validation (`test_accuracy`),
- the oracle accuracy: the best accuracy any threshold reaches on the test
  pairs themselves (`test_oracle_accuracy`), an upper bound that shows what
  the validation threshold costs; and the gap between the two.

Jobs:

- `digits`: the default job, `siamkit train` with no options (scikit-learn's
  8x8 digits, classes 0-6 to train on, 7-9 held out);
- `mnist`: MNIST written as PNG class folders (`--mnist-per-class` training
  images per digit), 3 of the 10 classes held out (`holdout_fraction` 0.3,
  chosen by the seed), read at 28x28;
- `omniglot`: 50 Omniglot characters (the first 10 of 5 background
  alphabets, 20 drawings each) written as PNG class folders, 30% of the
  characters held out, read at 28x28.

The folder jobs use the default recipe with `--epochs` epochs at most
(early stopping may end them sooner). Every run is seeded; the seed also
picks the held-out and validation classes of the folder jobs.

Usage:

    python benchmarks/calibration.py            # the full run (about 20 minutes on 2 cores)
    python benchmarks/calibration.py --quick    # one seed, tiny data, 2 epochs: a smoke test
    python benchmarks/calibration.py --only digits/classes   # rerun one entry, carry the others over

The full run prints a table and writes `benchmarks/results/calibration.json`;
`--quick` writes only to `--out` when given (never into `benchmarks/results/`).
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

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
VALIDATIONS = ("images", "classes")
FIGURES = ("test_roc_auc", "test_accuracy", "test_oracle_accuracy", "gap")
OMNIGLOT_ALPHABETS, OMNIGLOT_CHARACTERS = 5, 10  # the first 10 characters of the first 5 background alphabets


def _data_dir():
    folder = os.environ.get("SIAMKIT_DATA_DIR")
    if not folder or not os.path.isfile(os.path.join(folder, "mnist.npz")):
        sys.exit("set SIAMKIT_DATA_DIR to a folder holding mnist.npz and omniglot.npz")
    return folder


def _write_png_folder(root, images, labels, names):
    """`root/<name>/<i>.png` for each image, `names[label]` its class folder."""
    from PIL import Image

    for i, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, names[int(label)])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.png"))
    return root


def write_mnist(root, data_dir, per_class, seed=0):
    """`per_class` MNIST training images of each digit, as PNG folders `0` .. `9` (ink white on black)."""
    with np.load(os.path.join(data_dir, "mnist.npz"), allow_pickle=False) as d:
        x, y = d["train_images"], d["train_labels"]
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]))
    return _write_png_folder(root, x[keep], y[keep], [str(c) for c in range(10)])


def write_omniglot(root, data_dir, alphabets=OMNIGLOT_ALPHABETS, characters=OMNIGLOT_CHARACTERS):
    """The first `characters` characters of the first `alphabets` background alphabets, ink white on black."""
    with np.load(os.path.join(data_dir, "omniglot.npz"), allow_pickle=False) as d:
        images, label, alphabet, character = d["images"], d["label"], d["alphabet"], d["character"]
        names = d["alphabet_names"]
    keep = np.flatnonzero((alphabet < alphabets) & (character <= characters))
    folder_names = {int(c): f"{names[alphabet[i]]}_{int(character[i]):02d}" for i, c in zip(keep, label[keep])}
    ink_high = ((1 - images[keep]) * 255).astype(np.uint8)
    return _write_png_folder(root, ink_high, label[keep], folder_names)


def jobs(work, data_dir, quick, epochs, mnist_per_class):
    """`{name: config overrides}` of the benchmarked jobs."""
    if quick:
        mnist = write_mnist(os.path.join(work, "mnist"), data_dir, 12)
        return {
            "digits": {"epochs": 2, "eval_pairs": 300},
            "mnist": {"data": mnist, "image_size": 28, "channels": 1, "epochs": 2, "eval_pairs": 300},
        }
    mnist = write_mnist(os.path.join(work, "mnist"), data_dir, mnist_per_class)
    omniglot = write_omniglot(os.path.join(work, "omniglot"), data_dir)
    folder = {"image_size": 28, "channels": 1, "epochs": epochs}
    return {
        "digits": {},
        "mnist": {"data": mnist, **folder},
        "omniglot": {"data": omniglot, **folder},
    }


def run_one(overrides, validation, seed, out):
    """Train one run; its held-out figures."""
    import keras

    from siamkit.training import train

    started = time.perf_counter()
    run, metrics = train({**overrides, "validation": validation, "seed": seed, "out": out}, verbose=0)
    config = run.config
    result = {
        "seed": seed,
        "validation": metrics["validation"],
        "validation_reason": metrics["validation_reason"],
        "test_roc_auc": metrics["test_roc_auc"],
        "test_accuracy": metrics["test_accuracy"],
        "test_oracle_accuracy": metrics["test_oracle_accuracy"],
        "gap": metrics["test_oracle_accuracy"] - metrics["test_accuracy"],
        "best_epoch": metrics.get("best_epoch"),
        "validation_folds": metrics.get("validation_folds", 1),
        "train_classes": len(config["train_classes"]),
        "validation_classes": len(config["validation_classes"]),
        "test_classes": len(config["test_classes"]),
        "train_seconds": metrics["train_seconds"],
        "calibration_seconds": metrics.get("calibration_seconds", 0.0),
        "seconds": round(time.perf_counter() - started, 2),
    }
    keras.backend.clear_session()
    return result


def summarise(runs):
    """Mean and sample standard deviation of each figure over the seeds."""
    out = {}
    for key in FIGURES:
        values = np.array([r[key] for r in runs], dtype=float)
        out[key] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def table(results):
    header = f"{'job':<10}{'validation':<16}{'ROC AUC':>16}{'acc @ val thr':>16}{'oracle acc':>16}{'gap (points)':>16}"
    lines = [header, "-" * len(header)]
    for job, by_validation in results.items():
        for validation, entry in by_validation.items():
            s = entry["summary"]
            cells = [f"{s[k]['mean']:.3f} ± {s[k]['sd']:.3f}" for k in FIGURES[:3]]
            gap = f"{100 * s['gap']['mean']:.1f} ± {100 * s['gap']['sd']:.1f}"
            lines.append(f"{job:<10}{entry['label']:<16}" + "".join(f"{c:>16}" for c in cells) + f"{gap:>16}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, tiny data, 2 epochs (a smoke test)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12, help="most epochs of the folder jobs")
    parser.add_argument("--mnist-per-class", type=int, default=300)
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/calibration.json; none with --quick)")
    parser.add_argument(
        "--only", nargs="+", metavar="JOB/VALIDATION",
        help="run only these entries (e.g. digits/classes) and carry the others over from the --out file as they were",
    )
    args = parser.parse_args(argv)
    out = args.out or (None if args.quick else os.path.join(RESULTS, "calibration.json"))
    if args.quick and out and os.path.abspath(out).startswith(RESULTS + os.sep):
        sys.exit("--quick never writes into benchmarks/results/: choose another --out")
    known = [f"{job}/{v}" for job in ("digits", "mnist", "omniglot") for v in VALIDATIONS]
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        sys.exit(f"--only: unknown entries {unknown}; choose from {', '.join(known)}")
    seeds = list(range(1 if args.quick else args.seeds))
    data_dir = _data_dir()

    work = tempfile.mkdtemp(prefix="siamkit-calibration-")
    results = {}
    started = time.perf_counter()
    try:
        for job, overrides in jobs(work, data_dir, args.quick, args.epochs, args.mnist_per_class).items():
            results[job] = {}
            for validation in VALIDATIONS:
                if args.only and f"{job}/{validation}" not in args.only:
                    continue
                runs = []
                for seed in seeds:
                    run_dir = os.path.join(work, "runs", f"{job}-{validation}-{seed}")
                    runs.append(run_one(overrides, validation, seed, run_dir))
                    print(f"{job} validation={validation} seed={seed}: {json.dumps(runs[-1])}", flush=True)
                labels = sorted({r["validation"] for r in runs})
                results[job][validation] = {"label": "/".join(labels), "summary": summarise(runs), "runs": runs}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    carried = []
    if args.only:  # the entries not rerun, as the --out file had them
        previous = {}
        if out and os.path.isfile(out):
            with open(out, encoding="utf-8") as f:
                previous = json.load(f)["results"]
        for job, rerun in results.items():
            merged = {}
            for validation in VALIDATIONS:
                if validation in rerun:
                    merged[validation] = rerun[validation]
                elif validation in previous.get(job, {}):
                    merged[validation] = previous[job][validation]
                    carried.append(f"{job}/{validation}")
            results[job] = merged
    print()
    print(table(results))
    command = "python benchmarks/calibration.py" + (" --quick" if args.quick else "")
    report = {
        "command": command + (f" --only {' '.join(args.only)}" if args.only else ""),
        "config": {
            "quick": args.quick, "seeds": seeds, "folder_epochs": args.epochs, "mnist_per_class": args.mnist_per_class,
            "omniglot": f"the first {OMNIGLOT_CHARACTERS} characters of the first {OMNIGLOT_ALPHABETS} "
            "background alphabets",
        },
        "results": results,
        # With --only: the entries carried over unchanged from the previous file, measured by its run.
        "carried_over": carried,
        "seconds": round(time.perf_counter() - started, 1),
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
    }
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {out}")
    return report


if __name__ == "__main__":
    main()
