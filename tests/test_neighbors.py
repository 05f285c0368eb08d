"""The one exact nearest-neighbor search (`siamkit.neighbors`) against brute force.

Retrieval metrics, one-shot scoring and the index's `exact` backend all use
it, so its tests are here; `conftest.brute_force_knn` is the oracle.
"""

import subprocess
import sys

import numpy as np
import pytest
from conftest import SCIPY_NAMES, brute_force_knn, clustered
from scipy.spatial.distance import cdist

from siamkit import distances, neighbors
from siamkit.errors import ConfigError, DataError
from siamkit.index import Index, store
from siamkit.index.backends import BACKENDS
from siamkit.neighbors import DISTANCES, knn, pairwise_costs


@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean", "manhattan", "dot"])
@pytest.mark.parametrize("chunk_size", [1, 7, None])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_knn_matches_brute_force_with_ties(distance, chunk_size, exclude_self):
    rng = np.random.default_rng(0)
    # Small integer coordinates: many exactly tied distances, also at the k-th place.
    r = rng.integers(-2, 3, size=(90, 3)).astype("float64")
    q = r if exclude_self else rng.integers(-2, 3, size=(40, 3)).astype("float64")
    idx, dist = knn(q, r, k=12, distance=distance, exclude_self=exclude_self, chunk_size=chunk_size)
    ref_idx, ref_dist = brute_force_knn(q, r, 12, distance, exclude_self)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-9)
    if exclude_self:
        assert not (idx == np.arange(len(q))[:, None]).any()


@pytest.mark.parametrize("distance", list(SCIPY_NAMES) + ["dot"])
def test_knn_float32_continuous(distance):
    rng = np.random.default_rng(1)
    r = rng.normal(size=(200, 16)).astype("float32")
    q = rng.normal(size=(30, 16)).astype("float32")
    idx, dist = knn(q, r, k=5, distance=distance, chunk_size=8)
    ref_idx, ref_dist = brute_force_knn(q.astype("float64"), r.astype("float64"), 5, distance)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)
    assert dist.dtype == np.float32


def test_knn_dot_is_sorted_by_descending_similarity():
    _, sims = knn(np.array([[1.0, 0.0]]), np.array([[0.5, 0], [3.0, 0], [-1.0, 0], [2.0, 0]]), k=4, distance="dot")
    np.testing.assert_array_equal(sims, [[3.0, 2.0, 0.5, -1.0]])


def test_knn_results_do_not_depend_on_chunk_size():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 8)).astype("float32")
    a = knn(x, x, 10, exclude_self=True, chunk_size=1)
    b = knn(x, x, 10, exclude_self=True, chunk_size=1000)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)  # BLAS rounds a 1-row product differently


def test_pairwise_costs_match_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
    for name, scipy_name in SCIPY_NAMES.items():
        np.testing.assert_allclose(pairwise_costs(a, b, name), cdist(a, b, scipy_name), atol=1e-9)


@pytest.mark.parametrize("distance", DISTANCES)
def test_paired_distances_match_the_keras_distances(distance):
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(7, 5)).astype("float32"), rng.normal(size=(7, 5)).astype("float32")
    keras_values = np.asarray(distances.get(distance).paired(a, b))
    np.testing.assert_allclose(neighbors.paired_distances(a, b, distance), keras_values, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="same shape"):
        neighbors.paired_distances(a, b[:3], distance)


def test_knn_rejects_bad_input():
    x = np.zeros((5, 2))
    with pytest.raises(ConfigError, match="k must be between 1 and 4"):
        knn(x, x, 5, exclude_self=True)
    with pytest.raises(ConfigError, match="k must be between"):
        knn(x, x, 0)
    with pytest.raises(DataError, match="NaN"):
        knn(np.array([[np.nan, 0.0]]), x, 1)
    with pytest.raises(DataError, match="dimension"):
        knn(np.zeros((2, 3)), x, 1)
    with pytest.raises(DataError, match="exclude_self"):
        knn(np.zeros((2, 2)), x, 1, exclude_self=True)
    with pytest.raises(ConfigError, match="distance"):
        knn(x, x, 1, distance="hamming")


@pytest.mark.parametrize("metric", DISTANCES)
def test_exact_over_many_blocks_chunks_and_query_blocks(monkeypatch, metric):
    # Tiny blocks and tiles force every merge path: many chunks, partial chunks, several query blocks.
    monkeypatch.setattr(store, "BLOCK_ROWS", 64)
    monkeypatch.setattr(neighbors, "TILE_ELEMENTS", 280)
    monkeypatch.setattr(neighbors, "MAX_QUERY_BLOCK", 7)
    monkeypatch.setattr(neighbors, "MIN_CHUNK", 30)
    monkeypatch.setattr(neighbors, "_CROWDED_ROWS", 4)
    monkeypatch.setattr(neighbors, "_RANK_ELEMENTS", 300)  # re-ranks 2 queries at a time
    gallery, queries = clustered(1000, dim=5, seed=2), clustered(30, dim=5, seed=3)
    index = Index(5, metric)
    for part in np.array_split(np.arange(1000), [1, 100, 101, 700]):  # adds that straddle blocks
        index.add(gallery[part], ids=part)
    found = index.search(queries, k=15)  # 2k < 40-row chunks: the first chunks are "crowded"
    ids, dist = brute_force_knn(queries, gallery, 15, metric)
    np.testing.assert_array_equal(found.ids, ids)
    np.testing.assert_allclose(found.distances, dist, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean", "manhattan", "dot"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_knn_over_many_tiles_keeps_ties_and_exclude_self(monkeypatch, distance, exclude_self):
    # Tiny tiles: every query block meets many reference chunks, and the diagonal that
    # exclude_self removes crosses block and chunk boundaries at every offset.
    monkeypatch.setattr(neighbors, "TILE_ELEMENTS", 60)
    monkeypatch.setattr(neighbors, "MIN_CHUNK", 7)
    monkeypatch.setattr(neighbors, "_CROWDED_ROWS", 2)
    monkeypatch.setattr(neighbors, "_RANK_ELEMENTS", 40)
    rng = np.random.default_rng(4)
    r = rng.integers(-2, 3, size=(120, 3)).astype("float64")
    q = r if exclude_self else rng.integers(-2, 3, size=(50, 3)).astype("float64")
    for chunk_size in (3, 8, 50):
        idx, dist = knn(q, r, k=9, distance=distance, exclude_self=exclude_self, chunk_size=chunk_size)
        ref_idx, ref_dist = brute_force_knn(q, r, 9, distance, exclude_self)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist, ref_dist, atol=1e-9)
        assert dist.dtype == np.float64


