"""Service benchmark: `siamkit serve` (FastAPI on uvicorn) with and without batching, against direct calls.

One run trains (or takes, `--run`) a digits CNN, saves an exact index of
`--gallery` PNG files and starts `siamkit serve` in a subprocess on a free
loopback port, twice: with dynamic batching (`--max-batch 32`, the default
wait) and without (`--max-batch 1`). Against each, bounded request loops
(each of C clients sends its share of `--requests`, multipart uploads) at
concurrency 1, 8 and 32 measure p50 / p95 / p99 latency, requests per
second and errors for:

- `/v1/compare` (two files), `/v1/search` (one file, top 10), `/v1/embed` (one file);
- the same operations called directly in this process (`compare_files`,
  `search_files`, `embed_files`): the peer. `overhead_ratio` is the HTTP
  median at concurrency 1 over the direct median;
- `/v1/embed` of a batch of 64 files, in images per second;
- the server's RSS before and after `--rss-requests` compare requests at
  concurrency 8 (10,000 by default);
- `/v1/compare` at concurrency 8 with every tenth request malformed (a
  truncated image, a text file, a missing file, broken JSON): 400 for
  exactly those, 200 for the rest;
- a full queue: `--queue-size 4 --max-batch 1` under 64 concurrent requests
  answers 503 at once, and nothing waits past the request timeout.

Usage:

    python benchmarks/service.py            # 600 requests per measurement
    python benchmarks/service.py --quick    # 32, for CI

It prints a table and writes `benchmarks/results/service.json`; a `--quick`
run writes `runs/benchmarks/service.json` instead.
"""

import argparse
import concurrent.futures
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _output import output_path  # noqa: E402

CONCURRENCY = (1, 8, 32)


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


class Server:
    """`siamkit serve` in a subprocess; `url`, `rss_mb()`, `stop()`."""

    def __init__(self, run_dir, index_dir, *options):
        command = [sys.executable, "-m", "siamkit.cli", "serve", run_dir, "--index", index_dir, "--port", "0", *options]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        port = None
        for line in self.proc.stdout:
            if "Uvicorn running on" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
                break
        if port is None:
            raise SystemExit(f"siamkit serve did not start: {' '.join(command)}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # the access log must not block it
        self.url = f"http://127.0.0.1:{port}"

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def _percentiles(ms):
    ms = np.asarray(ms)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99))}


def _summary(ms):
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def load_loop(request, n, clients, expect=lambda i: 200):
    """`n` calls of `request(client, i)` over `clients` threads, each with its own connection pool.

    A call is an error unless its status is `expect(i)`.
    """
    import httpx

    def worker(c):
        out = []
        with httpx.Client(timeout=120) as client:
            request(client, c)  # warm-up: connection and first model call
            for i in range(c, n, clients):
                start = time.perf_counter()
                try:
                    ok = request(client, i).status_code == expect(i)
                except Exception:  # noqa: BLE001  (counted as an error, the loop goes on)
                    ok = False
                out.append((1000 * (time.perf_counter() - start), ok))
        return out

    begin = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        found = [r for part in pool.map(worker, range(clients)) for r in part]
    seconds = time.perf_counter() - begin
    ms = [t for t, _ in found]
    return {**_percentiles(ms), "requests_per_s": len(found) / seconds, "errors": sum(not ok for _, ok in found),
            "n": len(found), "ms": ms}


def _requests(url, blobs):
    pair = lambda i: (i % len(blobs), (7 * i + 1) % len(blobs))  # noqa: E731
    return {
        "compare": lambda c, i: c.post(url + "/v1/compare", files={"a": ("a.png", blobs[pair(i)[0]]),
                                                                   "b": ("b.png", blobs[pair(i)[1]])}),
        "search": lambda c, i: c.post(url + "/v1/search", files={"files": ("q.png", blobs[i % len(blobs)])},
                                      data={"k": "10"}),
        "embed": lambda c, i: c.post(url + "/v1/embed", files={"files": ("q.png", blobs[i % len(blobs)])}),
    }


