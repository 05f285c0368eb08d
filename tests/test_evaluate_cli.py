"""`siamkit evaluate` and `siamkit compare` on run directories, checked against the library."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from siamkit.cli import main
from siamkit.evaluation import calibration, oneshot, pairs, report, verification
from siamkit.evaluation.compare import compare_files
from siamkit.runs import Run

PNG = b"\x89PNG\r\n\x1a\n"


def _build_run(folder, head):
    """An untrained digits run written as `siamkit train` writes one (fast, no fitting)."""
    from siamkit import _io, datasets, encoders, models
    from siamkit.training import resolve
    from siamkit.data import split_indices
    from siamkit.training.trainer import build_head

    loss = "contrastive" if head == "distance" else "bce"
    config = resolve(overrides={
        "encoder": "mlp", "head": head, "loss": loss, "embedding_dim": 8, "holdout_classes": [7, 8, 9],
        "eval_pairs": 300, "out": str(folder), "seed": 3,
    })
    ds = datasets.load("digits")
    train_idx, _, test_idx = split_indices(ds, config)
    model = models.SiameseNetwork(encoders.mlp((8, 8, 1), embedding_dim=8, hidden_units=(32,)), build_head(config))
    model([ds.x[:1], ds.x[:1]])
    config.update(
        input_shape=[8, 8, 1], train_classes=np.unique(ds.y[train_idx]).tolist(),
        test_classes=np.unique(ds.y[test_idx]).tolist(), higher_is_similar=model.higher_is_similar,
    )
    folder.mkdir(parents=True)
    _io.save_model(model, folder / "model.keras")
    _io.write_json(folder / "config.json", config)
    return folder


@pytest.fixture(scope="module")
def built_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_runs")
    return {head: _build_run(root / head, head) for head in ("distance", "l1")}


@pytest.fixture
def distance_run(built_runs, tmp_path):
    return shutil.copytree(built_runs["distance"], tmp_path / "distance")


@pytest.fixture
def probability_run(built_runs, tmp_path):
    return shutil.copytree(built_runs["l1"], tmp_path / "l1")


def _digit_png(folder, name, index, binary=False):
    from siamkit import datasets

    img = datasets.load("digits").x[index, :, :, 0]
    img = (img > 0.5).astype("float32") if binary else img
    path = folder / name
    Image.fromarray(np.round(img * 255).astype("uint8")).save(path)
    return str(path)


def test_evaluate_writes_metrics_plots_and_calibration(distance_run, capsys):
    assert main(["evaluate", str(distance_run), "--episodes", "100", "--pairs", "300"]) == 0
    out = capsys.readouterr().out
    for text in ("ROC AUC", "EER", "TAR @ FAR 0.001", "one-shot 3-way 1-shot", "MAP@R"):
        assert text in out
    metrics = json.loads((distance_run / "eval" / "metrics.json").read_text())
    for name in ("roc", "det", "scores", "oneshot"):
        assert (distance_run / metrics["plots"][name]).read_bytes()[:8] == PNG
    assert metrics["data"]["test"]["classes"] == 3 and metrics["seed"] == 3

    # Recompute from scratch: the test pairs come from the held-out classes 7-9 only ...
    run = Run(distance_run)
    val, test = report.holdout_data(run)
    assert set(np.unique(test.y)) == {7, 8, 9} and not set(np.unique(val.y)) & {7, 8, 9}
    i, j, same = pairs.random_pairs(test.y, 300, seed=3 + 1)
    d = run.score_pairs(test.x[i], test.x[j])
    v = metrics["verification"]
    assert v["roc_auc"] == pytest.approx(roc_auc_score(same, -d), abs=1e-6)
    assert v["eer"] == pytest.approx(verification.eer(same, d, higher_is_similar=False)[0], abs=1e-6)
    # ... and the thresholds from validation pairs, then applied to the test pairs.
    vi, vj, vsame = pairs.random_pairs(val.y, 300, seed=3)
    chosen = verification.choose_threshold(vsame, run.score_pairs(val.x[vi], val.x[vj]), higher_is_similar=False)
    cal = calibration.read_calibration(distance_run)
    assert cal["thresholds"]["accuracy"]["threshold"] == pytest.approx(chosen["threshold"], rel=1e-5)
    at = v["at_threshold"]["accuracy"]
    assert at["threshold"] == cal["thresholds"]["accuracy"]["threshold"]
    assert at["accuracy"] == pytest.approx(np.mean((d <= at["threshold"]) == same), abs=1e-6)
    # Retrieval over the held-out set with self-exclusion.
    assert metrics["retrieval"]["n_queries"] == len(test)


def test_evaluate_one_protocol_and_no_plots(distance_run):
    assert main(["evaluate", str(distance_run), "--protocol", "retrieval", "--no-plots"]) == 0
    metrics = json.loads((distance_run / "eval" / "metrics.json").read_text())
    assert set(metrics) >= {"retrieval"} and "verification" not in metrics and metrics["plots"] == {}
    assert not (distance_run / "calibration.json").exists()


def test_compare_distance_head(distance_run, tmp_path, capsys):
    a, b = _digit_png(tmp_path, "a.png", 7), _digit_png(tmp_path, "b.png", 8)
    assert main(["compare", str(distance_run), a, b]) == 2
    assert "siamkit evaluate" in capsys.readouterr().err  # no calibration yet: says what to do
    assert main(["evaluate", str(distance_run), "--protocol", "verification", "--no-plots"]) == 0
    capsys.readouterr()
    assert main(["compare", str(distance_run), a, b]) == 0
    out = capsys.readouterr().out
    result = compare_files(distance_run, a, b)
    threshold = calibration.threshold(calibration.read_calibration(distance_run))
    assert result["threshold"] == threshold and result["output_kind"] == "distance"
    assert result["same"] == (result["score"] <= threshold)
    assert result["distance"] == pytest.approx(result["score"], rel=1e-5)  # euclidean distance head
    assert f"decision    {'same' if result['same'] else 'different'}" in out
    # An explicit threshold wins over the calibrated one.
    assert main(["compare", str(distance_run), a, b, "--threshold", str(result["score"] * 2)]) == 0
    assert "decision    same" in capsys.readouterr().out
    assert main(["compare", str(distance_run), a, b, "--threshold", str(result["score"] / 2)]) == 0
    assert "decision    different" in capsys.readouterr().out
    # A calibration of the other score direction is refused, not silently applied.
    cal = calibration.read_calibration(distance_run)
    calibration.write_calibration(distance_run, {**cal, "higher_is_similar": True})
    assert main(["compare", str(distance_run), a, b]) == 2
    assert "does not match the run's model" in capsys.readouterr().err


def test_probability_head_evaluate_and_compare(probability_run, tmp_path, capsys):
    assert main(["evaluate", str(probability_run), "--protocol", "all", "--episodes", "50", "--no-plots"]) == 0
    cal = calibration.read_calibration(probability_run)
    assert cal["higher_is_similar"] is True and cal["output_kind"] == "probability"
    metrics = json.loads((probability_run / "eval" / "metrics.json").read_text())
    assert metrics["oneshot"]["3-way 1-shot"]["method"] == "pair_score"
    a, b = _digit_png(tmp_path, "a.png", 3), _digit_png(tmp_path, "b.png", 13)
    capsys.readouterr()
    assert main(["compare", str(probability_run), a, b]) == 0
    out = capsys.readouterr().out
    result = compare_files(probability_run, a, b)
    assert 0.0 <= result["score"] <= 1.0 and result["similarity"] == result["score"]
    assert result["same"] == (result["score"] >= cal["thresholds"]["accuracy"]["threshold"])
    assert "same-class probability" in out


def test_evaluate_local_scaling_matches_the_library(distance_run, probability_run, capsys):
    args = ["--protocol", "oneshot", "--ways", "3", "--episodes", "200", "--no-plots"]
    assert main(["evaluate", str(distance_run), *args, "--local-scaling", "0.4", "--scaling-neighbors", "1"]) == 0
    result = json.loads((distance_run / "eval" / "metrics.json").read_text())["oneshot"]["3-way 1-shot"]
    assert result["method"] == "prototype (euclidean, local scaling 0.4, k=1)"
    validation, test = report.holdout_data(Run(distance_run))
    episodes = oneshot.sample_episodes(test.y, 3, 1, 200, seed=5)  # the run's seed 3, + 2 for one-shot
    z = Run(distance_run).embed(test.x)
    expected = oneshot.evaluate_episodes(episodes, z, "euclidean", local_scaling=0.4, scaling_neighbors=1)
    assert result["accuracy"] == pytest.approx(expected["accuracy"])
    assert expected["accuracy"] != oneshot.evaluate_episodes(episodes, z, "euclidean")["accuracy"]
    # A pair head scores pairs, not distances to prototypes: refused before anything is embedded.
    capsys.readouterr()
    assert main(["evaluate", str(probability_run), *args, "--local-scaling", "0.4"]) == 2
    assert "--oneshot-method prototype" in capsys.readouterr().err
    assert main(["evaluate", str(distance_run), *args, "--local-scaling", "-1"]) == 2
    assert "local_scaling must be zero or a positive weight, got -1.0" in capsys.readouterr().err


def test_evaluate_reports_bad_options_as_one_line(distance_run, tmp_path, capsys):
    assert main(["evaluate", str(distance_run), "--protocol", "oneshot", "--ways", "10"]) == 2
    err = capsys.readouterr().err
    assert "10-way" in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "not a siamkit run directory" in capsys.readouterr().err


def test_evaluate_episode_files_and_pair_csv(distance_run, tmp_path):
    from siamkit import datasets

    y = datasets.load("digits").y
    # Lake layout: run01 with 3 classes (digits 7, 8, 9), one query each, binary images (exact in PNG).
    run01 = tmp_path / "episodes" / "run01"
    (run01 / "training").mkdir(parents=True)
    (run01 / "test").mkdir()
    support = [int(np.flatnonzero(y == c)[0]) for c in (7, 8, 9)]
    query = [int(np.flatnonzero(y == c)[1]) for c in (9, 7, 8)]
    for n, i in enumerate(support):
        _digit_png(run01 / "training", f"class{n + 1:02d}.png", i, binary=True)
    for n, i in enumerate(query):
        _digit_png(run01 / "test", f"item{n + 1:02d}.png", i, binary=True)
    lines = ["test/item01.png training/class03.png", "test/item02.png training/class01.png",
             "test/item03.png training/class02.png"]
    (run01 / "class_labels.txt").write_text("\n".join(lines) + "\n")
    # A pair CSV over the same files.
    csv = tmp_path / "episodes" / "pairs.csv"
    csv.write_text("path_a,path_b,label\nrun01/training/class01.png,run01/test/item02.png,1\n"
                   "run01/training/class02.png,run01/test/item03.png,1\n"
                   "run01/training/class01.png,run01/test/item01.png,0\n")
    code = main([
        "evaluate", str(distance_run), "--episodes-dir", str(tmp_path / "episodes"), "--pairs-csv", str(csv),
        "--episodes", "20", "--no-plots",
    ])
    assert code == 0
    metrics = json.loads((distance_run / "eval" / "metrics.json").read_text())
    files = metrics["oneshot"]["episode files"]
    assert [r["run"] for r in files["runs"]] == ["run01"] and files["runs"][0]["ways"] == 3
    # The same episode scored directly on arrays gives the same error.
    run = Run(distance_run)
    x = datasets.load("digits").x
    z = run.embed((x[support + query] > 0.5).astype("float32"))
    episode = oneshot.Episodes(np.arange(3)[None, :, None], np.arange(3, 6)[None], np.array([[2, 0, 1]]))
    direct = oneshot.evaluate_episodes(episode, z, distance="euclidean")["accuracy"]
    assert files["runs"][0]["error"] == pytest.approx(100 * (1 - direct))
    assert metrics["verification"]["n_pairs"] == 3 and "pair CSV" in metrics["verification"]["test_pairs"]


@pytest.mark.slow
def test_evaluate_and_compare_a_trained_run(trained_run, tmp_path, capsys):
    run_dir = shutil.copytree(trained_run.path, tmp_path / "run")  # the session fixture stays untouched
    assert main(["evaluate", str(run_dir), "--episodes", "200"]) == 0
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["verification"]["roc_auc"] > 0.5  # trained: better than chance on unseen classes
    assert metrics["oneshot"]["3-way 1-shot"]["accuracy"] > 1 / 3
    a, b = _digit_png(tmp_path, "a.png", 7), _digit_png(tmp_path, "b.png", 17)  # two sevens
    capsys.readouterr()
    assert main(["compare", str(run_dir), a, b]) == 0
    assert "decision" in capsys.readouterr().out


def test_evaluate_run_with_given_data_runs_the_omniglot_protocol(distance_run):
    """The trainer's call: validation and test given; an Omniglot-like test set gets Lake's protocol."""
    from siamkit.datasets import Dataset

    rng = np.random.default_rng(0)
    # Alphabets 0 and 1: 20 characters x 3 drawers; alphabet 2 has only 5 characters and is left out.
    chars = np.r_[np.repeat(np.arange(40), 3), 40 + np.repeat(np.arange(5), 3)]
    alphabet = np.r_[np.repeat([0, 1], 60), np.full(15, 2)]
    drawer = np.tile([1, 2, 3], 45)
    x = rng.random((len(chars), 8, 8, 1)).astype("float32")
    meta = {"alphabet": alphabet, "drawer": drawer, "split": np.ones(len(chars), "uint8")}
    test = Dataset("omniglot", x, chars, meta)
    metrics = report.evaluate_run(
        distance_run, protocol="oneshot", validation=test, test=test, episodes=10, plot=False, seed=0
    )
    within = metrics["oneshot"]["omniglot within-alphabet 20-way"]
    assert within["alphabets"] == 2 and within["episodes"] == 40 and within["queries_per_episode"] == 20
    # Same trials drawn directly on the usable rows (one-shot draws use seed + 2).
    keep = np.flatnonzero(alphabet < 2)
    trials = oneshot.omniglot_episodes(chars[keep], alphabet[keep], drawer[keep], 40, 20, seed=2)
    z = Run(distance_run).embed(x[keep])
    assert within["accuracy"] == pytest.approx(oneshot.evaluate_episodes(trials, z)["accuracy"])
    assert "omniglot within-alphabet 20-way" in report.format_table(metrics)
