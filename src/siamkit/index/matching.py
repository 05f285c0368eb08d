"""Same-or-different decisions for search results, with the run's own pair head.

A result is a match when the model's pair score for (query, result) passes
a threshold: the run's calibrated one (`calibration.json`, written by
`siamkit evaluate`) or one given in the head's units. Scoring with the pair
head, not the index metric, keeps the decision the one the threshold was
calibrated for, whatever the head (distance, similarity or probability).

Example:

>>> decide = decider(run)                            # doctest: +SKIP
>>> decide(z_query_rows, z_result_rows)              # doctest: +SKIP
(array([0.12, 0.93]), array([ True, False]))
"""

import numpy as np


def threshold_for(run, threshold=None, method=None):
    """`(threshold, source)`: `threshold` if given, else the run's calibrated one, else None."""
    from ..evaluation import calibration

    if threshold is not None:
        return float(threshold), "given"
    if run.calibration is None:
        return None
    return calibration.run_threshold(run, method)


def decider(run, threshold=None, method=None):
    """A function `(z_a, z_b) -> (scores, matches)` for row pairs, or None without a threshold."""
    from ..evaluation.verification import decide

    found = threshold_for(run, threshold, method)
    if found is None:
        return None

    def score_and_decide(z_a, z_b):
        if len(z_a) == 0:
            return np.empty(0), np.empty(0, bool)
        scores = np.asarray(run.model.score_embeddings(z_a, z_b), dtype="float64").reshape(-1)
        return scores, decide(scores, found[0], run.higher_is_similar)

    score_and_decide.threshold, score_and_decide.source = found
    return score_and_decide


def search_files(index, run, paths, k, decide=None, batch_size=256, invert=None, progress=True):
    """Ranked results of query files: a list of `{"query", "results": [...]}`.

    `run` must be the index's run (see `inputs.index_run`); `decide` is a
    `decider` or None.
    """
    from .inputs import embed_files

    z = embed_files(run, paths, batch_size, invert, progress)
    found = index.search(z, k)
    out = []
    for path, zq, dist, ids in zip(paths, z, found.distances, found.ids):
        ids, dist = ids[ids >= 0], dist[ids >= 0]
        results = [
            {"rank": r + 1, "id": int(i), "distance": float(d), **meta}
            for r, (i, d, meta) in enumerate(zip(ids, dist, index.metadata(ids)))
        ]
        if decide is not None:
            scores, matches = decide(np.repeat(zq[None], len(ids), 0), index.embeddings(ids))
            for result, score, match in zip(results, scores, matches):
                result.update(score=float(score), match=bool(match))
        out.append({"query": path, "results": results})
    return out
