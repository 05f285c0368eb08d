"""The benchmark scripts run end to end; their numbers are checked for sanity, never for speed.

Every `--quick` run leaves the committed results in `benchmarks/results/` byte for byte as they were:
quick runs write under `runs/benchmarks/` of the working directory and refuse `benchmarks/results/`.
"""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from conftest import results_digest

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPT = BENCHMARKS / "train_throughput.py"
# Each benchmark's results file and the option that names it.
OUTPUTS = {
    "train_throughput.py": ("--out", "train_throughput.json"),
    "search.py": ("--out", "search.json"),
    "service.py": ("--out", "service.json"),
    "omniglot_oneshot.py": ("--json", "omniglot_oneshot.json"),
    "robustness.py": ("--out", "robustness.json"),
    "multimodal.py": ("--out", "multimodal.json"),
    "inference.py": ("--out", "inference.json"),
    "transfer.py": ("--out", "transfer.json"),
    "scale.py": ("--out", "scale.json"),
    "report.py": ("--out", "report.json"),
    "time_to_accuracy.py": ("--out", "time_to_accuracy.json"),
}


def _load_script(path=SCRIPT):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_quick(script, cwd, *args, timeout=1200):
    """`script --quick ARGS` from `cwd`; returns the process and its JSON (under cwd/runs/benchmarks/)."""
    before = results_digest()
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert results_digest() == before, f"{script} --quick changed benchmarks/results/"
    return proc, json.loads((cwd / "runs" / "benchmarks" / OUTPUTS[script][1]).read_text())


def test_output_path_keeps_quick_runs_out_of_the_results():
    output = _load_script(BENCHMARKS / "_output.py")
    results = pathlib.Path(output.RESULTS)
    assert results == BENCHMARKS / "results"
    assert output.output_path("x.json") == str(results / "x.json")
    assert output.output_path("x.json", quick=True) == str(pathlib.Path("runs", "benchmarks", "x.json"))
    assert output.output_path("x.json", "elsewhere/x.json", quick=True) == "elsewhere/x.json"
    assert output.output_path("x.json", str(results / "y.json")) == str(results / "y.json")  # full runs may
    for inside in (results / "x.json", results / "sub" / "x.json"):
        with pytest.raises(SystemExit, match="--quick writes smoke-test figures"):
            output.output_path("x.json", str(inside), quick=True)


@pytest.mark.parametrize(
    "script",
    # The Omniglot script loads Keras before it parses its options.
    [pytest.param(s, marks=pytest.mark.slow) if s == "omniglot_oneshot.py" else s for s in sorted(OUTPUTS)],
)
def test_quick_run_refuses_to_write_into_the_results(script, tmp_path):
    option, name = OUTPUTS[script]
    before = results_digest()
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", option, str(BENCHMARKS / "results" / name)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode != 0 and "--quick writes smoke-test figures" in proc.stderr, proc.stderr[-2000:]
    assert results_digest() == before
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_train_rates_from_step_marks():
    bench = _load_script()
    # Three steps of 1 s, 1 s and 8 s: the mean sees the slow step, the median does not.
    rates = bench._train_rates([(0, 0.0), (1, 1.0), (2, 2.0), (3, 10.0)])
    assert rates["timed_steps"] == 3
    assert rates["train_pairs_per_s"] == pytest.approx(3 * bench.BATCH_SIZE / 10.0)
    assert rates["train_pairs_per_s_median_step"] == pytest.approx(bench.BATCH_SIZE / 1.0)
    # With steps_per_execution=8 a mark comes every 8 steps.
    rates = bench._train_rates([(8, 0.0), (16, 4.0), (24, 8.0)])
    assert rates["timed_steps"] == 16
    assert rates["train_pairs_per_s_median_step"] == pytest.approx(bench.BATCH_SIZE / 0.5)


@pytest.mark.benchmark
@pytest.mark.slow
def test_train_throughput_quick_writes_complete_json(tmp_path):
    pytest.importorskip("torch")
    proc, report = _run_quick("train_throughput.py", tmp_path)
    assert "train pairs/s" in proc.stdout and "sampler pairs/s" in proc.stdout

    assert report["config"]["quick"] is True and report["variants"] == []
    for side in ("siamkit", "torch"):
        result = report[side]
        for key in ("train_pairs_per_s", "train_pairs_per_s_median_step", "peak_rss_mib"):
            assert result[key] > 0, (side, key)
        assert set(result["embed_images_per_s"]) == {"128", "256", "512", "1024"}, side
        assert all(rate > 0 for rate in result["embed_images_per_s"].values()), side
        assert result["timed_steps"] == report["config"]["steps"], side
        assert result["data"] in ("mnist", "random")
    s, t = report["siamkit"]["embed_images_per_s"], report["torch"]["embed_images_per_s"]
    assert all(rate > 0 for rate in report["siamkit"]["predict_images_per_s"].values())
    assert report["ratios"]["embed"] == pytest.approx(max(s.values()) / max(t.values()))  # each side at its fastest
    assert report["embed_ratio_by_batch"] == pytest.approx({b: s[b] / t[b] for b in s})
    assert report["siamkit"]["params"] == report["torch"]["params"] == 428_608  # the identical architecture
    assert report["sampler"]["pairs_per_s"] > 0
    assert set(report["ratios"]) == {"train", "train_median_step", "embed", "predict", "sampler_over_train"}
    assert all(math.isfinite(v) and v > 0 for v in report["ratios"].values())
    assert set(report["met"]) == set(report["targets"])
    assert len(report["environment"]["loadavg_start"]) == 3


