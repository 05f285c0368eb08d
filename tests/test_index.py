"""siamkit.index: every backend against brute force, the file format, edge cases."""

import json
import os

import numpy as np
import pytest
from conftest import brute_force_distances, brute_force_knn, clustered
from scipy.spatial.distance import cdist

from siamkit.errors import ConfigError, DataError
from siamkit.index import BACKENDS, Index, files, store
from siamkit.index.dedupe import duplicate_groups
from siamkit.neighbors import DISTANCES

faiss = pytest.importorskip("faiss")
pytest.importorskip("hnswlib")
# Tests index small arrays: OpenMP threads only contend with each other on a shared machine.
faiss.omp_set_num_threads(1)

APPROXIMATE = {"faiss-hnsw": 0.95, "hnswlib": 0.95, "faiss-ivfpq": 0.85}
SUPPORTED = [(b, m) for b, cls in sorted(BACKENDS.items()) for m in DISTANCES if m in cls.distances]


def recall(found, expected):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, expected)])


def options(backend):
    # Small data gives small PQ codebooks: visit more lists and re-rank more candidates.
    return {"nprobe": 8, "rerank": 10} if backend == "faiss-ivfpq" else None


@pytest.mark.parametrize("backend,metric", SUPPORTED)
def test_backend_agrees_with_brute_force(backend, metric):
    gallery, queries = clustered(2000), clustered(50, seed=1)
    index = Index(16, metric, backend, options(backend))
    index.add(gallery)
    found = index.search(queries, k=10)
    ids, dist = brute_force_knn(queries, gallery, 10, metric)
    if backend in APPROXIMATE:
        assert recall(found.ids, ids) >= APPROXIMATE[backend]
    else:
        np.testing.assert_array_equal(found.ids, ids)
    # Whatever the backend, reported distances are exact for the ids it returns.
    d = brute_force_distances(queries, gallery, metric)
    np.testing.assert_allclose(found.distances, np.take_along_axis(d, found.ids, 1), rtol=1e-5, atol=1e-5)
    assert found.distances.dtype == np.float32 and found.ids.dtype == np.int64
    step = np.diff(found.distances, axis=1)
    assert (step <= 1e-6).all() if metric == "dot" else (step >= -1e-6).all()


def test_ties_go_to_the_earlier_item_and_short_results_are_padded():
    index = Index(2)
    index.add(np.array([[1, 0], [0, 1], [1, 0], [5, 5]], "float32"), ids=[10, 4, 7, 2])
    found = index.search(np.array([[0, 0], [1, 0]], "float32"), k=6)
    assert found.ids.tolist() == [[10, 4, 7, 2, -1, -1], [10, 7, 4, 2, -1, -1]]
    assert np.isinf(found.distances[:, 4:]).all()
    np.testing.assert_allclose(found.distances[1, :3], [0, 0, np.sqrt(2)], atol=1e-6)


def test_many_ties_in_one_chunk_go_to_the_earliest_items():
    x = clustered(300, dim=4)
    x[50:150] = x[0] + 10
    index = Index(4)
    index.add(x[::-1].copy(), ids=np.arange(300)[::-1])  # ids added in decreasing order
    found = index.search(x[:1] + 10, k=5)
    assert found.ids.tolist() == [[149, 148, 147, 146, 145]]  # the first five added


def test_dot_ranks_by_highest_similarity():
    index = Index(2, distance="dot")
    index.add(np.array([[1, 0], [3, 0], [-1, 0]], "float32"))
    found = index.search(np.array([[1, 0]], "float32"), k=4)
    assert found.ids.tolist() == [[1, 0, 2, -1]]
    assert found.distances.tolist() == [[3.0, 1.0, -1.0, -np.inf]]
    assert index.higher_is_similar


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_empty_index_finds_nothing_and_round_trips(tmp_path, backend):
    index = Index(4, "euclidean", backend)
    found = index.search(np.ones((2, 4), "float32"), k=3)
    assert found.ids.tolist() == [[-1] * 3] * 2 and np.isinf(found.distances).all()
    index.save(tmp_path / "ix")
    loaded = Index.load(tmp_path / "ix")
    assert len(loaded) == 0 and loaded.search(np.ones(4, "float32"), k=1).ids.tolist() == [[-1]]


