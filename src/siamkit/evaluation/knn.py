"""Exact k-nearest neighbours in NumPy, in chunks of queries.

The full query x reference distance matrix is never built: queries are taken
`chunk_size` at a time, their distances to all references come from one
matrix product, and `argpartition` keeps the `k` best. Memory is about
`chunk_size * len(references) * 4 bytes` times a small constant, so 100k
queries against 100k references need a few hundred MB, not 40 GB.

Ties are broken by the lower reference index, so results do not depend on
`chunk_size` (beyond the rounding of the matrix products).

Example:

>>> import numpy as np
>>> refs = np.array([[0.0], [1.0], [3.0]])
>>> idx, dist = knn(np.array([[0.9]]), refs, k=2)
>>> idx.tolist(), np.round(dist, 2).tolist()
([[1, 0]], [[0.1, 0.9]])
"""

import numpy as np

from ..distances import ALIASES
from ..errors import ConfigError, DataError, check_choice

DISTANCES = ("euclidean", "sqeuclidean", "cosine", "dot", "manhattan")

# Default working-set size for one chunk of the distance matrix.
_CHUNK_BYTES = 64 * 2**20


def _check_embeddings(x, name):
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (n, dim), got shape {x.shape}")
    x = x.astype(np.result_type(x.dtype, np.float32), copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{name} contain NaN or infinite values; the model diverged or the inputs are broken")
    return x


def _l2_normalize(x):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _prepare(q, r, distance):
    """Unit-normalise for cosine and precompute the references' squared norms."""
    if distance == "cosine":
        q, r = _l2_normalize(q), _l2_normalize(r)
    return q, r, np.sum(r * r, axis=1)[None, :]


def pairwise_costs(queries, references, distance="euclidean"):
    """Every query's distance to every reference, `(n, m)`, as NumPy.

    The negative dot product for `distance="dot"`, so lower is always nearer.
    """
    return _costs(*_prepare(np.asarray(queries), np.asarray(references), distance), distance)


def _costs(q, r, r_sq, distance):
    """Distances (lower = nearer) of a query chunk to every reference."""
    if distance == "manhattan":
        # One (chunk, n_refs) accumulator, one dimension at a time: no (chunk, n_refs, dim) tensor.
        cost = np.zeros((len(q), len(r)), dtype=q.dtype)
        for j in range(q.shape[1]):
            cost += np.abs(q[:, j : j + 1] - r[:, j])
        return cost
    prod = q @ r.T
    if distance == "dot":
        return -prod
    if distance == "cosine":
        return 1.0 - prod  # both sides are unit vectors
    sq = np.maximum(np.sum(q * q, axis=1, keepdims=True) + r_sq - 2.0 * prod, 0.0)
    return np.sqrt(sq) if distance == "euclidean" else sq


def _k_smallest(cost, k):
    """Column indices of the `k` smallest entries of each row, ties to the lower index, sorted."""
    n = cost.shape[1]
    if k < n:
        kth = np.partition(cost, k - 1, axis=1)[:, k - 1 : k]
        keep = cost <= kth
        # Rows with ties at the k-th value keep too many: keep the tied ones of lowest index.
        crowded = np.flatnonzero(keep.sum(axis=1) > k)
        if len(crowded):
            sub, sub_kth = cost[crowded], kth[crowded]
            below = sub < sub_kth
            tied = sub == sub_kth
            room = k - below.sum(axis=1, keepdims=True)
            keep[crowded] = below | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= room))
        idx = np.nonzero(keep)[1].reshape(len(cost), k)
    else:
        idx = np.broadcast_to(np.arange(n), cost.shape)
    vals = np.take_along_axis(cost, idx, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")  # idx is ascending, so stable sort keeps index order on ties
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def knn(queries, references, k, distance="euclidean", exclude_self=False, chunk_size=None):
    """Exact k nearest references of each query.

    Args:
        queries: `(n, dim)` embeddings.
        references: `(m, dim)` embeddings.
        k: neighbours per query.
        distance: `euclidean`, `sqeuclidean`, `cosine`, `manhattan` or `dot`
            (a similarity: nearest = largest dot product).
        exclude_self: queries and references are the same set; never return
            query `i` as a neighbour of itself.
        chunk_size: queries per chunk; by default sized to keep one chunk's
            distance matrix near 64 MB.

    Returns:
        `(indices, distances)`, both `(n, k)`, nearest first: ascending
        distance, or descending dot product for `distance="dot"`.
    """
    chunks = list(iter_knn(queries, references, k, distance, exclude_self, chunk_size))
    return np.concatenate([c[1] for c in chunks]), np.concatenate([c[2] for c in chunks])


def iter_knn(queries, references, k, distance="euclidean", exclude_self=False, chunk_size=None):
    """`knn`, one chunk of queries at a time, for callers that reduce as they go.

    Takes the arguments of `knn`; yields `(start, indices, distances)` for
    the queries `start : start + len(indices)`.
    """
    distance = ALIASES.get(str(distance).lower(), str(distance).lower())
    check_choice("distance", distance, DISTANCES)
    q = _check_embeddings(queries, "queries")
    r = _check_embeddings(references, "references")
    if q.shape[1] != r.shape[1]:
        raise DataError(f"queries have dimension {q.shape[1]} but references have {r.shape[1]}")
    if exclude_self and len(q) != len(r):
        raise DataError(
            f"exclude_self needs the queries to be the references, got {len(q)} queries and {len(r)} references"
        )
    available = len(r) - int(exclude_self)
    if not 1 <= int(k) <= available:
        raise ConfigError(f"k must be between 1 and {available} (the references available per query), got {k}")
    k = int(k)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_BYTES // (4 * len(r)))
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size}")
    q, r, r_sq = _prepare(q, r, distance)
    for start in range(0, len(q), chunk_size):
        stop = min(start + chunk_size, len(q))
        cost = _costs(q[start:stop], r, r_sq, distance)
        if exclude_self:
            rows = np.arange(stop - start)
            cost[rows, start + rows] = np.inf
        idx, vals = _k_smallest(cost, k)
        yield start, idx, (-vals if distance == "dot" else vals)
