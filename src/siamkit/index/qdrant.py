"""`QdrantIndex`: an index kept in a Qdrant collection, which several processes can share.

It offers what `Index` offers (add with ids and metadata, remove, search
with a metadata filter, metadata, embeddings), through `qdrant-client`
(`pip install 'siamkit[qdrant]'`), at one of two addresses:

- `qdrant+local://PATH`: Qdrant's embedded mode, a folder opened by one
  process at a time (tests, one machine);
- `qdrant://HOST:PORT`: a Qdrant server or cluster, which every service
  replica can share.

Either takes `?collection=NAME` (default `siamkit`). The collection records
the index's dimension, distance, model fingerprint and run in its metadata,
so embeddings from another model are refused as they are by a file index.
Writes are persisted by Qdrant as they happen; an `add` that fails part-way
deletes the items it had written, so nothing is left half-added.

Qdrant finds the `k` candidates in its own metric (euclidean for
`euclidean` and `sqeuclidean`, cosine, dot, manhattan); siamkit then
recomputes their distances exactly in float64, as it does for every file
backend, so a calibrated threshold means the same here. Qdrant keeps cosine
vectors unit-normalised; each item's norm is kept in its payload
(`siamkit_norm`) so that `embeddings` gives them back as added (to float32
rounding).

Ids given to `add` are the caller's; ids it picks itself are random 62-bit
integers, so replicas adding at once do not collide.

Example:

>>> import numpy as np
>>> index = QdrantIndex.create("qdrant+local:///tmp/q", dim=2, distance="euclidean")   # doctest: +SKIP
>>> index.add(np.eye(2, dtype="float32"), ids=[1, 2], metadata=[{"label": "a"}, {"label": "b"}])   # doctest: +SKIP
>>> index.search(np.array([[1.0, 0.1]], "float32"), k=1, filter={"label": "b"}).ids.tolist()       # doctest: +SKIP
[[2]]
"""

import secrets
import urllib.parse

import numpy as np

from ..errors import ConfigError, DataError
from ..neighbors import check_distance, prepare, rerank
from . import filters
from .index import Neighbors, as_ids, check_fingerprint, check_k
from .store import as_vectors

SCHEMES = ("qdrant+local://", "qdrant://")
COLLECTION = "siamkit"
FORMAT = "siamkit-qdrant"
NORM = "siamkit_norm"  # payload key of a cosine item's norm
_BATCH = 1024  # points per upsert
_TIMEOUT_S = 10