def test_auto_ids_continue_and_bad_additions_are_refused():
    index = Index(3)
    assert index.add(np.zeros((2, 3))).tolist() == [0, 1]
    assert index.add(np.ones((1, 3)), ids=[10]).tolist() == [10]
    assert index.add(np.ones((2, 3))).tolist() == [11, 12]
    with pytest.raises(DataError, match="already in the index"):
        index.add(np.ones((1, 3)), ids=[10])
    with pytest.raises(DataError, match="unique"):
        index.add(np.ones((2, 3)), ids=[20, 20])
    with pytest.raises(DataError, match=r"shape \(n, 3\)"):
        index.add(np.ones((2, 4)))
    with pytest.raises(DataError, match="NaN"):
        index.add(np.full((1, 3), np.nan))
    with pytest.raises(DataError, match="non-negative"):
        index.add(np.ones((1, 3)), ids=[-5])
    with pytest.raises(DataError, match="metadata"):
        index.add(np.ones((2, 3)), metadata=[{"path": "a"}])
    with pytest.raises(DataError, match="key 'id' is reserved"):
        index.add(np.ones((1, 3)), metadata=[{"id": "sku-1"}])
    with pytest.raises(DataError, match=r"shape \(n, 3\)"):
        index.search(np.ones((1, 2)), k=1)
    with pytest.raises(ConfigError, match="k must be"):
        index.search(np.ones((1, 3)), k=0)
    assert len(index) == 5  # nothing half-added


def test_bad_backend_metric_and_options_are_config_errors():
    with pytest.raises(ConfigError, match="index backend"):
        Index(3, backend="annoy")
    with pytest.raises(ConfigError, match="distance"):
        Index(3, distance="hamming")
    with pytest.raises(ConfigError, match="distance for backend 'hnswlib'"):
        Index(3, distance="manhattan", backend="hnswlib")
    with pytest.raises(ConfigError, match="unknown option"):
        Index(3, backend="faiss-hnsw", options={"nprobe": 4})
    with pytest.raises(ConfigError, match="positive integer"):
        Index(3, backend="faiss-hnsw", options={"ef_search": 0})


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_remove_matches_an_index_built_without_those_items(backend):
    gallery, queries = clustered(1500), clustered(40, seed=1)
    index = Index(16, "euclidean", backend, options(backend))
    index.add(gallery, metadata=[{"label": str(i % 7)} for i in range(1500)])
    gone = np.arange(0, 1500, 3)
    index.remove(gone)
    kept = np.setdiff1d(np.arange(1500), gone)
    assert len(index) == len(kept) and index.ids.tolist() == kept.tolist()
    ids, _ = brute_force_knn(queries, gallery[kept], 10, "euclidean")
    found = index.search(queries, k=10)
    assert not np.isin(found.ids, gone).any()
    if backend in APPROXIMATE:
        assert recall(found.ids, kept[ids]) >= APPROXIMATE[backend]
    else:
        np.testing.assert_array_equal(found.ids, kept[ids])
    assert index.metadata([1, 0]) == [{"label": "1"}, {}]
    with pytest.raises(DataError, match=r"not in the index: \[0\]"):
        index.remove([0, 1])
    assert len(index) == len(kept)  # the failed removal removed nothing
    # Removed ids may be added again.
    index.add(gallery[:1], ids=[0])
    assert index.search(gallery[:1], k=1).ids.tolist() == [[0]]


def test_remove_compacts_blocks_in_place(monkeypatch):
    monkeypatch.setattr(store, "BLOCK_ROWS", 8)
    x = clustered(50, dim=3)
    index = Index(3)
    index.add(x)
    index.remove(np.r_[0:5, 9:30, 44])
    kept = np.setdiff1d(np.arange(50), np.r_[0:5, 9:30, 44])
    assert len(index.store._vectors) == 3  # 23 rows in blocks of 8
    np.testing.assert_array_equal(index.embeddings(kept), x[kept])
    np.testing.assert_array_equal(index.search(x, k=1).ids[kept, 0], kept)


