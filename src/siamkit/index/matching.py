"""Same-or-different decisions for search results, with the run's own pair head.

A result is a match when the model's pair score for (query, result) passes
the run's decision (`siamkit.evaluation.calibration.Decision`): its
calibrated threshold, or one given in the head's units. Scoring with the
pair head, not the index metric, keeps the decision the one the threshold
was calibrated for, whatever the head (distance, similarity or probability).

Example:

>>> decide = pair_matcher(run, Decision.for_run(run))   # doctest: +SKIP
>>> decide(z_query_rows, z_result_rows)                 # doctest: +SKIP
(array([0.12, 0.93]), array([ True, False]))
"""

import numpy as np


def pair_matcher(run, decision):
    """A function `(z_a, z_b) -> (scores, matches)` for row pairs of embeddings.

    Args:
        run: the `Run` whose pair head scores the rows.
        decision: a `Decision` of that run, with a threshold.
    """

    def score_and_decide(z_a, z_b):
        if len(z_a) == 0:
            return np.empty(0), np.empty(0, bool)
        scores = np.asarray(run.model.score_embeddings(z_a, z_b), dtype="float64").reshape(-1)
        return scores, decision(scores)

    return score_and_decide


def search_files(index, run, paths, k, decision=None, batch_size=256, invert=None, progress=True, filter=None):
    """Ranked results of query files: a list of `{"query", "results": [...]}`.

    `index` is any `VectorIndex`; `run` must be its run (see
    `inputs.index_run`). With a `decision` that has a threshold, each result
    also gets the pair head's `score` and `match`. `filter` keeps only items
    whose metadata passes it (see `filters`).
    """
    from .inputs import embed_files

    z = embed_files(run, paths, batch_size, invert, progress)
    return search_embeddings(index, run, z, paths, k, decision, filter)


def search_embeddings(index, run, z, queries, k, decision=None, filter=None):
    """`search_files` for query embeddings `z` made by `run`, one row per name in `queries`."""
    found = index.search(z, k, filter=filter)
    decide = None if decision is None or decision.threshold is None else pair_matcher(run, decision)
    out = []
    for query, zq, dist, ids in zip(queries, z, found.distances, found.ids):
        ids, dist = ids[ids >= 0], dist[ids >= 0]
        results = [
            {"rank": r + 1, "id": int(i), "distance": float(d), **meta}
            for r, (i, d, meta) in enumerate(zip(ids, dist, index.metadata(ids)))
        ]
        if decide is not None:
            scores, matches = decide(np.repeat(zq[None], len(ids), 0), index.embeddings(ids))
            for result, score, match in zip(results, scores, matches):
                result.update(score=float(score), match=bool(match))
        out.append({"query": query, "results": results})
    return out