def is_qdrant(location):
    """True if `location` is a Qdrant URI (`qdrant+local://...` or `qdrant://...`)."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def _models():
    try:
        from qdrant_client import QdrantClient, models
    except ImportError:
        raise ConfigError("Qdrant indexes need qdrant-client: pip install 'siamkit[qdrant]'") from None
    return QdrantClient, models


def _connect(location):
    """`(client, collection)` for a Qdrant URI, with the server (or folder) reached, or a `DataError`."""
    QdrantClient, _ = _models()
    base, _, query = location.partition("?")
    params = urllib.parse.parse_qs(query)
    unknown = sorted(set(params) - {"collection"})
    if unknown:
        raise ConfigError(f"{location}: unknown URI parameter(s) {unknown}; the only one is ?collection=NAME")
    collection = params.get("collection", [COLLECTION])[-1]
    if base.startswith("qdrant+local://"):
        path = base[len("qdrant+local://"):]
        if not path:
            raise ConfigError(f"{location}: name a folder, e.g. qdrant+local://gallery.qdrant")
        try:
            client = QdrantClient(path=path)
        except RuntimeError as err:  # the folder is held by another client
            raise DataError(f"{location}: cannot open the embedded Qdrant folder ({err})") from None
        return client, collection
    address = urllib.parse.urlsplit(base.replace("qdrant://", "http://", 1))
    try:
        host, port = address.hostname, address.port or 6333
    except ValueError as err:
        raise ConfigError(f"{location}: not a valid qdrant://HOST:PORT address ({err})") from None
    if not host or address.path not in ("", "/"):
        raise ConfigError(f"{location}: write qdrant://HOST:PORT (optionally ?collection=NAME)")
    client = QdrantClient(host=host, port=port, timeout=_TIMEOUT_S, check_compatibility=False)
    try:
        client.get_collections()
    except Exception as err:  # qdrant-client raises several transport errors; all mean "not reachable"
        client.close()
        raise DataError(
            f"cannot reach Qdrant at {host}:{port} ({type(err).__name__}: {err}); start the server or check the URL"
        ) from None
    return client, collection


def _metric(models, distance):
    return {
        "euclidean": models.Distance.EUCLID,
        "sqeuclidean": models.Distance.EUCLID,
        "cosine": models.Distance.COSINE,
        "dot": models.Distance.DOT,
        "manhattan": models.Distance.MANHATTAN,
    }[distance]


class QdrantIndex:
    """An index in a Qdrant collection; open one with `open` or make one with `create`.

    Args:
        client: a connected `qdrant_client.QdrantClient`.
        collection: the collection's name.
        location: the URI it was reached at.
        manifest: the collection's siamkit record (dim, distance, fingerprint, info).
    """

    backend_name = "qdrant"

    def __init__(self, client, collection, location, manifest):
        self.client, self.collection, self.location = client, collection, location
        self.dim = int(manifest["dim"])
        self.distance = check_distance(manifest["distance"])
        self.fingerprint = manifest.get("fingerprint")
        self.info = dict(manifest.get("info") or {})
        self.models = _models()[1]

    @staticmethod
    def _free(location):
        """`(client, collection)` for a collection that does not exist yet, or a `DataError`."""
        client, collection = _connect(location)
        if client.collection_exists(collection):
            client.close()
            raise DataError(
                f"{location} already holds a collection {collection!r}; add to it with `siamkit index add`, "
                "or pick another ?collection=NAME"
            )
        return client, collection

    @classmethod
    def check_free(cls, location):
        """Raise a `DataError` unless `location` is reachable and its collection does not exist yet."""
        cls._free(location)[0].close()

    @classmethod
    def create(cls, location, dim, distance="euclidean", fingerprint=None, info=None):
        """A new, empty collection at `location`; a `DataError` if it exists already."""
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        distance = check_distance(distance)
        _, models = _models()
        client, collection = cls._free(location)
        manifest = {"format": FORMAT, "version": 1, "dim": int(dim), "distance": distance,
                    "fingerprint": fingerprint, "info": dict(info or {})}
        client.create_collection(
            collection,
            vectors_config=models.VectorParams(size=int(dim), distance=_metric(models, distance)),
            metadata={"siamkit": manifest},
        )
        return cls(client, collection, location, manifest)

    @classmethod
    def open(cls, location):
        """The index in the collection at `location`, or a `DataError`."""
        client, collection = _connect(location)
        if not client.collection_exists(collection):
            client.close()
            raise DataError(
                f"{location} has no collection {collection!r}; build one with "
                f"`siamkit index build RUN_DIR --data DIR --backend qdrant --out {location}`"
            )
        manifest = (client.get_collection(collection).config.metadata or {}).get("siamkit")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "dim" not in manifest:
            client.close()
            raise DataError(f"the collection {collection!r} at {location} was not made by siamkit")
        return cls(client, collection, location, manifest)

    def drop(self):
        """Delete the collection and everything in it."""
        self.client.delete_collection(self.collection)

    def close(self):
        self.client.close()

    @property
    def higher_is_similar(self):
        return self.distance == "dot"

    def __len__(self):
        return self.client.count(self.collection, exact=True).count

    def __repr__(self):
        return f"<QdrantIndex {self.location} {self.distance} dim={self.dim}>"

    def check_model(self, fingerprint):
        """Raise a `DataError` if `fingerprint` names another model than the index's."""
        check_fingerprint(self.fingerprint, fingerprint)

    def _records(self, ids, with_vectors=False):
        points = self.client.retrieve(
            self.collection, [int(i) for i in ids], with_payload=True, with_vectors=with_vectors
        )
        return {int(p.id): p for p in points}

    def contains(self, ids):
        """Boolean array: which of `ids` are in the index."""
        ids = as_ids(ids)
        found = self._records(ids)
        return np.array([int(i) in found for i in ids], bool)

    def new_ids(self, n):
        """`n` random 62-bit ids not in the index."""
        while True:
            ids = np.array([secrets.randbits(62) for _ in range(n)], np.int64)
            if len(np.unique(ids)) == n and not self.contains(ids).any():
                return ids

    def _has_field(self, field):
        m = self.models
        empty = m.IsEmptyCondition(is_empty=m.PayloadField(key=field))
        return self.client.count(self.collection, count_filter=m.Filter(must_not=[empty]), exact=True).count > 0

    def add(self, embeddings, ids=None, metadata=None, fingerprint=None):
        """Add embeddings with their ids and metadata; returns the ids (see `Index.add`)."""
        from .index import Index

        self.check_model(fingerprint)
        x = as_vectors(embeddings, self.dim)
        records = Index._check_metadata(metadata, len(x))
        for record in records:
            if record and NORM in record:
                raise DataError(f"metadata key {NORM!r} is reserved; rename it in {record!r}")
        if ids is None:
            ids = self.new_ids(len(x))
        else:
            ids = as_ids(ids)
            if len(ids) != len(x) or len(np.unique(ids)) != len(ids):
                raise DataError(f"got {len(ids)} ids for {len(x)} embeddings; ids must be unique, one per row")
            taken = ids[self.contains(ids)]
            if len(taken):
                raise DataError(f"ids already in the index: {taken[:10].tolist()}; remove them first or pick new ids")
        norms = np.linalg.norm(x.astype(np.float64), axis=1) if self.distance == "cosine" else None
        m = self.models
        try:
            for start in range(0, len(x), _BATCH):
                points = []
                for j in range(start, min(start + _BATCH, len(x))):
                    payload = dict(records[j] or {})
                    if norms is not None:
                        payload[NORM] = float(norms[j])
                    points.append(m.PointStruct(id=int(ids[j]), vector=x[j].tolist(), payload=payload))
                self.client.upsert(self.collection, points=points, wait=True)
        except BaseException:
            self.client.delete(self.collection, points_selector=m.PointIdsList(points=[int(i) for i in ids]))
            raise
        return ids

    def remove(self, ids):
        """Remove items by id. Raises a `DataError` (removing nothing) if any id is absent."""
        ids = np.unique(as_ids(ids))
        missing = ids[~self.contains(ids)]
        if len(missing):
            raise DataError(f"ids not in the index: {missing[:10].tolist()}")
        self.client.delete(
            self.collection, points_selector=self.models.PointIdsList(points=ids.tolist()), wait=True
        )

    def _qdrant_filter(self, filter):
        m = self.models
        for field in filter:
            if not self._has_field(field):
                raise DataError(
                    f"no item of the collection {self.collection!r} has the metadata field {field!r}; check the filter"
                )
        return m.Filter(must=[
            m.Filter(should=[m.FieldCondition(key=field, match=m.MatchValue(value=v)) for v in values])
            for field, values in filter.items()
        ])

    def search(self, queries, k=10, fingerprint=None, filter=None):
        """The `k` nearest items of each query that pass `filter` (see `Index.search`)."""
        self.check_model(fingerprint)
        k = check_k(k)
        filter = filters.check(filter)
        q = prepare(as_vectors(queries, self.dim, "queries"), self.distance)
        m = self.models
        where = None if filter is None else self._qdrant_filter(filter)
        requests = [
            m.QueryRequest(query=row.tolist(), limit=k, filter=where, with_vector=True, with_payload=False)
            for row in q
        ]
        answers = self.client.query_batch_points(self.collection, requests=requests) if len(q) else []
        ids = np.full((len(q), k), -1, np.int64)
        vectors = np.zeros((len(q), k, self.dim), np.float32)
        for i, answer in enumerate(answers):
            for j, point in enumerate(answer.points):
                ids[i, j], vectors[i, j] = int(point.id), point.vector
        # Exact distances of the candidates, in Qdrant's order for ties; rows index `vectors` per query.
        rows = np.where(ids >= 0, np.arange(len(q))[:, None] * k + np.arange(k), -1)
        flat = vectors.reshape(-1, self.dim)
        ranked, dist = rerank(q, rows, lambda r: flat[r], k, self.distance)
        return Neighbors(dist, np.where(ranked >= 0, ids.ravel()[np.maximum(ranked, 0)], -1))

    def metadata(self, ids):
        """Metadata dicts of `ids` (`{}` for items added without metadata or absent)."""
        ids = [int(i) for i in np.asarray(ids).ravel()]
        found = self._records(ids)
        out = []
        for i in ids:
            payload = dict(found[i].payload or {}) if i in found else {}
            payload.pop(NORM, None)
            out.append(payload)
        return out

    def embeddings(self, ids):
        """Stored embeddings of `ids`, `(n, dim)`, as added (cosine: to float32 rounding)."""
        ids = as_ids(ids)
        found = self._records(ids, with_vectors=True)
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise DataError(f"ids not in the index: {missing[:10]}")
        out = np.array([found[int(i)].vector for i in ids], np.float32).reshape(len(ids), self.dim)
        if self.distance == "cosine":
            out *= np.array([found[int(i)].payload[NORM] for i in ids], np.float32)[:, None]
        return out

    def save(self, location=None, lock_timeout=None):
        """Nothing to write: Qdrant persists every change as it is made. `location` must be the index's own."""
        if location is not None and location != self.location:
            raise ConfigError(f"a Qdrant index lives at {self.location}; it cannot be saved to {location}")
