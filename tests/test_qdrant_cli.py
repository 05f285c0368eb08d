"""`siamkit index build --backend qdrant`, `search --filter`, index add/remove and the service, on a Qdrant collection."""

import json

import numpy as np
import pytest
from conftest import digit_pngs

from siamkit.cli import main
from siamkit.index import open_index

pytest.importorskip("qdrant_client", reason="the Qdrant backend needs qdrant-client (siamkit[qdrant])")
pytestmark = pytest.mark.slow  # every test uses the session-trained `trained_run`


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    paths = digit_pngs(tmp_path_factory.mktemp("digits"), n=30)
    return paths[0].parent.parent, paths


def test_build_search_filter_add_remove_on_qdrant_match_the_folder_index(trained_run, pngs, tmp_path, cli):
    folder, paths = pngs
    uri = f"qdrant+local://{tmp_path / 'q'}"
    code, out, err = cli("index", "build", trained_run.path, "--data", folder, "--out", uri, "--quiet")
    assert code == 0 and "indexed 30 items (qdrant" in out, err
    assert cli("index", "build", trained_run.path, "--data", folder, "--out", tmp_path / "ix", "--quiet")[0] == 0
    query = str(paths[3])
    label = paths[3].parent.name
    got = {}
    for where in (uri, tmp_path / "ix"):
        code, out, err = cli("search", where, query, "-k", 4, "--filter", f"label={label}", "--json", "--quiet")
        assert code == 0, err
        got[str(where)] = json.loads(out)["queries"][0]["results"]
    on_qdrant, on_folder = got.values()
    assert all(r["label"] == label for r in on_qdrant) and on_qdrant[0]["path"] == query
    # The same items and distances; Qdrant's ids are its own (random), so compare by path.
    assert [r["path"] for r in on_qdrant] == [r["path"] for r in on_folder]
    np.testing.assert_allclose([r["distance"] for r in on_qdrant], [r["distance"] for r in on_folder], atol=1e-5)

    code, out, err = cli("search", uri, query, "--filter", "colour=red", "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and "metadata field 'colour'" in err
    # A second build into the same collection is refused before any embedding, and changes nothing.
    code, _, err = cli("index", "build", trained_run.path, "--data", folder, "--out", uri, "--quiet")
    assert code == 2 and "already holds a collection" in err

    top = on_qdrant[0]["id"]
    assert cli("index", "remove", uri, "--ids", top)[0] == 0
    code, out, _ = cli("search", uri, query, "-k", 1, "--json", "--quiet")
    assert json.loads(out)["queries"][0]["results"][0]["id"] != top
    code, out, _ = cli("index", "add", uri, "--data", paths[3], "--quiet")
    assert code == 0 and "the index holds 30" in out


def test_qdrant_build_errors_leave_nothing(trained_run, pngs, tmp_path, cli):
    folder, _ = pngs
    code, _, err = cli("index", "build", trained_run.path, "--data", folder, "--out", tmp_path / "ix",
                       "--backend", "qdrant", "--quiet")
    assert code == 2 and "needs a Qdrant URI" in err and not (tmp_path / "ix").exists()
    code, _, err = cli("index", "build", trained_run.path, "--data", tmp_path / "missing", "--out",
                       f"qdrant+local://{tmp_path / 'q'}", "--quiet")
    assert code == 2
    with pytest.raises(Exception, match="no collection 'siamkit'"):
        open_index(f"qdrant+local://{tmp_path / 'q'}")
    code, _, err = cli("search", "qdrant://127.0.0.1:1", str(folder), "--quiet")
    assert code == 2 and "cannot reach Qdrant at 127.0.0.1:1" in err and err.count("\n") == 1


def test_the_service_adds_searches_with_a_filter_and_removes_on_qdrant(trained_run, pngs, tmp_path):
    from siamkit.service.core import SimilarityService, Upload

    folder, paths = pngs
    uri = f"qdrant+local://{tmp_path / 'q'}"
    assert main(["index", "build", trained_run.path, "--data", str(folder), "--out", uri, "--quiet"]) == 0
    index = open_index(uri)
    service = SimilarityService(trained_run, index, index_dir=uri)
    upload = Upload("new.png", paths[5].read_bytes())
    added = service.add_uploads([upload], labels=["new"], metadata=[{"shelf": 4}])
    assert added["index_size"] == 31
    new_id = added["ids"][0]
    found = service.search_uploads([upload], k=3, filter={"shelf": 4})
    assert [r["id"] for r in found["queries"][0]["results"]] == [new_id]
    assert found["queries"][0]["results"][0]["thumbnail"] is None  # a shared Qdrant keeps no server files
    assert service.model_card()["index"]["backend"] == "qdrant"
    assert service.remove_item(new_id) == {"id": new_id, "index_size": 30}
    assert not index.contains([new_id])[0]
    index.close()
