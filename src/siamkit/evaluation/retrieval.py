"""Retrieval metrics of Musgrave, Belongie & Lim (2020), "A Metric Learning Reality Check".

For each query, rank the references by distance (exact kNN, ties to the
lower reference index) and let `R` be the number of references that share
the query's label. Then:

- precision@1: is the nearest reference relevant?
- recall@K: is at least one of the K nearest relevant? (the "Recall@K" of
  the metric-learning literature, a hit rate);
- R-precision: the share of relevant references among the first `R`;
- MAP@R: `(1 / R) * sum_{i <= R} P(i) * rel(i)`, where `P(i)` is the
  precision of the first `i` and `rel(i)` whether the i-th is relevant.

Each is averaged over the queries that have at least one relevant reference
(`R >= 1`); the others are counted in `n_queries_without_match`.

Example:

>>> import numpy as np
>>> z = np.array([[0.0], [0.1], [1.0], [1.1]]); y = np.array([0, 0, 1, 1])
>>> retrieval_metrics(z, y, ks=(1,))["map_at_r"]
1.0
"""

import numpy as np

from ..errors import ConfigError, DataError
from ..neighbors import iter_knn


def _check_labels(labels, n, name):
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"{name} must have one label per embedding ({n}), got shape {labels.shape}")
    return labels


def retrieval_metrics(
    queries,
    query_labels,
    references=None,
    reference_labels=None,
    distance="euclidean",
    ks=(1, 5, 10),
    chunk_size=None,
    per_query=False,
    neighbors=0,
):
    """Precision@1, recall@K, R-precision and MAP@R of an embedding set.

    Args:
        queries: `(n, dim)` query embeddings.
        query_labels: `(n,)` labels of the queries.
        references: `(m, dim)` reference embeddings; by default the queries
            themselves, each query excluded from its own neighbors.
        reference_labels: `(m,)` labels of the references.
        distance: a name of `siamkit.neighbors.DISTANCES`.
        ks: the K of recall@K; each must be at most the references available.
        chunk_size: queries per kNN block (see `siamkit.neighbors.knn`).
        per_query: also return each query's values, for per-class tables.
        neighbors: also return the first `neighbors` neighbors of every
            query, from the same search (at most the search depth).

    Returns:
        A dict with `precision_at_1`, `recall_at_k` (`{"1": .., "5": ..}`),
        `r_precision`, `map_at_r`, `n_queries`, `n_queries_without_match`;
        with `per_query`, also `per_query`: `{"query": indices of the queries
        with a match, "precision_at_1", "r_precision", "map_at_r": arrays over
        them, "recall_at_k": {"1": array, ...}}`; with `neighbors`, also
        `neighbors`: `(indices, distances)` of every query, `(n, neighbors)`.
    """
    query_labels = _check_labels(query_labels, len(queries), "query_labels")
    same_set = references is None
    if same_set:
        references, reference_labels = queries, query_labels
    elif reference_labels is None:
        raise DataError("pass reference_labels with references")
    reference_labels = _check_labels(reference_labels, len(references), "reference_labels")
    available = len(references) - int(same_set)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > available:
        raise ConfigError(f"each K of recall@K must be between 1 and {available} (the references per query), got {ks}")

    # R of each query: references of its class, less itself when searching its own set.
    classes, counts = np.unique(reference_labels, return_counts=True)
    pos = np.minimum(np.searchsorted(classes, query_labels), len(classes) - 1)
    r_all = np.where(classes[pos] == query_labels, counts[pos], 0) - int(same_set)
    valid = r_all > 0
    if not valid.any():
        raise DataError(
            "no query has a reference of its own class, so retrieval metrics are undefined; "
            "each class needs at least two samples (or a reference sample)"
        )
    depth = int(min(available, max(r_all.max(), ks[-1], neighbors)))

    totals = {"p1": 0.0, "rp": 0.0, "map": 0.0, **{k: 0.0 for k in ks}}
    rows = {"p1": [], "rp": [], "map": [], **{k: [] for k in ks}}
    nearest = []
    for start, idx, dist in iter_knn(queries, references, depth, distance, same_set, chunk_size):
        if neighbors:
            nearest.append((idx[:, :neighbors], dist[:, :neighbors]))
        stop = start + len(idx)
        keep = valid[start:stop]
        rel = reference_labels[idx[keep]] == query_labels[start:stop][keep, None]
        r = r_all[start:stop][keep, None]
        rank = np.arange(1, depth + 1)
        within_r = rank <= r
        hits = np.cumsum(rel, axis=1)
        values = {
            "p1": rel[:, 0].astype("float64"),
            "rp": np.sum(rel & within_r, axis=1) / r[:, 0],
            "map": np.sum(np.where(rel & within_r, hits / rank, 0.0), axis=1) / r[:, 0],
            **{k: rel[:, :k].any(axis=1).astype("float64") for k in ks},
        }
        for key, value in values.items():
            totals[key] += np.sum(value)
            if per_query:
                rows[key].append(value)
    n = int(valid.sum())
    result = {
        "precision_at_1": float(totals["p1"] / n),
        "recall_at_k": {str(k): float(totals[k] / n) for k in ks},
        "r_precision": float(totals["rp"] / n),
        "map_at_r": float(totals["map"] / n),
        "n_queries": n,
        "n_queries_without_match": int(len(valid) - n),
    }
    if per_query:
        joined = {key: np.concatenate(value) for key, value in rows.items()}
        result["per_query"] = {
            "query": np.flatnonzero(valid),
            "precision_at_1": joined["p1"],
            "r_precision": joined["rp"],
            "map_at_r": joined["map"],
            "recall_at_k": {str(k): joined[k] for k in ks},
        }
    if neighbors:
        result["neighbors"] = tuple(np.concatenate(part) for part in zip(*nearest))
    return result
