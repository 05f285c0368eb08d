"""Transfer: pretrain on Omniglot, fine-tune on MNIST with 50 images per class, against training from scratch.

1. **Pretrain** a `cnn` encoder (64-d, triplet loss with hard mining) on
   Omniglot's background set (964 characters of 30 alphabets, resized to
   28x28, ink high as MNIST) with `siamkit train`.
2. **Few labels**: an image folder of MNIST digits 0-4, 50 training images
   per class (of which `val_fraction` 0.2 validate: they choose the epoch and
   the threshold), plus MNIST *test* images of digits 5-9, held out.
3. Train on the folder, same config and seeds, three ways:
   - **scratch**: random initial weights;
   - **init-from**: `--init-from PRETRAINED_RUN`;
   - **init-from + freeze**: also `--freeze-backbone-epochs 3` (then the
     backbone trains at `--fine-tune-learning-rate`).

Every arm is evaluated by `siamkit train`'s own evaluation on the held-out
digits 5-9 (classes never seen in fine-tuning, nor in pretraining):
verification ROC AUC of random pairs and 5-way 1-shot accuracy.

Usage:

    SIAMKIT_DATA_DIR=/path/to/data python benchmarks/transfer.py
    SIAMKIT_DATA_DIR=/path/to/data python benchmarks/transfer.py --quick    # a short smoke run

Prints a table and writes `benchmarks/results/transfer.json`; a `--quick`
run writes `runs/benchmarks/transfer.json` instead.
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

TRAIN_DIGITS, TEST_DIGITS = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
# The model and objective of every arm (pretraining included): same encoder, so --init-from fits.
COMMON = {"encoder": "cnn", "embedding_dim": 64, "loss": "triplet", "mining": "hard", "samples_per_class": 4,
          "learning_rate": 1e-3}
ONESHOT = "oneshot_5-way_1-shot"


def _write_folder(folder, per_class, test_per_class, seed):
    """MNIST digits as PNG class folders: `per_class` train images of 0-4, `test_per_class` test images of 5-9."""
    import numpy as np
    from PIL import Image

    from siamkit import datasets

    rng = np.random.default_rng(seed)
    for subset, digits, count in (("train", TRAIN_DIGITS, per_class), ("test", TEST_DIGITS, test_per_class)):
        ds = datasets.load("mnist", subset=subset, download=False)
        for digit in digits:
            rows = rng.choice(np.flatnonzero(ds.y == digit), count, replace=False)
            os.makedirs(os.path.join(folder, str(digit)), exist_ok=True)
            for i in rows:
                pixels = np.round(ds.x[i, :, :, 0] * 255).astype("uint8")
                Image.fromarray(pixels).save(os.path.join(folder, str(digit), f"{i:05d}.png"))


def _summary(metrics):
    return {key: metrics[key] for key in ("test_roc_auc", "test_accuracy", ONESHOT, "precision_at_1", "best_epoch",
                                          "train_seconds") if key in metrics}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the fine-tuning arms")
    parser.add_argument("--per-class", type=int, default=50, help="training images per MNIST digit 0-4")
    parser.add_argument("--test-per-class", type=int, default=500, help="held-out test images per digit 5-9")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--pretrain-batches", type=int, default=150, help="P x K batches per pretraining epoch")
    parser.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs (early stopping, patience 5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny pretraining, one seed, 2 epochs")
    parser.add_argument("--work", help="folder for the runs (default: a temporary folder)")
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/transfer.json)")
    args = parser.parse_args(argv)
    out = output_path("transfer.json", args.out, args.quick)
    if args.quick:
        args.seeds, args.test_per_class, args.pretrain_epochs, args.pretrain_batches, args.epochs = [0], 40, 1, 5, 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from siamkit.training import train

    work = args.work or tempfile.mkdtemp(prefix="siamkit-transfer-")
    load_before = os.getloadavg()
    started = time.perf_counter()

    pretrain_config = {
        **COMMON, "dataset": "omniglot", "subset": "background", "image_size": "28", "epochs": args.pretrain_epochs,
        "batches_per_epoch": args.pretrain_batches, "classes_per_batch": 16, "patience": 3, "seed": 0,
        "eval_pairs": 2000, "out": os.path.join(work, "pretrain"),
    }
    print(f"pretraining on Omniglot background ({args.pretrain_epochs} epochs) ...", flush=True)
    pretrained, pretrain_metrics = train(pretrain_config, verbose=0)

    folder = os.path.join(work, "mnist_few")
    _write_folder(folder, args.per_class, args.test_per_class, seed=0)
    base = {
        **COMMON, "data": folder, "holdout_classes": list(TEST_DIGITS), "validation": "images", "val_fraction": 0.2,
        "classes_per_batch": len(TRAIN_DIGITS), "epochs": args.epochs, "patience": 5, "eval_pairs": 2000,
    }
    arms = {
        "scratch": {},
        "init-from": {"init_from": pretrained.path},
        "init-from + freeze": {"init_from": pretrained.path, "freeze_backbone_epochs": min(3, args.epochs - 1),
                               "fine_tune_learning_rate": 3e-4},
    }
    results = {}
    for name, extra in arms.items():
        results[name] = []
        for seed in args.seeds:
            print(f"{name}, seed {seed} ...", flush=True)
            run_dir = os.path.join(work, f"{name.replace(' ', '').replace('+', '_')}-{seed}")
            _, metrics = train({**base, **extra, "seed": seed, "out": run_dir}, verbose=0)
            results[name].append({"seed": seed, **_summary(metrics)})

    def mean(name, key):
        return statistics.mean(r[key] for r in results[name])

    table = {name: {"test_roc_auc": mean(name, "test_roc_auc"), ONESHOT: mean(name, ONESHOT)} for name in arms}
    report = {
        "benchmark": "transfer", "quick": args.quick,
        "pretrain": {"config": {k: v for k, v in pretrain_config.items() if k != "out"},
                     "metrics": _summary(pretrain_metrics)},
        "fine_tune": {"config": {k: v for k, v in base.items() if k != "data"}, "per_class": args.per_class,
                      "test_per_class": args.test_per_class, "seeds": args.seeds, "arms": arms},
        "results": results, "mean": table,
        "init_from_minus_scratch": {
            key: table["init-from"][key] - table["scratch"][key] for key in ("test_roc_auc", ONESHOT)
        },
        "seconds": round(time.perf_counter() - started, 1),
        "environment": {
            "python": platform.python_version(), "cpus": os.cpu_count(), "keras": keras.__version__,
            "keras_backend": keras.backend.backend(), "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
        f.write("\n")
    print(f"\npretraining (Omniglot background, held-out characters): AUC {pretrain_metrics['test_roc_auc']:.4f}")
    print(f"MNIST, {args.per_class} images of each of digits 0-4; tested on digits 5-9 "
          f"(mean of seeds {args.seeds}):")
    print(f"{'arm':<20} {'ROC AUC':>8} {'5-way 1-shot':>13}")
    for name, row in table.items():
        print(f"{name:<20} {row['test_roc_auc']:>8.4f} {row[ONESHOT]:>13.4f}")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