@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean", "manhattan", "dot"])
@pytest.mark.parametrize("k", [12, 150, 599])
def test_knn_with_k_a_large_part_of_each_chunk_keeps_ties_and_exclude_self(monkeypatch, distance, k):
    # 192-row chunks: the first chunks select each query's k best among its whole tile row, later ones
    # merge a few candidates; k = 599 is wider than a chunk. Ties at the k-th place cross chunk edges.
    monkeypatch.setattr(neighbors, "TILE_ELEMENTS", 384)
    monkeypatch.setattr(neighbors, "MIN_CHUNK", 7)
    monkeypatch.setattr(neighbors, "_CROWDED_ROWS", 3)
    x = np.random.default_rng(7).integers(-2, 3, size=(600, 2)).astype("float64")
    idx, dist = knn(x, x, k=k, distance=distance, exclude_self=True, chunk_size=50)
    ref_idx, ref_dist = brute_force_knn(x, x, k, distance, True)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-9)


def test_knn_large_k_in_float32_keeps_ties(monkeypatch):
    # Small integers are exact in float32 tiles too, so the tied ranks must match the oracle exactly.
    monkeypatch.setattr(neighbors, "TILE_ELEMENTS", 2048)
    monkeypatch.setattr(neighbors, "MIN_CHUNK", 7)
    x = np.random.default_rng(8).integers(-3, 4, size=(900, 3)).astype("float32")
    for distance in ("euclidean", "sqeuclidean", "manhattan", "dot"):
        idx, dist = knn(x, x, k=100, distance=distance, exclude_self=True, chunk_size=64)
        ref_idx, ref_dist = brute_force_knn(x, x, 100, distance, True)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-6)
        assert dist.dtype == np.float32


def test_float32_ranking_key_sorts_like_two_keys():
    # rerank sorts float32 distances with their rows packed in one key; float64 takes a two-key sort.
    rng = np.random.default_rng(9)
    cost = rng.integers(-3, 4, size=(60, 40)).astype("float32") * np.float32(0.25)
    cost[rng.random(cost.shape) < 0.1] = np.float32(-0.0)
    rows = np.argsort(rng.random(cost.shape), axis=1) * 1000  # distinct rows per query, in any order
    none = rng.random(cost.shape) < 0.1
    rows[none], cost[none] = -1, np.inf
    got_cost, got_rows = neighbors._ascending(cost, rows, 25)
    want_cost, want_rows = neighbors._ascending(cost.astype("float64"), rows, 25)
    np.testing.assert_array_equal(got_rows, want_rows)
    np.testing.assert_array_equal(got_cost, want_cost)
    assert got_cost.dtype == np.float32


def test_knn_with_every_reference_tied_returns_them_in_index_order():
    x = np.ones((6, 2))
    idx, dist = knn(x, x, 5, exclude_self=True, chunk_size=4)
    assert idx.tolist() == [[j for j in range(6) if j != i] for i in range(6)]
    np.testing.assert_array_equal(dist, 0.0)


def test_distance_names_have_one_home():
    assert distances.DISTANCES is neighbors.DISTANCES and distances.ALIASES is neighbors.ALIASES
    assert tuple(distances.CLASSES) == DISTANCES
    assert BACKENDS["exact"].distances == DISTANCES
    assert neighbors.check_distance("L1") == "manhattan"
    assert [distances.get(name).name for name in DISTANCES] == list(DISTANCES)
    with pytest.raises(ConfigError, match="invalid distance 'hamming'"):
        neighbors.check_distance("hamming")


def test_neighbors_and_index_do_not_import_keras():
    code = "import sys, siamkit.neighbors, siamkit.index; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"



def test_pairwise_costs_in_blocks_match_one_block(monkeypatch):
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(13, 3)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    whole = {name: pairwise_costs(a, b, name) for name in DISTANCES}
    monkeypatch.setattr(neighbors, "_RANK_ELEMENTS", 40)  # 2 queries per block
    for name in DISTANCES:
        np.testing.assert_array_equal(pairwise_costs(a, b, name), whole[name])
        assert whole[name].dtype == np.float32 and whole[name].shape == (13, 5)
    np.testing.assert_allclose(whole["dot"], -(a.astype(float) @ b.astype(float).T), rtol=1e-6)
