"""Exact k-nearest-neighbour search over an `EmbeddingStore`, in bounded memory.

Queries are taken in blocks and the stored rows in chunks; one float32 tile
of scores (`TILE_ELEMENTS`, 8 MiB) is reused for every (block, chunk) pair,
so memory does not grow with the gallery. For the euclidean, cosine and dot
metrics a tile is one BLAS matrix product (see `store` for the norm column
that makes euclidean a single product; cosine chunks are normalised into a
scratch buffer first); manhattan sums `|q - x|` one dimension at a time.

Selecting the `k` best per query is what makes brute force slow, so each tile
is first reduced to its row minima: only queries whose minimum beats their
current k-th best (usually a few percent once the first chunks are seen)
have their tile row scanned. Ties go to the lower row, as in a stable sort.

Example:

>>> import numpy as np
>>> from siamkit.index.store import EmbeddingStore
>>> store = EmbeddingStore(dim=1, metric="euclidean")
>>> store.add(np.array([[0.0], [1.0], [3.0]], "float32"), np.arange(3))
>>> search(store, np.array([[0.9]], "float32"), k=2).tolist()
[[1, 0]]
"""

import numpy as np

from .store import EUCLIDEAN

TILE_ELEMENTS = 2**21
MAX_QUERY_BLOCK = 1024
# Chunks shorter than this make the matrix products inefficient.
MIN_CHUNK = 1024
_CROWDED_ROWS = 64


class _TopK:
    """The `k` lowest scores seen so far per query, with their rows, sorted."""

    def __init__(self, n, k):
        self.k = k
        self.scores = np.full((n, k), np.inf, np.float32)
        self.rows = np.full((n, k), -1, np.int64)
        self.worst = np.full(n, np.inf, np.float32)

    def push(self, tile, first_row):
        """Merge a `(n, c)` tile of scores for rows `first_row ... first_row + c - 1`."""
        hit = np.flatnonzero(tile.min(axis=1) < self.worst)
        if len(hit) == 0:
            return
        if len(hit) > len(tile) // 4:  # scanning every row beats copying most of them
            hit, sub = np.arange(len(tile)), tile
        else:
            sub = tile[hit]
        mask = sub < self.worst[hit, None]
        # Rows with many candidates (the first chunks) keep only their k best and ties:
        # this bounds the merge's memory by about k entries per row.
        crowded = np.flatnonzero(mask.sum(axis=1) > 2 * self.k)
        for start in range(0, len(crowded), _CROWDED_ROWS):  # a few rows at a time: small copies
            rows = crowded[start : start + _CROWDED_ROWS]
            scores = sub[rows]
            mask[rows] &= scores <= np.partition(scores, self.k - 1, axis=1)[:, self.k - 1 : self.k]
        flat = np.flatnonzero(mask)
        which, cols = np.divmod(flat, tile.shape[1])
        counts = np.bincount(which, minlength=len(hit))
        # One padded row per hit query: its current best, then its new candidates.
        k = self.k
        scores = np.full((len(hit), k + counts.max()), np.inf, np.float32)
        rows = np.full(scores.shape, -1, np.int64)
        scores[:, :k], rows[:, :k] = self.scores[hit], self.rows[hit]
        slot = k + np.arange(len(flat)) - (np.cumsum(counts) - counts)[which]
        scores[which, slot] = sub.ravel()[flat]
        rows[which, slot] = cols + first_row
        # Stable: on equal scores the earlier (lower) row stays ahead.
        order = np.argsort(scores, axis=1, kind="stable")[:, :k]
        self.scores[hit] = np.take_along_axis(scores, order, axis=1)
        self.rows[hit] = np.take_along_axis(rows, order, axis=1)
        self.worst[hit] = self.scores[hit, -1]


def _augment(queries, metric):
    """Queries with the extra column matching the store's norm column."""
    out = np.empty((len(queries), queries.shape[1] + 1), np.float32)
    if metric in EUCLIDEAN:
        np.multiply(queries, -2.0, out=out[:, :-1])
        out[:, -1] = 1.0
    else:  # cosine (unit rows) and dot: lower `-q.x` is nearer
        np.negative(queries, out=out[:, :-1])
        out[:, -1] = 0.0
    return out


def _manhattan(queries, chunk, out, scratch):
    """`out[i, j] = sum |queries[i] - chunk[j]|`, one dimension at a time."""
    columns = np.ascontiguousarray(chunk.T)
    out[:] = 0.0
    for j in range(queries.shape[1]):
        np.subtract(queries[:, j, None], columns[j], out=scratch)
        np.abs(scratch, out=scratch)
        out += scratch


def search(store, queries, k):
    """Rows of the `k` nearest stored vectors per query, nearest first.

    Args:
        store: an `EmbeddingStore`.
        queries: prepared float32 queries `(n, dim)` (unit rows for cosine).
        k: neighbours per query.

    Returns:
        int64 rows `(n, k)`, -1 where the store has fewer than `k` rows. The
        order is by the tile score, which rounds like any float32 product;
        callers re-rank the `k` rows by exact distance.
    """
    out = np.full((len(queries), k), -1, np.int64)
    if len(store) == 0 or len(queries) == 0:
        return out
    block = min(len(queries), MAX_QUERY_BLOCK)
    chunk = max(MIN_CHUNK, TILE_ELEMENTS // block)
    metric = store.metric
    tile = np.empty((block, chunk), np.float32)
    if metric == "manhattan":
        scratch = np.empty_like(tile)
    elif metric == "cosine":
        scratch = np.empty((chunk, store.dim + 1), np.float32)
    for q0 in range(0, len(queries), block):
        q = queries[q0 : q0 + block]
        if metric != "manhattan":
            q = _augment(q, metric)
        top = _TopK(len(q), k)
        for first, vectors, _ in store.blocks(with_norms=metric != "manhattan"):
            for c0 in range(0, len(vectors), chunk):
                part = vectors[c0 : c0 + chunk]
                scores = tile[: len(q), : len(part)]
                if metric == "manhattan":
                    _manhattan(q, part, scores, scratch[: len(q), : len(part)])
                else:
                    if metric == "cosine":  # unit rows; the last column meets the queries' 0
                        part = np.multiply(part, part[:, -1:], out=scratch[: len(part)])
                    np.matmul(q, part.T, out=scores)
                top.push(scores, first + c0)
        out[q0 : q0 + len(q)] = top.rows
    return out


def distances(metric, queries, vectors):
    """Exact distances (similarities for `dot`) of `queries[i]` to `vectors[i, j]`.

    Args:
        metric: the store's metric.
        queries: prepared queries `(n, dim)` (unit rows for cosine).
        vectors: stored vectors `(n, m, dim)`.

    Returns:
        float32 `(n, m)`, computed in float64.
    """
    q = queries.astype(np.float64)[:, None, :]
    v = vectors.astype(np.float64)
    if metric == "dot":
        d = np.sum(q * v, axis=-1)
    elif metric == "cosine":
        norms = np.sqrt(np.sum(v * v, axis=-1))
        d = 1.0 - np.sum(q * v, axis=-1) / np.maximum(norms, 1e-12)
    elif metric == "manhattan":
        d = np.sum(np.abs(q - v), axis=-1)
    else:
        d = np.sum(np.square(q - v), axis=-1)
        if metric == "euclidean":
            d = np.sqrt(d)
    return d.astype(np.float32)
