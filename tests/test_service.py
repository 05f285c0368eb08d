"""`siamkit serve`: the FastAPI app, through real HTTP (httpx) against uvicorn on a local port."""

import base64
import concurrent.futures
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from conftest import digit_pngs
from PIL import Image

from siamkit.cli import main
from siamkit.errors import ConfigError
from siamkit.evaluation.compare import compare_files
from siamkit.index import load
from siamkit.index.inputs import embed_files
from siamkit.service import Settings, SimilarityService, create_app

pytestmark = pytest.mark.slow  # uses the session-trained `trained_run`

KEY = "k" * 24
AUTH = {"X-API-Key": KEY}


def _file(path, name=None):
    return {"name": name or path.name, "data": base64.b64encode(path.read_bytes()).decode()}


@pytest.fixture(scope="module")
def served(trained_run, gallery_index, live_server, tmp_path_factory):
    """`(url, paths, index_dir)`: the app over a writable copy of the gallery index, threshold 1.0, 64 KiB bodies."""
    source, paths = gallery_index
    index_dir = tmp_path_factory.mktemp("served") / "ix"
    shutil.copytree(source, index_dir)
    settings = Settings(threshold=1.0, max_upload_mb=1 / 16, api_key=KEY, max_wait_ms=1)
    return live_server(create_app(trained_run, index_dir, settings)), paths, index_dir


def _id_of(index_dir, path):
    index = load(index_dir)
    return next(int(i) for i, m in zip(index.ids, index.metadata(index.ids)) if m.get("path") == str(path))


def _call(url, body=None, raw=None, method=None, **kwargs):
    if raw is not None:
        kwargs.update(content=raw, headers={"Content-Type": "application/json", **kwargs.get("headers", {})})
    elif body is not None:
        kwargs["json"] = body
    response = httpx.request(method or ("GET" if body is None and raw is None and "files" not in kwargs else "POST"),
                             url, timeout=60, **kwargs)
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else response.content


def test_the_model_card_describes_the_run_and_index(served):
    url, _, _ = served
    status, body = _call(url + "/v1/model")
    assert status == 200 and body["run"] == "digits"  # the folder's name, not its path
    assert body["index"]["size"] == 12 and body["threshold"] == {"value": 1.0, "source": "given"}
    assert body["backbone"] == "cnn" and body["towers"] == {"a": "image"} and len(body["fingerprint"]) == 64


def test_embed_answers_the_runs_embeddings(served, trained_run):
    url, paths, _ = served
    expected = embed_files(trained_run, [str(p) for p in paths[:3]])
    status, body = _call(url + "/v1/embed", {"files": [_file(p) for p in paths[:3]]})
    assert status == 200 and body["dim"] == 16
    np.testing.assert_allclose(body["embeddings"], expected, atol=1e-5)
    status, body = _call(url + "/v1/embed", files=[("files", (p.name, p.read_bytes())) for p in paths[:3]])
    assert status == 200
    np.testing.assert_allclose(body["embeddings"], expected, atol=1e-5)


def test_compare_matches_the_library(served, trained_run):
    url, paths, _ = served
    expected = compare_files(trained_run, str(paths[0]), str(paths[5]), threshold=1.0)
    status, body = _call(url + "/v1/compare", {"a": _file(paths[0]), "b": _file(paths[5])})
    assert status == 200 and body["same"] == expected["same"] and body["threshold_source"] == "given"
    assert body["distance"] == pytest.approx(expected["distance"], rel=1e-5)
    assert body["decision"] == ("same" if expected["same"] else "different")
    files = {"a": ("a.png", paths[0].read_bytes()), "b": ("b.png", paths[5].read_bytes())}
    status, multipart = _call(url + "/v1/compare", files=files)
    assert status == 200 and multipart["score"] == pytest.approx(body["score"], rel=1e-6)
    # an index item by id in place of the second file: its own file, never a path from the request
    status, by_id = _call(url + "/v1/compare", {"a": _file(paths[0]), "b_item": _id_of(served[2], paths[5])})
    assert status == 200 and by_id["score"] == pytest.approx(body["score"], rel=1e-6)
    status, answer = _call(url + "/v1/compare", {"a": _file(paths[0])})
    assert status == 400 and "as b, or an index item's id as b_item" in answer["error"]


