"""Scale benchmark: FAISS IVF-PQ on a large gallery, exact search against the matrix-multiply ceiling,
compact (int8 / float16) codes, Qdrant's embedded mode, and a paper estimate for 100 million images.

One run measures, on 64-d float32 vectors generated chunk by chunk (the search benchmark's clustered,
embedding-like data) and `--queries` queries, top-10 search:

- **IVF-PQ** on `--n` vectors (default 10,000,000): FAISS `IndexIVFPQ` build time (train + add), the
  index's bytes against the raw float32 bytes, the process's peak RSS, and recall@10 / queries/s at
  several `nprobe` against exact search (FAISS `IndexFlat` over the same gallery, which is also the
  exact queries/s), from the PQ codes alone and with `--rerank` x 10 candidates re-ranked on the raw
  vectors, memory-mapped from disk (so they do not count as index memory). Targets: recall@10 >= 0.90
  at >= 100x the exact queries/s, index <= 1/8 of raw.
- **Exact search** on `--exact-n` vectors (default 1,000,000): siamkit's `exact` index, FAISS
  `IndexFlatL2`, and the ceiling, a bare NumPy `q @ g.T` plus `argpartition` (queries in blocks of
  100). Targets: siamkit >= 60% of the ceiling and >= FAISS `IndexFlat`.
- **Compact vectors** on `--compact-n` vectors (default: as `--exact-n`): siamkit's `faiss-sq8` (int8) and `faiss-fp16`
  backends, codes alone (`rerank=1`) and re-ranked on float32 (`rerank=4`): recall@10, queries/s and
  code bytes.
- **Qdrant** (embedded, `qdrant+local://`) on `--qdrant-n` vectors (default 100,000) through siamkit's
  `QdrantIndex`: build time, queries/s and recall@10 against exact, without and with a metadata filter
  (one label of 10).
- **A paper estimate** for 100,000,000 images on 8 GPUs, from the measured per-item costs.
- **Data-parallel training** (`--sections data-parallel`) on 2 virtual CPU devices, JAX and TensorFlow, each
  in its own process (`data_parallel_probe.py`): for batch-hard triplet, prototypical, contrastive, CLIP and
  cross-modal contrastive losses, one step's largest loss and gradient differences against one device on the
  same batch; a 2-epoch `siamkit train` on digits both ways (largest weight difference, held-out metrics);
  and training images/s on 2 virtual devices against 1 over `--dp-steps` P x K batches of 40 through a
  small CNN. Virtual devices share the same cores, so 2 are slower than 1: the section is about correctness.

Usage:

    nice python benchmarks/scale.py                 # the full run (about an hour on 2 cores)
    python benchmarks/scale.py --n 2000000          # a smaller IVF-PQ gallery
    python benchmarks/scale.py --quick              # a smoke run, a minute or two
    nice python benchmarks/scale.py --sections data-parallel   # one section; the others stay as they were

It prints a table and writes `benchmarks/results/scale.json`; a `--quick` run writes
`runs/benchmarks/scale.json` instead.
"""

import argparse
import json
import math
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
from search import best_time, gallery_chunks, queries, recall, rss_mb  # noqa: E402

K = 10
SECTIONS = ("exact", "compact", "qdrant", "ivfpq", "embedding", "data-parallel")
NPROBES = (8, 16, 32, 64, 128)


def _config(cfg, n):
    return {**cfg, "n": n}


def fill(cfg):
    """The gallery of `cfg`, written chunk by chunk into one preallocated array (never held twice)."""
    x = np.empty((cfg["n"], cfg["dim"]), np.float32)
    start = 0
    for chunk in gallery_chunks(cfg):
        x[start : start + len(chunk)] = chunk
        start += len(chunk)
    return x


def _timed_search(search, q, repeats):
    search(q[:2])  # warm-up: BLAS threads, first-touch pages
    seconds, ids = best_time(lambda: search(q), repeats)
    return len(q) / seconds, ids


