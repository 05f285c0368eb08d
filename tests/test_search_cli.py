"""`siamkit embed | index | search | dedupe` end to end, on a trained run and folders of images."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from siamkit.cli import main
from siamkit.index import load

pytest.importorskip("faiss")
pytestmark = pytest.mark.slow  # every test uses the session-trained `trained_run`


def _quantised_digits(n, seed):
    """Digits images whose pixels survive a PNG round trip exactly, with their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = np.random.default_rng(seed).choice(len(digits.images), n, replace=False)
    x = np.round(digits.images[rows] / 16.0 * 255) / 255
    return x.astype("float32")[..., None], digits.target[rows]


def _write_folder(folder, x, y):
    paths = []
    for i, (img, label) in enumerate(zip(x, y)):
        path = folder / str(label) / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img[..., 0] * 255).astype("uint8")).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    x, y = _quantised_digits(40, seed=0)
    folder = tmp_path_factory.mktemp("gallery")
    return folder, x, y, _write_folder(folder, x, y)


@pytest.fixture(scope="module")
def built(trained_run, gallery, tmp_path_factory):
    out = tmp_path_factory.mktemp("index") / "ix"
    assert main(["index", "build", trained_run.path, "--data", str(gallery[0]), "--out", str(out), "--quiet"]) == 0
    return out


def _brute_force(z_gallery, z_query, k):
    d = np.linalg.norm(z_query[:, None].astype(float) - z_gallery[None].astype(float), axis=-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k], np.sort(d, axis=1)[:, :k]


def test_embed_writes_the_runs_embeddings_in_batches(trained_run, gallery, tmp_path, cli):
    folder, x, y, paths = gallery
    code, out, _ = cli(
        "embed", trained_run.path, "--data", folder, "--out", tmp_path / "e.npz", "--batch-size", 7, "--quiet"
    )
    assert code == 0 and "wrote 40 embeddings" in out
    with np.load(tmp_path / "e.npz", allow_pickle=False) as f:
        order = np.argsort(paths)  # files are listed sorted
        np.testing.assert_allclose(f["embeddings"], trained_run.embed(x[order]), rtol=1e-4, atol=1e-5)
        assert f["paths"].tolist() == sorted(paths)
        assert f["labels"].tolist() == [str(label) for label in y[order]]
        assert str(f["fingerprint"]) == trained_run.fingerprint()


def test_search_ranks_like_brute_force_with_paths_and_labels(trained_run, gallery, built, cli):
    folder, x, y, paths = gallery
    order = np.argsort(paths)
    queries = [paths[i] for i in order[:3]]
    code, out, _ = cli("search", built, *queries, "-k", 5, "--json", "--quiet")
    assert code == 0
    found = json.loads(out)
    z = trained_run.embed(x[order])
    ids, dist = _brute_force(z, z[:3], 5)
    for q, result, want_ids, want_dist in zip(queries, found["queries"], ids, dist):
        assert result["query"] == q
        assert [r["id"] for r in result["results"]] == want_ids.tolist()
        np.testing.assert_allclose([r["distance"] for r in result["results"]], want_dist, atol=1e-4)
        top = result["results"][0]
        assert top["path"] == q and top["label"] == q.split("/")[-2] and top["rank"] == 1
        assert ("match" in top) == (trained_run.calibration is not None)
    code, out, _ = cli("search", built, queries[0], "-k", 3, "--quiet")
    lines = [line for line in out.splitlines() if not line.startswith("match:")]
    assert code == 0 and lines[0] == f"query: {queries[0]}" and lines[1].split()[:3] == ["rank", "id", "distance"]
    assert len(lines) == 5


def test_search_says_match_with_a_calibrated_threshold(trained_run, gallery, tmp_path, cli):
    from siamkit.evaluation.calibration import calibrate, write_calibration

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.path, run_dir)
    # A threshold between the 2nd and 3rd nearest distance of the first query.
    folder, x, y, paths = gallery
    z = trained_run.embed(x[np.argsort(paths)])
    _, dist = _brute_force(z, z[:1], 3)
    threshold = float(dist[0, 1:].mean())
    write_calibration(run_dir, calibrate([1, 0], [threshold - 1e-9, threshold + 1e-9], higher_is_similar=False))
    assert cli("index", "build", run_dir, "--data", folder, "--out", tmp_path / "ix", "--quiet")[0] == 0
    code, out, _ = cli("search", tmp_path / "ix", sorted(paths)[0], "-k", 3, "--json", "--quiet")
    results = json.loads(out)["queries"][0]["results"]
    assert [r["match"] for r in results] == [True, True, False]
    np.testing.assert_allclose([r["score"] for r in results], [r["distance"] for r in results], atol=1e-5)
    code, out, _ = cli("search", tmp_path / "ix", sorted(paths)[0], "-k", 3, "--threshold", 1e-3, "--quiet")
    lines = out.splitlines()
    assert lines[0] == "match: pair score <= 0.001 (given)"
    assert [line.split()[3] for line in lines[3:]] == ["yes", "no", "no"]


