"""Search backends: who finds the candidate neighbors of a query.

Every backend works over the index's `EmbeddingStore` and returns candidate
*rows*; the `Index` then computes exact distances for those rows and ranks
them, so every backend reports the same, exact distances in the run's distance
(a calibrated threshold means the same thing whatever the backend).

- `exact`: brute force in NumPy (`siamkit.neighbors`); no file of its own.
- `faiss-flat`: FAISS `IndexFlat`, brute force in C++.
- `faiss-hnsw`: FAISS `IndexHNSWFlat`, a navigable small-world graph.
- `faiss-ivfpq`: FAISS `IndexIVFPQ`, inverted lists of product-quantised
  codes, trained on a sample of the first vectors added; it fetches
  `rerank * k` candidates, which the exact re-ranking then sorts.
- `faiss-sq8`, `faiss-fp16`: compact vectors, FAISS `IndexScalarQuantizer`
  codes of 1 byte (int8, per-dimension ranges trained on the first vectors
  added) or 2 bytes (float16) per dimension, scanned by brute force; they
  fetch `rerank * k` candidates, which the exact re-ranking on the stored
  float32 vectors then sorts.
- `hnswlib`: the `hnswlib` HNSW graph.

FAISS and hnswlib get vectors through `siamkit.neighbors.prepare`: for cosine they are
unit-normalised, so cosine is FAISS' (and hnswlib's) inner product.

Example:

>>> from siamkit.index.store import EmbeddingStore
>>> backend = get("faiss-hnsw", EmbeddingStore(dim=8, distance="cosine"), {"m": 16})
>>> backend.options["ef_search"]
64
"""

import math

import numpy as np

from ..errors import ConfigError, check_choice
from ..neighbors import DISTANCES, EUCLIDEAN, prepare, top_k_rows


def _options(given, defaults, backend):
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for backend {backend!r}; valid options are: {sorted(defaults)}")
    options = {**defaults, **given}
    for name, value in options.items():
        if value is not None and (not isinstance(value, (int, np.integer)) or value < (0 if name == "seed" else 1)):
            raise ConfigError(f"backend option {name} must be a positive integer, got {value!r}")
    return options


class Backend:
    """Base class. Subclasses set `name`, `distances`, `defaults` and the methods.

    Args:
        store: the index's `EmbeddingStore`.
        options: backend options (see each backend's `defaults`).
    """

    name = None
    distances = ()
    defaults = {}
    suffix = None  # extension of the backend's own file; None when it has none

    def __init__(self, store, options=None):
        check_choice(f"distance for backend {self.name!r}", store.distance, self.distances)
        self.store = store
        self.options = _options(dict(options or {}), self.defaults, self.name)

    def add(self, x, ids):
        """Index prepared vectors `x` (unit rows for cosine), already in the store."""

    def remove(self, ids):
        """Forget `ids`, already removed from the store."""

    def candidates(self, queries, k):
        """Candidate rows `(n, >= k)` per prepared query, -1 padded."""
        raise NotImplementedError

    @property
    def empty(self):
        """True while there is nothing for `save` to write (nothing added yet)."""
        return True

    def save(self, path):
        """Write the backend's own file."""

    def load(self, path):
        """Read the backend's own file (checksum already verified)."""


class Exact(Backend):
    """Brute force over the store itself: exact, nothing to build."""

    name = "exact"
    distances = DISTANCES

    def candidates(self, queries, k):
        blocks = lambda: ((first, vectors) for first, vectors, _ in self.store.blocks(with_norms=True))  # noqa: E731
        return top_k_rows(queries, blocks, k, self.store.distance)


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError("the FAISS backends need faiss-cpu: pip install 'siamkit[faiss]'") from None
    return faiss