def test_search_ranks_the_gallery_like_the_cli(served, capsys):
    url, paths, index_dir = served
    status, body = _call(url + "/v1/search", {"files": [_file(paths[4], "mine.png")], "k": 3})
    assert status == 200 and body["queries"][0]["query"] == "mine.png"
    results = body["queries"][0]["results"]
    assert results[0]["id"] == _id_of(index_dir, paths[4]) and results[0]["distance"] == pytest.approx(0.0, abs=1e-5)
    assert results[0]["label"] == "4" and results[0]["thumbnail"] == f"/v1/index/items/{results[0]['id']}/thumbnail"
    assert all("path" not in r for r in results)  # no server path in any answer
    assert main(["search", str(index_dir), str(paths[4]), "-k", "3", "--json", "--threshold", "1.0", "--quiet"]) == 0
    cli = json.loads(capsys.readouterr().out)["queries"][0]["results"]
    assert [r["id"] for r in results] == [r["id"] for r in cli] and [r["match"] for r in results] == [
        r["match"] for r in cli
    ]
    status, multipart = _call(url + "/v1/search", files=[("files", ("q.png", paths[4].read_bytes()))], data={"k": 3})
    assert status == 200 and [r["id"] for r in multipart["queries"][0]["results"]] == [r["id"] for r in results]


def test_search_takes_a_metadata_filter_as_json_or_a_form_field(served):
    url, paths, _ = served
    query = [_file(paths[4], "q.png")]
    status, body = _call(url + "/v1/search", {"files": query, "k": 5, "filter": {"label": "7"}})
    assert status == 200 and body["queries"][0]["results"]
    assert {r["label"] for r in body["queries"][0]["results"]} == {"7"}
    status, form = _call(url + "/v1/search", files=[("files", ("q.png", paths[4].read_bytes()))],
                         data={"k": 5, "filter": json.dumps({"label": "7"})})
    assert status == 200 and [r["id"] for r in form["queries"][0]["results"]] == [
        r["id"] for r in body["queries"][0]["results"]]
    status, answer = _call(url + "/v1/search", {"files": query, "filter": {"colour": "red"}})
    assert status == 400 and "metadata field 'colour'" in answer["error"]


def test_a_thumbnail_is_a_small_png_by_id(served):
    url, _, _ = served
    status, data = _call(url + "/v1/index/items/3/thumbnail")
    image = Image.open(io.BytesIO(data))
    assert status == 200 and image.format == "PNG" and max(image.size) == 160
    assert _call(url + "/v1/index/items/999/thumbnail")[0] == 404
    assert _call(url + "/v1/index/items/..%2F..%2Fetc%2Fpasswd/thumbnail")[0] in (400, 404)  # ids only, never paths


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/nowhere", {}, 404, "this service answers DELETE /v1/index/items/{item_id}, GET /health/live"),
        ("/v1/embed", {}, 400, "lacks 'files'"),
        ("/v1/embed", {"files": []}, 400, "non-empty list"),
        ("/v1/embed", {"files": [{"name": "a.png", "data": "not base64!"}]}, 400,
         "'a.png'): data is not valid base64"),
        ("/v1/embed", {"files": [{"name": "a.gif2", "data": ""}]}, 400, "unsupported file type"),
        ("/v1/embed", {"files": [{"name": "broken.png", "data": base64.b64encode(b"no png").decode()}]}, 400,
         "broken.png"),
        ("/v1/search", {"files": [{"name": "a.png", "data": ""}], "k": 0}, 400, "k must be a positive integer"),
        ("/v1/compare", {"a": "x.png"}, 400, "must be an object"),
    ],
)
def test_bad_requests_get_a_clear_error(served, path, body, status, message):
    url, _, _ = served
    got, answer = _call(url + path, body)
    assert got == status and message in answer["error"], answer
    assert answer["request_id"]


