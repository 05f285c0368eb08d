"""Time to accuracy: how soon each Siamese recipe reaches a given MNIST verification accuracy.

Three contenders train on MNIST's training images and are scored alike:

- `pytorch`: the PyTorch examples repository's Siamese network (ResNet-18 features of both images,
  concatenated, an MLP with a sigmoid, BCE, Adadelta with a step schedule, batch 64 random pairs),
  in PyTorch; see `peers/pytorch_examples.py` for its source and every deviation.
- `keras_io`: the keras-io example "Image similarity estimation using a Siamese Network with a
  contrastive loss" (small tanh CNN, contrastive loss with margin 1, RMSprop, batch 16), in Keras,
  with the current head (the Euclidean distance is the score) and the earlier one (distance ->
  BatchNormalization -> Dense(1, sigmoid)) as `keras_io_sigmoid`. The earlier head trains for
  `--variant-minutes` (default half the budget) and the two are compared at the end of that time;
  the stronger is the peer compared against. See `peers/keras_io.py`.
- `siamkit`: the recipe of `configs/mnist_fast.toml` through siamkit's trainer (`build_encoder`,
  `build_loss`, `build_optimizer`, `ClassBalancedBatches`, `fit_sampler`), on the default backend.

The evaluation is shared: `VAL_PER_CLASS` images of each digit are held out of MNIST's training
images (seeded) and never trained on; `--val-pairs` balanced pairs of them choose each contender's
decision threshold (best accuracy), and `--test-pairs` balanced pairs of MNIST's 10,000 test images
(seeded) give the test accuracy at that threshold and the ROC AUC. Each contender is evaluated
every `--eval-every` seconds of training and once at the end; the training clock stops while it is
evaluated, so training time excludes evaluation. It starts when the first batch starts (so graph
tracing counts) and each contender trains for `--minutes` of training time, or less when its
recipe ends sooner (siamkit's schedule has a fixed number of steps; its accuracy afterwards is its
final one).

Every contender runs in its own subprocess with the same thread settings: intra-op and inter-op
threads both set to the number of usable cores, in PyTorch and in TensorFlow alike.

Reported: the training time to reach 97%, 98%, 99% and 99.5% test-pair accuracy (None = not
reached), the accuracy after 2, 5 and 10 minutes (the last evaluation at or before that time), and
a figure of accuracy against training time (PNG beside the JSON).

Usage:

    SIAMKIT_DATA_DIR=/path/to/data python benchmarks/time_to_accuracy.py
    python benchmarks/time_to_accuracy.py --quick     # about a minute: checks the pipeline only

Writes `benchmarks/results/time_to_accuracy.json` and `.png`; a `--quick` run writes
`runs/benchmarks/time_to_accuracy.json` and `.png` instead.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _output import output_path  # noqa: E402

SEED = 0
VAL_PER_CLASS = 200  # held-out training images per digit: the validation pairs' images
ACCURACIES = (0.97, 0.98, 0.99, 0.995)
MINUTES = (2, 5, 10)
CONFIG = REPO / "configs" / "mnist_fast.toml"
CONTENDERS = ("siamkit", "pytorch", "keras_io", "keras_io_sigmoid")
PEERS = {"pytorch": ("pytorch",), "keras_io": ("keras_io", "keras_io_sigmoid")}
TARGETS = {"speedup_at_99": 3.0, "siamkit_995_within_s": 600}
RESULT_PREFIX = "RESULT "


# --------------------------------------------------------------------------- shared evaluation


def shared_data(val_pairs, test_pairs, seed=SEED):
    """MNIST split for every contender: training images, validation images and pairs, test images and pairs.

    Returns a dict of arrays: `x_train`, `y_train` (MNIST train less the held-out images),
    `x_val`, `val` (`(first, second, same)` into `x_val`), `x_test`, `test` (into `x_test`).
    """
    from siamkit import datasets
    from siamkit.data import sample_pairs

    train = datasets.load("mnist", subset="train", download=False)
    test = datasets.load("mnist", subset="test", download=False)
    rng = np.random.default_rng(seed)
    held = np.concatenate([rng.choice(np.flatnonzero(train.y == c), VAL_PER_CLASS, replace=False)
                           for c in range(10)])
    keep = np.setdiff1d(np.arange(len(train.y)), held)
    return {
        "x_train": train.x[keep], "y_train": train.y[keep],
        "x_val": train.x[held], "val": sample_pairs(train.y[held], val_pairs, rng=seed + 1),
        "x_test": test.x, "test": sample_pairs(test.y, test_pairs, rng=seed + 2),
    }


def pair_metrics(val_same, val_scores, test_same, test_scores):
    """Test accuracy at the threshold of best validation accuracy, and the test ROC AUC."""
    from siamkit.evaluation.verification import choose_threshold, roc_auc, threshold_metrics

    chosen = choose_threshold(val_same, val_scores, "accuracy")
    return {
        "accuracy": threshold_metrics(test_same, test_scores, chosen["threshold"])["accuracy"],
        "roc_auc": roc_auc(test_same, test_scores),
        "val_accuracy": chosen["accuracy"],
    }


class Tracker:
    """A training clock that stops for evaluations.

    A contender calls `start()` before its first batch and `step(score)` after every batch;
    `score(images, first, second)` gives the pair scores (higher = more alike) of index pairs into
    `images`. `step` evaluates every `eval_every` seconds of training time and returns True once
    `budget` seconds of training are spent (after a last evaluation). `finish(score)` evaluates
    at the end of a recipe that stops by itself.
    """

    def __init__(self, data, budget, eval_every):
        self.data, self.budget, self.eval_every = data, float(budget), float(eval_every)
        self.curve = []
        self.steps = 0
        self.eval_seconds = 0.0
        self._start = None
        self._next = self.eval_every

    def start(self):
        self._start = time.perf_counter()

    def train_seconds(self):
        return time.perf_counter() - self._start - self.eval_seconds

    def step(self, score):
        self.steps += 1
        t = self.train_seconds()
        done = t >= self.budget
        if t >= self._next or done:
            self._evaluate(score, t)
            while self._next <= t:
                self._next += self.eval_every
        return done

    def finish(self, score):
        t = self.train_seconds()
        if not self.curve or self.curve[-1]["steps"] != self.steps:
            self._evaluate(score, t)

    def _evaluate(self, score, t):
        began = time.perf_counter()
        d = self.data
        val = score(d["x_val"], d["val"][0], d["val"][1])
        test = score(d["x_test"], d["test"][0], d["test"][1])
        point = {"train_s": round(t, 3), "steps": self.steps,
                 **pair_metrics(d["val"][2], val, d["test"][2], test)}
        self.eval_seconds += time.perf_counter() - began
        point["eval_s"] = round(time.perf_counter() - began, 3)
        self.curve.append(point)
        print(f"note: {point['train_s']:7.1f} s  step {self.steps:6d}  acc {point['accuracy']:.4f}  "
              f"auc {point['roc_auc']:.5f}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- contenders (children)


def _set_threads(framework, n):
    if framework == "torch":
        import torch

        torch.set_num_threads(n)
        torch.set_num_interop_threads(n)
        return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def _siamkit(data, tracker, opts):
    import keras

    from siamkit.data import ClassBalancedBatches
    from siamkit.data.augment import from_config
    from siamkit.training import fit_sampler
    from siamkit.training.config import resolve
    from siamkit.training.trainer import build_encoder, build_loss, build_optimizer

    config = resolve(opts["config"])
    keras.utils.set_random_seed(config["seed"])
    augment = from_config(config["augment"], seed=config["seed"]) if config["augment"] else None
    sampler = ClassBalancedBatches(
        data["x_train"], data["y_train"], config["classes_per_batch"] or 10, config["samples_per_class"],
        batches_per_epoch=config["batches_per_epoch"], augment=augment, seed=config["seed"],
    )
    encoder = build_encoder(config, data["x_train"].shape[1:])
    encoder.compile(optimizer=build_optimizer(config, len(sampler)), loss=build_loss(config))

    def score(images, first, second):
        z = encoder.predict(images, batch_size=1000, verbose=0)
        return -((z[first] - z[second]) ** 2).sum(1)  # unit vectors: the order of every distance

    class Tick(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if tracker.step(score):
                self.model.stop_training = True

    tracker.start()
    fit_sampler(encoder, sampler, [Tick()], epochs=config["epochs"], verbose=0)
    tracker.finish(score)
    return {"config": {k: config[k] for k in (
        "encoder", "encoder_options", "embedding_dim", "distance", "loss", "margin", "temperature", "mining",
        "classes_per_batch", "samples_per_class", "batches_per_epoch", "epochs", "optimizer", "learning_rate",
        "lr_schedule", "augment", "seed")}, "params": int(encoder.count_params()), "backend": keras.backend.backend()}


def _child_main(kind, opts):
    framework = "torch" if kind == "pytorch" else "tensorflow"
    threads = _set_threads(framework, opts["threads"])
    data = shared_data(opts["val_pairs"], opts["test_pairs"])
    tracker = Tracker(data, opts["budget_s"], opts["eval_every_s"])
    if kind == "pytorch":
        from peers import pytorch_examples

        pytorch_examples.train(data["x_train"], data["y_train"], tracker, seed=SEED)
        extra = {"framework": "torch " + __import__("torch").__version__}
    elif kind.startswith("keras_io"):
        import keras

        from peers import keras_io

        keras_io.train(data["x_train"], data["y_train"], tracker, head="sigmoid" if kind.endswith("sigmoid")
                       else "distance", seed=SEED)
        extra = {"framework": f"keras {keras.__version__} ({keras.backend.backend()})"}
    else:
        extra = _siamkit(data, tracker, opts)
    result = {"curve": tracker.curve, "steps": tracker.steps, "eval_seconds": round(tracker.eval_seconds, 2),
              "threads": threads, **extra}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent


def summarise(curve):
    """`time_to` each of `ACCURACIES` (first evaluation at or above it) and `accuracy_at` each of `MINUTES`."""
    time_to = {}
    for level in ACCURACIES:
        hit = next((p for p in curve if p["accuracy"] >= level), None)
        time_to[f"{level:.1%}"] = None if hit is None else hit["train_s"]
    accuracy_at = {}
    for minutes in MINUTES:
        before = [p for p in curve if p["train_s"] <= minutes * 60]
        accuracy_at[f"{minutes} min"] = before[-1]["accuracy"] if before else None
    best = max(curve, key=lambda p: p["accuracy"])
    return {"time_to": time_to, "accuracy_at": accuracy_at, "final": curve[-1], "best": best}


def _run_child(kind, opts):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", kind, "--child-opts", json.dumps(opts)]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
        err = []
        for line in proc.stderr:  # our own notes as they come, not the frameworks' log noise
            err.append(line)
            if line.startswith("note:"):
                print(f"  {kind}: {line[6:].rstrip()}", flush=True)
        proc.wait()
        stdout.seek(0)
        out = stdout.read()
    lines = [line for line in out.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(out[-4000:] + "".join(err)[-4000:])
        raise SystemExit(f"benchmark child {kind!r} failed with exit code {proc.returncode}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["child_wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _cpu(cores):
    """`"N-core MODEL, AVX2"` from /proc/cpuinfo's first model name and its widest vector flags."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == (platform.processor() or platform.machine()):
                    model = " ".join(value.split()[:2])  # vendor and family, e.g. "AMD EPYC"
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{cores}-core {model}, {vector}"


