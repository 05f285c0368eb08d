"""Verification protocols: which pairs of samples to score.

- `random_pairs`: balanced, seeded pairs (half same-class, half not), for
  sets too large to score every pair;
- `all_pairs`: every unordered pair once, for small sets;
- `pair_scores`: score index pairs from embeddings computed once, so each
  sample goes through the encoder a single time whatever the pair count.

A user's pair CSV is read by `siamkit.datasets` into a `Pairs` object
(`index_a`, `index_b`, `y` over two pools), which `pair_scores` also takes.

Example:

>>> import numpy as np
>>> i, j, same = all_pairs(np.array([0, 0, 1]))
>>> i.tolist(), j.tolist(), same.tolist()
([0, 0, 1], [1, 2, 2], [1, 0, 0])
"""

import numpy as np

from ..data import sample_pairs
from ..errors import DataError

# all_pairs refuses sets whose pair count exceeds this (use random_pairs).
MAX_ALL_PAIRS = 5_000_000


def random_pairs(y, n_pairs, seed=0):
    """`n_pairs` balanced pairs of sample indices, drawn with a seed.

    Args:
        y: class labels `(n,)`, typically of held-out classes.
        n_pairs: number of pairs; half are same-class.
        seed: the random seed.

    Returns:
        `(first, second, same)`: index arrays and int labels (1 = same).
    """
    if int(n_pairs) < 2:
        raise DataError(f"n_pairs must be at least 2 (one same-class, one different), got {n_pairs}")
    first, second, same = sample_pairs(y, int(n_pairs), positive_fraction=0.5, rng=seed)
    return first, second, same.astype("int64")


def all_pairs(y, max_pairs=MAX_ALL_PAIRS):
    """Every unordered pair `i < j` of samples, once.

    Args:
        y: class labels `(n,)`.
        max_pairs: refuse sets with more pairs than this.

    Returns:
        `(first, second, same)`: index arrays and int labels (1 = same).
    """
    y = np.asarray(y)
    n_pairs = len(y) * (len(y) - 1) // 2
    if n_pairs > max_pairs:
        raise DataError(
            f"{len(y)} samples make {n_pairs:,} pairs, more than the all-pairs limit of {max_pairs:,}; "
            "use random pairs instead"
        )
    first, second = np.triu_indices(len(y), k=1)
    return first, second, (y[first] == y[second]).astype("int64")


def pair_scores(score_embeddings, z_a, z_b, first, second, batch_size=65536):
    """Scores of the pairs `(z_a[first[i]], z_b[second[i]])`, in batches.

    Args:
        score_embeddings: the model's `score_embeddings(za, zb)`.
        z_a, z_b: embeddings of the two pools (the same array for one pool).
        first, second: index arrays of the pairs.
        batch_size: pairs per call, to bound memory.

    Returns:
        float64 scores `(n_pairs,)`.
    """
    out = [
        np.asarray(score_embeddings(z_a[first[s : s + batch_size]], z_b[second[s : s + batch_size]]), "float64")
        for s in range(0, len(first), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0)
