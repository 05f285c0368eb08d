"""Exact k nearest neighbors in NumPy, and the names of the distances.

This is the one brute-force search of siamkit: retrieval metrics, one-shot
scoring and the `exact` index backend all use it. It imports only NumPy, so
the CLI and the index read `DISTANCES` without loading Keras.

The references are kept as rows with one extra column, the norm term of
`norm_column`: `|x|^2` for the euclidean distances, which folds the norm
into the matrix product (`[-2q, 1] . [x, |x|^2] = |x|^2 - 2 q.x` ranks like
`|q - x|^2`); `1 / |x|` for cosine, to normalise rows on the fly; 0 for dot
and manhattan. Queries are taken in blocks and the references in chunks; one
tile of scores (`TILE_ELEMENTS`, 8 MiB in float32) is reused for every
(block, chunk) pair, so memory does not grow with the references. For every
distance but manhattan a tile is one BLAS matrix product; manhattan sums
`|q - x|` one dimension at a time.

Selecting the `k` best per query is what makes brute force slow, so each tile
is first reduced to its row minima: only queries whose minimum beats their
current k-th best (usually a few percent once the first chunks are seen)
have their tile row scanned. A query's best are kept in row order, so adding
a chunk is a selection (a partition), never a sort: over its whole tile row
while it has many candidates (the first chunks, or a large `k`), over its few
new candidates later. The `k` rows found are then re-ranked by their exact
distance, computed in float64, with one sort. Ties go to the lower row, as in
a stable sort, so results do not depend on the block sizes.

Example:

>>> import numpy as np
>>> refs = np.array([[0.0], [1.0], [3.0]])
>>> idx, dist = knn(np.array([[0.9]]), refs, k=2)
>>> idx.tolist(), np.round(dist, 2).tolist()
([[1, 0]], [[0.1, 0.9]])
"""

import numpy as np

from .errors import ConfigError, DataError, check_choice

# The distances (lower = nearer), and `dot`, the one similarity (higher = nearer).
DISTANCES = ("euclidean", "sqeuclidean", "manhattan", "cosine", "dot")
ALIASES = {"l2": "euclidean", "l1": "manhattan", "cityblock": "manhattan", "dot_product": "dot"}
EUCLIDEAN = ("euclidean", "sqeuclidean")

TILE_ELEMENTS = 2**21
MAX_QUERY_BLOCK = 1024
# Chunks shorter than this make the matrix products inefficient.
MIN_CHUNK = 1024
_CROWDED_ROWS = 64
# Re-ranking gathers `(block, k, dim)` vectors: about 2 MiB of them at a time.
_RANK_ELEMENTS = 2**18


def check_distance(distance):
    """The canonical name of `distance` (a name of `DISTANCES` or `ALIASES`), else a `ConfigError`."""
    name = str(distance).lower()
    return check_choice("distance", ALIASES.get(name, name), DISTANCES)