def _loadavg():
    return [round(v, 2) for v in os.getloadavg()]


def _fmt_s(seconds):
    return "not reached" if seconds is None else f"{seconds:.0f} s"


def _table(report):
    levels, minutes = [f"{a:.1%}" for a in ACCURACIES], [f"{m} min" for m in MINUTES]
    head = f"{'contender':18}" + "".join(f"{'to ' + l:>14}" for l in levels) + "".join(f"{'at ' + m:>10}" for m in minutes)
    lines = [head, "-" * len(head)]
    for kind in CONTENDERS:
        s = report["contenders"][kind]["summary"]
        lines.append(f"{kind:18}" + "".join(f"{_fmt_s(s['time_to'][l]):>14}" for l in levels) + "".join(
            f"{'-' if s['accuracy_at'][m] is None else format(s['accuracy_at'][m], '.2%'):>10}" for m in minutes))
    c = report["comparison"]
    lines.append(f"faster peer to 99.0%: {c['faster_peer']} ({_fmt_s(c['peer_time_to_99'])}); siamkit "
                 f"{_fmt_s(c['siamkit_time_to_99'])}; speed-up {c['speedup_at_99']}")
    return "\n".join(lines)


def _compare(contenders):
    """The stronger keras-io head, the faster peer to 99%, and the targets."""
    # The heads are compared at the end of the shorter budget, which both curves reach.
    horizon = min(contenders[k]["curve"][-1]["train_s"] for k in PEERS["keras_io"])
    at = {k: ([p for p in contenders[k]["curve"] if p["train_s"] <= horizon + 1.0] or contenders[k]["curve"][:1])
          [-1]["accuracy"] for k in PEERS["keras_io"]}
    keras_io = max(at, key=at.get)
    peers = {"pytorch": contenders["pytorch"]["summary"], "keras_io": contenders[keras_io]["summary"]}
    to99 = {name: s["time_to"]["99.0%"] for name, s in peers.items()}
    reached = {n: t for n, t in to99.items() if t is not None}
    faster = min(reached, key=reached.get) if reached else None
    ours = contenders["siamkit"]["summary"]["time_to"]
    peer_t = reached.get(faster)
    if ours["99.0%"] is None:
        ratio, speedup = None, None
    elif peer_t is None:  # no peer reached 99% within its budget: only a lower bound
        ratio = min(contenders[k]["curve"][-1]["train_s"] for k in ("pytorch", keras_io)) / ours["99.0%"]
        speedup = f">= {ratio:.1f}x"
    else:
        ratio = peer_t / ours["99.0%"]
        speedup = f"{ratio:.1f}x"
    speed_ok = ratio is not None and ratio >= TARGETS["speedup_at_99"]
    return {
        "keras_io_head_compared": keras_io,
        "keras_io_heads_at_s": {"train_s": round(horizon, 1), **at},
        "faster_peer": faster or "none reached 99.0%",
        "peer_time_to_99": peer_t,
        "siamkit_time_to_99": ours["99.0%"],
        "speedup_at_99": speedup,
        "met": {
            "speedup_at_99": bool(speed_ok),
            "siamkit_995_within_10_min": ours["99.5%"] is not None and ours["99.5%"] <= TARGETS["siamkit_995_within_s"],
        },
    }


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"pytorch": "tab:red", "keras_io": "tab:blue", "keras_io_sigmoid": "tab:cyan", "siamkit": "tab:green"}
    labels = {"pytorch": "PyTorch examples (ResNet-18, BCE)", "keras_io": "keras-io (contrastive, distance)",
              "keras_io_sigmoid": "keras-io (earlier sigmoid head)", "siamkit": "siamkit (configs/mnist_fast.toml)"}
    for kind in CONTENDERS:
        curve = report["contenders"][kind]["curve"]
        ax.plot([p["train_s"] / 60 for p in curve], [100 * p["accuracy"] for p in curve], marker=".",
                color=styles[kind], label=labels[kind], linestyle="--" if kind == "keras_io_sigmoid" else "-")
    for level in ACCURACIES:
        ax.axhline(100 * level, color="grey", linewidth=0.5, linestyle=":")
    lowest = min(p["accuracy"] for kind in CONTENDERS for p in report["contenders"][kind]["curve"])
    ax.set_ylim(max(50, 10 * int(10 * lowest)), 100)  # every curve in view
    ax.set_xlabel("training time (minutes, evaluation excluded)")
    ax.set_ylabel("test-pair accuracy (%)")
    ax.set_title(f"MNIST verification, {report['config']['test_pairs']:,} test pairs; {report['environment']['cpu']}")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from siamkit import _io

    with _io.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="training-time budget per contender (default 10)")
    parser.add_argument("--variant-minutes", type=float, default=None,
                        help="budget of the earlier keras-io head, only compared with the current one "
                        "(default: half of --minutes)")
    parser.add_argument("--eval-every", type=float, default=None,
                        help="seconds of training between evaluations (default 30)")
    parser.add_argument("--val-pairs", type=int, default=None, help="validation pairs (default 5000)")
    parser.add_argument("--test-pairs", type=int, default=None, help="test pairs (default 10000)")
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, help="run only these contenders (no comparison)")
    parser.add_argument("--config", default=str(CONFIG), help="siamkit's recipe (default configs/mnist_fast.toml)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute: tiny budgets")
    parser.add_argument("--out", help="JSON output path (default: benchmarks/results/time_to_accuracy.json; "
                        "with --quick, runs/benchmarks/time_to_accuracy.json); the PNG goes beside it")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--child-opts", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args.child, json.loads(args.child_opts))

    quick = args.quick
    out = output_path("time_to_accuracy.json", args.out, quick)
    default = os.path.join(REPO.parent, "shared", "data")
    if "SIAMKIT_DATA_DIR" not in os.environ and os.path.isfile(os.path.join(default, "mnist.npz")):
        os.environ["SIAMKIT_DATA_DIR"] = default
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    opts = {
        "budget_s": 60 * (args.minutes if args.minutes is not None else (0.1 if quick else 10)),
        "eval_every_s": args.eval_every or (3 if quick else 30),
        "val_pairs": args.val_pairs or (1000 if quick else 5000),
        "test_pairs": args.test_pairs or (1000 if quick else 10000),
        "threads": cores,
        "config": args.config,
    }
    kinds = args.only or CONTENDERS
    variant_s = 60 * args.variant_minutes if args.variant_minutes is not None else opts["budget_s"] / 2
    load_start = _loadavg()
    report = {"config": {**opts, "variant_budget_s": variant_s, "quick": quick, "seed": SEED,
                         "val_images_per_class": VAL_PER_CLASS, "contenders": list(kinds)}, "contenders": {}}
    for kind in kinds:
        print(f"running {kind} ...", flush=True)
        budget = opts["budget_s"] if kind != "keras_io_sigmoid" else variant_s
        result = _run_child(kind, {**opts, "budget_s": budget})
        result["summary"] = summarise(result["curve"])
        report["contenders"][kind] = result
    report["environment"] = {
        "cpu": _cpu(cores),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "usable_cores": cores,
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
    }
    if set(kinds) == set(CONTENDERS):
        report["targets"] = TARGETS
        report["comparison"] = _compare(report["contenders"])
        print(_table(report))
    print(f"load average 1/5/15 min: start {load_start}, end {report['environment']['loadavg_end']}")

    from siamkit import _io

    _io.write_json(out, report)
    print(f"wrote {out}")
    if "comparison" in report:
        figure = os.path.splitext(out)[0] + ".png"
        plot(report, figure)
        print(f"wrote {figure}")
    return report


if __name__ == "__main__":
    main()
