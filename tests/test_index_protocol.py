"""The index protocol on every kind of index: ids, metadata, deletes and metadata filters, exact; Qdrant's errors."""

import socket

import numpy as np
import pytest

from siamkit.errors import ConfigError, DataError
from siamkit.index import QdrantIndex, VectorIndex, create_index, filters, open_index

qdrant_client = pytest.importorskip("qdrant_client", reason="the Qdrant backend needs qdrant-client (siamkit[qdrant])")

FILE_BACKENDS = ["exact", "faiss-flat", "faiss-hnsw", "hnswlib"]
KINDS = FILE_BACKENDS + ["qdrant"]


def _data(n=400, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype("float32")
    meta = [{"label": f"c{i % 5}", "shard": i % 3, "path": f"img/{i}.png"} for i in range(n)]
    return x, meta, rng.standard_normal((20, dim)).astype("float32")


def _make(kind, tmp_path, distance="euclidean", dim=16, fingerprint=None):
    if kind == "qdrant":
        return create_index(f"qdrant+local://{tmp_path / 'q'}", dim, distance, "qdrant", fingerprint=fingerprint)
    pytest.importorskip("faiss" if kind.startswith("faiss") else "hnswlib" if kind == "hnswlib" else "numpy")
    return create_index(tmp_path / "ix", dim, distance, kind, fingerprint=fingerprint)


def _brute(x, q, ids, k, distance):
    from siamkit.neighbors import knn

    rows, dist = knn(q, x, min(k, len(x)), distance)
    return ids[rows], dist


@pytest.mark.parametrize("distance", ["euclidean", "cosine", "dot"])
@pytest.mark.parametrize("kind", KINDS)
def test_filtered_search_is_exact_on_every_backend(kind, distance, tmp_path):
    x, meta, q = _data()
    index = _make(kind, tmp_path, distance)
    assert isinstance(index, VectorIndex)
    ids = np.arange(len(x), dtype=np.int64) * 3 + 5  # ids of the caller's own
    assert index.add(x, ids=ids, metadata=meta).tolist() == ids.tolist()
    found = index.search(q, k=7, filter={"label": "c2", "shard": [0, 1]})
    keep = np.array([m["label"] == "c2" and m["shard"] in (0, 1) for m in meta])
    want_ids, want_dist = _brute(x[keep], q, ids[keep], 7, distance)
    np.testing.assert_array_equal(found.ids, want_ids)
    np.testing.assert_allclose(found.distances, want_dist, rtol=1e-5, atol=1e-5)
    assert index.metadata(found.ids[0, :2]) == [meta[(i - 5) // 3] for i in found.ids[0, :2]]


@pytest.mark.parametrize("kind", KINDS)
def test_deleted_items_are_gone_and_the_rest_is_searched_exactly(kind, tmp_path):
    x, meta, q = _data()
    index = _make(kind, tmp_path)
    ids = index.add(x, metadata=meta)
    gone = ids[::4]
    index.remove(gone)
    assert len(index) == len(x) - len(gone)
    assert index.contains(gone[:3]).tolist() == [False] * 3 and index.contains(ids[1:3]).all()
    with pytest.raises(DataError, match="not in the index"):
        index.remove([gone[0], ids[1]])  # one absent: nothing removed
    assert index.contains([ids[1]])[0]
    live = np.setdiff1d(np.arange(len(x)), np.arange(0, len(x), 4))
    exact = kind in ("exact", "faiss-flat", "qdrant")  # the graphs are approximate without a filter
    found = index.search(q, k=5)
    assert not np.isin(found.ids, gone).any()
    if exact:
        np.testing.assert_array_equal(found.ids, _brute(x[live], q, ids[live], 5, "euclidean")[0])
    filtered = index.search(q, k=5, filter={"label": "c1"})
    sub = live[[meta[i]["label"] == "c1" for i in live]]
    np.testing.assert_array_equal(filtered.ids, _brute(x[sub], q, ids[sub], 5, "euclidean")[0])
    np.testing.assert_allclose(index.embeddings(ids[1:3]), x[1:3], rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_filters_and_models_are_refused(kind, tmp_path):
    x, meta, q = _data(n=50)
    index = _make(kind, tmp_path, fingerprint="a" * 64)
    index.add(x, metadata=meta)
    with pytest.raises(DataError, match="metadata field 'colour'"):
        index.search(q, k=3, filter={"colour": "red"})
    with pytest.raises(ConfigError, match="values must be strings"):
        index.search(q, k=3, filter={"label": 1.5})
    with pytest.raises(DataError, match="another model"):
        index.search(q, k=3, fingerprint="b" * 64)
    with pytest.raises(DataError, match="another model"):
        index.add(x[:2], fingerprint="b" * 64)
    with pytest.raises(DataError, match=r"shape \(n, 16\)"):
        index.add(np.zeros((2, 8), "float32"))
    assert len(index) == 50  # nothing was added by the refused calls
    # A filter that nothing passes finds nothing, padded as a short index is.
    none = index.search(q[:1], k=3, filter={"label": "nope"})
    assert none.ids.tolist() == [[-1, -1, -1]]


def test_a_qdrant_index_persists_and_reopens_by_uri(tmp_path):
    x, meta, q = _data(n=60)
    uri = f"qdrant+local://{tmp_path / 'q'}?collection=gallery"
    index = create_index(uri, 16, "cosine", fingerprint="f" * 64, info={"run": "/runs/r"})
    ids = index.add(x, metadata=meta)
    before = index.search(q, k=4, filter={"shard": 2})
    index.close()
    again = open_index(uri)
    assert isinstance(again, QdrantIndex) and len(again) == 60
    assert (again.dim, again.distance, again.fingerprint, again.info) == (16, "cosine", "f" * 64, {"run": "/runs/r"})
    after = again.search(q, k=4, filter={"shard": 2})
    np.testing.assert_array_equal(before.ids, after.ids)
    # Cosine vectors are kept unit-length by Qdrant; their norms come back from the payload.
    np.testing.assert_allclose(again.embeddings(ids[:5]), x[:5], rtol=1e-5, atol=1e-6)
    assert again.metadata(ids[:1]) == [meta[0]]
    again.close()
    with pytest.raises(DataError, match="already holds a collection 'gallery'"):
        create_index(uri, 16, "cosine")
    with pytest.raises(DataError, match="no collection 'other'"):
        open_index(f"qdrant+local://{tmp_path / 'q'}?collection=other")


def test_a_failed_qdrant_add_leaves_nothing_behind(tmp_path, monkeypatch):
    from siamkit.index import qdrant

    x, meta, _ = _data(n=50)
    index = create_index(f"qdrant+local://{tmp_path / 'q'}", 16)
    index.add(x[:10], metadata=meta[:10])
    monkeypatch.setattr(qdrant, "_BATCH", 16)
    calls = []
    real = index.client.upsert

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("connection lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(index.client, "upsert", flaky)
    with pytest.raises(ConnectionError):
        index.add(x[10:], metadata=meta[10:])
    assert len(calls) == 2 and len(index) == 10


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_or_malformed_qdrant_addresses_are_clear_errors(tmp_path):
    port = _closed_port()
    with pytest.raises(DataError, match=f"cannot reach Qdrant at 127.0.0.1:{port}"):
        open_index(f"qdrant://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="unknown URI parameter"):
        open_index(f"qdrant+local://{tmp_path}?colection=x")
    with pytest.raises(ConfigError, match="name a folder"):
        open_index("qdrant+local://")
    with pytest.raises(ConfigError, match="needs a Qdrant URI"):
        create_index(tmp_path / "ix", 4, backend="qdrant")
    with pytest.raises(ConfigError, match="use --backend qdrant"):
        create_index(f"qdrant+local://{tmp_path / 'q'}", 4, backend="exact")


def test_cli_filters_parse_to_strings_and_integers():
    assert filters.parse(["label=shoes", "size=42", "size=43"]) == {"label": ["shoes"], "size": ["42", 42, "43", 43]}
    assert filters.parse(None) is None
    with pytest.raises(ConfigError, match="FIELD=VALUE"):
        filters.parse(["label"])
    assert filters.matches({"flag": True}, {"flag": [True]}) and not filters.matches({"flag": 1}, {"flag": [True]})