def test_non_json_and_oversized_bodies_are_refused(served):
    url, _, _ = served
    assert _call(url + "/v1/embed", raw=b"{not json")[0] == 400
    assert _call(url + "/v1/embed", raw=b"[" * 20_000)[0] == 400  # nesting deeper than the parser's recursion
    # far past the limit and the socket buffers: the client still gets the answer, not a broken pipe
    status, answer = _call(url + "/v1/embed", raw=b" " * (4 * 2**20))
    assert status == 413 and "limit is 65536" in answer["error"]
    # without a Content-Length (chunked), the limit holds while reading
    status, answer = _call(url + "/v1/embed", raw=iter([b" " * 2**15] * 8))
    assert status == 413 and "over the limit of 65536" in answer["error"]
    status, answer = _call(url + "/v1/embed", content=b"x", headers={"Content-Type": "text/plain"}, method="POST")
    assert status == 415 and "multipart/form-data or application/json" in answer["error"]


def test_a_negative_content_length_is_refused(served):
    import http.client

    host, port = served[0].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/embed")
    connection.putheader("Content-Length", "-1")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400  # refused by the HTTP layer, before the app
    connection.close()


def test_k_beyond_the_index_is_capped_not_allocated(served):
    url, paths, _ = served
    status, body = _call(url + "/v1/search", {"files": [_file(paths[0])], "k": 2**70})
    assert status == 200 and len(body["queries"][0]["results"]) == 12


def test_files_are_typed_by_content_and_limited(trained_run, gallery_index, live_server, tmp_path):
    _, paths = gallery_index
    url = live_server(create_app(trained_run, settings=Settings(threshold=1.0, max_files=2, max_pixels=10_000)))
    png = paths[0].read_bytes()
    status, body = _call(url + "/v1/embed", files=[("files", ("photo.jpg", png))])  # the name lies; bytes decide
    assert status == 200 and body["dim"] == 16
    status, body = _call(url + "/v1/embed", files=[("files", (f"{i}.png", png)) for i in range(3)])
    assert status == 413 and "send at most 2" in body["error"]
    big = io.BytesIO()
    Image.new("L", (200, 100)).save(big, "PNG")
    status, body = _call(url + "/v1/embed", files=[("files", ("big.png", big.getvalue()))])
    assert status == 413 and "'big.png': 200x100 = 20,000 pixels is over the limit of 10,000" in body["error"]
    status, body = _call(url + "/v1/compare", files={"a": ("a.png", png), "b": ("notes.png", b"hello, world")})
    assert status == 400 and "'notes.png': unsupported file type" in body["error"]


def test_k_is_capped_by_max_k(trained_run, gallery_index, live_server):
    index_dir, paths = gallery_index
    url = live_server(create_app(trained_run, load(index_dir), Settings(max_k=5)))
    status, body = _call(url + "/v1/search", {"files": [_file(paths[0])], "k": 50})
    assert status == 200 and body["k"] == 5 and len(body["queries"][0]["results"]) == 5
    assert "score" not in body["queries"][0]["results"][0] or body["queries"][0]["results"][0]["score"] is not None


def test_health_answers_while_the_model_is_busy(trained_run, live_server):
    app = create_app(trained_run)
    url = live_server(app)
    with app.state.service._lock:  # as during a long embedding
        assert _call(url + "/health/live") == (200, {"status": "ok"})
        status, body = _call(url + "/health/ready")
        assert status == 200 and body == {"status": "ready", "model": True, "index": None}
        status, body = _call(url + "/v1/model")
    assert status == 200 and body["run"] == "digits" and body["index"] is None


def test_search_without_an_index_says_how_to_start_one(trained_run):
    service = SimilarityService(trained_run)
    with pytest.raises(ConfigError, match="--index INDEX_DIR"):
        service.search({"files": [], "k": 1})


def test_cli_refuses_a_bad_port(trained_run, capsys):
    assert main(["serve", trained_run.path, "--port", "70000"]) == 2
    assert "--port must be in 0..65535" in capsys.readouterr().err


