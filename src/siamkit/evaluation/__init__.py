"""Evaluation of similarity models: verification, one-shot and retrieval.

- `verification`: ROC, AUC, EER, TAR@FAR, precision/recall/F1/AP, and
  thresholds chosen on validation pairs;
- `pairs`: which pairs to score (balanced random, all pairs);
- `oneshot`: N-way K-shot episodes, the Omniglot within-alphabet protocol;
- `lake`: one-shot episodes given as files in Lake's `runNN/` layout;
- `retrieval`: precision@1, recall@K, R-precision, MAP@R over the exact
  kNN of `siamkit.neighbors`;
- `calibration`: `calibration.json`, and `Decision`: a run's same/different
  decision (threshold, its source, score direction);
- `plots`: ROC, DET, score histograms, a one-shot episode;
- `report`: `evaluate_run`, used by `siamkit evaluate` and `siamkit train`.

Every function takes `higher_is_similar`, so distances and similarities or
probabilities are handled without flipping signs by hand.
"""

from .calibration import (
    Decision,
    calibrate,
    read_calibration,
    read_fold_pairs,
    threshold,
    write_calibration,
    write_fold_pairs,
)
from .lake import evaluate_lake_runs, read_lake_runs
from .oneshot import evaluate_episodes, omniglot_episodes, sample_episodes
from .pairs import all_pairs, random_pairs
from .report import evaluate_run, format_table, holdout_data
from .retrieval import retrieval_metrics
from .verification import (
    average_precision,
    choose_threshold,
    decide,
    eer,
    roc_auc,
    roc_curve,
    tar_at_far,
    threshold_metrics,
    verification_metrics,
)

__all__ = [
    "Decision",
    "all_pairs",
    "average_precision",
    "calibrate",
    "choose_threshold",
    "decide",
    "eer",
    "evaluate_episodes",
    "evaluate_lake_runs",
    "evaluate_run",
    "format_table",
    "holdout_data",
    "omniglot_episodes",
    "random_pairs",
    "read_calibration",
    "read_fold_pairs",
    "read_lake_runs",
    "retrieval_metrics",
    "roc_auc",
    "roc_curve",
    "sample_episodes",
    "tar_at_far",
    "threshold",
    "threshold_metrics",
    "verification_metrics",
    "write_calibration",
    "write_fold_pairs",
]
