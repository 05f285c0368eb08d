"""`siamkit report`: every applicable section of a small trained run, its numbers equal to `eval/metrics.json`,
failure galleries checked against a brute-force selection, no external resource, bad input named, run
comparison, the TensorBoard projector export, and the report in a headless Chromium."""

import base64
import csv
import json
import os
import re
import shutil

import numpy as np
import pytest
from conftest import brute_force_knn, clustered

from siamkit import report
from siamkit.cli import main
from siamkit.report import analysis, evidence, projection
from siamkit.report.page import pct

pytestmark = pytest.mark.slow  # uses the session-trained `trained_run`

SECTIONS = ("card", "curves", "verification", "failures", "confusions", "retrieval", "neighbours", "oneshot", "map")


def _section(html, key):
    found = re.search(rf'<section id="{key}" class="report-section">(.*?)</section>', html, re.S)
    return found.group(1) if found else None


@pytest.fixture(scope="module")
def built(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    path, missing = report.build(trained_run, out, projection="pca", progress=False)
    return trained_run, path, missing, open(path, encoding="utf-8").read()


@pytest.fixture(scope="module")
def gathered(trained_run):
    return evidence.gather(trained_run, progress=False)


def _metrics(run):
    with open(run.file("eval/metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def test_every_section_of_a_trained_run_is_there_and_nothing_is_missing(built):
    _, path, missing, html = built
    assert missing == []
    for key in SECTIONS:
        assert _section(html, key), f"section {key} missing"
    assert _section(html, "crossmodal") is None  # a single-tower run has no cross-modal section
    assert "left-out" not in html


def test_the_numbers_are_those_of_eval_metrics_json(built, gathered):
    run, _, _, html = built
    recorded = _metrics(run)
    v, r = recorded["verification"], recorded["retrieval"]
    mine = gathered.verification["metrics"]
    for key in ("roc_auc", "average_precision", "eer", "tar_at_far", "oracle", "at_threshold", "n_pairs"):
        assert mine[key] == v[key], key
    for key in ("precision_at_1", "r_precision", "map_at_r", "n_queries"):
        assert gathered.retrieval[key] == pytest.approx(r[key], abs=1e-12), key
    assert gathered.retrieval["recall_at_k"] == pytest.approx(r["recall_at_k"], abs=1e-12)
    (name, one), = recorded["oneshot"].items()
    (same_protocol,) = [o for o in gathered.oneshot["by_ways"] if o["recorded"]]
    assert same_protocol["accuracy"] == one["accuracy"] and same_protocol["ways"] == one["ways"]

    shown = _section(html, "verification")
    for text in (f"{v['roc_auc']:.4f}", f"{v['average_precision']:.4f}", pct(v["eer"])):
        assert text in shown
    for at in v["at_threshold"].values():
        assert f"{at['threshold']:.4g}" in shown and pct(at["accuracy"]) in shown and pct(at["far"]) in shown
    assert shown.count("<img") == 3  # ROC, DET, histograms
    overall = _section(html, "retrieval")
    assert pct(r["precision_at_1"]) in overall and pct(r["map_at_r"]) in overall
    assert pct(one["accuracy"]) in _section(html, "oneshot")
    assert len(re.findall(r'<img src="data:image/png', _section(html, "curves"))) == 2  # loss, roc_auc


def _brute_force_errors(same, scores, threshold, higher):
    """Every wrong pair, by a plain loop, hardest first (ties by pair index)."""
    accepts, rejects = [], []
    for p, (s, score) in enumerate(zip(same, scores)):
        decided_same = score >= threshold if higher else score <= threshold
        similarity = score if higher else -score
        if decided_same and not s:
            accepts.append((-similarity, p))
        elif s and not decided_same:
            rejects.append((similarity, p))
    return [p for _, p in sorted(accepts)], [p for _, p in sorted(rejects)]


def test_the_failure_galleries_are_exactly_the_wrong_pairs_hardest_first(built, gathered):
    _, _, _, html = built
    v = gathered.verification
    threshold = v["thresholds"][v["default"]]
    accepts, rejects = analysis.hardest_errors(v["same"], v["scores"], threshold, v["higher_is_similar"])
    want_accepts, want_rejects = _brute_force_errors(v["same"], v["scores"], threshold, v["higher_is_similar"])
    assert accepts.tolist() == want_accepts and rejects.tolist() == want_rejects
    assert want_accepts and want_rejects  # the tiny run makes both kinds of error
    # the counts are those of the metrics at that threshold
    at = v["metrics"]["at_threshold"][v["default"]]
    negatives = int((v["same"] == 0).sum())
    assert len(accepts) == round(at["far"] * negatives)
    galleries = _section(html, "failures").split('id="false-rejects"')
    for gallery, want in zip(galleries, (want_accepts, want_rejects)):
        shown = [int(p) for p in re.findall(r'data-pair="(\d+)"', gallery)]
        assert shown == want[: len(shown)] and len(shown) == min(len(want), 12)


def test_hardest_errors_breaks_ties_by_pair_order_and_handles_similarities():
    fa, fr = analysis.hardest_errors([0, 0, 0, 1, 1], [0.9, 0.9, 0.2, 0.1, 0.1], 0.5, higher_is_similar=True)
    assert fa.tolist() == [0, 1] and fr.tolist() == [3, 4]


def test_no_external_resource_is_referenced(built):
    _, _, _, html = built
    assert "http://" not in html and "https://" not in html
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:", "#")) for s in sources), sorted(set(sources))[:5]
    assert "<link" not in html and "@import" not in html


def test_confused_pairs_and_per_class_retrieval_count_what_they_say():
    y = np.array([0, 0, 1, 1, 2, 2])
    nn = np.array([1, 0, 0, 1, 1, 2])
    assert analysis.confused_pairs(y, nn) == [(0, 1, 2, [0, 2]), (1, 2, 1, [4])]
    per_query = {"query": np.arange(4), "precision_at_1": np.array([1.0, 0, 1, 1]),
                 "map_at_r": np.array([1.0, 0, 1, 0.5]), "recall_at_k": {"1": np.array([1.0, 0, 1, 1])}}
    rows = analysis.per_class_retrieval(per_query, np.array([0, 0, 1, 1, 2, 2]))
    assert [r["label"] for r in rows] == [0, 1] and rows[0]["map_at_r"] == 0.5 and rows[1]["queries"] == 2


def test_retrieval_hands_back_the_neighbours_of_its_own_search():
    from siamkit.evaluation import retrieval_metrics

    z = clustered(300, dim=8, centers=6)
    y = np.random.default_rng(0).integers(0, 6, 300)
    for distance in ("euclidean", "cosine"):
        got = retrieval_metrics(z, y, distance=distance, ks=(1, 5), per_query=True, neighbors=7)
        idx, dist = brute_force_knn(z, z, 7, distance, exclude_self=True)
        assert np.array_equal(got["neighbors"][0], idx) and np.allclose(got["neighbors"][1], dist, atol=1e-5)
        plain = retrieval_metrics(z, y, distance=distance, ks=(1, 5))
        assert {k: got[k] for k in plain} == plain
        assert got["per_query"]["map_at_r"].mean() == pytest.approx(plain["map_at_r"], abs=1e-12)


def test_projection_falls_back_from_tsne_to_pca_above_the_limit(monkeypatch):
    monkeypatch.setattr(projection.importlib.util, "find_spec", lambda name: None)
    assert projection.resolve("auto", projection.TSNE_MAX) == "tsne"
    assert projection.resolve("auto", projection.TSNE_MAX + 1) == "pca"
    xy, name = projection.project(np.random.default_rng(0).normal(size=(40, 5)), "tsne")
    assert name == "t-SNE" and xy.shape == (40, 2) and xy.min() == 0 and xy.max() == 1


def test_umap_projects_when_installed_and_is_refused_clearly_when_not(monkeypatch):
    from siamkit.errors import ConfigError

    if projection.importlib.util.find_spec("umap") is not None:  # the `report` extra
        xy, name = projection.project(np.random.default_rng(0).normal(size=(60, 8)), "umap")
        assert name == "UMAP" and xy.shape == (60, 2) and xy.min() == 0 and xy.max() == 1
    monkeypatch.setattr(projection.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"siamkit\[report\]"):
        projection.resolve("umap", 100)


def test_the_cross_modal_section_shows_images_and_playable_spectrograms():
    from types import SimpleNamespace

    from siamkit.report import sections

    rng = np.random.default_rng(0)
    images, clips = rng.random((3, 8, 8, 1)), rng.uniform(-1, 1, (4, 800)).astype("float32")
    knn = lambda q, r: (np.argsort(rng.random((len(q), len(r))), axis=1)[:, :2], rng.random((len(q), 2)))  # noqa: E731
    found = evidence.Evidence(run=SimpleNamespace(distance="cosine"), crossmodal={
        "sides": {"a": {"modality": "image", "shown": images, "labels": ["0", "1", "2"]},
                  "b": {"modality": "audio", "shown": clips, "labels": ["0", "1", "2", "0"]}},
        "sample_rate": 8000, "a_to_b": knn(images, clips), "b_to_a": knn(clips, images)})
    html = sections.crossmodal(found)
    to_audio, to_image = html.split("<h3>Audio to image</h3>")
    assert "<h3>Image to audio</h3>" in to_audio
    assert to_audio.count('<audio controls') == 3 * 2 and to_image.count('<audio controls') == 4
    assert to_audio.count('class="spec') == 6 and to_image.count('class="thumb') == 4 * 2
    wav = base64.b64decode(re.search(r'src="data:audio/wav;base64,([^"]+)"', html).group(1))
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) == 44 + 2 * 800


def test_the_cross_modal_section_shows_text_as_text_and_vectors_by_name():
    import html as html_module
    from types import SimpleNamespace

    from siamkit.report import media, sections

    long = "a <b>long</b> description " * 10
    texts, vectors = ["zero", "one", long], ["0/a.npy", "1/b.npy"]
    found = evidence.Evidence(run=SimpleNamespace(distance="euclidean"), crossmodal={
        "sides": {"a": {"modality": "text", "shown": texts, "labels": ["0", "1", "2"]},
                  "b": {"modality": "features", "shown": vectors, "labels": ["0", "1"]}},
        "sample_rate": None,
        "a_to_b": (np.array([[0, 1], [0, 1], [1, 0]]), np.zeros((3, 2))),
        "b_to_a": (np.array([[0, 2], [1, 0]]), np.zeros((2, 2)))})
    html = sections.crossmodal(found)
    to_features, to_text = html.split("<h3>Features to text</h3>")
    assert "<h3>Text to features</h3>" in to_features and "<img" not in html and "<audio" not in html
    # the query "zero" finds 0/a.npy (right) then 1/b.npy (wrong)
    assert re.search(r'class="text thumb" title="zero">zero</span>.*?class="vector thumb right"[^>]*>0/a.npy<.*?class="vector thumb '
                     r'wrong"[^>]*>1/b.npy<', to_features, re.S)
    assert "&lt;b&gt;long&lt;/b&gt;" in html and "<b>long</b>" not in html  # text is escaped
    shown = re.search(r'class="text thumb wrong" title="[^"]*">([^<]*)</span>', to_text).group(1)
    assert len(html_module.unescape(shown)) == media.TEXT_CHARS and shown.endswith("…")


def test_an_image_that_cannot_be_read_is_named_in_its_place():
    from siamkit.report import media

    class Gone:  # a lazy image store whose file went away after embedding
        def __getitem__(self, i):
            raise FileNotFoundError(f"[Errno 2] No such file or directory: 'digits/7/{i}.png'")

    html = media.sample_html(Gone(), 3, "7")
    assert "unreadable" in html and "digits/7/3.png" in html and "<img" not in html


def _copy(run, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(run.path, target)
    return target


def test_a_run_without_its_held_out_data_names_what_is_left_out(trained_run, tmp_path):
    moved = _copy(trained_run, tmp_path, "moved")
    config = json.loads((moved / "config.json").read_text())
    config["data"] = str(tmp_path / "gone")  # the image folder it was trained on is gone
    (moved / "config.json").write_text(json.dumps(config))
    path, missing = report.build(moved, progress=False)
    html = open(path, encoding="utf-8").read()
    assert path == str(moved / "report.html")
    assert any("held-out data unavailable" in m and "failure galleries" in m and "--data" in m for m in missing)
    assert _section(html, "card") and _section(html, "curves") and _section(html, "verification") is None
    assert "held-out data unavailable" in html


def test_an_older_run_without_history_or_evaluation_still_gets_a_report(trained_run, tmp_path):
    old = _copy(trained_run, tmp_path, "old")
    for name in ("history.csv", "calibration.json"):
        os.remove(old / name)
    shutil.rmtree(old / "eval")
    config = json.loads((old / "config.json").read_text())
    for key in ("higher_is_similar", "test_classes", "validation_reason"):
        config.pop(key)
    (old / "config.json").write_text(json.dumps(config))
    path, missing = report.build(old, old / "r.html", projection="pca", progress=False)
    html = open(path, encoding="utf-8").read()
    assert any("history.csv is missing" in m and "training curves" in m for m in missing)
    assert any("verification and failure galleries left out" in m for m in missing)
    for key in ("card", "retrieval", "neighbours", "oneshot", "map"):
        assert _section(html, key), key
    assert _section(html, "curves") is None and _section(html, "failures") is None


def test_the_cli_writes_the_report_and_a_comparison(trained_run, tmp_path, capsys):
    other = _copy(trained_run, tmp_path, "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "margin": 0.5}))
    out = tmp_path / "one.html"
    assert main(["report", str(trained_run.path), "--out", str(out), "--projection", "pca", "--quiet"]) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    both = tmp_path / "both.html"
    assert main(["report", str(trained_run.path), str(other), "--out", str(both), "--quiet"]) == 0
    html = both.read_text()
    for key in ("options", "metrics", "roc", "per-class"):
        assert _section(html, key), key
    differs = re.findall(r'<tr class="differs"><td>(\w+)</td>', _section(html, "options"))
    assert differs == ["margin"]
    assert "http://" not in html and "https://" not in html
    assert main(["report", str(trained_run.path), str(other), "--projection", "pca"]) == 2
    assert "--projection does not apply" in capsys.readouterr().err


def test_write_projector_files_agree_and_load_as_tsv(tmp_path):
    rng = np.random.default_rng(0)
    z, images = rng.normal(size=(10, 4)), rng.random((10, 8, 8, 1))
    labels, paths = [f"c{i % 3}" for i in range(10)], [f"img\t{i}.png" for i in range(10)]
    config = report.write_projector(tmp_path / "proj", z, labels, paths, images)
    tensors = np.loadtxt(tmp_path / "proj" / "tensors.tsv", delimiter="\t")
    assert tensors.shape == (10, 4) and np.allclose(tensors, z, atol=1e-6)
    with open(tmp_path / "proj" / "metadata.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["label", "path"] and len(rows) == 11 and rows[1] == ["c0", "img 0.png"]
    from PIL import Image

    sprite = Image.open(tmp_path / "proj" / "sprite.png")
    assert sprite.size == (4 * 8, 3 * 8)  # 4 per row, 8 px cells
    text = open(config, encoding="utf-8").read()
    assert 'tensor_path: "tensors.tsv"' in text and 'image_path: "sprite.png"' in text
    assert text.count("single_image_dim: 8") == 2


def test_embed_projector_writes_matching_rows_without_tensorflow_import(trained_run, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(folder / c / f"{i}.png")
    out = tmp_path / "proj"
    assert main(["embed", str(trained_run.path), "--data", str(folder), "--out", str(tmp_path / "e.npz"),
                 "--projector", str(out), "--quiet"]) == 0
    tensors = np.loadtxt(out / "tensors.tsv", delimiter="\t")
    with open(out / "metadata.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert tensors.shape[0] == len(rows) - 1 == 6 and {r[0] for r in rows[1:]} == {"a", "b"}
    assert (out / "sprite.png").is_file() and (out / "projector_config.pbtxt").is_file()
    import siamkit.report.projector as projector_module

    source = open(projector_module.__file__, encoding="utf-8").read()
    assert "tensorflow" not in source.replace("without TensorFlow", "")


def test_the_service_links_the_report_when_the_run_has_one(trained_run, tmp_path):
    from fastapi.testclient import TestClient

    from siamkit.service import Settings, create_app

    served = _copy(trained_run, tmp_path, "served")
    with TestClient(create_app(str(served), None, Settings(threshold=1.0))) as client:
        assert client.get("/v1/model").json()["report"] is None
        assert client.get("/report").status_code == 404
        (served / "report.html").write_text("<!doctype html><title>r</title>")
        assert client.get("/v1/model").json()["report"] == "/report"
        answer = client.get("/report")
        assert answer.status_code == 200 and answer.text.startswith("<!doctype html>")
        assert 'id="report-link"' in client.get("/").text


def test_the_report_renders_in_chromium(built, browser, shots):
    _, path, _, _ = built
    browser.get("file://" + os.path.abspath(path))
    for key in SECTIONS:
        assert browser.find_element("id", key).is_displayed()
    images = browser.find_elements("css selector", "main img")
    assert len(images) > 50
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
               for i in images)
    canvas = browser.find_element("id", "map-canvas")
    assert int(canvas.get_attribute("data-drawn")) == len(json.loads(
        browser.find_element("id", "map-data").get_attribute("textContent"))["x"])
    painted = browser.execute_script(
        "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] !== 255 || d[i + 1] !== 255) n++; return n;",
        canvas)
    assert painted > 500
    browser.execute_script("arguments[0].scrollIntoView()", canvas)
    from selenium.webdriver.common.action_chains import ActionChains

    data = json.loads(browser.find_element("id", "map-data").get_attribute("textContent"))
    size = canvas.size["width"]
    x, y = 12 + data["x"][0] * (size - 24), 12 + (1 - data["y"][0]) * (size - 24)
    ActionChains(browser).move_to_element_with_offset(canvas, x - size / 2, y - size / 2).perform()
    tip = browser.find_element("id", "map-tip")
    assert tip.is_displayed() and "sample" in tip.text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    browser.save_screenshot(str(shots / "report-map.png"))
    for key in ("card", "verification", "failures", "neighbours"):
        browser.execute_script("arguments[0].scrollIntoView()", browser.find_element("id", key))
        browser.save_screenshot(str(shots / f"report-{key}.png"))