def test_add_and_remove_through_the_cli(trained_run, gallery, tmp_path, cli):
    folder, x, y, paths = gallery
    shutil.copytree(folder, tmp_path / "g")
    code, _, _ = cli(
        "index",
        "build",
        trained_run.path,
        "--data",
        tmp_path / "g",
        "--out",
        tmp_path / "ix",
        "--backend",
        "faiss-flat",
        "--quiet",
    )
    assert code == 0
    more_x, more_y = _quantised_digits(5, seed=1)
    more = _write_folder(tmp_path / "more", more_x, more_y)
    code, out, _ = cli("index", "add", tmp_path / "ix", "--data", tmp_path / "more", "--quiet")
    assert code == 0 and "ids 40..44" in out and len(load(tmp_path / "ix")) == 45
    code, out, _ = cli("search", tmp_path / "ix", sorted(more)[0], "-k", 1, "--json", "--quiet")
    assert json.loads(out)["queries"][0]["results"][0]["id"] == 40
    code, out, _ = cli("index", "remove", tmp_path / "ix", "--ids", 40, 3)
    assert code == 0 and len(load(tmp_path / "ix")) == 43
    code, out, _ = cli("search", tmp_path / "ix", sorted(more)[0], "-k", 43, "--json", "--quiet")
    assert {r["id"] for r in json.loads(out)["queries"][0]["results"]} == set(range(45)) - {40, 3}
    code, _, err = cli("index", "remove", tmp_path / "ix", "--ids", 40)
    assert code == 2 and "not in the index: [40]" in err and len(err.strip().splitlines()) == 1


def test_index_from_embed_output_equals_index_from_folder(trained_run, gallery, built, tmp_path, cli):
    cli("embed", trained_run.path, "--data", gallery[0], "--out", tmp_path / "e.npz", "--quiet")
    code, _, _ = cli("index", "build", trained_run.path, "--data", tmp_path / "e.npz", "--out", tmp_path / "ix")
    a, b = load(built), load(tmp_path / "ix")
    assert code == 0 and a.ids.tolist() == b.ids.tolist() and a.metadata(a.ids) == b.metadata(b.ids)
    np.testing.assert_allclose(a.embeddings(a.ids), b.embeddings(b.ids), rtol=1e-4, atol=1e-5)


def test_a_different_model_is_refused(trained_run, gallery, built, tmp_path, cli):
    other = tmp_path / "other"
    shutil.copytree(trained_run.path, other)
    with open(other / "model.keras", "ab") as f:
        f.write(b"\0")  # another file, another fingerprint
    code, _, err = cli("search", built, gallery[3][0], "--run", other, "--quiet")
    assert code == 2 and "another model" in err
    code, _, err = cli("index", "add", built, "--data", gallery[0], "--run", other, "--quiet")
    assert code == 2 and "another model" in err
    cli("embed", other, "--data", gallery[0], "--out", tmp_path / "e.npz", "--quiet")
    code, _, err = cli("index", "build", trained_run.path, "--data", tmp_path / "e.npz", "--out", tmp_path / "ix")
    assert code == 2 and "another model" in err


def test_bad_inputs_are_one_line_errors(trained_run, gallery, built, tmp_path, cli):
    uncalibrated = shutil.copytree(trained_run.path, tmp_path / "run")
    (uncalibrated / "calibration.json").unlink(missing_ok=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "notes.doc").write_text("hi")
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    cases = [
        (("index", "build", trained_run.path, "--data", tmp_path / "empty", "--out", tmp_path / "ix"), "no image"),
        (("search", built, tmp_path / "notes.doc"), "unsupported file type"),
        (("search", built, tmp_path / "notes.txt"), "takes no text input"),  # text: for runs with a text tower
        (("search", built, tmp_path / "clip.wav"), "takes no audio input"),
        (("search", tmp_path / "empty", gallery[3][0]), "not a siamkit index"),
        (("search", built, gallery[3][0], "-k", 0), "-k must be"),
        (("index", "build", trained_run.path, "--data", gallery[0], "--out", tmp_path / "ix", "--option", "m"), "KEY="),
        (("dedupe", uncalibrated, "--data", gallery[0]), "calibration.json"),
    ]
    for argv, message in cases:
        code, _, err = cli(*argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_corrupt_index_is_refused(gallery, built, tmp_path, cli):
    shutil.copytree(built, tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    path = tmp_path / "ix" / manifest["files"]["embeddings"]["name"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    code, _, err = cli("search", tmp_path / "ix", gallery[3][0], "--quiet")
    assert code == 2 and "checksum" in err


def test_empty_index_answers_with_no_results(trained_run, gallery, built, tmp_path, cli):
    shutil.copytree(built, tmp_path / "ix")
    cli("index", "remove", tmp_path / "ix", "--ids", *range(40))
    code, out, err = cli("search", tmp_path / "ix", gallery[3][0], "--json", "--quiet")
    assert code == 0 and json.loads(out)["queries"][0]["results"] == [] and "empty" in err


def test_dedupe_groups_copies(trained_run, gallery, tmp_path, cli):
    folder, x, y, paths = gallery
    shutil.copytree(folder, tmp_path / "g")
    first, second = sorted(paths)[0], sorted(paths)[5]
    copies = {
        first: [tmp_path / "g" / "copies" / "a1.png", tmp_path / "g" / "copies" / "a2.png"],
        second: [tmp_path / "g" / "copies" / "b1.png"],
    }
    (tmp_path / "g" / "copies").mkdir()
    for source, targets in copies.items():
        for target in targets:
            shutil.copy(source, target)
    code, out, err = cli("dedupe", trained_run.path, "--data", tmp_path / "g", "--threshold", 1e-4, "--quiet")
    assert code == 0 and "2 groups" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    groups = {}
    for row in rows:
        groups.setdefault(row["group"], set()).add(row["path"].split("/")[-1])
        assert int(row["size"]) in (2, 3)
    want = [{first.split("/")[-1], "a1.png", "a2.png"}, {second.split("/")[-1], "b1.png"}]
    assert list(groups.values()) == want