def normalize(x):
    """Unit rows (zero rows stay zero), for the cosine distance."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.maximum(norms, 1e-12)[:, None]


def prepare(x, distance):
    """Queries as `distance` compares them: unit rows for cosine."""
    return normalize(x) if distance == "cosine" else x


def norm_column(rows, distance):
    """The extra column stored with reference `rows` for `distance` (see the module's docstring)."""
    if distance in ("manhattan", "dot"):
        return 0.0
    squared = np.einsum("ij,ij->i", rows, rows)
    return squared if distance in EUCLIDEAN else 1.0 / np.maximum(np.sqrt(squared), 1e-12)


def with_norm_column(x, distance):
    """`x` `(m, dim)` with its `norm_column`, `(m, dim + 1)`."""
    out = np.empty((len(x), x.shape[1] + 1), x.dtype)
    out[:, :-1] = x
    out[:, -1] = norm_column(x, distance)
    return out


def _lowest(scores, k):
    """Flat indices of the `k` lowest `scores` of each row, `(n, k)`, ascending; ties go to the lower column."""
    kth = np.partition(scores, k - 1, axis=1)[:, k - 1 : k]
    keep = scores <= kth
    # Rows with ties at the k-th score keep too many: the tied columns of lowest index stay.
    tied_rows = np.flatnonzero(keep.sum(axis=1) > k)
    if len(tied_rows):
        sub, sub_kth = scores[tied_rows], kth[tied_rows]
        tied = sub == sub_kth
        room = k - np.sum(sub < sub_kth, axis=1, keepdims=True)
        keep[tied_rows] = (sub < sub_kth) | (tied & (np.cumsum(tied, axis=1) <= room))
    return np.flatnonzero(keep).reshape(len(scores), k)


class _TopK:
    """The `k` lowest scores seen so far per query, with their rows, in row order (-1, for none, first).

    Keeping rows in order makes every merge a selection, not a sort: among
    `[best so far | new tile row]` the lower column is the lower row, so
    `_lowest` breaks ties as a stable sort would.
    """

    def __init__(self, n, k, dtype):
        self.k = k
        self.scores = np.full((n, k), np.inf, dtype)
        self.rows = np.full((n, k), -1, np.int64)
        self.worst = np.full(n, np.inf, dtype)

    def push(self, tile, first_row):
        """Merge a `(n, c)` tile of scores for rows `first_row ... first_row + c - 1`, above all rows held."""
        hit = np.flatnonzero(tile.min(axis=1) < self.worst)
        if len(hit) == 0:
            return
        if len(hit) > len(tile) // 4:  # scanning every row beats copying most of them
            hit, sub = np.arange(len(tile)), tile
        else:
            sub = tile[hit]
        mask = sub < self.worst[hit, None]
        # Queries with many candidates (the first chunks) select among their whole tile row;
        # the others among their few candidates, which bounds the merge's memory by about 3k per row.
        crowded = np.flatnonzero(mask.sum(axis=1) > 2 * self.k)
        for start in range(0, len(crowded), _CROWDED_ROWS):  # a few rows at a time: bounded copies
            self._select(hit, sub, crowded[start : start + _CROWDED_ROWS], first_row)
        mask[crowded] = False
        self._merge(hit, sub, mask, first_row)

    def _select(self, hit, sub, which, first_row):
        """Queries `hit[which]`: their `k` best among their best so far and tile rows `sub[which]`."""
        k, queries = self.k, hit[which]
        scores = np.empty((len(which), k + sub.shape[1]), sub.dtype)
        scores[:, :k], scores[:, k:] = self.scores[queries], sub[which]
        flat = _lowest(scores, k)
        cols = flat - scores.shape[1] * np.arange(len(which))[:, None]
        held = self.rows[queries].ravel()[np.minimum(cols, k - 1) + k * np.arange(len(which))[:, None]]
        self._keep(queries, scores.ravel()[flat], np.where(cols < k, held, cols - k + first_row))

    def _merge(self, hit, sub, mask, first_row):
        """Queries `hit`: their `k` best among their best so far and their candidates `sub[mask]`."""
        flat = np.flatnonzero(mask)
        if len(flat) == 0:
            return
        which, cols = np.divmod(flat, sub.shape[1])
        counts = np.bincount(which, minlength=len(hit))
        # One padded row per hit query: its current best, then its new candidates.
        k = self.k
        scores = np.full((len(hit), k + counts.max()), np.inf, sub.dtype)
        rows = np.full(scores.shape, -1, np.int64)
        scores[:, :k], rows[:, :k] = self.scores[hit], self.rows[hit]
        slot = k + np.arange(len(flat)) - (np.cumsum(counts) - counts)[which]
        scores[which, slot] = sub.ravel()[flat]
        rows[which, slot] = cols + first_row
        keep = _lowest(scores, k)  # the padding (inf, -1) comes last, after every real row
        self._keep(hit, scores.ravel()[keep], rows.ravel()[keep])

    def _keep(self, queries, scores, rows):
        self.scores[queries], self.rows[queries] = scores, rows
        self.worst[queries] = scores.max(axis=1)


def _augment(queries, distance):
    """Queries with the extra column matching the references' norm column."""
    out = np.empty((len(queries), queries.shape[1] + 1), queries.dtype)
    if distance in EUCLIDEAN:
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


def top_k_rows(queries, blocks, k, distance, exclude_self=False, first_query=0, query_block=None):
    """Rows of the `k` nearest references per query, by tile score, in row order.

    Args:
        queries: prepared queries `(n, dim)` (unit rows for cosine); the
            tiles are computed in their dtype.
        blocks: a callable returning an iterable of `(first_row, rows)`: the
            references in row order, each `rows` `(m, dim + 1)` with its
            `norm_column` last.
        k: neighbors per query.
        distance: a name of `DISTANCES`.
        exclude_self: query `i` is reference row `first_query + i`; never
            return it.
        first_query: see `exclude_self`.
        query_block: queries per block (default `MAX_QUERY_BLOCK`).

    Returns:
        int64 rows `(n, k)`, ascending, -1 (first) where there are fewer
        than `k` references. The tile score rounds like any matrix product;
        `rerank` orders the rows by exact distance.
    """
    out = np.full((len(queries), k), -1, np.int64)
    if len(queries) == 0:
        return out
    # Chunks of at least 16k rows: a query's merge reads its k best as well as its tile row, which
    # costs little only if the chunk is much wider than k.
    block = min(len(queries), query_block or MAX_QUERY_BLOCK, max(1, TILE_ELEMENTS // (16 * k)))
    chunk = max(MIN_CHUNK, TILE_ELEMENTS // block)
    tile = np.empty((block, chunk), queries.dtype)
    if distance == "manhattan":
        scratch = np.empty_like(tile)
    elif distance == "cosine":
        scratch = np.empty((chunk, queries.shape[1] + 1), queries.dtype)
    for q0 in range(0, len(queries), block):
        q = queries[q0 : q0 + block]
        if distance != "manhattan":
            q = _augment(q, distance)
        top = _TopK(len(q), k, tile.dtype)
        for first, vectors in blocks():
            for c0 in range(0, len(vectors), chunk):
                part = vectors[c0 : c0 + chunk]
                scores = tile[: len(q), : len(part)]
                if distance == "manhattan":
                    _manhattan(q, part[:, :-1], scores, scratch[: len(q), : len(part)])
                else:
                    if distance == "cosine":  # unit rows; the last column meets the queries' 0
                        part = np.multiply(part, part[:, -1:], out=scratch[: len(part)])
                    np.matmul(q, part.T, out=scores)
                if exclude_self:
                    # Query q0 + i is reference row first_query + q0 + i.
                    lo = max(first_query + q0, first + c0)
                    hi = min(first_query + q0 + len(q), first + c0 + len(part))
                    same = np.arange(lo, hi)
                    scores[same - first_query - q0, same - first - c0] = np.inf
                top.push(scores, first + c0)
        out[q0 : q0 + len(q)] = top.rows
    return out


def exact_distances(distance, queries, vectors, dtype=np.float32):
    """Exact distances (similarities for `dot`) of `queries[i]` to `vectors[i, j]`.

    Args:
        distance: a name of `DISTANCES`.
        queries: prepared queries `(n, dim)` (unit rows for cosine).
        vectors: references `(n, m, dim)`, as given.
        dtype: of the result.

    Returns:
        `(n, m)`, computed in float64.
    """
    q = queries.astype(np.float64)
    if distance in EUCLIDEAN:
        v = np.subtract(vectors, q[:, None, :], dtype=np.float64)  # cast and subtract in one pass
        d = np.einsum("nmd,nmd->nm", v, v)
        return (np.sqrt(d) if distance == "euclidean" else d).astype(dtype)
    v = vectors.astype(np.float64)
    if distance == "dot":
        d = np.einsum("nd,nmd->nm", q, v)
    elif distance == "cosine":
        norms = np.sqrt(np.einsum("nmd,nmd->nm", v, v))
        d = 1.0 - np.einsum("nd,nmd->nm", q, v) / np.maximum(norms, 1e-12)
    else:
        d = np.sum(np.abs(q[:, None, :] - v), axis=-1)
    return d.astype(dtype)


def paired_distances(a, b, distance="euclidean"):
    """Exact distances of `a[i]` to `b[i]` (similarities for `dot`), computed in float64.

    NaN in the embeddings gives NaN distances (for the caller to report).

    The NumPy twin of `siamkit.distances.get(distance).paired`, for scoring
    a few pairs without a Keras call (a service's compare).

    Args:
        a, b: `(n, dim)` embeddings.
        distance: a name of `DISTANCES` or `ALIASES`.

    Returns:
        float64 `(n,)`.

    Example:

    >>> paired_distances([[0.0, 0.0]], [[3.0, 4.0]]).tolist()
    [5.0]
    """
    distance = check_distance(distance)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise DataError(f"a and b must be 2-D arrays (n, dim) of the same shape, got {a.shape} and {b.shape}")
    return exact_distances(distance, prepare(a, distance), b[:, None, :], np.float64)[:, 0]


def rerank(queries, rows, vectors_of, k, distance):
    """Exact distances of candidate `rows`, the best `k` per query, ties to the lower row.

    Args:
        queries: prepared queries `(n, dim)`; the distances take their dtype.
        rows: candidate rows `(n, c)`, -1 for none.
        vectors_of: maps an array of valid rows to their vectors `(r, dim)`.
        k: results per query.
        distance: a name of `DISTANCES`.

    Returns:
        `(rows, distances)`, both `(n, k)`, nearest first: ascending distance,
        or descending similarity for `dot`; -1 rows (distance inf, -inf for
        `dot`) where there are fewer than `k` candidates.
    """
    worst = -np.inf if distance == "dot" else np.inf
    valid = rows >= 0
    d = np.empty(rows.shape, queries.dtype)
    dim = queries.shape[1]
    block = max(1, _RANK_ELEMENTS // max(1, rows.shape[1] * dim))
    for start in range(0, len(queries), block):
        r, ok = rows[start : start + block], valid[start : start + block]
        if ok.all():
            vectors = vectors_of(r)
        else:
            vectors = np.zeros(r.shape + (dim,), queries.dtype)
            vectors[ok] = vectors_of(r[ok])
        d[start : start + block] = exact_distances(distance, queries[start : start + block], vectors, d.dtype)
    d[~valid] = worst
    cost, ranked = _ascending(-d if distance == "dot" else d, rows, k)
    out_rows = np.full((len(queries), k), -1, np.int64)
    out_dist = np.full((len(queries), k), worst, queries.dtype)
    out_rows[:, : ranked.shape[1]] = ranked
    out_dist[:, : ranked.shape[1]] = -cost if distance == "dot" else cost
    return out_rows, out_dist


def _ascending(cost, rows, k):
    """The `k` lowest `(cost, rows)` of each query, by cost, then row; -1 rows last among equal costs."""
    if cost.dtype == np.float32 and rows.max(initial=0) < 2**31 - 1:
        # A float32 cost and a row fit one 64-bit key, and one plain sort of keys is about twice as
        # fast as a two-key stable sort. The key's high half maps floats to unsigned ints in order
        # (negative floats: all bits flipped; others: sign bit set); 0.0 stands for -0.0.
        bits = (cost + np.float32(0)).view(np.uint32)
        key = np.where(bits >> 31, ~bits, bits | np.uint32(2**31)).astype(np.uint64) << np.uint64(32)
        key |= rows.astype(np.uint32)  # -1 becomes the highest row
        key.sort(axis=1)
        key = key[:, :k]
        high = (key >> np.uint64(32)).astype(np.uint32)
        cost = np.where(high >> 31, high & np.uint32(2**31 - 1), ~high).view(np.float32)
        return cost, key.astype(np.uint32).view(np.int32).astype(np.int64)
    order = np.lexsort((np.where(rows >= 0, rows, np.iinfo(np.int64).max), cost), axis=-1)[:, :k]
    return np.take_along_axis(cost, order, 1), np.take_along_axis(rows, order, 1)


def _check_embeddings(x, name):
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"{name} must be a non-empty 2-D array (n, dim), got shape {x.shape}")
    x = x.astype(np.result_type(x.dtype, np.float32), copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{name} contain NaN or infinite values; the model diverged or the inputs are broken")
    return x


def knn(queries, references, k, distance="euclidean", exclude_self=False, chunk_size=None):
    """Exact k nearest references of each query.

    Args:
        queries: `(n, dim)` embeddings.
        references: `(m, dim)` embeddings.
        k: neighbors per query.
        distance: a name of `DISTANCES` or `ALIASES`; `dot` is a similarity
            (nearest = largest dot product).
        exclude_self: queries and references are the same set; never return
            query `i` as a neighbor of itself.
        chunk_size: queries per block (default `MAX_QUERY_BLOCK`); results do
            not depend on it.

    Returns:
        `(indices, distances)`, both `(n, k)`, nearest first: ascending
        distance, or descending dot product for `distance="dot"`. Distances
        have the queries' float dtype (float32 or float64).
    """
    chunks = list(iter_knn(queries, references, k, distance, exclude_self, chunk_size))
    return np.concatenate([c[1] for c in chunks]), np.concatenate([c[2] for c in chunks])


def iter_knn(queries, references, k, distance="euclidean", exclude_self=False, chunk_size=None):
    """`knn`, one block of queries at a time, for callers that reduce as they go.

    Takes the arguments of `knn`; yields `(start, indices, distances)` for
    the queries `start : start + len(indices)`.
    """
    distance = check_distance(distance)
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
    chunk_size = MAX_QUERY_BLOCK if chunk_size is None else int(chunk_size)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be at least 1, got {chunk_size}")
    dtype = np.result_type(q.dtype, r.dtype)
    q, r = prepare(q.astype(dtype, copy=False), distance), r.astype(dtype, copy=False)
    refs = with_norm_column(r, distance)
    for start in range(0, len(q), chunk_size):
        block = q[start : start + chunk_size]
        rows = top_k_rows(block, lambda: [(0, refs)], k, distance, exclude_self, start, chunk_size)
        # np.take gathers rows about twice as fast as fancy indexing.
        yield (start, *rerank(block, rows, lambda at: np.take(r, at, axis=0), k, distance))


def pairwise_costs(queries, references, distance="euclidean"):
    """Every query's distance to every reference, `(n, m)`, as NumPy.

    The negative dot product for `distance="dot"`, so lower is always nearer.
    """
    distance = check_distance(distance)
    q, r = np.asarray(queries), np.asarray(references)
    q = prepare(q.astype(np.result_type(q.dtype, np.float32), copy=False), distance)
    d = np.empty((len(q), len(r)), q.dtype)
    block = max(1, _RANK_ELEMENTS // max(1, r.size))  # queries at a time: about 2 MiB of gathered references
    for start in range(0, len(q), block):
        part = q[start : start + block]
        d[start : start + block] = exact_distances(distance, part, np.broadcast_to(r, (len(part),) + r.shape), q.dtype)
    return -d if distance == "dot" else d
