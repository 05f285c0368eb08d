"""Held-out metrics written at the end of training."""

import numpy as np
from sklearn.metrics import roc_auc_score

from ..data import sample_pairs


def _oriented(model, scores):
    return scores if model.higher_is_similar else -scores


def class_pair_scores(model, x, y, n_pairs, seed):
    """Similarities (higher = more similar) and labels of balanced pairs drawn from `(x, y)`."""
    first, second, same = sample_pairs(y, n_pairs, rng=seed)
    z = model.embed(x)
    return _oriented(model, model.score_embeddings(z[first], z[second])), same


def given_pair_scores(model, pairs):
    """Similarities and labels of labelled `siamkit.datasets.Pairs`."""
    scores = model.score_embeddings(model.embed(pairs.first), model.embed(pairs.second))
    return _oriented(model, scores), pairs.y.astype("float32")


def best_threshold(similarity, same):
    """The similarity threshold with the best accuracy (`same` iff >= t)."""
    candidates = np.unique(similarity)
    accuracy = [np.mean((similarity >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def heldout_metrics(model, val, test):
    """ROC AUC, and accuracy at a threshold chosen on the validation pairs.

    Args:
        model: the trained pair model.
        val, test: `(similarity, same)` of validation and test pairs.
    """
    (val_sim, val_same), (test_sim, test_same) = val, test
    threshold = best_threshold(val_sim, val_same)
    return {
        "test_roc_auc": float(roc_auc_score(test_same, test_sim)),
        "test_accuracy": float(np.mean((test_sim >= threshold) == test_same)),
        "val_roc_auc": float(roc_auc_score(val_same, val_sim)),
        "threshold": threshold if model.higher_is_similar else -threshold,
        "test_pairs": int(len(test_same)),
    }