# Every tenth request of the mixed load is malformed, each kind in turn: the answer must be this status.
MALFORMED = (
    ("truncated image", lambda blob: {"files": {"a": ("a.png", blob[: len(blob) // 2]), "b": ("b.png", blob)}}, 400),
    ("not an image", lambda blob: {"files": {"a": ("a.png", b"plain text"), "b": ("b.png", blob)}}, 400),
    ("missing file", lambda blob: {"files": {"a": ("a.png", blob)}}, 400),
    ("bad JSON", lambda blob: {"content": b'{"a": ', "headers": {"content-type": "application/json"}}, 400),
)


def malformed_mix(url, blobs, n, clients):
    """`/v1/compare` under load with every tenth request malformed: errors must answer exactly those."""
    good = _requests(url, blobs)["compare"]

    def request(c, i):
        if i % 10:
            return good(c, i)
        _, body, _ = MALFORMED[(i // 10) % len(MALFORMED)]
        return c.post(url + "/v1/compare", **body(blobs[i % len(blobs)]))

    found = load_loop(request, n, clients, expect=lambda i: MALFORMED[(i // 10) % len(MALFORMED)][2] if i % 10 == 0
                      else 200)
    found.pop("ms")
    return {**found, "malformed": sum(1 for i in range(n) if i % 10 == 0), "clients": clients,
            "kinds": [name for name, _, _ in MALFORMED]}


def _direct(run, index, paths):
    from siamkit.evaluation.calibration import Decision
    from siamkit.evaluation.compare import compare_files
    from siamkit.index.inputs import embed_files
    from siamkit.index.matching import search_files

    decision = Decision.for_run(run)
    pair = lambda i: (i % len(paths), (7 * i + 1) % len(paths))  # noqa: E731
    return {
        "compare": lambda i: compare_files(run, paths[pair(i)[0]], paths[pair(i)[1]], decision=decision),
        "search": lambda i: search_files(index, run, [paths[i % len(paths)]], 10, decision, progress=False),
        "embed": lambda i: embed_files(run, [paths[i % len(paths)]], progress=False),
    }


def _latencies(fn, n):
    for i in range(3):
        fn(i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(1000 * (time.perf_counter() - start))
    return out


def measure(run, run_dir, index_dir, index, paths, n, rss_requests):
    import httpx

    blobs = [open(p, "rb").read() for p in paths]
    direct = {name: _latencies(fn, n) for name, fn in _direct(run, index, paths).items()}
    results = {name: {"load": {}} for name in direct}
    for mode, options in (("on", ()), ("off", ("--max-batch", "1"))):
        server = Server(run_dir, index_dir, *options)
        try:
            requests = _requests(server.url, blobs)
            for name, request in requests.items():
                results[name]["load"][mode] = {}
                for clients in CONCURRENCY:
                    found = load_loop(request, max(n, clients), clients)
                    ms = found.pop("ms")
                    results[name]["load"][mode][str(clients)] = found
                    if mode == "on" and clients == 1:
                        results[name]["http"] = _summary(ms)
            if mode == "on":
                batch = [("files", (f"{i}.png", b)) for i, b in enumerate(blobs[:64])]
                with httpx.Client(timeout=120) as client:
                    ms = _latencies(lambda i: client.post(server.url + "/v1/embed", files=batch), max(5, n // 20))
                results["embed_batch"] = {"batch": len(batch), **_summary(ms),
                                          "images_per_s": float(len(batch) * 1000 / np.median(ms))}
                before = server.rss_mb()
                soak = load_loop(requests["compare"], rss_requests, 8)
                after = server.rss_mb()
                results["rss"] = {"before_mb": before, "after_mb": after, "growth": after / before - 1,
                                  "requests": soak["n"], "errors": soak["errors"]}
                results["malformed"] = malformed_mix(server.url, blobs, max(n, 100), 8)
        finally:
            server.stop()
    for name in direct:
        r = results[name]
        r["direct"] = _summary(direct[name])
        r["overhead_ratio"] = r["http"]["median_ms"] / r["direct"]["median_ms"]
        r["requests_per_s"] = r["load"]["on"]["32"]["requests_per_s"]
        r["batching_speedup_32"] = r["requests_per_s"] / r["load"]["off"]["32"]["requests_per_s"]
    results["embed"].update(results.pop("embed_batch"))
    results["queue_full"] = _queue_full(run_dir, index_dir, blobs)
    return results


def _queue_full(run_dir, index_dir, blobs, clients=64, timeout_s=10):
    server = Server(run_dir, index_dir, "--max-batch", "1", "--queue-size", "4", "--timeout", str(timeout_s))
    import httpx

    try:
        def one(_):
            with httpx.Client(timeout=120) as client:
                start = time.perf_counter()
                status = client.post(server.url + "/v1/embed", files={"files": ("q.png", blobs[0])}).status_code
                return status, 1000 * (time.perf_counter() - start)

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            statuses = list(pool.map(one, range(clients)))
    finally:
        server.stop()
    busy = [ms for status, ms in statuses if status == 503]
    return {"clients": clients, "timeout_s": timeout_s, "answered_503": len(busy),
            "answered_200": sum(s == 200 for s, _ in statuses), "other": sum(s not in (200, 503) for s, _ in statuses),
            "max_ms": max(ms for _, ms in statuses), "max_503_ms": max(busy) if busy else None}


def report(results):
    rows = [("operation", "HTTP median / p95 ms", "direct median / p95 ms", "HTTP / direct", "req/s (32 clients)",
             "batching on / off")]
    for name in ("compare", "search", "embed"):
        r = results[name]
        rows.append((
            name,
            f"{r['http']['median_ms']:.1f} / {r['http']['p95_ms']:.1f}",
            f"{r['direct']['median_ms']:.1f} / {r['direct']['p95_ms']:.1f}",
            f"{r['overhead_ratio']:.2f}x",
            f"{r['requests_per_s']:.0f}",
            f"{r['batching_speedup_32']:.2f}x",
        ))
    _table(rows)
    print()
    rows = [("operation", "batching", "clients", "p50 / p95 / p99 ms", "req/s", "errors")]
    for name in ("compare", "search", "embed"):
        for mode, by_clients in results[name]["load"].items():
            for clients, r in by_clients.items():
                rows.append((name, mode, clients, f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f}",
                             f"{r['requests_per_s']:.0f}", str(r["errors"])))
    _table(rows)
    e, rss, q = results["embed"], results["rss"], results["queue_full"]
    print(f"\nembed x{e['batch']}: {e['images_per_s']:.0f} images/s; RSS {rss['before_mb']:.0f} -> "
          f"{rss['after_mb']:.0f} MiB over {rss['requests']} requests ({100 * rss['growth']:+.1f}%); "
          f"full queue: {q['answered_503']} of {q['clients']} answered 503, slowest answer {q['max_ms']:.0f} ms")
    m = results["malformed"]
    print(f"10% malformed compare requests at {m['clients']} clients: {m['malformed']} malformed of {m['n']}, "
          f"{m['errors']} answers other than 400 for them and 200 for the rest")


def _table(rows):
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per measurement")
    parser.add_argument("--rss-requests", type=int, default=10_000, help="compare requests between the RSS readings")
    parser.add_argument("--gallery", type=int, default=1000, help="gallery PNG files in the index")
    parser.add_argument("--run", help="a run directory (default: train a digits CNN for 5 epochs)")
    parser.add_argument("--quick", action="store_true", help="32 requests, 300 for RSS, 200 gallery files")
    parser.add_argument(
        "--out", help="JSON output path (default: benchmarks/results/service.json; with --quick, runs/benchmarks/)"
    )
    args = parser.parse_args(argv)
    path = output_path("service.json", args.out, args.quick)
    if args.quick:
        args.requests, args.rss_requests, args.gallery = 30, 300, 200

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
        index_dir = os.path.join(tmp, "index")
        index.save(index_dir)
        results = measure(run, run.path, index_dir, index, paths, args.requests, args.rss_requests)
    report(results)
    out = {
        "config": {**vars(args), "out": None, "concurrency": list(CONCURRENCY)},
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
