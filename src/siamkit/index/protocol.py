"""The index protocol: what every index offers, and opening one by its location.

`VectorIndex` is the small surface that the CLI, the service and user code
rely on. Two kinds implement it:

- `Index`, a checksummed directory (backends `exact`, `faiss-*`, `hnswlib`),
  at a folder path;
- `QdrantIndex`, a Qdrant collection, at `qdrant+local://PATH` (embedded) or
  `qdrant://HOST:PORT` (a server that several processes share).

`open_index(location)` and `create_index(location, ...)` pick the kind from
the location, so the same command works on either.

Example:

>>> import numpy as np
>>> index = create_index(None, dim=2, distance="euclidean")
>>> index.add(np.eye(2, dtype="float32"), metadata=[{"label": "a"}, {"label": "b"}]).tolist()
[0, 1]
>>> index.search(np.zeros((1, 2), "float32"), k=1, filter={"label": "b"}).ids.tolist()
[[1]]
"""

import typing

from ..errors import ConfigError
from .index import Index
from .qdrant import QdrantIndex, is_qdrant


@typing.runtime_checkable
class VectorIndex(typing.Protocol):
    """What every index offers. `Index` and `QdrantIndex` implement it.

    Attributes:
        dim, distance: the embedding size and the run's distance.
        fingerprint: the model fingerprint the embeddings must come from.
        info: JSON facts recorded with the index (the CLI records its run).
        location: where it lives (a folder or a Qdrant URI), or None.
        backend_name: `exact`, `faiss-flat`, ..., or `qdrant`.
    """

    dim: int
    distance: str
    fingerprint: typing.Optional[str]
    info: dict
    location: typing.Optional[str]
    backend_name: str

    def __len__(self): ...

    def add(self, embeddings, ids=None, metadata=None, fingerprint=None):
        """Add `(n, dim)` embeddings with optional ids and metadata dicts; returns the ids."""

    def remove(self, ids):
        """Remove items by id; a `DataError` (removing nothing) if any is absent."""

    def search(self, queries, k=10, fingerprint=None, filter=None):
        """`Neighbors(distances, ids)` of the `k` nearest items that pass the metadata `filter`."""

    def contains(self, ids):
        """Boolean array: which of `ids` are in the index."""

    def new_ids(self, n):
        """`n` ids not in the index."""

    def metadata(self, ids):
        """The metadata dicts of `ids`."""

    def embeddings(self, ids):
        """The stored embeddings of `ids`."""

    def check_model(self, fingerprint):
        """A `DataError` if `fingerprint` is another model's."""

    def save(self, location=None):
        """Make the index's state durable at `location` (default: where it lives)."""


def open_index(location):
    """The index at `location`: a folder written by `Index.save`, or a Qdrant URI.

    Args:
        location: a folder path, `qdrant+local://PATH` or `qdrant://HOST:PORT`
            (both with an optional `?collection=NAME`).
    """
    return QdrantIndex.open(location) if is_qdrant(location) else Index.load(location)


def check_target(location, backend=None, options=None, distance="euclidean"):
    """Check, before any long work, that `create_index` can make a `backend` index at `location`.

    A Qdrant URI is connected to and must not hold the collection yet; a
    folder backend and its options are checked for `distance`. Raises a
    `ConfigError` or `DataError` otherwise.
    """
    if is_qdrant(location):
        if backend not in (None, "qdrant") or options:
            raise ConfigError(f"{location} is a Qdrant collection: use --backend qdrant, without --option")
        QdrantIndex.check_free(location)
    elif backend == "qdrant":
        raise ConfigError(
            f"--backend qdrant needs a Qdrant URI as the index location (qdrant+local://PATH or qdrant://HOST:PORT), "
            f"got {location!r}"
        )
    else:
        Index(1, distance, backend or "exact", options)


def create_index(location, dim, distance="euclidean", backend=None, options=None, fingerprint=None, info=None):
    """A new, empty index for `location`.

    A Qdrant URI makes the collection at once (a `DataError` if it exists);
    a folder (or None) gives an in-memory `Index` that `save` writes there.

    Args:
        location: a folder, a Qdrant URI, or None.
        dim, distance: the embedding size and distance.
        backend: for a folder, a name of `BACKENDS` (default `exact`); for a
            Qdrant URI, None or `qdrant`.
        options: backend options (folder indexes only).
        fingerprint, info: see `Index`.
    """
    check_target(location, backend, options)
    if is_qdrant(location):
        return QdrantIndex.create(location, dim, distance, fingerprint, info)
    index = Index(dim, distance, backend or "exact", options, fingerprint, info)
    index.location = None if location is None else str(location)
    return index