@pytest.mark.benchmark
@pytest.mark.slow
def test_service_benchmark_quick_writes_complete_json(tmp_path):
    proc, report = _run_quick("service.py", tmp_path, timeout=900)
    assert "HTTP / direct" in proc.stdout
    results = report["results"]
    for name in ("compare", "search"):
        r = results[name]
        assert r["http"]["n"] == r["direct"]["n"] == 30
        assert 0 < r["http"]["median_ms"] <= r["http"]["p95_ms"] and 0 < r["direct"]["median_ms"]
        assert r["overhead_ratio"] == pytest.approx(r["http"]["median_ms"] / r["direct"]["median_ms"])
        assert r["requests_per_s"] > 0
    assert results["embed"]["batch"] == 64 and results["embed"]["images_per_s"] > 0
    for name in ("compare", "search", "embed"):  # the live-uvicorn load loops, with batching on and off
        for mode in ("on", "off"):
            for clients in ("1", "8", "32"):
                r = results[name]["load"][mode][clients]
                assert r["errors"] == 0 and 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] and r["requests_per_s"] > 0
    assert results["rss"]["requests"] == 300 and results["rss"]["after_mb"] > 0
    queue = results["queue_full"]
    assert queue["other"] == 0 and queue["answered_503"] + queue["answered_200"] == queue["clients"]


@pytest.mark.benchmark
@pytest.mark.slow
def test_search_benchmark_quick_writes_complete_json(tmp_path):
    pytest.importorskip("faiss")
    args = ("--n", "20000", "--queries", "100", "--embed-images", "400", "--repeats", "1")
    proc, res = _run_quick("search.py", tmp_path, *args, timeout=900)
    assert "siamkit exact, queries/s" in proc.stdout
    assert res["config"]["n"] == 20000 and res["config"]["queries"] == 100
    for metric in ("euclidean", "cosine"):
        assert res["exact"][metric]["qps"] > 0 and res["faiss_flat"][metric]["qps"] > 0
        assert res["faiss_flat"][metric]["same_top_k"] >= 0.99  # both are exact (up to float ties)
    assert [r["ef_search"] for r in res["hnsw"]["ef"]] == [16, 32, 64, 128]
    assert all(0 < r["recall"] <= 1 for r in res["hnsw"]["ef"])
    assert res["embedding"]["files_images_per_s"] > 0 and res["embedding"]["arrays_images_per_s"] > 0
    assert set(res["targets"]) == {"exact_vs_faiss", "hnsw", "memory"}


@pytest.mark.benchmark
@pytest.mark.slow
def test_scale_benchmark_quick_writes_complete_json(tmp_path):
    pytest.importorskip("faiss")
    pytest.importorskip("qdrant_client")
    pytest.importorskip("ray")
    args = ("--n", "20000", "--exact-n", "5000", "--qdrant-n", "500", "--queries", "50", "--repeats", "1",
            "--qdrant-queries", "10", "--qdrant-filtered-queries", "2", "--embed-images", "200")
    proc, res = _run_quick("scale.py", tmp_path, *args, timeout=900)
    assert "IVF-PQ, 20,000 x 64" in proc.stdout and res["config"]["quick"] is True
    pq = res["ivfpq"]
    assert pq["n"] == 20000 and 0 < pq["index_fraction_of_raw"] < 1 and pq["exact_qps"] > 0
    assert {s["rerank"] for s in pq["sweep"]} == {1, 10} and all(0 < s["recall_at_10"] <= 1 for s in pq["sweep"])
    # Re-ranking on the raw vectors can only find more of the true neighbours than the codes alone.
    by = {(s["nprobe"], s["rerank"]): s["recall_at_10"] for s in pq["sweep"]}
    assert all(by[(p, 10)] >= by[(p, 1)] for p, r in by if r == 1)
    assert res["exact"]["siamkit_same_top10_as_numpy"] >= 0.99  # both exact, up to float ties
    assert [(c["backend"], c["rerank"]) for c in res["compact"]] == [
        ("faiss-sq8", 1), ("faiss-sq8", 4), ("faiss-fp16", 1), ("faiss-fp16", 4)]
    assert all(c["recall_at_10"] >= 0.9 for c in res["compact"])
    assert res["qdrant"]["recall_at_10"] >= 0.99 and res["qdrant"]["filtered_recall_at_10"] >= 0.99
    assert res["embedding"]["ray_equals_local"] is True and res["embedding"]["local_images_per_s"] > 0
    assert res["estimate"]["raw_float32_gb"] == pytest.approx(25.6)


