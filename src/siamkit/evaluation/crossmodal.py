"""Cross-modal retrieval: queries of one modality against references of the other.

A retrieved item is a hit when its class matches the query's (a spoken
"seven" should find handwritten sevens). Metrics are those of
`retrieval_metrics` in both directions; `recall_table` flattens the R@K.

Example:

>>> import numpy as np
>>> za = np.array([[1.0, 0.0], [0.0, 1.0]]); zb = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> m = crossmodal_retrieval(za, [0, 1], zb, [0, 1], distance="cosine", ks=(1,))
>>> m["b_to_a"]["recall_at_k"]["1"], m["a_to_b"]["recall_at_k"]["1"]
(1.0, 1.0)
"""

from .retrieval import retrieval_metrics


def crossmodal_retrieval(z_a, y_a, z_b, y_b, distance="cosine", ks=(1, 5, 10), names=("a", "b")):
    """Retrieval metrics from modality b to a and from a to b.

    Args:
        z_a, y_a: embeddings `(n_a, dim)` and class labels of modality a.
        z_b, y_b: embeddings `(n_b, dim)` and class labels of modality b.
        distance: a name of `siamkit.neighbors.DISTANCES`.
        ks: the K of R@K; each at most the size of the smaller side.
        names: names of the two modalities, used in the keys.

    Returns:
        `{"B_to_A": metrics, "A_to_B": metrics}` with `A`, `B` from `names`,
        each as returned by `retrieval_metrics` (`recall_at_k`,
        `precision_at_1`, `map_at_r`, ...).
    """
    a, b = names
    return {
        f"{b}_to_{a}": retrieval_metrics(z_b, y_b, z_a, y_a, distance=distance, ks=ks),
        f"{a}_to_{b}": retrieval_metrics(z_a, y_a, z_b, y_b, distance=distance, ks=ks),
    }


def recall_table(metrics):
    """`{"b_to_a": {"R@1": .., "R@5": ..}, ...}` from `crossmodal_retrieval`'s output."""
    return {
        direction: {f"R@{k}": value for k, value in m["recall_at_k"].items()} for direction, m in metrics.items()
    }


def evaluate_run(run, x_a, y_a, x_b, y_b, ks=(1, 5, 10), names=("a", "b"), batch_size=256):
    """Cross-modal retrieval of a two-tower `siamkit.runs.Run` on raw inputs.

    Embeds `x_a` with tower a and `x_b` with tower b, then calls
    `crossmodal_retrieval` with the run's distance.
    """
    z_a = run.embed(x_a, modality="a", batch_size=batch_size)
    z_b = run.embed(x_b, modality="b", batch_size=batch_size)
    return crossmodal_retrieval(z_a, y_a, z_b, y_b, distance=run.distance, ks=ks, names=names)
