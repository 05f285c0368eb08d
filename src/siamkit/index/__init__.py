"""Embedding indexes: nearest-neighbor search over a gallery.

`Index` holds embeddings with ids and metadata, in the run's distance, and
searches them with a backend: `exact` (the default, NumPy brute force in
bounded memory), `faiss-flat`, `faiss-hnsw`, `faiss-ivfpq` or `hnswlib`.
`Index.save(dir)` / `load(dir)` use a versioned, checksummed directory format.

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

__all__ = ["BACKENDS", "Index", "Neighbors", "load"]
