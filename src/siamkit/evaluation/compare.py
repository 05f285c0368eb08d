"""Compare two inputs with a run: distance, similarity, and a same/different decision.

The decision is a `calibration.Decision`: the pair head's score against a
threshold given explicitly (in the head's units), or the calibrated one from
the run's `calibration.json`. Works for distance heads (lower = same) and
similarity or probability heads (higher = same).

Example:

>>> result = compare_files("runs/digits", "a.png", "b.png")   # doctest: +SKIP
>>> result["same"], result["distance"]                        # doctest: +SKIP
(True, 0.21)
"""

import os

import numpy as np

from ..errors import ConfigError, DataError
from ..neighbors import paired_distances
from ..runs import Run
from .calibration import Decision


def _similarity(run, score, distance):
    """A similarity to show a user, and how it was computed."""
    kind = run.model.output_kind
    if kind == "probability":
        return score, "same-class probability of the pair head"
    if run.distance == "cosine":
        return 1.0 - distance, "cosine similarity"
    if run.distance == "dot":
        return distance, "dot product"
    return 1.0 / (1.0 + distance), f"1 / (1 + {run.distance} distance)"


def _one(x, shape):
    x = np.asarray(x, "float32")
    x = x[None] if x.shape == shape else x
    if x.shape != (1, *shape):
        raise DataError(f"compare takes one input per side shaped {shape}, got an array of shape {x.shape}")
    return x


def _decision(run, threshold, method, decision):
    if decision is None:
        return Decision.for_run(run, threshold, method, required=True)
    if threshold is not None or method is not None:
        raise ConfigError("pass a decision, or a threshold or method to make one, not both")
    return decision


def compare(run, x_a, x_b, threshold=None, method=None, decision=None):
    """Compare one pair of inputs, shaped like the run's inputs.

    Args:
        run: a `Run` or its directory.
        x_a, x_b: one input each, `(h, w, c)`, or a batch of one.
        threshold: decision threshold in the pair head's units; default: the
            run's calibrated threshold.
        method: which calibrated threshold (`accuracy`, `eer`, `far`);
            default: the calibration's own default.
        decision: a `Decision` made beforehand (`Decision.for_run`), in place
            of `threshold` and `method`.

    Returns:
        A dict: `score` (the head's output), `output_kind`, `distance` (in
        embedding space, by the run's distance), `similarity` and
        `similarity_kind`, `threshold`, `threshold_source`, and `same`.
    """
    run = run if isinstance(run, Run) else Run(run)
    decision = _decision(run, threshold, method, decision)
    modality_b = "b" if run.is_two_tower else "a"
    shape_b = tuple(run.config["input_shape_b"]) if run.is_two_tower else run.input_shape
    x_a, x_b = _one(x_a, run.input_shape), _one(x_b, shape_b)
    return compare_embeddings(run, run.embed(x_a), run.embed(x_b, modality_b), decision)


def compare_embeddings(run, z_a, z_b, decision):
    """`compare`'s answer for one pair of embeddings made by `run` (`(1, dim)` each), under a `Decision`."""
    score = float(np.asarray(run.model.score_embeddings(z_a, z_b))[0])
    if not np.isfinite(score):
        raise DataError("the model's score for this pair is NaN or infinite; the run's model is broken")
    distance = float(paired_distances(z_a, z_b, run.distance)[0])
    similarity, similarity_kind = _similarity(run, score, distance)
    same = bool(decision([score])[0])
    return {
        "score": score,
        "output_kind": run.model.output_kind,
        "distance": distance,
        "distance_name": run.distance,
        "similarity": float(similarity),
        "similarity_kind": similarity_kind,
        "threshold": decision.threshold,
        "threshold_source": decision.source,
        "higher_is_similar": run.higher_is_similar,
        "same": same,
    }


def compare_files(run, path_a, path_b, threshold=None, method=None, invert=None, decision=None):
    """`compare` on two files, read as the run was trained (`Run.read_inputs`).

    For a two-tower run, `path_a` is read by tower a and `path_b` by tower b
    (for example an image and a `.wav` recording); given the other way round
    (each file of the other tower's type), they are swapped, so either
    modality may come first.
    """
    run = run if isinstance(run, Run) else Run(run)
    decision = _decision(run, threshold, method, decision)
    if run.is_two_tower and run.modality("a") != run.modality("b"):
        from ..datasets.folders import KINDS

        kinds = [KINDS.get(os.path.splitext(os.fspath(p))[1].lower()) for p in (path_a, path_b)]
        if kinds == [run.modality("b"), run.modality("a")]:
            path_a, path_b = path_b, path_a
    x_a = run.read_inputs([path_a], "a", invert)
    x_b = run.read_inputs([path_b], "b" if run.is_two_tower else "a", invert)
    return compare(run, x_a, x_b, decision=decision)
