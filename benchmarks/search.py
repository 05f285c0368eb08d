"""Search benchmark: siamkit's exact index against FAISS IndexFlat, HNSW, memory, build and embedding speed.

One run measures, on `--n` x `--dim` float32 gallery vectors and `--queries`
queries (default 1,000,000 x 64 and 1,000), top-`--k` search:

- queries/s of siamkit's `exact` backend and of FAISS `IndexFlatL2` /
  `IndexFlatIP` (cosine = inner product of unit vectors), euclidean and
  cosine, and how often their top-k agree (target: siamkit >= 1.0x FAISS);
- siamkit's `faiss-hnsw` backend: recall@k against exact search and
  queries/s at several `ef_search` (target: recall >= 0.95 at >= 10x exact);
- peak RSS of each process (`VmHWM`) and the exact index's share of it
  against the raw embedding bytes (target: within 1.2x);
- build (add) time, and embedding throughput (images/s) of a trained model,
  from PNG files (decode + model) and from arrays (model only).

Each backend runs in its own process, so peak RSS is its own. Gallery
vectors are generated in chunks, never all at once: embedding-like data,
noisy points around `n / 100` random class centres. Search times are the
best of `--repeats` full passes over the queries, after a short warm-up.

Usage:

    python benchmarks/search.py            # the full run (tens of minutes on 2 cores)
    python benchmarks/search.py --quick    # 100,000 x 64, a couple of minutes

It prints a table and writes `benchmarks/results/search.json`; a `--quick`
run writes `runs/benchmarks/search.json` instead.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _output import output_path  # noqa: E402

CHUNK = 10_000  # small, so that the generator's buffers barely count in peak RSS
EF_SEARCH = (16, 32, 64, 128)


# --- data -------------------------------------------------------------------
def _centres(cfg):
    return np.random.default_rng(cfg["seed"]).standard_normal((max(1, cfg["n"] // 100), cfg["dim"]), dtype=np.float32)


def _points(centres, n, rng):
    x = centres[rng.integers(0, len(centres), n)]
    x += np.float32(0.5) * rng.standard_normal(x.shape, dtype=np.float32)
    return x


def gallery_chunks(cfg):
    """The gallery, `CHUNK` rows at a time (deterministic)."""
    centres = _centres(cfg)
    for i, start in enumerate(range(0, cfg["n"], CHUNK)):
        yield _points(centres, min(CHUNK, cfg["n"] - start), np.random.default_rng([cfg["seed"], 0, i]))


def queries(cfg):
    return _points(_centres(cfg), cfg["queries"], np.random.default_rng([cfg["seed"], 1]))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- measuring ----------------------------------------------------------------
def rss_mb(field):
    """`VmRSS` or `VmHWM` (peak) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def recall(found, truth):
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))


def _search_all(cfg, search):
    q = queries(cfg)
    search(q[:10])  # warm-up: BLAS threads, first-touch pages
    seconds, ids = best_time(lambda: search(q), cfg["repeats"])
    return cfg["queries"] / seconds, ids


# --- workers (one process each) -------------------------------------------------
def worker_exact(cfg):
    from siamkit.index import Index

    base = rss_mb("VmRSS")
    index = Index(cfg["dim"], cfg["metric"])
    start = time.perf_counter()
    for chunk in gallery_chunks(cfg):
        index.add(chunk)
    build = time.perf_counter() - start
    del chunk
    qps, ids = _search_all(cfg, lambda q: index.search(q, cfg["k"]).ids)
    np.save(os.path.join(cfg["tmp"], f"exact-{cfg['metric']}.npy"), ids)
    return {"qps": qps, "build_s": build, "rss_base_mb": base, "rss_peak_mb": rss_mb("VmHWM")}


def worker_faiss_flat(cfg):
    import faiss

    base = rss_mb("VmRSS")
    cosine = cfg["metric"] == "cosine"
    index = faiss.IndexFlatIP(cfg["dim"]) if cosine else faiss.IndexFlatL2(cfg["dim"])
    start = time.perf_counter()
    for chunk in gallery_chunks(cfg):
        index.add(unit(chunk) if cosine else chunk)
    build = time.perf_counter() - start
    del chunk
    qps, ids = _search_all(cfg, lambda q: index.search(unit(q) if cosine else q, cfg["k"])[1])
    truth = np.load(os.path.join(cfg["tmp"], f"exact-{cfg['metric']}.npy"), allow_pickle=False)
    return {
        "qps": qps,
        "build_s": build,
        "rss_base_mb": base,
        "rss_peak_mb": rss_mb("VmHWM"),
        "same_top_k": float(np.mean(np.sort(ids, 1) == np.sort(truth, 1))),
        "recall_vs_siamkit": recall(ids, truth),
    }