# --- IVF-PQ -------------------------------------------------------------------------
def ivfpq(cfg):
    import faiss

    n, dim = cfg["n"], cfg["dim"]
    raw_bytes = n * dim * 4
    base = rss_mb("VmRSS")
    start = time.perf_counter()
    x = fill(cfg)
    generate_s = time.perf_counter() - start
    q = queries(cfg)

    # Exact search over the whole gallery: the ground truth and the exact queries/s (one timed pass).
    start = time.perf_counter()
    _, truth = faiss.knn(q, x, K)
    exact_s = time.perf_counter() - start
    exact_qps = len(q) / exact_s

    nlist = cfg["nlist"] or int(2 ** round(math.log2(4 * math.sqrt(n))))
    train_n = min(n, max(40 * nlist, cfg["train_size"]))
    sample = x[np.sort(np.random.default_rng(cfg["seed"]).choice(n, train_n, replace=False))]
    index = faiss.IndexIVFPQ(faiss.IndexFlatL2(dim), dim, nlist, cfg["pq_m"], 8)
    index.cp.seed = index.pq.cp.seed = cfg["seed"]
    rss_before = rss_mb("VmRSS")
    start = time.perf_counter()
    index.train(sample)
    train_s = time.perf_counter() - start
    del sample
    start = time.perf_counter()
    for s in range(0, n, 1_000_000):
        index.add(x[s : s + 1_000_000])
    add_s = time.perf_counter() - start
    rss_index_mb = rss_mb("VmRSS") - rss_before
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ivfpq.faiss")
        faiss.write_index(index, path)
        index_bytes = os.path.getsize(path)
        # The raw vectors stay on disk for the re-rank: only the candidates' rows are read.
        raw_path = os.path.join(tmp, "raw.npy")
        np.save(raw_path, x)
        del x
        raw = np.load(raw_path, mmap_mode="r", allow_pickle=False)
        sweep = []
        for nprobe in NPROBES:
            if nprobe > nlist:
                break
            index.nprobe = nprobe
            for rerank in (1, cfg["rerank"]):
                search = (lambda qq: index.search(qq, K)[1]) if rerank == 1 else (
                    lambda qq: rerank_from_disk(raw, qq, index.search(qq, K * rerank)[1]))
                qps, ids = _timed_search(search, q, cfg["repeats"])
                sweep.append({"nprobe": nprobe, "rerank": rerank, "qps": qps, "recall_at_10": recall(ids, truth),
                              "speedup": qps / exact_qps})
        del raw
    meets = [s for s in sweep if s["recall_at_10"] >= 0.90 and s["speedup"] >= 100]
    return {
        "n": n, "dim": dim, "nlist": nlist, "pq_m": cfg["pq_m"], "nbits": 8, "train_vectors": train_n,
        "generate_s": generate_s, "train_s": train_s, "add_s": add_s, "build_s": train_s + add_s,
        "exact_qps": exact_qps, "raw_mb": raw_bytes / 2**20, "index_mb": index_bytes / 2**20,
        "index_fraction_of_raw": index_bytes / raw_bytes, "index_rss_mb": rss_index_mb,
        "rss_base_mb": base, "rss_peak_mb": rss_mb("VmHWM"), "sweep": sweep,
        "targets_met": {
            "recall_0.90_at_100x": bool(meets),
            "memory_1/8": index_bytes <= raw_bytes / 8,
        },
    }


def rerank_from_disk(raw, q, candidates):
    """The `K` nearest of each query's candidate rows, by exact distance to `raw` rows (a memory map)."""
    rows = np.unique(candidates[candidates >= 0])
    lookup = np.searchsorted(rows, np.maximum(candidates, 0))
    vectors = np.asarray(raw[rows])[lookup]  # (n, c, dim), rows read once, in file order
    d = np.einsum("ncd,ncd->nc", vectors - q[:, None, :], vectors - q[:, None, :])
    d[candidates < 0] = np.inf
    order = np.argsort(d, axis=1, kind="stable")[:, :K]
    return np.take_along_axis(candidates, order, 1)


