"""The Omniglot benchmark's --quick pipeline on the real data (checks wiring, not accuracy)."""

import importlib.util
import json
import os

import numpy as np
import pytest

from siamkit.data import augment
from siamkit.evaluation import report
from siamkit.runs import Run

pytestmark = [pytest.mark.data, pytest.mark.slow]


def _benchmark(repo):
    spec = importlib.util.spec_from_file_location("omniglot_oneshot", repo / "benchmarks" / "omniglot_oneshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick(shared_data_dir, tmp_path_factory):
    from conftest import REPO, results_digest

    if not (shared_data_dir / "omniglot.npz").is_file():
        pytest.skip("omniglot.npz is not in the shared data folder")
    tmp = tmp_path_factory.mktemp("omniglot")
    out = tmp / "run"
    bench = _benchmark(REPO)
    before, cwd = results_digest(), os.getcwd()
    os.chdir(tmp)  # a quick run writes its JSON under the working directory's runs/benchmarks/
    try:
        assert bench.main(["--quick", "--out", str(out), "--data-dir", str(shared_data_dir)]) == 0
    finally:
        os.chdir(cwd)
    assert results_digest() == before, "--quick changed benchmarks/results/"
    results = tmp / "runs" / "benchmarks" / "omniglot_oneshot.json"
    return bench, Run(str(out)), json.loads(results.read_text())


def test_splits_keep_the_evaluation_set_out_of_training_and_validation(quick):
    _, run, results = quick
    config = run.config
    train_classes, test_classes = set(config["train_classes"]), set(config["test_classes"])
    assert max(train_classes) < 964 and test_classes == set(range(964, 1623))  # background vs evaluation ids
    validation, test = report.holdout_data(run)
    assert set(np.unique(test.meta["alphabet"])) == set(range(30, 50))
    val_alphabets = set(np.unique(validation.meta["alphabet"]).tolist())
    assert val_alphabets and max(val_alphabets) < 30
    assert not np.isin(validation.y, list(train_classes)).any()  # whole alphabets held out, not images
    assert results["data"]["test"]["classes"] == 659


def test_results_hold_every_protocol_and_match_siamkit_evaluate(quick):
    _, run, results = quick
    head = results["headline"]
    for key in ("within_alphabet_20way", "across_20way", "5way", "mnist_10way", "verification_accuracy"):
        assert 0.0 <= head[key]["accuracy"] <= 1.0, key
    assert head["within_alphabet_20way"]["episodes"] == 400 and head["within_alphabet_20way"]["alphabets"] == 20
    assert head["across_20way"]["episodes"] == 2000 and head["5way"]["ways"] == 5
    assert head["mnist_10way"]["ways"] == 10
    # Even a few batches of training beat chance (1/20, 1/5, 1/10) clearly.
    assert head["across_20way"]["accuracy"] > 0.10 and head["5way"]["accuracy"] > 0.3
    assert 0.5 < results["verification"]["roc_auc"] <= 1.0 and 0 < results["verification"]["eer"] < 0.5
    # One view is exactly what `siamkit evaluate RUN_DIR --ways 20 --episodes 2000` reports.
    plain, cli = results["by_views"]["1"], results["siamkit_evaluate"]
    assert plain["within_alphabet_20way"]["accuracy"] == pytest.approx(
        cli["omniglot within-alphabet 20-way"]["accuracy"], abs=1e-9
    )
    assert plain["across_20way"]["accuracy"] == pytest.approx(cli["20-way 1-shot"]["accuracy"], abs=1e-9)
    assert results["train_seconds"] > 0 and results["quick"] is True
    cpu = results["hardware"]["cpu"]  # the step time depends on the vector extensions
    assert set(cpu) <= {"model", "avx"} and all(flag.startswith("avx") for flag in cpu.get("avx", []))
    assert results["headline_views"] in (1, 2)
    # Local scaling: weight 0 is the plain evaluation at the chosen views; the headline is the weight that
    # validation prefers (the lowest on ties), and the evaluation set plays no part in the choice.
    by_weight = results["by_local_scaling"]
    assert set(by_weight) == {"0.0", "0.1", "0.2", "0.3", "0.4"}
    assert by_weight["0.0"] == results["by_views"][str(results["headline_views"])]
    val = {w: r["validation_within_alphabet_20way"]["accuracy"] for w, r in by_weight.items()}
    weight = results["headline_local_scaling"]["weight"]
    assert val[str(weight)] == max(val.values()) and all(val[w] < max(val.values()) for w in val if float(w) < weight)
    head = {k: v for k, v in results["headline"].items() if k != "verification_accuracy"}
    assert head == by_weight[str(weight)]
    scaled = by_weight["0.3"]["within_alphabet_20way"]["method"]
    assert scaled == "prototype (sqeuclidean, local scaling 0.3, k=5)"


def test_saved_run_is_usable_by_compare_and_search(quick):
    _, run, _ = quick
    validation, _ = report.holdout_data(run)
    x = validation.x[:4]
    z = run.embed(x)
    assert z.shape == (4, run.config["embedding_dim"]) and np.isfinite(z).all()
    scores = run.score_pairs(x[:2], x[2:])
    assert scores.shape == (2,) and run.distance == "sqeuclidean"
    assert (run.score_pairs(x[:2], x[:2]) <= scores + 1e-6).all()  # a distance: an image is nearest itself


def test_views_of(quick):
    bench = quick[0]
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 1, 1, 0] = 1.0
    views = list(bench.views_of(x, 9))
    assert len(views) == 9 and views[0] is x
    peaks = [tuple(np.argwhere(v[0, :, :, 0])[0]) for v in views]
    assert peaks == [(1, 1), (1, 2), (1, 0), (2, 1), (0, 1), (2, 2), (0, 0), (2, 0), (0, 2)]
    # zero-filled, not wrapped: a pixel moved off the edge is gone
    edge = np.zeros_like(x)
    edge[0, 0, 3, 0] = 1.0
    assert bench.shift(edge, 0, 1).sum() == 0 and bench.shift(edge, -1, 0).sum() == 0
    # at 56x56 the same views move by four pixels
    big = np.zeros((1, 56, 56, 1), "float32")
    big[0, 10, 10, 0] = 1.0
    peaks = [tuple(np.argwhere(v[0, :, :, 0])[0]) for v in bench.views_of(big, 3)]
    assert peaks == [(10, 10), (10, 14), (10, 6)]
    # past 9: the same 9 shifts of the image zoomed by 0.9, then by 1.1
    images = np.random.default_rng(0).random((2, 56, 56, 1)).astype("float32")
    views = list(bench.views_of(images, 27))
    assert len(views) == 27 and bench.SCALES == (0.9, 1.1)
    for start, factor in ((9, 0.9), (18, 1.1)):
        zoomed = augment.zoom(images, factor)
        np.testing.assert_array_equal(views[start], zoomed)
        np.testing.assert_array_equal(views[start + 5], bench.shift(zoomed, 4, 4))
    assert not np.allclose(views[9], views[18]) and not np.allclose(views[0], views[9])
