"""The numbers behind the report's galleries: hardest errors, confused classes, per-class retrieval.

Example:

>>> import numpy as np
>>> fa, fr = hardest_errors([0, 0, 1, 1], [0.1, 0.4, 0.9, 0.3], threshold=0.5, higher_is_similar=False)
>>> fa.tolist(), fr.tolist()
([0, 1], [2])
"""

import numpy as np

from ..evaluation import verification


def hardest_errors(same, scores, threshold, higher_is_similar=True):
    """The pairs decided wrongly at `threshold`, hardest first.

    A false accept is a different-class pair decided "same"; the hardest is
    the most similar one. A false reject is a same-class pair decided
    "different"; the hardest is the least similar one. Ties keep pair order.

    Args:
        same: 1 for same-class pairs, 0 for the others.
        scores: the pair scores.
        threshold: the decision threshold, in the scores' units.
        higher_is_similar: the direction of `scores`.

    Returns:
        `(false_accepts, false_rejects)`: pair indices, hardest first.
    """
    same, scores = verification.check_pairs(same, scores)
    accepted = verification.decide(scores, threshold, higher_is_similar)
    similarity = scores if higher_is_similar else -scores
    false_accepts = np.flatnonzero(accepted & ~same)
    false_rejects = np.flatnonzero(~accepted & same)
    false_accepts = false_accepts[np.argsort(-similarity[false_accepts], kind="stable")]
    false_rejects = false_rejects[np.argsort(similarity[false_rejects], kind="stable")]
    return false_accepts, false_rejects


def confused_pairs(labels, neighbor_labels, top=10):
    """Class pairs most often confused by the nearest neighbour.

    Args:
        labels: `(n,)` class of each query.
        neighbor_labels: `(n,)` class of each query's nearest other sample.
        top: pairs to return.

    Returns:
        A list of `(class_a, class_b, count, examples)` with `class_a <
        class_b`, most confusions first; `count` counts the queries of either
        class whose nearest neighbour is of the other, `examples` their query
        indices.
    """
    labels, neighbor_labels = np.asarray(labels), np.asarray(neighbor_labels)
    wrong = np.flatnonzero(labels != neighbor_labels)
    found = {}
    for q in wrong:
        a, b = sorted((labels[q].item(), neighbor_labels[q].item()))
        found.setdefault((a, b), []).append(int(q))
    ranked = sorted(found.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(a, b, len(examples), examples) for (a, b), examples in ranked[:top]]


def per_class_retrieval(per_query, labels):
    """Retrieval metrics of each class, worst MAP@R first.

    Args:
        per_query: `retrieval_metrics(..., per_query=True)["per_query"]`.
        labels: `(n,)` labels of all the queries.

    Returns:
        A list of dicts: `label`, `queries`, `precision_at_1`, `map_at_r`,
        and `recall_at_k` (`{"1": ..}`).
    """
    labels = np.asarray(labels)[per_query["query"]]
    rows = []
    for c in np.unique(labels):
        mine = labels == c
        rows.append({
            "label": c.item(),
            "queries": int(mine.sum()),
            "precision_at_1": float(per_query["precision_at_1"][mine].mean()),
            "map_at_r": float(per_query["map_at_r"][mine].mean()),
            "recall_at_k": {k: float(v[mine].mean()) for k, v in per_query["recall_at_k"].items()},
        })
    return sorted(rows, key=lambda row: (row["map_at_r"], row["precision_at_1"]))
