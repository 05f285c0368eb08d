"""The embeddings of an index, with their ids, in fixed-size blocks.

Every backend keeps its vectors here, and the `exact` backend searches them
in place. Rows live in blocks of `BLOCK_ROWS`, all full but the last, so:

- adding never copies what is already stored (no doubling on growth);
- row `r` is at `blocks[r // BLOCK_ROWS][r % BLOCK_ROWS]`;
- removing compacts the blocks in place, so memory stays bounded.

Each row has `dim + 1` float32 columns: the vector as given, then the norm
term that exact search reads (`siamkit.neighbors.norm_column`). Vectors are
kept as given (not normalised) so that a model's own pair head can score
them later.

Example:

>>> import numpy as np
>>> store = EmbeddingStore(dim=2, distance="euclidean")
>>> store.add(np.eye(2, dtype="float32"), np.array([7, 9]))
>>> store.rows_of(np.array([9, 5])).tolist()
[1, -1]
"""

import numpy as np

from ..errors import ConfigError, DataError
from ..neighbors import check_distance, norm_column

# 16,384 rows x 65 float32 = 4 MiB per block for 64-d vectors: at most one
# partly filled block is wasted, and a block fits comfortably in L3 cache.
BLOCK_ROWS = 16384


def as_vectors(x, dim, name="embeddings"):
    """`x` as a C-contiguous float32 `(n, dim)` array, or a `DataError`."""
    x = np.asarray(x)
    if x.ndim == 1 and dim is not None and x.shape[0] == dim:
        x = x[None, :]
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise DataError(
            f"{name} must have shape (n, {dim}), got {x.shape}; they must come from the same model as the index"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{name} must be numeric, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{name} contain NaN or infinite values; check the model and its inputs")
    return x


class EmbeddingStore:
    """Rows of float32 vectors and their int64 ids.

    Args:
        dim: vector length.
        distance: a name of `siamkit.neighbors.DISTANCES`.
    """

    def __init__(self, dim, distance):
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        self.distance = check_distance(distance)
        self._vectors = []  # (BLOCK_ROWS, dim + 1) float32 blocks
        self._ids = []  # (BLOCK_ROWS,) int64 blocks
        self._size = 0
        self._sorted = None  # (order, sorted ids) for `rows_of`, built on demand

    def __len__(self):
        return self._size

    def _grow_to(self, size):
        while len(self._vectors) * BLOCK_ROWS < size:
            self._vectors.append(np.empty((BLOCK_ROWS, self.dim + 1), np.float32))
            self._ids.append(np.empty(BLOCK_ROWS, np.int64))

    def _spans(self, start, stop):
        """(block, first, last, offset) pieces covering rows `start:stop`."""
        row = start
        while row < stop:
            b, first = divmod(row, BLOCK_ROWS)
            last = min(BLOCK_ROWS, first + stop - row)
            yield b, first, last, row - start
            row += last - first

    def add(self, x, ids):
        """Append vectors `x` (n, dim) and their unique new `ids`."""
        start = self._size
        self._grow_to(start + len(x))
        for b, first, last, offset in self._spans(start, start + len(x)):
            n = last - first
            block = self._vectors[b]
            block[first:last, : self.dim] = x[offset : offset + n]
            block[first:last, self.dim] = norm_column(block[first:last, : self.dim], self.distance)
            self._ids[b][first:last] = ids[offset : offset + n]
        self._size += len(x)
        self._sorted = None

    def keep(self, mask):
        """Keep the rows where the boolean `mask` (one per row) is True, in order."""
        write = 0
        for start, vectors, ids in self.blocks(with_norms=True):
            sel = mask[start : start + len(ids)]
            kept_v, kept_i = vectors[sel], ids[sel]
            # Rows only move towards the front, so a block is read before it is overwritten.
            for b, first, last, offset in self._spans(write, write + len(kept_i)):
                self._vectors[b][first:last] = kept_v[offset : offset + last - first]
                self._ids[b][first:last] = kept_i[offset : offset + last - first]
            write += len(kept_i)
        self._size = write
        used = -(-write // BLOCK_ROWS)
        del self._vectors[used:], self._ids[used:]
        self._sorted = None

    def blocks(self, with_norms=False):
        """Yield `(first_row, vectors, ids)` views, block by block.

        `vectors` has `dim + 1` columns with `with_norms=True`, else `dim`.
        """
        width = self.dim + 1 if with_norms else self.dim
        for b, (vectors, ids) in enumerate(zip(self._vectors, self._ids)):
            n = min(BLOCK_ROWS, self._size - b * BLOCK_ROWS)
            yield b * BLOCK_ROWS, vectors[:n, :width], ids[:n]

    @property
    def ids(self):
        """All ids, in row order (a new array)."""
        return np.concatenate([ids for _, _, ids in self.blocks()] or [np.empty(0, np.int64)])

    def vectors(self, rows):
        """The vectors of `rows` (any shape of valid row numbers), shape `rows.shape + (dim,)`."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty(rows.shape + (self.dim,), np.float32)
        b, r = np.divmod(rows, BLOCK_ROWS)
        for block in np.unique(b):
            sel = b == block
            out[sel] = self._vectors[block][r[sel], : self.dim]
        return out

    def ids_at(self, rows):
        """Ids of `rows`; -1 where a row is -1."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full(rows.shape, -1, np.int64)
        valid = rows >= 0
        b, r = np.divmod(rows[valid], BLOCK_ROWS)
        found = np.empty(len(b), np.int64)
        for block in np.unique(b):
            sel = b == block
            found[sel] = self._ids[block][r[sel]]
        out[valid] = found
        return out

    def rows_of(self, ids):
        """Rows holding `ids`; -1 for ids not in the store."""
        ids = np.asarray(ids, dtype=np.int64)
        if self._sorted is None:
            all_ids = self.ids
            order = np.argsort(all_ids, kind="stable")
            self._sorted = order, all_ids[order]
        order, sorted_ids = self._sorted
        if len(sorted_ids) == 0:
            return np.full(ids.shape, -1, np.int64)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[pos] == ids, order[pos], -1)
