"""Embedding indexes: nearest-neighbor search over a gallery.

`Index` holds embeddings with ids and metadata, in the run's distance, and
searches them with a backend: `exact` (the default, NumPy brute force in
bounded memory), `faiss-flat`, `faiss-hnsw`, `faiss-ivfpq`, the compact
`faiss-sq8` (int8) and `faiss-fp16` (float16) codes, or `hnswlib`.
`Index.save(dir)` / `load(dir)` use a versioned, checksummed directory format.
`QdrantIndex` keeps the same kind of index in a Qdrant collection; both
follow the `VectorIndex` protocol, and `open_index` / `create_index` choose
between them by location (a folder, or `qdrant+local://PATH` /
`qdrant://HOST:PORT`). Searches take a metadata filter (`filters`).

Example:

>>> import numpy as np
>>> from siamkit import index
>>> gallery = index.Index(dim=3, distance="cosine")
>>> ids = gallery.add(np.eye(3, dtype="float32"))
>>> gallery.search(np.array([[0.1, 1.0, 0.0]], "float32"), k=2).ids.tolist()
[[1, 0]]
"""

from .backends import BACKENDS
from .index import Index, Neighbors, load
from .protocol import VectorIndex, create_index, open_index
from .qdrant import QdrantIndex

__all__ = ["BACKENDS", "Index", "Neighbors", "QdrantIndex", "VectorIndex", "create_index", "load", "open_index"]