def worker_hnsw(cfg):
    from siamkit.index import Index

    base = rss_mb("VmRSS")
    options = {"m": cfg["hnsw_m"], "ef_construction": cfg["hnsw_ef_construction"]}
    index = Index(cfg["dim"], cfg["metric"], "faiss-hnsw", options)
    start = time.perf_counter()
    for chunk in gallery_chunks(cfg):
        index.add(chunk)
    build = time.perf_counter() - start
    del chunk
    truth = np.load(os.path.join(cfg["tmp"], f"exact-{cfg['metric']}.npy"), allow_pickle=False)
    runs = []
    for ef in EF_SEARCH:
        index.backend.options["ef_search"] = ef
        qps, ids = _search_all(cfg, lambda q: index.search(q, cfg["k"]).ids)
        runs.append({"ef_search": ef, "qps": qps, "recall": recall(ids, truth)})
    return {"build_s": build, "rss_base_mb": base, "rss_peak_mb": rss_mb("VmHWM"), "ef": runs, **options}


def worker_embed(cfg):
    """Images/s of a trained model: a small digits CNN, from PNG files and from arrays."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from PIL import Image

    from siamkit.datasets import load
    from siamkit.index.inputs import embed_files
    from siamkit.runs import Run
    from siamkit.training import train

    if cfg["run"]:
        run = Run(cfg["run"])
    else:
        run, _ = train({"epochs": 1, "out": os.path.join(cfg["tmp"], "run"), "embedding_dim": cfg["dim"]}, verbose=0)
    x = load("digits").x
    x = np.concatenate([x] * max(1, cfg["embed_images"] // len(x)))[: cfg["embed_images"]]
    h, w, c = run.input_shape
    folder = os.path.join(cfg["tmp"], "images")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, img in enumerate(x):
        paths.append(os.path.join(folder, f"{i:06d}.png"))
        Image.fromarray(np.round(img[..., 0] * 255).astype("uint8")).resize((w, h)).save(paths[-1])
    pixels = np.stack([np.asarray(Image.open(p), dtype="float32")[..., None] / 255 for p in paths[:2000]])
    embed_files(run, paths[:256], progress=False)  # warm-up: graph tracing
    files_s, _ = best_time(lambda: embed_files(run, paths, 256, progress=False), cfg["repeats"])
    arrays_s, _ = best_time(lambda: run.embed(pixels, batch_size=256), cfg["repeats"])
    return {
        "images": len(paths),
        "input_shape": [h, w, c],
        "encoder": run.config.get("encoder"),
        "files_images_per_s": len(paths) / files_s,
        "arrays_images_per_s": len(pixels) / arrays_s,
    }


WORKERS = {"exact": worker_exact, "faiss-flat": worker_faiss_flat, "hnsw": worker_hnsw, "embed": worker_embed}


def spawn(name, cfg):
    """Run a worker in a fresh process; return its JSON result."""
    print(f"  {name} {cfg.get('metric', '')} ...", file=sys.stderr, flush=True)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--config", json.dumps(cfg)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- report ---------------------------------------------------------------------
def table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def report(res):
    cfg = res["config"]
    raw_mb = cfg["n"] * cfg["dim"] * 4 / 2**20
    metrics = ("euclidean", "cosine")
    rows = [["", *metrics]]
    ex, ff = res["exact"], res["faiss_flat"]
    rows.append(["siamkit exact, queries/s", *(f"{ex[m]['qps']:.1f}" for m in metrics)])
    rows.append(["FAISS IndexFlat, queries/s", *(f"{ff[m]['qps']:.1f}" for m in metrics)])
    rows.append(["ratio siamkit / FAISS (target >= 1.0)", *(f"{ex[m]['qps'] / ff[m]['qps']:.2f}x" for m in metrics)])
    rows.append(["top-k sets equal to FAISS", *(f"{ff[m]['same_top_k']:.4f}" for m in metrics)])
    rows.append(
        ["build (add) s: siamkit / FAISS", *(f"{ex[m]['build_s']:.1f} / {ff[m]['build_s']:.1f}" for m in metrics)]
    )
    rows.append(
        [
            "peak RSS MiB: siamkit / FAISS",
            *(f"{ex[m]['rss_peak_mb']:.0f} / {ff[m]['rss_peak_mb']:.0f}" for m in metrics),
        ]
    )
    mem = res["memory"]
    rows.append(
        [
            f"exact index memory / raw {raw_mb:.0f} MiB (target <= 1.2)",
            *(f"{mem[m]['index_ratio']:.2f} (process {mem[m]['process_ratio']:.2f})" for m in metrics),
        ]
    )
    hn = res["hnsw"]
    hrows = [["faiss-hnsw ef_search", "recall@%d" % cfg["k"], "queries/s", "x exact"]]
    for r in hn["ef"]:
        hrows.append([r["ef_search"], f"{r['recall']:.4f}", f"{r['qps']:.0f}", f"{r['speedup']:.1f}x"])
    emb = res["embedding"]
    lines = [
        f"{cfg['n']:,} x {cfg['dim']} float32 gallery, {cfg['queries']:,} queries, top-{cfg['k']}; "
        f"{res['machine']['cpus']} CPUs, load average {res['machine']['load_before']:.1f} -> "
        f"{res['machine']['load_after']:.1f}",
        "",
        table(rows),
        "",
        f"HNSW (M={hn['m']}, ef_construction={hn['ef_construction']}, euclidean): build {hn['build_s']:.0f} s, "
        f"peak RSS {hn['rss_peak_mb']:.0f} MiB; target recall >= 0.95 at >= 10x exact: "
        f"{'met' if res['targets']['hnsw'] else 'NOT met'}",
        "",
        table(hrows),
        "",
        f"embedding throughput ({emb['encoder']} on {tuple(emb['input_shape'])} inputs, {emb['images']} images): "
        f"{emb['files_images_per_s']:.0f} images/s from PNG files, {emb['arrays_images_per_s']:.0f} images/s "
        "from arrays",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="gallery vectors (default: 1,000,000; with --quick, 100,000)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per search; the best counts")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--hnsw-ef-construction", type=int, default=100)
    parser.add_argument("--embed-images", type=int, default=5000)
    parser.add_argument("--run", help="a run directory for the embedding throughput (default: train a digits CNN)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 100,000 gallery vectors unless --n")
    parser.add_argument(
        "--out", help="JSON output path (default: benchmarks/results/search.json; with --quick, runs/benchmarks/)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(args.config))))
        return 0

    out = output_path("search.json", args.out, args.quick)
    n = args.n or (100_000 if args.quick else 1_000_000)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {
            "n": n,
            "dim": args.dim,
            "queries": args.queries,
            "k": args.k,
            "repeats": args.repeats,
            "seed": args.seed,
            "hnsw_m": args.hnsw_m,
            "hnsw_ef_construction": args.hnsw_ef_construction,
            "embed_images": args.embed_images,
            "run": args.run,
            "tmp": tmp,
        }
        res = {"exact": {}, "faiss_flat": {}, "memory": {}}
        for metric in ("euclidean", "cosine"):
            res["exact"][metric] = spawn("exact", {**cfg, "metric": metric})
            res["faiss_flat"][metric] = spawn("faiss-flat", {**cfg, "metric": metric})
        res["hnsw"] = spawn("hnsw", {**cfg, "metric": "euclidean"})
        res["embedding"] = spawn("embed", cfg)
    raw_mb = n * args.dim * 4 / 2**20
    for metric, r in res["exact"].items():
        res["memory"][metric] = {
            "raw_mb": raw_mb,
            "index_ratio": (r["rss_peak_mb"] - r["rss_base_mb"]) / raw_mb,
            "process_ratio": r["rss_peak_mb"] / raw_mb,
        }
    exact_qps = res["exact"]["euclidean"]["qps"]
    for r in res["hnsw"]["ef"]:
        r["speedup"] = r["qps"] / exact_qps
    res["targets"] = {
        "exact_vs_faiss": all(res["exact"][m]["qps"] >= res["faiss_flat"][m]["qps"] for m in res["exact"]),
        "hnsw": any(r["recall"] >= 0.95 and r["speedup"] >= 10 for r in res["hnsw"]["ef"]),
        "memory": all(m["index_ratio"] <= 1.2 for m in res["memory"].values()),
    }
    import faiss

    res["machine"] = {
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
    }
    res["config"] = {k: v for k, v in cfg.items() if k != "tmp"}
    res["command"] = " ".join(["python", "benchmarks/search.py", *(sys.argv[1:] if argv is None else argv)])
    from siamkit import _io

    _io.write_json(out, res)
    print(report(res))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