# --- exact search and compact vectors -----------------------------------------------
def numpy_ceiling(g, q, k=K, block=100):
    """Bare NumPy top-k: `q @ g.T` and `argpartition`, queries in blocks (no norms, no sort of the k)."""
    g_sq = np.einsum("ij,ij->i", g, g)
    out = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), block):
        scores = g_sq - 2 * (q[s : s + block] @ g.T)
        out[s : s + block] = np.argpartition(scores, k, axis=1)[:, :k]
    return out


def exact(cfg):
    import faiss

    from siamkit.index import Index

    x, q = fill(cfg), queries(cfg)
    out = {"n": cfg["n"]}
    qps, truth = _timed_search(lambda qq: numpy_ceiling(x, qq), q, cfg["repeats"])
    out["numpy_ceiling_qps"] = qps
    flat = faiss.IndexFlatL2(cfg["dim"])
    flat.add(x)
    out["faiss_flat_qps"], _ = _timed_search(lambda qq: flat.search(qq, K)[1], q, cfg["repeats"])
    del flat
    index = Index(cfg["dim"], "euclidean")
    index.add(x)
    out["siamkit_exact_qps"], ids = _timed_search(lambda qq: index.search(qq, K).ids, q, cfg["repeats"])
    out["siamkit_same_top10_as_numpy"] = recall(ids, truth)
    del index
    out["siamkit_vs_ceiling"] = out["siamkit_exact_qps"] / out["numpy_ceiling_qps"]
    out["siamkit_vs_faiss_flat"] = out["siamkit_exact_qps"] / out["faiss_flat_qps"]
    out["targets_met"] = {"0.6x_ceiling": out["siamkit_vs_ceiling"] >= 0.6, "level_with_faiss_flat":
                          out["siamkit_vs_faiss_flat"] >= 1.0}
    return out


def compact(cfg):
    from siamkit.index import Index

    x, q = fill(cfg), queries(cfg)
    truth = numpy_ceiling(x, q)
    out = []
    for backend, bytes_per_dim in (("faiss-sq8", 1), ("faiss-fp16", 2)):
        for rerank in (1, 4):
            index = Index(cfg["dim"], "euclidean", backend, {"rerank": rerank})
            start = time.perf_counter()
            index.add(x)
            build_s = time.perf_counter() - start
            qps, ids = _timed_search(lambda qq: index.search(qq, K).ids, q, cfg["repeats"])
            out.append({
                "n": cfg["n"], "backend": backend, "rerank": rerank, "build_s": build_s, "qps": qps,
                "recall_at_10": recall(ids, truth), "code_mb": cfg["n"] * cfg["dim"] * bytes_per_dim / 2**20,
                "float32_mb": cfg["n"] * cfg["dim"] * 4 / 2**20,
            })
            del index
    return out


# --- Qdrant -------------------------------------------------------------------------
def qdrant(cfg):
    from siamkit.index import Index, create_index

    x, q = fill(cfg), queries(cfg)
    labels = np.random.default_rng([cfg["seed"], 2]).integers(0, 10, len(x))
    meta = [{"label": f"c{v}"} for v in labels]
    where = {"label": "c3"}
    reference = Index(cfg["dim"], "euclidean")
    reference.add(x, metadata=meta)
    truth = reference.search(q, K).ids
    truth_filtered = reference.search(q, K, filter=where).ids
    out = {"n": cfg["n"]}
    with tempfile.TemporaryDirectory() as tmp:
        index = create_index(f"qdrant+local://{tmp}/q", cfg["dim"], "euclidean")
        start = time.perf_counter()
        index.add(x, ids=np.arange(len(x)), metadata=meta)
        out["build_s"] = time.perf_counter() - start
        nq = min(len(q), cfg["qdrant_queries"])
        out["queries"] = nq
        out["qps"], ids = _timed_search(lambda qq: index.search(qq, K).ids, q[:nq], 1)
        out["recall_at_10"] = recall(ids, truth[:nq])
        # Embedded Qdrant checks a filter point by point in Python: a few queries show its rate.
        nf = min(len(q), cfg["qdrant_filtered_queries"])
        out["filtered_queries"] = nf
        out["filtered_qps"], ids = _timed_search(lambda qq: index.search(qq, K, filter=where).ids, q[:nf], 1)
        out["filtered_recall_at_10"] = recall(ids, truth_filtered[:nf])
        index.close()
    out["siamkit_exact_filtered_qps"], _ = _timed_search(
        lambda qq: reference.search(qq, K, filter=where).ids, q, cfg["repeats"]
    )
    return out


