"""Groups of near-duplicates among embeddings.

Each row is paired with its nearest rows (by the run's distance); a pair is a
duplicate when a decision function accepts it (the CLI uses the run's pair
head and calibrated threshold, see `matching`), and groups are the connected
components of the accepted pairs.

Example:

>>> import numpy as np
>>> z = np.array([[0.0], [0.01], [5.0], [5.02], [9.0]], "float32")
>>> close = lambda a, b: (None, np.abs(a - b)[:, 0] < 0.1)
>>> [g.tolist() for g in duplicate_groups(z, 2, close)]
[[0, 1], [2, 3]]
"""

import numpy as np

from .index import Index

_PAIRS_PER_CALL = 65536  # pairs per call of `decide`: bounds memory


def duplicate_groups(z, neighbors, decide, backend="exact", distance="euclidean"):
    """Groups of near-duplicate rows of `z`.

    Each row is paired with its `neighbors` nearest rows; pairs that `decide`
    accepts are joined (union-find), so a group is a connected component.

    Args:
        z: embeddings `(n, dim)`.
        neighbors: nearest rows checked per row.
        decide: `(z_a, z_b) -> (scores, accepted)` for row pairs, e.g. a
            `matching.pair_matcher`.
        backend: the index backend for the neighbor search.
        distance: the run's distance (a name of `siamkit.neighbors.DISTANCES`).

    Returns:
        A list of sorted row-index arrays, largest group first (ties: lowest row).
    """
    index = Index(z.shape[1], distance, backend)
    index.add(z)
    ids = index.search(z, min(neighbors + 1, len(z))).ids
    a = np.repeat(np.arange(len(z)), ids.shape[1])
    b = ids.ravel()
    keep = (b >= 0) & (a != b)
    # Each unordered pair once, however many of the two lists it is in.
    pairs = np.unique(np.sort(np.stack([a[keep], b[keep]], axis=1), axis=1), axis=0)
    same = np.zeros(len(pairs), bool)
    for start in range(0, len(pairs), _PAIRS_PER_CALL):
        part = pairs[start : start + _PAIRS_PER_CALL]
        same[start : start + len(part)] = decide(z[part[:, 0]], z[part[:, 1]])[1]
    parent = np.arange(len(z))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs[same]:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([root(i) for i in range(len(z))])
    order = np.argsort(roots, kind="stable")
    groups = [g for g in np.split(order, np.flatnonzero(np.diff(roots[order])) + 1) if len(g) > 1]
    return sorted(groups, key=lambda g: (-len(g), g[0]))