def test_the_decision_is_made_once_at_start_up(trained_run, tmp_path, live_server):
    from siamkit.errors import DataError
    from siamkit.evaluation.calibration import calibrate, write_calibration
    from siamkit.runs import Run

    run_dir = tmp_path / "digits"
    shutil.copytree(trained_run.path, run_dir, ignore=shutil.ignore_patterns("calibration.json"))
    paths = digit_pngs(tmp_path / "files", 2)
    body = {"a": _file(paths[0]), "b": _file(paths[1])}
    uncalibrated = SimilarityService(Run(run_dir))
    assert uncalibrated.model_card()["threshold"] is None
    with pytest.raises(DataError, match="siamkit evaluate"):
        uncalibrated.compare(body)
    status, answer = _call(live_server(create_app(Run(run_dir))) + "/v1/compare", body)
    assert status == 400 and "siamkit evaluate digits" in answer["error"] and str(tmp_path) not in answer["error"]
    write_calibration(run_dir, calibrate([1, 0], [0.5, 2.0], higher_is_similar=False))
    calibrated = SimilarityService(Run(run_dir))
    (run_dir / "calibration.json").unlink()  # read at start-up, not per request
    assert calibrated.compare(body)["threshold_source"] == "calibration.json (accuracy)"


# -- auth ---------------------------------------------------------------------


def test_writes_need_the_key_and_reads_need_it_when_protected(trained_run, gallery_index, live_server, tmp_path):
    index_dir, paths = gallery_index
    copy = tmp_path / "ix"
    shutil.copytree(index_dir, copy)
    png = paths[0].read_bytes()
    add = {"files": [("files", ("new.png", png))]}

    open_url = live_server(create_app(trained_run, copy, Settings(threshold=1.0)))
    status, body = _call(open_url + "/v1/index/items", headers=AUTH, **add)
    assert status == 403 and "--api-key-file" in body["error"]  # no key configured: writes are off

    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    url = live_server(create_app(trained_run, copy, Settings(threshold=1.0, api_key_file=str(key_file),
                                                             protect_reads=True)))
    assert _call(url + "/v1/index/items", **add)[0] == 401
    assert _call(url + "/v1/index/items", headers={"X-API-Key": KEY[:-1] + "x"}, **add)[0] == 401
    assert _call(url + "/v1/index/items", headers={"Authorization": f"Bearer {KEY}"}, **add)[0] == 201
    assert _call(url + "/v1/model")[0] == 401 and _call(url + "/v1/model", headers=AUTH)[0] == 200
    for open_path in ("/health/live", "/health/ready", "/metrics", "/"):
        assert _call(url + open_path)[0] == 200, open_path

    with pytest.raises(ConfigError, match="needs an API key"):
        create_app(trained_run, settings=Settings(protect_reads=True))
    with pytest.raises(ConfigError, match="at least 16 characters"):
        create_app(trained_run, settings=Settings(api_key="short"))