# --- the embedding engines ------------------------------------------------------------
def embedding(cfg):
    """Images/s of `siamkit embed --shards` engines (local, Ray) on one folder of digit PNGs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from PIL import Image

    from siamkit.datasets import load
    from siamkit.index.embedder import embed_paths
    from siamkit.training import train

    out = {"images": cfg["n"], "workers": cfg["workers"]}
    with tempfile.TemporaryDirectory() as tmp:
        run, _ = train({"epochs": 1, "out": os.path.join(tmp, "run"), "embedding_dim": cfg["dim"]}, verbose=0)
        digits = load("digits").x
        paths = [os.path.join(tmp, f"{i:06d}.png") for i in range(cfg["n"])]
        for i, path in enumerate(paths):
            Image.fromarray(np.round(digits[i % len(digits), ..., 0] * 255).astype("uint8")).save(path)
        embed_paths(run.path, paths[:256], progress=False)  # warm-up: graph tracing
        seconds, local = best_time(lambda: embed_paths(run.path, paths, progress=False), cfg["repeats"])
        out["local_images_per_s"] = len(paths) / seconds
        import ray

        start = time.perf_counter()
        ray.init(num_cpus=cfg["workers"], include_dashboard=False, log_to_driver=False)
        first = embed_paths(run.path, paths, "ray", cfg["workers"])
        out["ray_first_call_s"] = time.perf_counter() - start  # Ray's start-up and the actors' model loads
        seconds, distributed = best_time(lambda: embed_paths(run.path, paths, "ray", cfg["workers"]), cfg["repeats"])
        ray.shutdown()
        out["ray_images_per_s"] = len(paths) / seconds
        out["ray_equals_local"] = bool(np.array_equal(first, local) and np.array_equal(distributed, local))
        # Rows embedded in batches of another composition can differ in the last float32 bits.
        out["ray_max_abs_diff"] = float(max(np.abs(first - local).max(), np.abs(distributed - local).max()))
        out["ray_rows_differing"] = int(np.any(distributed != local, axis=1).sum())
    return out


# --- data-parallel training ------------------------------------------------------------
def _probe(*args):
    """`data_parallel_probe.py ARGS` in a fresh process (its device count is fixed at start-up); its JSON."""
    src = os.path.join(HERE, "..", "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, os.path.join(HERE, "data_parallel_probe.py"), *args],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"data_parallel_probe.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def data_parallel(cfg):
    """Per backend: one step's and a short run's differences from one device, and images/s on 1 and 2 devices."""
    out = {"replicas": 2, "load_before": os.getloadavg()[0]}
    for backend in ("jax", "tensorflow"):
        quick = ["--cases", "triplet", "--no-run"] if cfg["quick"] else []
        equivalence = _probe(backend, "--replicas", "2", *quick)
        one = _probe(backend, "--replicas", "1", "--throughput", str(cfg["n"]))["throughput"]
        two = _probe(backend, "--replicas", "2", "--throughput", str(cfg["n"]))["throughput"]
        out[backend] = {
            "steps": equivalence["steps"], "run": equivalence.get("run"),
            "images_per_s_1_device": one["images_per_s"], "images_per_s_2_devices": two["images_per_s"],
            "speedup_2_vs_1": two["images_per_s"] / one["images_per_s"], "throughput_steps": cfg["n"],
        }
    out["load_after"] = os.getloadavg()[0]
    return out


# --- the paper estimate ------------------------------------------------------------------
def estimate(res, images=100_000_000, gpus=8, gpu_images_per_s=None):
    """What 100M images need, scaled from the measured per-item costs (assumptions named in the output)."""
    pq = res["ivfpq"]
    per_vector_bytes = pq["index_mb"] * 2**20 / pq["n"]
    add_s_per_vector = pq["add_s"] / pq["n"]
    cpu_images_per_s = res["embedding"]["local_images_per_s"]
    out = {
        "images": images, "gpus": gpus, "dim": pq["dim"],
        "raw_float32_gb": images * pq["dim"] * 4 / 1e9,
        "ivfpq_index_gb": images * per_vector_bytes / 1e9,
        "ivfpq_add_hours_2_cores": images * add_s_per_vector / 3600,
        "embed_hours_2_cpu_cores": images / cpu_images_per_s / 3600,
        "cpu_images_per_s_measured": cpu_images_per_s,  # PNG files of 8x8 digits, decode + a small CNN
    }
    if gpu_images_per_s:
        out["gpu_images_per_s_assumed"] = gpu_images_per_s
        out["embed_hours_gpus"] = images / (gpus * gpu_images_per_s) / 3600
    return out


# --- report -------------------------------------------------------------------------
def table(rows):
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) for row in rows)


def report(res):
    if "ivfpq" in res:
        pq = res["ivfpq"]
        print(f"IVF-PQ, {pq['n']:,} x {pq['dim']} (nlist {pq['nlist']}, m {pq['pq_m']} x 8 bits): build "
              f"{pq['build_s']:.0f} s (train {pq['train_s']:.0f} s, add {pq['add_s']:.0f} s); index "
              f"{pq['index_mb']:.0f} MiB = 1/{1 / pq['index_fraction_of_raw']:.1f} of raw {pq['raw_mb']:.0f} MiB; "
              f"peak RSS {pq['rss_peak_mb']:.0f} MiB; exact {pq['exact_qps']:.2f} q/s")
        rows = [("nprobe", "re-rank (from disk)", "q/s", "speedup", "recall@10")]
        rows += [(s["nprobe"], "-" if s["rerank"] == 1 else f"{s['rerank']}k", f"{s['qps']:.0f}",
                  f"{s['speedup']:.0f}x", f"{s['recall_at_10']:.3f}") for s in pq["sweep"]]
        print(table(rows))
    if "exact" in res:
        ex = res["exact"]
        print(f"\nexact, {ex['n']:,} x 64: NumPy ceiling {ex['numpy_ceiling_qps']:.1f} q/s, FAISS IndexFlat "
              f"{ex['faiss_flat_qps']:.1f} q/s, siamkit exact {ex['siamkit_exact_qps']:.1f} q/s "
              f"({ex['siamkit_vs_ceiling']:.2f}x ceiling, {ex['siamkit_vs_faiss_flat']:.2f}x FAISS)")
    if "compact" in res:
        cp = res["compact"]
        print(f"\ncompact vectors, {cp[0]['n']:,} x 64:")
        rows = [("backend", "rerank", "q/s", "recall@10", "code MiB", "float32 MiB")]
        rows += [(c["backend"], c["rerank"], f"{c['qps']:.1f}", f"{c['recall_at_10']:.3f}", f"{c['code_mb']:.0f}",
                  f"{c['float32_mb']:.0f}") for c in cp]
        print(table(rows))
    if "qdrant" in res:
        qd = res["qdrant"]
        print(f"\nQdrant embedded, {qd['n']:,} x 64: build {qd['build_s']:.1f} s; {qd['qps']:.1f} q/s, recall@10 "
              f"{qd['recall_at_10']:.3f}; filtered {qd['filtered_qps']:.2f} q/s, recall@10 "
              f"{qd['filtered_recall_at_10']:.3f} (siamkit exact, filtered: {qd['siamkit_exact_filtered_qps']:.1f} q/s)")
    if "embedding" in res:
        em = res["embedding"]
        print(f"\nembedding {em['images']:,} PNGs: local {em['local_images_per_s']:.0f} images/s, Ray with "
              f"{em['workers']} workers {em['ray_images_per_s']:.0f} images/s (first call with start-up "
              f"{em['ray_first_call_s']:.0f} s); identical vectors: {em['ray_equals_local']} "
              f"({em['ray_rows_differing']} rows differ, by at most {em['ray_max_abs_diff']:.2g})")
    if "estimate" in res:
        est = res["estimate"]
        print(f"\n100M images: raw {est['raw_float32_gb']:.1f} GB, IVF-PQ {est['ivfpq_index_gb']:.1f} GB, IVF-PQ add "
              f"{est['ivfpq_add_hours_2_cores']:.1f} h on 2 cores, embedding {est['embed_hours_2_cpu_cores']:.1f} h "
              f"on 2 CPU cores" + (f", {est['embed_hours_gpus']:.2f} h on {est['gpus']} GPUs at an assumed "
                                   f"{est['gpu_images_per_s_assumed']:,.0f} images/s each"
                                   if "embed_hours_gpus" in est else ""))
    if "data-parallel" in res:
        dp = res["data-parallel"]
        print(f"\ndata-parallel training, {dp['replicas']} virtual CPU devices against 1 (one step from the same "
              "weights; a 2-epoch digits run):")
        rows = [("backend", "loss", "max |loss diff|", "max |grad diff|", "max |grad|")]
        for backend in ("jax", "tensorflow"):
            rows += [(backend, name, f"{s['max_abs_loss_diff']:.1e}", f"{s['max_abs_grad_diff']:.1e}",
                      f"{s['max_abs_grad']:.2g}") for name, s in dp[backend]["steps"].items()]
        print(table(rows))
        for backend in ("jax", "tensorflow"):
            b = dp[backend]
            run = "" if not b["run"] else (f"; 2-epoch run: max |weight diff| {b['run']['max_abs_weight_diff']:.1e}, "
                                            f"test ROC AUC {b['run']['metrics_single']['test_roc_auc']:.4f} vs "
                                            f"{b['run']['metrics_data_parallel']['test_roc_auc']:.4f}")
            print(f"{backend}: {b['images_per_s_1_device']:.0f} images/s on 1 device, "
                  f"{b['images_per_s_2_devices']:.0f} on 2 virtual devices ({b['speedup_2_vs_1']:.2f}x){run}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, help="IVF-PQ gallery vectors (default: 10,000,000; --quick: 200,000)")
    parser.add_argument("--exact-n", type=int, help="exact gallery (default: 1,000,000; --quick: 100,000)")
    parser.add_argument("--compact-n", type=int, help="compact-vector gallery (default: as --exact-n)")
    parser.add_argument("--qdrant-n", type=int, help="Qdrant gallery (default: 100,000; --quick: 10,000)")
    parser.add_argument("--qdrant-queries", type=int, default=1000, help="queries sent to Qdrant (default: 1000)")
    parser.add_argument("--qdrant-filtered-queries", type=int, default=20,
                        help="filtered queries sent to Qdrant (default: 20; embedded Qdrant filters in Python)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--nlist", type=int, help="IVF lists (default: the power of 2 nearest 4 sqrt(n))")
    parser.add_argument("--pq-m", type=int, default=16, help="PQ sub-quantisers of 8 bits (default: 16)")
    parser.add_argument("--train-size", type=int, default=200_000, help="IVF-PQ training sample, at least 40 per list")
    parser.add_argument("--rerank", type=int, default=10,
                        help="IVF-PQ candidates per result re-ranked on the raw vectors read from disk (default: 10)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gpu-images-per-s", type=float,
                        help="per-GPU embedding rate assumed for the 8-GPU estimate (left out when not given)")
    parser.add_argument("--embed-images", type=int, help="images for the embedding engines (default: 5000; --quick: 300)")
    parser.add_argument("--workers", type=int, default=2, help="Ray workers for the embedding engines (default: 2)")
    parser.add_argument("--dp-steps", type=int,
                        help="P x K batches timed for data-parallel throughput (default: 40; --quick: 4)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="what to measure (default: all); the others are kept from the output file if it exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run on small galleries")
    parser.add_argument("--out", help="JSON output (default: benchmarks/results/scale.json)")
    args = parser.parse_args(argv)
    path = output_path("scale.json", args.out, args.quick)
    import faiss

    faiss.omp_set_num_threads(os.cpu_count())
    cfg = {"dim": args.dim, "queries": args.queries, "seed": args.seed, "repeats": args.repeats,
           "nlist": args.nlist, "pq_m": args.pq_m, "rerank": args.rerank, "train_size": args.train_size,
           "qdrant_queries": args.qdrant_queries, "qdrant_filtered_queries": args.qdrant_filtered_queries,
           "quick": args.quick}
    sizes = {"n": args.n or (200_000 if args.quick else 10_000_000),
             "exact_n": args.exact_n or (100_000 if args.quick else 1_000_000),
             "compact_n": args.compact_n or args.exact_n or (100_000 if args.quick else 1_000_000),
             "qdrant_n": args.qdrant_n or (10_000 if args.quick else 100_000),
             "embed_images": args.embed_images or (300 if args.quick else 5000),
             "dp_steps": args.dp_steps or (4 if args.quick else 40)}
    cfg["workers"] = args.workers
    load_before = os.getloadavg()[0]
    res = {}
    if set(args.sections) != set(SECTIONS) and os.path.exists(path):
        with open(path) as f:
            res = json.load(f)
    runs = {"exact": (exact, "exact_n"), "compact": (compact, "compact_n"), "qdrant": (qdrant, "qdrant_n"),
            "ivfpq": (ivfpq, "n"), "embedding": (embedding, "embed_images"),
            "data-parallel": (data_parallel, "dp_steps")}
    for name in args.sections:
        fn, size = runs[name]
        start = time.perf_counter()
        res[name] = fn(_config(cfg, sizes[size]))
        res.setdefault("sizes", {})[size] = sizes[size]
        res.setdefault("commands", {})[name] = "python benchmarks/scale.py " + " ".join(
            argv if argv is not None else sys.argv[1:])
        print(f"[{name}: {time.perf_counter() - start:.0f} s]", file=sys.stderr, flush=True)
    if "ivfpq" in res and "embedding" in res and {"ivfpq", "embedding"} & set(args.sections):
        res["estimate"] = estimate(res, gpu_images_per_s=args.gpu_images_per_s)
    if set(args.sections) != {"data-parallel"} or "machine" not in res:  # data-parallel keeps its own load
        res["machine"] = {"cpus": os.cpu_count(), "cpu": "2-core AMD EPYC, AVX2", "load_before": load_before,
                          "load_after": os.getloadavg()[0], "python": platform.python_version(),
                          "numpy": np.__version__, "faiss": faiss.__version__}
    if set(args.sections) == set(SECTIONS) or "config" not in res:
        res["config"] = {**cfg, **sizes}
    else:  # the other sections' options stay as their run had them (see `commands`)
        if "embedding" in args.sections:
            res["config"].update({"embed_images": sizes["embed_images"], "workers": args.workers})
        if "data-parallel" in args.sections:
            res["config"]["dp_steps"] = sizes["dp_steps"]
    report(res)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