@pytest.mark.benchmark
def test_calibration_benchmark_quick_reports_every_job_and_leaves_results_alone(tmp_path, shared_data_dir):
    script = SCRIPT.parent / "calibration.py"
    committed = SCRIPT.parent / "results" / "calibration.json"
    before = committed.read_bytes() if committed.exists() else None
    out = tmp_path / "calibration.json"
    env = {**os.environ, "SIAMKIT_DATA_DIR": str(shared_data_dir)}
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "oracle acc" in proc.stdout
    report = json.loads(out.read_text())
    assert report["config"]["quick"] is True and set(report["results"]) == {"digits", "mnist"}
    for job in report["results"].values():
        assert [job[v]["label"] for v in ("images", "classes")] == ["seen-classes", "unseen-classes"]
        for entry in job.values():
            for run in entry["runs"]:
                assert 0.5 <= run["test_roc_auc"] <= 1.0
                assert run["test_oracle_accuracy"] >= run["test_accuracy"]
                assert run["gap"] == pytest.approx(run["test_oracle_accuracy"] - run["test_accuracy"])
    assert (committed.read_bytes() if committed.exists() else None) == before
    refused = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(committed)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert refused.returncode != 0 and "never writes into benchmarks/results" in refused.stderr
    # --only reruns one entry and carries the others over from the file unchanged.
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--only", "digits/classes", "--seeds", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    merged = json.loads(out.read_text())
    assert merged["carried_over"] == ["digits/images", "mnist/images", "mnist/classes"]
    assert merged["results"]["mnist"] == report["results"]["mnist"] and "--only digits/classes" in merged["command"]
    unknown = subprocess.run(
        [sys.executable, str(script), "--quick", "--only", "digits/everything", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert unknown.returncode != 0 and "unknown entries ['digits/everything']" in unknown.stderr


@pytest.mark.benchmark
@pytest.mark.slow
def test_robustness_benchmark_quick_writes_complete_json(tmp_path):
    proc, report = _run_quick("robustness.py", tmp_path, timeout=900)
    assert set(report["readers"]) == {"images", "wav", "pair_csv", "toml", "index", "npz", "features", "service"}
    for reader, row in report["readers"].items():
        assert row["examples"] > 0 and row["crashes_remaining"] == 0, (reader, row)
    assert report["interruptions"] and report["failing_interruption_tests"] == []
    assert all(row["differing"] == 0 for row in report["interruptions"].values())
    assert "interruption" in proc.stdout


@pytest.mark.benchmark
@pytest.mark.data
@pytest.mark.slow
def test_multimodal_benchmark_quick_writes_complete_json(tmp_path, shared_data_dir, monkeypatch):
    monkeypatch.setenv("SIAMKIT_DATA_DIR", str(shared_data_dir))
    _, report = _run_quick("multimodal.py", tmp_path, "--jobs", "mnist_digits,text_image")
    assert report["config"]["quick"] is True and report["config"]["jobs"] == ["mnist_digits", "text_image"]
    digits, text = report["results"]["mnist_digits"], report["results"]["text_image"]
    assert set(digits["R@1"]) == {"a_to_b", "b_to_a"} and digits["encoders"] == ["cnn", "mlp"]
    assert set(text["R@1"]) == {"text_to_image", "image_to_text"} and text["encoders"] == ["mlp", "text"]
    for result in (digits, text):
        assert all(0.0 <= v <= 1.0 for v in result["R@1"].values())


@pytest.mark.benchmark
@pytest.mark.slow
def test_inference_benchmark_quick_writes_complete_json(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    proc, report = _run_quick("inference.py", tmp_path, timeout=900)
    assert "best against best" in proc.stdout
    cnn = report["models"]["cnn"]
    assert set(cnn["keras_images_per_s"]) == set(cnn["onnx_images_per_s"]) == {"1", "64"}
    assert all(v > 0 for v in cnn["keras_images_per_s"].values()) and cnn["max_abs_difference"] < 1e-4
    assert cnn["best_ratio"] == pytest.approx(cnn["best_onnx"]["images_per_s"] / cnn["best_keras"]["images_per_s"],
                                              abs=0.01)


@pytest.mark.benchmark
@pytest.mark.slow
@pytest.mark.data
def test_transfer_benchmark_quick_writes_complete_json(tmp_path, shared_data_dir, monkeypatch):
    monkeypatch.setenv("SIAMKIT_DATA_DIR", str(shared_data_dir))
    proc, report = _run_quick("transfer.py", tmp_path, timeout=1500)
    assert "5-way 1-shot" in proc.stdout
    assert set(report["mean"]) == {"scratch", "init-from", "init-from + freeze"}
    for rows in report["results"].values():
        assert [r["seed"] for r in rows] == [0]
        assert all(0.0 <= r["test_roc_auc"] <= 1.0 and 0.0 <= r["oneshot_5-way_1-shot"] <= 1.0 for r in rows)
    delta = report["init_from_minus_scratch"]["test_roc_auc"]
    assert delta == pytest.approx(report["mean"]["init-from"]["test_roc_auc"] - report["mean"]["scratch"]["test_roc_auc"])


@pytest.mark.benchmark
@pytest.mark.slow
def test_report_benchmark_quick_writes_complete_json(tmp_path, shared_data_dir):
    before = results_digest()
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "report.py"), "--quick", "--projections", "pca"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "SIAMKIT_DATA_DIR": str(shared_data_dir)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert results_digest() == before
    report = json.loads((tmp_path / "runs" / "benchmarks" / "report.json").read_text())
    assert report["held_out_images"] == 100 and [r["projection"] for r in report["reports"]] == ["pca"]
    (row,) = report["reports"]
    assert 0 < row["cpu_seconds"] and 0 < row["seconds"] and 0 < row["megabytes"] < 15 and row["left_out"] == []
    assert 0.0 <= report["run"]["test_roc_auc"] <= 1.0


def test_time_to_accuracy_summary_and_tracker():
    bench = _load_script(BENCHMARKS / "time_to_accuracy.py")
    curve = [{"train_s": 30.0, "accuracy": 0.96}, {"train_s": 60.0, "accuracy": 0.985},
             {"train_s": 200.0, "accuracy": 0.97}, {"train_s": 400.0, "accuracy": 0.991}]
    s = bench.summarise(curve)
    assert s["time_to"] == {"97.0%": 60.0, "98.0%": 60.0, "99.0%": 400.0, "99.5%": None}  # the first crossing
    assert s["accuracy_at"] == {"2 min": 0.985, "5 min": 0.97, "10 min": 0.991}  # the last point at or before
    assert s["best"]["train_s"] == 400.0 and s["final"]["accuracy"] == 0.991

    # Two images of each of two classes; a score that knows the classes is perfect at any threshold.
    y = [0, 0, 1, 1]
    pairs = (np.array([0, 0, 2, 1]), np.array([1, 2, 3, 3]), np.array([1.0, 0.0, 1.0, 0.0]))
    data = {"x_val": np.array(y), "val": pairs, "x_test": np.array(y), "test": pairs}
    calls = []

    def score(images, first, second):
        calls.append(len(first))
        return (images[first] == images[second]).astype(float)

    tracker = bench.Tracker(data, budget=0.0, eval_every=100.0)
    tracker.start()
    assert tracker.step(score) is True  # the budget is spent: a last evaluation, then stop
    assert calls == [4, 4]  # validation pairs, then test pairs
    (point,) = tracker.curve
    assert point["steps"] == 1 and point["accuracy"] == 1.0 and point["roc_auc"] == 1.0
    tracker.finish(score)  # nothing trained since: no second evaluation
    assert len(tracker.curve) == 1 and tracker.train_seconds() >= 0


@pytest.mark.benchmark
@pytest.mark.slow
def test_time_to_accuracy_quick_writes_json_and_figure(tmp_path):
    pytest.importorskip("torch")
    proc, report = _run_quick("time_to_accuracy.py", tmp_path, timeout=900)
    assert "faster peer to 99.0%" in proc.stdout
    assert (tmp_path / "runs" / "benchmarks" / "time_to_accuracy.png").stat().st_size > 1000
    assert report["config"]["quick"] is True and report["config"]["test_pairs"] == 1000
    for kind in ("pytorch", "keras_io", "keras_io_sigmoid", "siamkit"):
        result = report["contenders"][kind]
        assert result["curve"] and result["steps"] >= 1, kind
        assert all(0.0 <= p["accuracy"] <= 1.0 and 0.0 <= p["roc_auc"] <= 1.0 for p in result["curve"]), kind
        times = [p["train_s"] for p in result["curve"]]
        assert times == sorted(times), kind
        assert result["threads"]["intra_op"] == report["environment"]["usable_cores"], kind
        assert set(result["summary"]["time_to"]) == {"97.0%", "98.0%", "99.0%", "99.5%"}, kind
    assert report["comparison"]["keras_io_head_compared"] in ("keras_io", "keras_io_sigmoid")
    assert set(report["comparison"]["met"]) == {"speedup_at_99", "siamkit_995_within_10_min"}
