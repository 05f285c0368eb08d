"""Service benchmark: latency and throughput of `siamkit serve` against direct library calls.

One run trains (or takes, `--run`) a digits CNN, builds an exact index of
`--gallery` PNG files, starts the service on a free local port and measures,
for `/compare` (two files) and `/search` (one file, top 10):

- the latency of each request (median and 95th percentile, milliseconds)
  with one client, and the same operation called directly in the same
  process (`compare_files`, `search_files` on the saved files): the peer.
  Their ratio is what HTTP, JSON, base64 and the temporary files cost
  (both sides decide matches at the run's calibrated threshold);
- requests per second with `--clients` concurrent clients (model calls are
  serialised, so this measures the queueing, not parallel inference);
- `/embed` throughput in images per second for a batch of 64 files.

Usage:

    python benchmarks/service.py            # 300 requests per measurement
    python benchmarks/service.py --quick    # 30, for CI

It prints a table and writes `benchmarks/results/service.json`; a `--quick`
run writes `runs/benchmarks/service.json` instead.
"""

import argparse
import base64
import concurrent.futures
import json
import os
import platform
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _output import output_path  # noqa: E402


def _gallery(folder, n):
    """`n` PNGs of scikit-learn's digits in class folders; returns their paths."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(n):
        j = i % len(digits.images)
        path = os.path.join(folder, str(digits.target[j]), f"{i:05d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.round(digits.images[j] / 16 * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


def _file(path):
    with open(path, "rb") as f:
        return {"name": os.path.basename(path), "data": base64.b64encode(f.read()).decode()}


def _post(url, body):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
        return json.loads(response.read())


def _latencies(fn, n):
    """Milliseconds of `n` calls of `fn(i)`, after 3 warm-up calls."""
    for i in range(3):
        fn(i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(1000 * (time.perf_counter() - start))
    return out


def _summary(ms):
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def _throughput(fn, n, clients):
    """Requests per second of `n` calls of `fn(i)` spread over `clients` threads."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(fn, range(n)))
    return n / (time.perf_counter() - start)


def measure(run, paths, index, n, clients):
    from siamkit.evaluation.compare import compare_files
    from siamkit.index.matching import search_files
    from siamkit.service import SimilarityService, make_server

    service = SimilarityService(run, index=index)
    server = make_server(service, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    files = [_file(p) for p in paths]
    pair = lambda i: (i % len(paths), (7 * i + 1) % len(paths))  # noqa: E731
    try:
        ops = {
            "compare": (
                lambda i: _post(url + "/compare", {"a": files[pair(i)[0]], "b": files[pair(i)[1]]}),
                lambda i: compare_files(run, paths[pair(i)[0]], paths[pair(i)[1]]),
            ),
            "search": (
                lambda i: _post(url + "/search", {"files": [files[i % len(files)]], "k": 10}),
                lambda i: search_files(index, run, [paths[i % len(paths)]], 10, service.decision, progress=False),
            ),
        }
        results = {}
        for name, (over_http, direct) in ops.items():
            http_ms, direct_ms = _latencies(over_http, n), _latencies(direct, n)
            results[name] = {
                "http": _summary(http_ms),
                "direct": _summary(direct_ms),
                "overhead_ratio": float(np.median(http_ms) / np.median(direct_ms)),
                "requests_per_s": _throughput(over_http, n, clients),
            }
        batch = files[:64]
        ms = _latencies(lambda i: _post(url + "/embed", {"files": batch}), max(5, n // 20))
        results["embed"] = {"batch": len(batch), **_summary(ms), "images_per_s": float(len(batch) * 1000 / np.median(ms))}
        return results
    finally:
        server.shutdown()
        server.server_close()


def report(results):
    rows = [("operation", "HTTP median / p95 ms", "direct median / p95 ms", "HTTP / direct", "req/s (clients)")]
    for name in ("compare", "search"):
        r = results[name]
        rows.append((
            name,
            f"{r['http']['median_ms']:.1f} / {r['http']['p95_ms']:.1f}",
            f"{r['direct']['median_ms']:.1f} / {r['direct']['p95_ms']:.1f}",
            f"{r['overhead_ratio']:.2f}x",
            f"{r['requests_per_s']:.0f}",
        ))
    e = results["embed"]
    rows.append((f"embed x{e['batch']}", f"{e['median_ms']:.1f} / {e['p95_ms']:.1f}", "", "", f"{e['images_per_s']:.0f} img/s"))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients for requests/s")
    parser.add_argument("--gallery", type=int, default=1000, help="gallery PNG files in the index")
    parser.add_argument("--run", help="a run directory (default: train a digits CNN for 5 epochs)")
    parser.add_argument("--quick", action="store_true", help="30 requests, 200 gallery files")
    parser.add_argument(
        "--out", help="JSON output path (default: benchmarks/results/service.json; with --quick, runs/benchmarks/)"
    )
    args = parser.parse_args(argv)
    path = output_path("service.json", args.out, args.quick)
    if args.quick:
        args.requests, args.gallery = 30, 200

    from siamkit import _io
    from siamkit.index import Index
    from siamkit.index.inputs import embed_data
    from siamkit.runs import Run
    from siamkit.training import train

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        if args.run:
            run = Run(args.run)
        else:
            run, _ = train({"epochs": 5, "out": os.path.join(tmp, "run")}, verbose=0)
        paths = _gallery(os.path.join(tmp, "gallery"), args.gallery)
        found = embed_data(run, os.path.join(tmp, "gallery"), progress=False)
        index = Index(dim=found.embeddings.shape[1], distance=run.distance, fingerprint=run.fingerprint())
        index.add(found.embeddings, metadata=found.metadata())
        results = measure(run, paths, index, args.requests, args.clients)
    report(results)
    out = {
        "config": {**vars(args), "out": None},
        "results": results,
        "environment": {
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(), "argv": sys.argv,
        },
    }
    _io.write_json(path, out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