@pytest.mark.parametrize("backend,metric", [(b, "cosine") for b in sorted(BACKENDS)] + [("exact", "manhattan")])
def test_save_load_round_trip(tmp_path, backend, metric):
    gallery, queries = clustered(1200), clustered(30, seed=1)
    index = Index(16, metric, backend, options(backend), fingerprint="f" * 64, info={"run": "/runs/x"})
    index.add(gallery[:1000], metadata=[{"path": f"img{i}.png", "label": i % 3} for i in range(1000)])
    before = index.search(queries, k=5)
    index.save(tmp_path / "ix")
    loaded = Index.load(tmp_path / "ix")
    after = loaded.search(queries, k=5)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_array_equal(after.distances, before.distances)
    assert (loaded.distance, loaded.fingerprint, loaded.info, loaded.backend.name) == (
        metric,
        "f" * 64,
        {"run": "/runs/x"},
        backend,
    )
    assert loaded.backend.options == index.backend.options
    assert loaded.metadata([7]) == [{"path": "img7.png", "label": 1}]
    # A loaded index keeps growing (IVF-PQ reuses its trained quantiser).
    new = loaded.add(gallery[1000:])
    assert new.tolist() == list(range(1000, 1200))
    assert np.mean([i in row for i, row in zip(new, loaded.search(gallery[1000:], k=10).ids)]) >= 0.9


def test_saving_again_replaces_the_generation(tmp_path):
    index = Index(4, backend="faiss-flat")
    index.add(np.eye(4))
    index.save(tmp_path)
    index.add(np.ones((1, 4)))
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["generation"] == 2 and manifest["version"] == files.VERSION
    assert sorted(os.listdir(tmp_path)) == sorted(["manifest.json"] + [r["name"] for r in manifest["files"].values()])
    assert len(Index.load(tmp_path)) == 5


def test_a_failed_save_leaves_the_previous_index_intact(tmp_path, monkeypatch):
    index = Index(4, backend="faiss-flat")
    index.add(np.eye(4))
    index.save(tmp_path)
    index.add(np.ones((3, 4)))

    def crash(path):
        raise OSError("disk full")

    monkeypatch.setattr(index.backend, "save", crash)
    with pytest.raises(OSError):
        index.save(tmp_path)
    assert len(Index.load(tmp_path)) == 4


def _saved(tmp_path, backend="faiss-hnsw"):
    index = Index(16, "euclidean", backend, fingerprint="a" * 64)
    index.add(clustered(300), metadata=[{"label": "x"}] * 300)
    index.save(tmp_path)
    return json.loads((tmp_path / "manifest.json").read_text())["files"]


@pytest.mark.parametrize("key", ["embeddings", "ids", "metadata", "backend"])
def test_corrupt_files_raise_data_error(tmp_path, key):
    path = tmp_path / _saved(tmp_path)[key]["name"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checksum"):
        Index.load(tmp_path)


@pytest.mark.parametrize("key", ["embeddings", "ids", "backend"])
def test_truncated_or_missing_files_raise_data_error(tmp_path, key):
    path = tmp_path / _saved(tmp_path)[key]["name"]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        Index.load(tmp_path)
    path.unlink()
    with pytest.raises(DataError, match="missing"):
        Index.load(tmp_path)


def test_bad_manifests_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not a siamkit index"):
        Index.load(tmp_path)
    _saved(tmp_path, "exact")
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "version": files.VERSION + 1}))
    with pytest.raises(DataError, match="newer"):
        Index.load(tmp_path)
    manifest_path.write_text(json.dumps({**manifest, "files": {**manifest["files"], "ids": {"name": "../x.npy"}}}))
    with pytest.raises(DataError, match="invalid data file"):
        Index.load(tmp_path)
    manifest_path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "dim"}))
    with pytest.raises(DataError, match="incomplete"):
        Index.load(tmp_path)
    manifest_path.write_text("{ not json")
    with pytest.raises(DataError, match="corrupt"):
        Index.load(tmp_path)


