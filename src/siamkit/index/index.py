"""`Index`: embeddings you can search, grow, shrink, save and load.

An index holds embeddings with int64 ids and optional per-item metadata
(for example `path` and `label`), in one distance, and records the
fingerprint of the model that made them. A backend (see `backends`) finds
candidate neighbors; the index then computes their exact distances and
ranks them, nearest first (ties to the earlier-added item).

Example:

>>> import numpy as np
>>> index = Index(dim=2, distance="euclidean")
>>> index.add(np.array([[0, 0], [3, 4]], "float32"), metadata=[{"label": "a"}, {"label": "b"}]).tolist()
[0, 1]
>>> found = index.search(np.array([[3, 3]], "float32"), k=1)
>>> found.ids.tolist(), found.distances.tolist()
([[1]], [[1.0]])
>>> index.metadata([1])
[{'label': 'b'}]
"""

import collections
import numbers
import os

import numpy as np

from .. import __version__
from ..errors import ConfigError, DataError
from ..neighbors import prepare, rerank, top_k_rows, with_norm_column
from . import backends, files, filters
from .store import BLOCK_ROWS, EmbeddingStore, as_vectors

Neighbors = collections.namedtuple("Neighbors", ["distances", "ids"])
Neighbors.__doc__ = """Search results, one row per query, nearest first.

`distances` (float32): in the index's distance; similarities for `dot`
(highest first). `ids` (int64): -1 (with distance inf, or -inf for `dot`)
where the index holds fewer than `k` items.
"""

_JSON_SCALARS = (str, int, float, bool, type(None))


def check_fingerprint(own, given):
    """Raise a `DataError` if the model fingerprint `given` is not an index's own (`own`); None checks nothing."""
    if given is not None and own is not None and given != own:
        raise DataError(
            f"the embeddings come from another model (fingerprint {given[:12]}) than this index "
            f"(fingerprint {own[:12]}); embed them with the index's run or rebuild the index"
        )


def check_k(k):
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def as_ids(ids, name="ids"):
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise DataError(f"{name} must be a 1-D array of integers, got {ids.dtype} {ids.shape}")
    if ids.size and ids.min() < 0:
        raise DataError(f"{name} must be non-negative, got {int(ids.min())}")
    return ids.astype(np.int64)


