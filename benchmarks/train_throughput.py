"""Training and inference throughput: siamkit against a plain PyTorch peer.

Both sides train the same Siamese CNN on 28x28 pairs, batch 128: 3x3 "same"
conv 32, ReLU, 2x2 max-pool, conv 64, ReLU, max-pool, dense 128 + ReLU, a
64-d L2-normalised embedding, euclidean distance, contrastive loss (margin 1),
Adam at 1e-3 (epsilon 1e-7 on both), Glorot-uniform kernels and zero biases.

- siamkit: `SiameseNetwork(encoders.cnn(...), DistanceHead("euclidean"))`,
  `ContrastiveLoss`, `model.fit` on a `PairDataset` (through
  `siamkit.training.fit_sampler`, as `siamkit train` feeds it) with Keras' defaults
  (`jit_compile="auto"`, `steps_per_execution=1`) on the default backend;
  inference through `model.embed` and `encoder.predict`.
- peer: an eager PyTorch loop (`torch.nn`, NCHW, its own NumPy pair draw).

Embedding is timed at batch sizes 128, 256, 512 and 1,024 on both sides; the
target compares each side at its fastest, and the table shows the ratio at
every batch size.

Each side runs in its own subprocess, so the peak resident memory (RSS
high-water mark) of one does not include the other, and each builds its model
once. The first `--warmup` steps (tracing, allocation) are not timed; then
`--steps` steps are. Threads are left at each framework's default (all cores
for both); the counts are recorded. `--variants` also times siamkit with
`jit_compile=True` and/or `steps_per_execution`, to show what the defaults
leave on the table.

Usage:

    SIAMKIT_DATA_DIR=/path/to/data python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --quick      # a short smoke run, no variants

Prints a table and writes `benchmarks/results/train_throughput.json`; a
`--quick` run writes `runs/benchmarks/train_throughput.json` instead.
"""

import argparse
import itertools
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _output import output_path  # noqa: E402

IMAGE_SHAPE = (28, 28, 1)
BATCH_SIZE = 128
PREDICT_BATCH_SIZES = (128, 256, 512, 1024)
EMBEDDING_DIM = 64
MARGIN = 1.0
LEARNING_RATE = 1e-3
SEED = 0
SPE = 8  # steps_per_execution tried by --variants; --warmup is rounded up to a multiple
TARGETS = {"train_ratio": 1.5, "predict_ratio": 2.0, "sampler_over_train": 20.0}
RESULT_PREFIX = "RESULT "


# --------------------------------------------------------------------------- children


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _train_rates(marks):
    """Pairs/s from `(steps done, time)` marks taken from the end of warm-up on.

    `train_pairs_per_s` is over all timed steps, what a user waits for;
    `..._median_step` uses the median step time, which a burst of load from
    other processes on a shared machine moves less.
    """
    steps = marks[-1][0] - marks[0][0]
    median = statistics.median((t1 - t0) / (n1 - n0) for (n0, t0), (n1, t1) in itertools.pairwise(marks))
    return {
        "timed_steps": steps,
        "train_pairs_per_s": steps * BATCH_SIZE / (marks[-1][1] - marks[0][1]),
        "train_pairs_per_s_median_step": BATCH_SIZE / median,
    }


def _images_per_s(embed, images, repeats):
    """`{batch size: median images/s}` of `repeats` passes of `embed(images, batch_size)`, after a warm-up batch."""
    result = {}
    for batch_size in PREDICT_BATCH_SIZES:
        embed(images[:batch_size], batch_size)
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            embed(images, batch_size)
            rates.append(len(images) / (time.perf_counter() - start))
        result[str(batch_size)] = statistics.median(rates)
    return result


def _load_images():
    """MNIST train as float32 `(60000, 28, 28, 1)` in [0, 1], else random images."""
    from siamkit import datasets  # NumPy only: imports neither Keras nor a backend
    from siamkit.errors import SiamkitError

    try:
        ds = datasets.load("mnist", subset="train", download=False)
        return ds.x, ds.y, "mnist"
    except (SiamkitError, OSError) as err:
        print(f"note: MNIST not available ({err}); timing on random 28x28 images instead", file=sys.stderr)
        import numpy as np

        rng = np.random.default_rng(SEED)
        return rng.random((60000, *IMAGE_SHAPE), dtype="float32"), rng.integers(0, 10, 60000), "random"