def test_cors_is_off_unless_origins_are_listed(trained_run, live_server):
    preflight = {"Origin": "http://example.org", "Access-Control-Request-Method": "POST"}
    closed = live_server(create_app(trained_run))
    assert "access-control-allow-origin" not in httpx.options(closed + "/v1/compare", headers=preflight).headers
    opened = live_server(create_app(trained_run, settings=Settings(cors_origins=["http://example.org"])))
    answer = httpx.options(opened + "/v1/compare", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "http://example.org"


# -- index writes -------------------------------------------------------------


def test_items_added_and_removed_are_searched_and_saved(served):
    url, paths, index_dir = served
    files = [("files", ("seven.png", paths[7].read_bytes())), ("files", ("one.png", paths[1].read_bytes()))]
    data = {"labels": ["seven", "one"], "metadata": [json.dumps({"sku": "A-7"}), json.dumps({"sku": "A-1"})]}
    status, body = _call(url + "/v1/index/items", files=files, data=data, headers=AUTH)
    assert status == 201 and body == {"ids": [12, 13], "index_size": 14}
    on_disk = load(index_dir)
    assert len(on_disk) == 14 and on_disk.metadata([12])[0]["label"] == "seven"

    status, found = _call(url + "/v1/search", {"files": [_file(paths[7])], "k": 2})
    results = found["queries"][0]["results"]
    assert {r["id"] for r in results} == {_id_of(index_dir, paths[7]), 12}
    assert any(r.get("sku") == "A-7" for r in results)
    assert _call(url + "/v1/index/items/12/thumbnail")[0] == 200

    status, body = _call(url + "/v1/index/items", {"items": [{"file": _file(paths[2]), "label": "two"}]},
                         headers=AUTH)
    assert status == 201 and body["ids"] == [14]

    for item in (12, 13, 14):
        assert _call(url + f"/v1/index/items/{item}", method="DELETE", headers=AUTH)[0] == 200
    assert len(load(index_dir)) == 12 and _call(url + "/v1/index/items/12/thumbnail")[0] == 404
    assert not os.listdir(index_dir / "uploads")  # the kept files go with their items
    status, body = _call(url + "/v1/index/items/12", method="DELETE", headers=AUTH)
    assert status == 404 and "no item 12" in body["error"]


def _serve(*args):
    """`siamkit serve ARGS` in a subprocess on a free port: `(process, base URL)` once it listens."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, "-m", "siamkit.cli", "serve", *args, "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in server.stdout:  # uvicorn's log names the port it bound
        if "Uvicorn running on" in line:
            threading.Thread(target=server.stdout.read, daemon=True).start()  # the log must not fill the pipe
            return server, f"http://127.0.0.1:{int(line.rsplit(':', 1)[1].split()[0])}"
    server.kill()
    raise AssertionError("the server did not start")


def test_the_cli_serves_with_several_workers(trained_run, gallery_index):
    index_dir, paths = gallery_index
    server, url = _serve(trained_run.path, "--index", str(index_dir), "--workers", "2", "--threshold", "1.0")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # the workers load the model after the port opens
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health/ready", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        files = {"a": ("a.png", paths[0].read_bytes()), "b": ("b.png", paths[5].read_bytes())}
        answers = [httpx.post(url + "/v1/compare", files=files, timeout=60) for _ in range(4)]
        assert [a.status_code for a in answers] == [200] * 4 and answers[0].json()["threshold_source"] == "given"
        assert httpx.get(url + "/v1/model").json()["index"]["size"] == 12
    finally:
        server.terminate()
        server.wait(60)


def test_a_server_killed_mid_write_leaves_the_old_or_the_new_index(trained_run, tmp_path):
    import random

    index_dir = tmp_path / "ix"
    gallery = digit_pngs(tmp_path / "gallery", 300)
    assert main(["index", "build", trained_run.path, "--data", str(tmp_path / "gallery"), "--out", str(index_dir),
                 "--quiet"]) == 0
    (tmp_path / "key").write_text(KEY)
    server, base = _serve(trained_run.path, "--index", str(index_dir), "--api-key-file", str(tmp_path / "key"))
    try:
        url = base + "/v1/index/items"
        files = [("files", (p.name, p.read_bytes())) for p in gallery[:20]]

        def add_forever():
            with httpx.Client(timeout=30) as client:
                while True:
                    try:
                        client.post(url, files=files, headers=AUTH)
                    except httpx.HTTPError:
                        return

        writers = [threading.Thread(target=add_forever, daemon=True) for _ in range(3)]
        for writer in writers:
            writer.start()
        time.sleep(2 + random.random())
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        for writer in writers:
            writer.join(30)
    finally:
        server.kill()
    index = load(index_dir)  # checksums verified: not broken
    assert len(index) >= 300 and (len(index) - 300) % 20 == 0


# -- batching, queue, timeout -------------------------------------------------


def test_concurrent_requests_land_in_one_model_call(trained_run, gallery_index, live_server, monkeypatch):
    _, paths = gallery_index
    app = create_app(trained_run, settings=Settings(max_batch=64, max_wait_ms=400))
    url = live_server(app)
    calls, embed = [], trained_run.embed
    monkeypatch.setattr(trained_run, "embed", lambda x, *a, **k: calls.append(len(x)) or embed(x, *a, **k))
    service, arrived = app.state.service, threading.Barrier(8, timeout=30)
    read = service._read

    def read_together(*args, **kwargs):  # all eight requests are on their way before any submits
        arrived.wait()
        return read(*args, **kwargs)

    monkeypatch.setattr(service, "_read", read_together)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: _call(url + "/v1/embed", {"files": [_file(p)]}), paths[:8]))
    assert all(status == 200 for status, _ in answers)
    assert calls == [8], calls
    for (_, body), path in zip(answers, paths[:8]):  # each request got its own rows back
        np.testing.assert_allclose(body["embeddings"], embed_files(trained_run, [str(path)]), atol=1e-5)
    metrics = httpx.get(url + "/metrics").text
    assert 'siamkit_batch_rows_bucket{le="8.0"} 1.0' in metrics and "siamkit_queue_depth 0.0" in metrics
    assert 'siamkit_requests_total{method="POST",route="/v1/embed",status="200"} 8.0' in metrics
    assert 'siamkit_request_seconds_count{method="POST",route="/v1/embed"} 8.0' in metrics


def test_a_lone_request_does_not_wait_for_a_batch():
    from siamkit.service import Batcher

    calls = []
    batcher = Batcher(lambda x, m: calls.append(len(x)) or x[:, :2], max_batch=32, max_wait_ms=2000)
    try:
        start = time.monotonic()
        with batcher.expecting():
            future = batcher.submit(np.ones((3, 4)))
        np.testing.assert_array_equal(future.result(timeout=5), np.ones((3, 2)))
        assert time.monotonic() - start < 1 and calls == [3]  # nobody else on the way: no 2 s wait
        with batcher.expecting():  # announced requests are waited for, and share the call
            first = batcher.submit(np.zeros((1, 4)))
            time.sleep(0.2)
            second = batcher.submit(np.zeros((2, 4)))
        assert first.result(5).shape == (1, 2) and second.result(5).shape == (2, 2) and calls == [3, 3]
    finally:
        batcher.close()


def test_a_full_queue_answers_503_and_a_slow_model_504(trained_run, gallery_index, live_server, monkeypatch):
    _, paths = gallery_index
    settings = Settings(max_batch=1, max_wait_ms=0, queue_size=1, timeout_s=1.5)
    url = live_server(create_app(trained_run, settings=settings))
    embed = trained_run.embed
    monkeypatch.setattr(trained_run, "embed", lambda *a, **k: time.sleep(1.0) or embed(*a, **k))
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: httpx.post(url + "/v1/embed", json={"files": [_file(paths[0])]},
                                                     timeout=30), range(6)))
    assert time.monotonic() - start < 10  # nothing hangs
    busy = [a for a in answers if a.status_code == 503]
    assert busy and all(a.headers["Retry-After"] == "1" and "busy" in a.json()["error"] for a in busy)
    assert {a.status_code for a in answers} <= {200, 503, 504}
    slow = [a for a in answers if a.status_code == 504]
    assert all("did not answer within 1.5 s" in a.json()["error"] for a in slow)


# -- errors, documentation, page ----------------------------------------------


def test_a_server_error_says_nothing_of_the_internals(trained_run, live_server, caplog, monkeypatch):
    app = create_app(trained_run)
    url = live_server(app)

    def broken():
        raise RuntimeError(f"a bug near {trained_run.path}")

    monkeypatch.setattr(app.state.service, "model_card", broken)
    with caplog.at_level("ERROR", logger="siamkit.service"):
        response = httpx.get(url + "/v1/model", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500 and response.json() == {
        "error": "internal error; quote request id req-42 to the service's operator", "request_id": "req-42"}
    assert response.headers["x-request-id"] == "req-42" and "req-42" in caplog.text
    assert "RuntimeError" in caplog.text


def test_openapi_writes_out_the_schemas(served):
    url, _, _ = served
    schema = httpx.get(url + "/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"CompareRequest", "CompareResponse", "SearchResponse", "SearchResult", "ModelCard", "FileB64"} <= set(
        components)
    body = schema["paths"]["/v1/compare"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert "same" in components["CompareResponse"]["properties"]
    assert httpx.get(url + "/docs").status_code == 200


def test_the_page_and_its_files_are_served_with_nothing_from_elsewhere(served):
    url, _, _ = served
    page = httpx.get(url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("app.js", "style.css"):
        text = httpx.get(f"{url}/static/{name}").text
        assert "http://" not in text and "https://" not in text, name
    assert "http://" not in page.text and "https://" not in page.text