def test_an_index_saved_with_the_older_metric_key_still_loads(tmp_path):
    index = Index(3, "cosine")
    index.add(np.eye(3))
    index.save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["distance"] == "cosine"
    manifest["metric"] = manifest.pop("distance")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    loaded = Index.load(tmp_path)
    assert loaded.distance == "cosine" and loaded.search(np.eye(3), k=1).ids.ravel().tolist() == [0, 1, 2]


def test_pickled_arrays_are_never_loaded(tmp_path):
    # An object array with a matching checksum still fails: np.load never unpickles.
    files_ = _saved(tmp_path, "exact")
    path = tmp_path / files_["ids"]["name"]
    np.save(path, np.array([{"evil": 1}] * 300, dtype=object), allow_pickle=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"]["ids"].update(bytes=path.stat().st_size, sha256=files._sha256(path))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a valid array file"):
        Index.load(tmp_path)


def test_embeddings_from_another_model_are_refused():
    index = Index(3, fingerprint="a" * 64)
    index.add(np.eye(3), fingerprint="a" * 64)
    with pytest.raises(DataError, match="another model"):
        index.search(np.eye(3), k=1, fingerprint="b" * 64)
    with pytest.raises(DataError, match="another model"):
        index.add(np.eye(3), fingerprint="b" * 64)
    assert index.search(np.eye(3), k=1, fingerprint="a" * 64).ids.ravel().tolist() == [0, 1, 2]


def test_cosine_keeps_embeddings_as_given_and_handles_zero_vectors():
    index = Index(2, distance="cosine")
    index.add(np.array([[3, 4], [0, 0]], "float32"))
    np.testing.assert_array_equal(index.embeddings([1, 0]), [[0, 0], [3, 4]])
    found = index.search(np.array([[0, 0]], "float32"), k=2)
    np.testing.assert_allclose(found.distances, [[1, 1]])


def test_duplicate_groups_are_the_components_of_accepted_pairs():
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(0)
    z = clustered(200, dim=8)
    z[100:130] = z[rng.integers(0, 100, 30)] + 0.01 * rng.normal(size=(30, 8))  # near-copies, some chained
    close = cdist(z, z) < 0.1
    _, labels = connected_components(close, directed=False)
    want = [np.flatnonzero(labels == c) for c in np.unique(labels) if (labels == c).sum() > 1]
    groups = duplicate_groups(z, 199, lambda a, b: (None, np.linalg.norm(a - b, axis=1) < 0.1))
    assert sorted(g.tolist() for g in groups) == sorted(g.tolist() for g in want) and len(groups) > 10
    assert [len(g) for g in groups] == sorted((len(g) for g in groups), reverse=True)


@pytest.mark.parametrize("backend,bytes_per_dim,raw_recall", [("faiss-sq8", 1, 0.97), ("faiss-fp16", 2, 0.999)])
def test_compact_vectors_keep_recall_on_real_data_and_re_ranking_restores_it(backend, bytes_per_dim, raw_recall):
    from sklearn.datasets import load_digits

    x = load_digits().data.astype("float32")  # 1797 real 8x8 images as 64-d vectors
    gallery, queries = x[:1500], x[1500:]
    expected, _ = brute_force_knn(queries, gallery, 10, "euclidean")
    found = {}
    for rerank in (1, 4):
        index = Index(64, "euclidean", backend, {"rerank": rerank})
        index.add(gallery)
        found[rerank] = index.search(queries, k=10).ids
        codes = faiss.downcast_index(index.backend.index.index)
        assert codes.code_size == 64 * bytes_per_dim and codes.ntotal == 1500
    assert recall(found[1], expected) >= raw_recall  # the codes alone
    assert recall(found[4], expected) >= 0.995  # 4k candidates re-ranked on the float32 vectors