def _sampler(opts):
    """PairDataset batches/s with no model, times the batch size."""
    from siamkit.data import PairDataset

    x, y, source = _load_images()
    ds = PairDataset(x, y, batch_size=BATCH_SIZE, pairs_per_epoch=(opts["sampler_batches"] + 1) * BATCH_SIZE,
                     seed=SEED)
    ds[0]  # warm-up
    start = time.perf_counter()
    for i in range(1, len(ds)):
        ds[i]
    seconds = time.perf_counter() - start
    return {"data": source, "pairs_per_s": (len(ds) - 1) * BATCH_SIZE / seconds, "seconds": seconds}


def _siamkit(opts):
    import keras

    from siamkit import encoders
    from siamkit.data import PairDataset
    from siamkit.losses import ContrastiveLoss
    from siamkit.models import DistanceHead, SiameseNetwork
    from siamkit.training import fit_sampler

    keras.utils.set_random_seed(SEED)
    x, y, source = _load_images()
    warmup, steps = opts["warmup"], opts["steps"]
    ds = PairDataset(x, y, batch_size=BATCH_SIZE, pairs_per_epoch=(warmup + steps) * BATCH_SIZE, seed=SEED)
    encoder = encoders.cnn(IMAGE_SHAPE, embedding_dim=EMBEDDING_DIM, filters=(32, 64), dense_units=(128,),
                           l2_normalize=True)
    model = SiameseNetwork(encoder, DistanceHead("euclidean"))
    compile_kw = {}  # empty = Keras' defaults, what a user gets
    if opts.get("jit_compile") is not None:
        compile_kw["jit_compile"] = opts["jit_compile"]
    if opts.get("steps_per_execution", 1) != 1:
        compile_kw["steps_per_execution"] = opts["steps_per_execution"]
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=ContrastiveLoss(margin=MARGIN), **compile_kw)

    class Marks(keras.callbacks.Callback):
        """`(steps done, time)` from the end of warm-up on; one call per execution."""

        def __init__(self):
            super().__init__()
            self.marks = []

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 >= warmup:
                self.marks.append((batch + 1, time.perf_counter()))

    marks = Marks()
    fit_sampler(model, ds, [marks], epochs=1, verbose=0)  # how `siamkit train` feeds `fit`
    images, repeats = x[: opts["predict_images"]], opts["predict_repeats"]
    return {
        "data": source,
        "backend": keras.backend.backend(),
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
        "params": int(encoder.count_params()),
        **_train_rates(marks.marks),
        "embed_images_per_s": _images_per_s(lambda z, b: model.embed(z, batch_size=b), images, repeats),
        "predict_images_per_s": _images_per_s(
            lambda z, b: encoder.predict(z, batch_size=b, verbose=0), images, repeats
        ),
        "threads": _keras_threads(keras),
    }


def _keras_threads(keras):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        intra = tf.config.threading.get_intra_op_parallelism_threads()
        inter = tf.config.threading.get_inter_op_parallelism_threads()
        return {"intra_op": intra or "default (all cores)", "inter_op": inter or "default (all cores)"}
    if keras.backend.backend() == "torch":
        import torch

        return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    return "backend default"