class _Faiss(Backend):
    """FAISS index with the store's ids as its labels."""

    suffix = ".faiss"
    rerank = 1

    def __init__(self, store, options=None):
        super().__init__(store, options)
        self.faiss = _import_faiss()
        self.index = None

    def _metric(self):
        faiss = self.faiss
        return {
            "manhattan": faiss.METRIC_L1,
            "cosine": faiss.METRIC_INNER_PRODUCT,
            "dot": faiss.METRIC_INNER_PRODUCT,
        }.get(self.store.distance, faiss.METRIC_L2)

    def _build(self, sample):
        raise NotImplementedError

    def _tune(self, k):
        """Set search-time parameters for `k` results."""

    def add(self, x, ids):
        if self.index is None:
            self.index = self._build(x)
        self.index.add_with_ids(x, ids)

    def remove(self, ids):
        if self.index is not None:
            self.index.remove_ids(np.asarray(ids, np.int64))

    def candidates(self, queries, k):
        wanted = min(len(self.store), k * self.rerank)
        if self.index is None or wanted == 0:
            return np.full((len(queries), k), -1, np.int64)
        self._tune(wanted)
        _, labels = self.index.search(queries, wanted)
        return self.store.rows_of(labels)

    @property
    def empty(self):
        return self.index is None

    def save(self, path):
        self.faiss.write_index(self.index, path)

    def load(self, path):
        self.index = self.faiss.read_index(path)


class FaissFlat(_Faiss):
    """FAISS `IndexFlat`: exact brute force in C++."""

    name = "faiss-flat"
    distances = Exact.distances

    def _build(self, sample):
        return self.faiss.IndexIDMap2(self.faiss.IndexFlat(self.store.dim, self._metric()))


class FaissHNSW(_Faiss):
    """FAISS `IndexHNSWFlat`: graph search; removing rebuilds the graph.

    Options: `m` (links per node), `ef_construction`, `ef_search` (raised to
    `k` when smaller).
    """

    name = "faiss-hnsw"
    distances = Exact.distances
    defaults = {"m": 32, "ef_construction": 200, "ef_search": 64}

    def _build(self, sample):
        graph = self.faiss.IndexHNSWFlat(self.store.dim, self.options["m"], self._metric())
        graph.hnsw.efConstruction = self.options["ef_construction"]
        return self.faiss.IndexIDMap(graph)

    def _tune(self, k):
        self.faiss.downcast_index(self.index.index).hnsw.efSearch = max(self.options["ef_search"], k)

    def remove(self, ids):
        # FAISS cannot delete from an HNSW graph: rebuild it from the store.
        self.index = None
        for _, vectors, block_ids in self.store.blocks():
            self.add(prepare(np.ascontiguousarray(vectors), self.store.distance), block_ids)


def _largest_divisor(n, limit):
    return max(m for m in range(1, max(1, limit) + 1) if n % m == 0)


