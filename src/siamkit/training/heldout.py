"""Held-out metrics written at the end of training."""

import numpy as np
from sklearn.metrics import roc_auc_score

from ..data import sample_pairs


def pair_scores(model, x, y, n_pairs, seed):
    """Scores and labels of balanced pairs drawn from `(x, y)`, oriented so
    that higher = more similar."""
    first, second, same = sample_pairs(y, n_pairs, rng=seed)
    z = model.embed(x)
    scores = model.score_embeddings(z[first], z[second])
    return (scores if model.higher_is_similar else -scores), same


def best_threshold(similarity, same):
    """The similarity threshold with the best accuracy (`same` iff >= t)."""
    candidates = np.unique(similarity)
    accuracy = [np.mean((similarity >= t) == same) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def heldout_metrics(model, x, y, val_idx, test_idx, n_pairs, seed):
    """ROC AUC and accuracy on pairs of held-out classes, at a threshold chosen
    on pairs of held-out images of the training classes."""
    val_sim, val_same = pair_scores(model, x[val_idx], y[val_idx], n_pairs, seed)
    test_sim, test_same = pair_scores(model, x[test_idx], y[test_idx], n_pairs, seed + 1)
    threshold = best_threshold(val_sim, val_same)
    return {
        "test_roc_auc": float(roc_auc_score(test_same, test_sim)),
        "test_accuracy": float(np.mean((test_sim >= threshold) == test_same)),
        "val_roc_auc": float(roc_auc_score(val_same, val_sim)),
        "threshold": threshold if model.higher_is_similar else -threshold,
        "test_pairs": int(len(test_same)),
    }