def _torch(opts):
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(SEED)
    x, y, source = _load_images()
    x = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW, torch's layout: a view, no copy

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
            self.fc = nn.Linear(64 * 7 * 7, 128)
            self.embedding = nn.Linear(128, EMBEDDING_DIM)
            for layer in (self.conv1, self.conv2, self.fc, self.embedding):  # Keras' initialisers
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.fc(torch.flatten(x, 1)))
            return F.normalize(self.embedding(x), dim=1, eps=1e-12)

    def contrastive(z1, z2, same):
        squared = (z1 - z2).square().sum(1)
        positive = squared > 1e-12  # finite gradient at d = 0, as siamkit's euclidean
        d = torch.where(positive, torch.where(positive, squared, 1e-12).sqrt(), 0.0)
        return (0.5 * (same * d.square() + (1 - same) * F.relu(MARGIN - d).square())).mean()

    # Balanced pairs, drawn with NumPy: half positives (an image of the anchor's
    # class, possibly the anchor itself), half negatives (an image of another class).
    rng = np.random.default_rng(SEED)
    classes, label_of = np.unique(y, return_inverse=True)
    order = np.argsort(label_of, kind="stable")
    offset, size = np.searchsorted(label_of[order], np.arange(len(classes))), np.bincount(label_of)
    same = torch.from_numpy((np.arange(BATCH_SIZE) < BATCH_SIZE // 2).astype("float32"))

    def draw_batch():
        anchors = rng.integers(0, len(y), BATCH_SIZE)
        shift = np.where(same.numpy() > 0, 0, rng.integers(1, len(classes), BATCH_SIZE))
        partner_class = (label_of[anchors] + shift) % len(classes)
        partners = order[offset[partner_class] + rng.integers(0, size[partner_class])]
        return x[anchors], x[partners], same

    encoder = Encoder()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=LEARNING_RATE, eps=1e-7)

    def step():
        x1, x2, same = draw_batch()
        optimizer.zero_grad(set_to_none=True)
        loss = contrastive(encoder(x1), encoder(x2), same)
        loss.backward()
        optimizer.step()
        return loss.detach()

    encoder.train()
    for _ in range(opts["warmup"]):
        step()
    marks = [(0, time.perf_counter())]
    for i in range(opts["steps"]):
        step()
        marks.append((i + 1, time.perf_counter()))

    encoder.eval()

    def embed(images, batch_size):
        with torch.inference_mode():
            return np.concatenate([encoder(images[i : i + batch_size]).numpy()
                                   for i in range(0, len(images), batch_size)])

    return {
        "data": source,
        "params": sum(p.numel() for p in encoder.parameters()),
        **_train_rates(marks),
        "embed_images_per_s": _images_per_s(embed, x[: opts["predict_images"]], opts["predict_repeats"]),
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "torch": torch.__version__,
    }


CHILDREN = {"sampler": _sampler, "siamkit": _siamkit, "torch": _torch}


def _child_main(kind, opts):
    result = CHILDREN[kind](opts)
    result["peak_rss_mib"] = _peak_rss_mib()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent


def _run_child(kind, opts):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", kind, "--child-opts", json.dumps(opts)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"benchmark child {kind!r} failed with exit code {proc.returncode}")
    for line in proc.stderr.splitlines():  # pass on our own notes, not the frameworks' log noise
        if line.startswith("note:"):
            print(line)
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["child_wall_s"] = time.perf_counter() - started
    return result


def _loadavg():
    return [round(v, 2) for v in os.getloadavg()]


def _uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _ratio(a, b):
    return a / b if b else float("nan")


def _fastest(rates):
    """`(batch size, images/s)` of the fastest entry of a `{batch size: images/s}` record."""
    return max(rates.items(), key=lambda item: item[1])


def _table(report):
    s, t = report["siamkit"], report["torch"]
    r = report["ratios"]
    (s_batch, s_embed), (t_batch, t_embed) = _fastest(s["embed_images_per_s"]), _fastest(t["embed_images_per_s"])
    p_batch, p_embed = _fastest(s["predict_images_per_s"])
    rows = [
        ("train pairs/s", s["train_pairs_per_s"], t["train_pairs_per_s"], r["train"], TARGETS["train_ratio"]),
        ("train pairs/s (median step)", s["train_pairs_per_s_median_step"], t["train_pairs_per_s_median_step"],
         r["train_median_step"], TARGETS["train_ratio"]),
        (f"embed images/s, fastest batch ({s_batch} / {t_batch})", s_embed, t_embed, r["embed"],
         TARGETS["predict_ratio"]),
        (f"  encoder.predict, fastest ({p_batch})", p_embed, t_embed, r["predict"], None),
        *((f"  model.embed at batch {b}", s["embed_images_per_s"][b], t["embed_images_per_s"][b],
           r_same, None) for b, r_same in report["embed_ratio_by_batch"].items()),
        ("peak RSS MiB", s["peak_rss_mib"], t["peak_rss_mib"], _ratio(s["peak_rss_mib"], t["peak_rss_mib"]), None),
    ]
    lines = [f"{'metric':44} {'siamkit':>10} {'torch':>10} {'ratio':>7}  target",
             "-" * 82]
    for name, a, b, ratio, target in rows:
        goal = f">= {target:g}x {'met' if ratio >= target else 'MISSED'}" if target else ""
        lines.append(f"{name:44} {a:10.0f} {b:10.0f} {ratio:6.2f}x  {goal}")
    sampler = report["sampler"]["pairs_per_s"]
    ok = r["sampler_over_train"] >= TARGETS["sampler_over_train"]
    lines.append(f"{'sampler pairs/s (no model)':44} {sampler:10.0f} {'':10} {r['sampler_over_train']:6.1f}x  "
                 f">= {TARGETS['sampler_over_train']:g}x of the faster trainer {'met' if ok else 'MISSED'}")
    for v in report["variants"]:
        lines.append(f"  variant {v['name']:35} {v['train_pairs_per_s']:10.0f} {'':10} "
                     f"{_ratio(v['train_pairs_per_s'], t['train_pairs_per_s']):6.2f}x  "
                     f"(predict {_fastest(v['predict_images_per_s'])[1]:.0f} img/s)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per side (default 96)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (default 16)")
    parser.add_argument("--predict-images", type=int, default=None, help="images embedded per pass (default 4096)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run: few steps, no variants")
    parser.add_argument("--variants", action=argparse.BooleanOptionalAction, default=None,
                        help="also time siamkit with jit_compile / steps_per_execution (default: on unless --quick)")
    parser.add_argument("--out", help="JSON output path (default: benchmarks/results/train_throughput.json; "
                        "with --quick, runs/benchmarks/train_throughput.json)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-opts", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(args.child, json.loads(args.child_opts))

    quick = args.quick
    out = output_path("train_throughput.json", args.out, quick)
    steps = args.steps if args.steps is not None else (5 if quick else 96)
    warmup = args.warmup if args.warmup is not None else (2 if quick else 16)
    if steps < 1 or warmup < 1:
        parser.error("--steps and --warmup must be at least 1")
    variants = args.variants if args.variants is not None else not quick
    if variants:
        warmup = -(-warmup // SPE) * SPE
        steps = -(-steps // SPE) * SPE
    opts = {
        "steps": steps,
        "warmup": warmup,
        "predict_images": args.predict_images or (2048 if quick else 4096),
        "predict_repeats": 1 if quick else 3,
        "sampler_batches": 30 if quick else 300,
    }
    default = os.path.join(REPO.parent, "shared", "data")
    if "SIAMKIT_DATA_DIR" not in os.environ and os.path.isfile(os.path.join(default, "mnist.npz")):
        os.environ["SIAMKIT_DATA_DIR"] = default

    load_start = _loadavg()
    report = {"config": {**opts, "batch_size": BATCH_SIZE, "predict_batch_sizes": list(PREDICT_BATCH_SIZES),
                         "image_shape": list(IMAGE_SHAPE), "quick": quick,
                         "threads": "framework defaults (all cores) on both sides"}}
    for kind in ("sampler", "siamkit", "torch"):
        print(f"running {kind} ...", flush=True)
        report[kind] = _run_child(kind, opts)
    report["variants"] = []
    if variants:
        for name, extra in (("jit_compile=True", {"jit_compile": True}),
                            (f"steps_per_execution={SPE}", {"steps_per_execution": SPE}),
                            (f"jit+spe={SPE}", {"jit_compile": True, "steps_per_execution": SPE})):
            print(f"running siamkit {name} ...", flush=True)
            report["variants"].append({"name": name, **_run_child("siamkit", {**opts, **extra})})

    s, t = report["siamkit"], report["torch"]
    if s["params"] != t["params"]:
        print(f"warning: parameter counts differ: siamkit {s['params']}, torch {t['params']}")
    fastest = max(s["train_pairs_per_s"], t["train_pairs_per_s"])
    report["ratios"] = {
        "train": _ratio(s["train_pairs_per_s"], t["train_pairs_per_s"]),
        "train_median_step": _ratio(s["train_pairs_per_s_median_step"], t["train_pairs_per_s_median_step"]),
        "embed": _ratio(_fastest(s["embed_images_per_s"])[1], _fastest(t["embed_images_per_s"])[1]),
        "predict": _ratio(_fastest(s["predict_images_per_s"])[1], _fastest(t["embed_images_per_s"])[1]),
        "sampler_over_train": _ratio(report["sampler"]["pairs_per_s"], fastest),
    }
    report["embed_ratio_by_batch"] = {
        b: _ratio(s["embed_images_per_s"][b], t["embed_images_per_s"][b]) for b in s["embed_images_per_s"]
    }
    report["targets"] = TARGETS
    report["met"] = {
        "train_ratio": report["ratios"]["train"] >= TARGETS["train_ratio"],
        "predict_ratio": max(report["ratios"]["embed"], report["ratios"]["predict"]) >= TARGETS["predict_ratio"],
        "sampler_over_train": report["ratios"]["sampler_over_train"] >= TARGETS["sampler_over_train"],
    }
    report["environment"] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "uptime": _uptime(),
    }
    print(_table(report))
    print(f"load average 1/5/15 min: start {load_start}, end {report['environment']['loadavg_end']}")

    from siamkit import _io  # NumPy only; imported late so no child inherits its memory

    _io.write_json(out, report)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
