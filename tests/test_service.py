"""`siamkit serve`: the JSON HTTP service, through real HTTP on a local port."""

import base64
import io
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from siamkit.cli import main
from siamkit.errors import ConfigError
from siamkit.evaluation.compare import compare_files
from siamkit.index import load
from siamkit.index.inputs import embed_files
from siamkit.service import SimilarityService, make_server

pytestmark = pytest.mark.slow  # uses the session-trained `trained_run`


def _digit_pngs(folder, n=12):
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(n):
        path = folder / str(digits.target[i]) / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(digits.images[i] / 16 * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


def _file(path, name=None):
    return {"name": name or path.name, "data": base64.b64encode(path.read_bytes()).decode()}


@pytest.fixture(scope="module")
def served(trained_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery")
    paths = _digit_pngs(folder)
    index_dir = tmp_path_factory.mktemp("index") / "ix"
    assert main(["index", "build", trained_run.path, "--data", str(folder), "--out", str(index_dir), "--quiet"]) == 0
    service = SimilarityService(trained_run, index=load(str(index_dir)), threshold=1.0)
    server = make_server(service, "127.0.0.1", 0, max_bytes=64 * 1024)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths, index_dir
    server.shutdown()
    server.server_close()


def _call(url, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health_describes_the_run_and_index(served, trained_run):
    url, _, _ = served
    status, body = _call(url + "/health")
    assert status == 200 and body["status"] == "ok" and body["run"] == "digits"  # the folder's name, not its path
    assert body["index_size"] == 12 and body["threshold"] == {"value": 1.0, "source": "given"}


def test_embed_answers_the_runs_embeddings(served, trained_run):
    url, paths, _ = served
    status, body = _call(url + "/embed", {"files": [_file(p) for p in paths[:3]]})
    assert status == 200 and body["dim"] == 16
    np.testing.assert_allclose(body["embeddings"], embed_files(trained_run, [str(p) for p in paths[:3]]), atol=1e-5)


def test_compare_matches_the_library(served, trained_run):
    url, paths, _ = served
    status, body = _call(url + "/compare", {"a": _file(paths[0]), "b": _file(paths[5])})
    expected = compare_files(trained_run, str(paths[0]), str(paths[5]), threshold=1.0)
    assert status == 200 and body["same"] == expected["same"] and body["threshold_source"] == "given"
    assert body["distance"] == pytest.approx(expected["distance"], rel=1e-5)


def test_search_ranks_the_gallery_like_the_cli(served, capsys):
    url, paths, index_dir = served
    status, body = _call(url + "/search", {"files": [_file(paths[4], "mine.png")], "k": 3})
    assert status == 200 and body["queries"][0]["query"] == "mine.png"
    results = body["queries"][0]["results"]
    assert results[0]["path"] == str(paths[4]) and results[0]["distance"] == pytest.approx(0.0, abs=1e-5)
    assert main(["search", str(index_dir), str(paths[4]), "-k", "3", "--json", "--threshold", "1.0", "--quiet"]) == 0
    cli = json.loads(capsys.readouterr().out)["queries"][0]["results"]
    assert [r["id"] for r in results] == [r["id"] for r in cli] and [r["match"] for r in results] == [
        r["match"] for r in cli
    ]


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/nowhere", {}, 404, "this service answers GET /health"),
        ("/embed", {}, 400, "lacks 'files'"),
        ("/embed", {"files": []}, 400, "non-empty list"),
        ("/embed", {"files": [{"name": "a.png", "data": "not base64!"}]}, 400, "'a.png'): data is not valid base64"),
        ("/embed", {"files": [{"name": "a.gif2", "data": ""}]}, 400, "unsupported file type"),
        ("/embed", {"files": [{"name": "broken.png", "data": base64.b64encode(b"no png").decode()}]}, 400,
         "broken.png"),
        ("/search", {"files": [{"name": "a.png", "data": ""}], "k": 0}, 400, "k must be a positive integer"),
        ("/compare", {"a": "x.png"}, 400, "must be an object"),
    ],
)
def test_bad_requests_get_a_clear_error(served, path, body, status, message):
    url, _, _ = served
    got, answer = _call(url + path, body)
    assert got == status and message in answer["error"], answer


def test_non_json_and_oversized_bodies_are_refused(served):
    url, _, _ = served
    assert _call(url + "/embed", raw=b"{not json")[0] == 400
    assert _call(url + "/embed", raw=b"[" * 20_000)[0] == 400  # nesting deeper than the parser's recursion
    # far past the limit and the socket buffers: the client still gets the answer, not a broken pipe
    status, answer = _call(url + "/embed", raw=b" " * (4 * 2**20))
    assert status == 413 and "limit is 65536" in answer["error"]


def test_a_negative_content_length_is_refused(served):
    import http.client

    host, port = served[0].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/embed")
    connection.putheader("Content-Length", "-1")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400 and "must not be negative" in json.loads(response.read())["error"]
    connection.close()


def test_k_beyond_the_index_is_capped_not_allocated(served):
    url, paths, _ = served
    status, body = _call(url + "/search", {"files": [_file(paths[0])], "k": 2**70})
    assert status == 200 and len(body["queries"][0]["results"]) == 12


def test_health_answers_while_the_model_is_busy(trained_run):
    service = SimilarityService(trained_run)
    server = make_server(service, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with service._lock:  # as during a long embedding
            status, body = _call(f"http://127.0.0.1:{server.server_address[1]}/health")
        assert status == 200 and body["run"] == "digits" and body["index_size"] is None
    finally:
        server.shutdown()
        server.server_close()


def test_search_without_an_index_says_how_to_start_one(trained_run):
    service = SimilarityService(trained_run)
    with pytest.raises(ConfigError, match="--index INDEX_DIR"):
        service.search({"files": [], "k": 1})


def test_cli_refuses_a_bad_port(trained_run, capsys):
    assert main(["serve", trained_run.path, "--port", "70000"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err


def test_the_decision_is_made_once_at_start_up(trained_run, tmp_path):
    import shutil

    from siamkit.errors import DataError
    from siamkit.evaluation.calibration import calibrate, write_calibration
    from siamkit.runs import Run

    run_dir = tmp_path / "digits"
    shutil.copytree(trained_run.path, run_dir, ignore=shutil.ignore_patterns("calibration.json"))
    paths = _digit_pngs(tmp_path / "files", 2)
    body = {"a": _file(paths[0]), "b": _file(paths[1])}
    uncalibrated = SimilarityService(Run(run_dir))
    assert uncalibrated.health()["threshold"] is None
    with pytest.raises(DataError, match="siamkit evaluate"):
        uncalibrated.compare(body)
    write_calibration(run_dir, calibrate([1, 0], [0.5, 2.0], higher_is_similar=False))
    calibrated = SimilarityService(Run(run_dir))
    (run_dir / "calibration.json").unlink()  # read at start-up, not per request
    assert calibrated.compare(body)["threshold_source"] == "calibration.json (accuracy)"