class Index:
    """A searchable set of embeddings.

    Args:
        dim: embedding size.
        distance: `euclidean` (default), `sqeuclidean`, `manhattan`, `cosine`
            or `dot` (a similarity: highest first). Use the run's distance.
        backend: `exact` (default), `faiss-flat`, `faiss-hnsw`, `faiss-ivfpq`,
            `faiss-sq8`, `faiss-fp16` or `hnswlib`; see `siamkit.index.backends`.
        options: dict of backend options (for example `{"ef_search": 128}`).
        fingerprint: `Run.fingerprint()` of the model that makes the
            embeddings; embeddings and queries from another model are refused.
        info: JSON-ready facts saved with the index (the CLI records its run).
    """

    def __init__(self, dim, distance="euclidean", backend="exact", options=None, fingerprint=None, info=None):
        self.store = EmbeddingStore(dim, distance)
        self.backend = backends.get(backend, self.store, options)
        self.fingerprint = fingerprint
        self.info = dict(info or {})
        self.location = None  # the directory it was loaded from or last saved to
        self._metadata = {}
        self._fields = None  # metadata fields with a value, built on demand

    @property
    def dim(self):
        return self.store.dim

    @property
    def distance(self):
        return self.store.distance

    @property
    def higher_is_similar(self):
        return self.distance == "dot"

    @property
    def backend_name(self):
        return self.backend.name

    @property
    def ids(self):
        """All ids, in the order they were added."""
        return self.store.ids

    def __len__(self):
        return len(self.store)

    def __repr__(self):
        return f"<Index {self.backend.name} {self.distance} dim={self.dim} items={len(self)}>"

    def check_model(self, fingerprint):
        """Raise a `DataError` if `fingerprint` names another model than the index's."""
        check_fingerprint(self.fingerprint, fingerprint)

    def contains(self, ids):
        """Boolean array: which of `ids` are in the index."""
        return self.store.rows_of(as_ids(ids)) >= 0

    def new_ids(self, n):
        """`n` ids not in the index: consecutive numbers after the largest id so far."""
        start = int(self.store.ids.max()) + 1 if len(self) else 0
        return np.arange(start, start + n, dtype=np.int64)

    def fields(self):
        """The metadata fields that at least one item has a value (not None) for."""
        if self._fields is None:
            self._fields = {k for record in self._metadata.values() for k, v in record.items() if v is not None}
        return set(self._fields)

    def add(self, embeddings, ids=None, metadata=None, fingerprint=None):
        """Add embeddings; returns their ids.

        Args:
            embeddings: `(n, dim)` array.
            ids: `n` unique non-negative integers not in the index; default:
                consecutive numbers after the largest id so far.
            metadata: `n` dicts of JSON values (or None), e.g. `{"path": ..., "label": ...}`.
            fingerprint: the model's fingerprint, checked against the index's.
        """
        self.check_model(fingerprint)
        x = as_vectors(embeddings, self.dim)
        ids = self._new_ids(ids, len(x))
        records = self._check_metadata(metadata, len(x))
        if len(x) == 0:
            return ids
        size = len(self.store)
        self.store.add(x, ids)
        try:
            self.backend.add(prepare(x, self.distance), ids)
        except BaseException:
            self.store.keep(np.arange(len(self.store)) < size)
            raise
        self._metadata.update((int(i), r) for i, r in zip(ids, records) if r)
        self._fields = None
        return ids

    def _new_ids(self, ids, n):
        if ids is None:
            return self.new_ids(n)
        ids = as_ids(ids)
        if len(ids) != n:
            raise DataError(f"got {len(ids)} ids for {n} embeddings")
        if len(np.unique(ids)) != n:
            raise DataError("ids must be unique")
        taken = ids[self.store.rows_of(ids) >= 0]
        if len(taken):
            raise DataError(f"ids already in the index: {taken[:10].tolist()}; remove them first or pick new ids")
        return ids

    @staticmethod
    def _check_metadata(metadata, n):
        if metadata is None:
            return [None] * n
        metadata = list(metadata)
        if len(metadata) != n:
            raise DataError(f"got {len(metadata)} metadata records for {n} embeddings")
        for record in metadata:
            if record is not None and not (
                isinstance(record, dict)
                and all(isinstance(k, str) and isinstance(v, _JSON_SCALARS) for k, v in record.items())
            ):
                raise DataError(f"metadata must be dicts of strings/numbers (or None), got {record!r}")
            if record is not None and "id" in record:
                # Saved records carry the item's id under this key.
                raise DataError(
                    f"metadata key 'id' is reserved for the item's id (pass ids=...); rename it, "
                    f"e.g. to 'sku', in {record!r}"
                )
        return metadata

    def remove(self, ids):
        """Remove items by id. Raises a `DataError` (removing nothing) if any id is absent."""
        ids = np.unique(as_ids(ids))
        rows = self.store.rows_of(ids)
        if (rows < 0).any():
            raise DataError(f"ids not in the index: {ids[rows < 0][:10].tolist()}")
        keep = np.ones(len(self.store), bool)
        keep[rows] = False
        self.store.keep(keep)
        self.backend.remove(ids)
        for i in ids.tolist():
            self._metadata.pop(i, None)
        self._fields = None

    def search(self, queries, k=10, fingerprint=None, filter=None):
        """The `k` nearest items of each query.

        Args:
            queries: `(n, dim)` array (or one `(dim,)` vector).
            k: results per query.
            fingerprint: the fingerprint of the model that made `queries`.
            filter: only items whose metadata passes it (see
                `siamkit.index.filters`), e.g. `{"label": "shoes"}`. Filtered
                searches are exact whatever the backend: they scan only the
                items that pass.

        Returns:
            `Neighbors(distances, ids)`, each `(n, k)`.
        """
        self.check_model(fingerprint)
        k = check_k(k)
        filter = filters.check(filter)
        q = prepare(as_vectors(queries, self.dim, "queries"), self.distance)
        if filter is None:
            candidates = self.backend.candidates(q, k)
        else:
            filters.check_fields(filter, self.fields(), "the index")
            candidates = self._filtered_candidates(q, k, filter)
        rows, dist = rerank(q, candidates, self.store.vectors, k, self.distance)
        return Neighbors(dist, self.store.ids_at(rows))

    def _filtered_candidates(self, q, k, filter):
        """Exact candidate rows among the items that pass `filter` (in row order, so ties keep their order)."""
        passing = [i for i, record in self._metadata.items() if filters.matches(record, filter)]
        rows = np.sort(self.store.rows_of(np.array(passing, np.int64)))
        if len(rows) == 0:
            return np.full((len(q), k), -1, np.int64)
        subset = with_norm_column(self.store.vectors(rows), self.distance)
        found = top_k_rows(q, lambda: [(0, subset)], k, self.distance)
        return np.where(found >= 0, rows[np.maximum(found, 0)], -1)

    def metadata(self, ids):
        """Metadata dicts of `ids` (`{}` for items added without metadata)."""
        return [dict(self._metadata.get(int(i)) or {}) for i in np.asarray(ids).ravel()]

    def embeddings(self, ids):
        """Stored embeddings of `ids`, `(n, dim)`, as they were added."""
        rows = self.store.rows_of(as_ids(ids))
        if (rows < 0).any():
            raise DataError(f"ids not in the index: {np.asarray(ids)[rows < 0][:10].tolist()}")
        return self.store.vectors(rows)

    def save(self, directory=None, lock_timeout=files.LOCK_TIMEOUT):
        """Write the index to `directory` (see `siamkit.index.files`), holding its write lock.

        `directory` defaults to the one the index was loaded from or last
        saved to.

        Another writer of `directory` is waited for up to `lock_timeout`
        seconds, then a `DataError` is raised.
        """
        if directory is None and self.location is None:
            raise ConfigError("this index was never saved or loaded: pass the directory to save it to")
        directory = os.fspath(self.location if directory is None else directory)
        os.makedirs(directory, exist_ok=True)
        with files.locked(directory, lock_timeout):
            self._save(directory)
        self.location = directory

    def _save(self, directory):
        generation = 1
        if os.path.exists(os.path.join(directory, files.MANIFEST)):
            generation = files.read_manifest(directory).get("generation", 0) + 1
        store = self.store

        def name(stem, ext):
            return f"{stem}.{generation}{ext}"

        records = {
            "embeddings": files.write_file(
                directory,
                name("embeddings", ".npy"),
                lambda p: files.write_vectors(p, (v for _, v, _ in store.blocks()), len(store), store.dim),
            ),
            "ids": files.write_file(directory, name("ids", ".npy"), lambda p: files.write_array(p, store.ids)),
            "metadata": files.write_file(
                directory,
                name("metadata", ".json"),
                lambda p: files.write_json(p, [{"id": i, **m} for i, m in sorted(self._metadata.items())]),
            ),
        }
        if self.backend.suffix and not self.backend.empty:
            records["backend"] = files.write_file(directory, name("backend", self.backend.suffix), self.backend.save)
        files.write_manifest(
            directory,
            {
                "format": files.FORMAT,
                "version": files.VERSION,
                "generation": generation,
                "siamkit": __version__,
                "backend": self.backend.name,
                "options": self.backend.options,
                "distance": self.distance,
                "dim": self.dim,
                "count": len(self),
                "fingerprint": self.fingerprint,
                "info": self.info,
                "files": records,
            },
        )

    @classmethod
    def load(cls, directory):
        """Read an index written by `save`, verifying every file's checksum."""
        directory = os.fspath(directory)
        manifest = files.read_manifest(directory)
        try:
            count, dim, records = int(manifest["count"]), int(manifest["dim"]), manifest["files"]
            index = cls(
                dim,
                # Indexes written before the "distance" key named it "metric".
                manifest["distance"] if "distance" in manifest else manifest["metric"],
                manifest["backend"],
                manifest["options"],
                manifest["fingerprint"],
                manifest["info"],
            )
            for key in ("embeddings", "ids", "metadata"):
                records[key]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"{os.path.join(directory, files.MANIFEST)} is incomplete or invalid ({err}); rebuild the index"
            ) from None
        ids = files.read_array(directory, records["ids"], np.int64, (count,))
        metadata = files.read_json(directory, records["metadata"])
        start = 0
        for chunk in files.read_vectors(directory, records["embeddings"], count, dim, BLOCK_ROWS):
            index.store.add(chunk, ids[start : start + len(chunk)])
            start += len(chunk)
        if "backend" in records:
            index.backend.load(files.verified_path(directory, records["backend"]))
        elif count and index.backend.suffix:
            raise DataError(f"{directory!r} lacks the {index.backend.name} backend file; rebuild the index")
        try:
            index._metadata = {int(r.pop("id")): r for r in metadata}
        except (AttributeError, KeyError, TypeError, ValueError):
            raise DataError(f"{records['metadata']['name']} in {directory!r} is malformed; rebuild the index") from None
        index.location = directory
        return index


def load(directory):
    """Load an index directory; see `Index.load`."""
    return Index.load(directory)