class FaissIVFPQ(_Faiss):
    """FAISS `IndexIVFPQ`, trained on a random sample of the first vectors added.

    Options (None = chosen from the data): `nlist` (inverted lists, about
    `4 sqrt(n)`), `m` (sub-quantisers, a divisor of `dim`, about `dim / 4`),
    `nbits` (bits per code, 8 when the sample allows), `nprobe` (lists
    visited per query, `nlist / 8`), `train_size` (sample size), `rerank`
    (candidates fetched per result for exact re-ranking), `seed`.
    """

    name = "faiss-ivfpq"
    distances = ("euclidean", "sqeuclidean", "cosine", "dot")
    defaults = {
        "nlist": None,
        "m": None,
        "nbits": None,
        "nprobe": None,
        "train_size": 100_000,
        "rerank": 8,
        "seed": 0,
    }

    @property
    def rerank(self):
        return self.options["rerank"]

    def _build(self, sample):
        faiss, opts, dim = self.faiss, self.options, self.store.dim
        rng = np.random.default_rng(opts["seed"])
        if len(sample) > opts["train_size"]:
            sample = sample[np.sort(rng.choice(len(sample), opts["train_size"], replace=False))]
        n = len(sample)
        # FAISS wants >= 39 training points per centroid, for the lists and for each PQ codebook.
        nlist = opts["nlist"] or int(min(max(1, round(4 * math.sqrt(n))), max(1, n // 39)))
        nbits = opts["nbits"] or int(min(8, max(1, math.floor(math.log2(max(2, n // 39))))))
        m = opts["m"] or _largest_divisor(dim, dim // 4)
        if dim % m:
            raise ConfigError(f"faiss-ivfpq option m={m} must divide the embedding size {dim}")
        index = faiss.IndexIVFPQ(faiss.IndexFlat(dim, self._metric()), dim, nlist, m, nbits, self._metric())
        index.cp.seed = index.pq.cp.seed = opts["seed"]
        index.train(sample)
        self.options.update(nlist=nlist, nbits=nbits, m=m, nprobe=opts["nprobe"] or max(1, nlist // 8))
        return index

    def _tune(self, k):
        self.index.nprobe = self.options["nprobe"]


class _FaissScalar(_Faiss):
    """FAISS `IndexScalarQuantizer` codes, brute-force scanned; candidates re-ranked in float32.

    Options: `rerank` (candidates fetched per result), `train_size` (sample
    of the first vectors added that sets the code ranges), `seed`.
    """

    distances = ("euclidean", "sqeuclidean", "cosine", "dot")
    defaults = {"rerank": 4, "train_size": 100_000, "seed": 0}
    quantizer = None  # the name of the FAISS quantizer type

    @property
    def rerank(self):
        return self.options["rerank"]

    def _build(self, sample):
        faiss, opts = self.faiss, self.options
        if len(sample) > opts["train_size"]:
            rng = np.random.default_rng(opts["seed"])
            sample = sample[np.sort(rng.choice(len(sample), opts["train_size"], replace=False))]
        codes = faiss.IndexScalarQuantizer(self.store.dim, getattr(faiss.ScalarQuantizer, self.quantizer), self._metric())
        codes.train(sample)
        return faiss.IndexIDMap2(codes)


class FaissSQ8(_FaissScalar):
    """int8 codes (1 byte per dimension): a quarter of the float32 bytes."""

    name = "faiss-sq8"
    quantizer = "QT_8bit"


class FaissFP16(_FaissScalar):
    """float16 codes (2 bytes per dimension): half the float32 bytes."""

    name = "faiss-fp16"
    quantizer = "QT_fp16"


class Hnswlib(Backend):
    """`hnswlib` graph; removed ids are marked deleted in the graph.

    Options: `m`, `ef_construction`, `ef_search` (raised to `k`), `seed`.
    """

    name = "hnswlib"
    distances = ("euclidean", "sqeuclidean", "cosine", "dot")
    defaults = {"m": 16, "ef_construction": 200, "ef_search": 64, "seed": 0}
    suffix = ".hnsw"

    def __init__(self, store, options=None):
        super().__init__(store, options)
        try:
            import hnswlib
        except ImportError:
            raise ConfigError("the hnswlib backend needs hnswlib: pip install 'siamkit[hnsw]'") from None
        # Cosine rows are unit vectors, so inner product ranks them (hnswlib's `ip` is 1 - x.y).
        space = "l2" if store.distance in EUCLIDEAN else "ip"
        self.index = hnswlib.Index(space=space, dim=store.dim)
        self._capacity = 0

    def _ensure(self, capacity):
        if self._capacity == 0:
            opts = self.options
            self.index.init_index(
                max_elements=capacity, ef_construction=opts["ef_construction"], M=opts["m"], random_seed=opts["seed"]
            )
        elif capacity > self._capacity:
            self.index.resize_index(max(capacity, 2 * self._capacity))
        self._capacity = self.index.get_max_elements()

    def add(self, x, ids):
        self._ensure(self.index.element_count + len(x) if self._capacity else len(x))
        self.index.add_items(x, ids)

    def remove(self, ids):
        for label in ids:
            self.index.mark_deleted(int(label))

    def candidates(self, queries, k):
        k = min(k, len(self.store))
        if k == 0:
            return np.full((len(queries), 1), -1, np.int64)
        self.index.set_ef(max(self.options["ef_search"], k))
        try:
            labels, _ = self.index.knn_query(queries, k=k)
        except RuntimeError:
            # A sparse graph (many deletions) can miss k live nodes at a small ef: search wider.
            self.index.set_ef(len(self.store))
            labels, _ = self.index.knn_query(queries, k=k)
        return self.store.rows_of(labels.astype(np.int64))

    @property
    def empty(self):
        return self._capacity == 0

    def save(self, path):
        self.index.save_index(path)

    def load(self, path):
        self.index.load_index(path)
        self._capacity = self.index.get_max_elements()


BACKENDS = {cls.name: cls for cls in (Exact, FaissFlat, FaissHNSW, FaissIVFPQ, FaissSQ8, FaissFP16, Hnswlib)}


def get(name, store, options=None):
    """A new backend by name, over `store`.

    Args:
        name: one of `BACKENDS`.
        store: the index's `EmbeddingStore`.
        options: dict of that backend's options.
    """
    check_choice("index backend", name, sorted(BACKENDS))
    return BACKENDS[name](store, options)
