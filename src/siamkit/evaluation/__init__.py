"""Evaluation of similarity models: verification, one-shot and retrieval.

- `verification`: ROC, AUC, EER, TAR@FAR, precision/recall/F1/AP, and
  thresholds chosen on validation pairs;
- `pairs`: which pairs to score (balanced random, all pairs);
- `oneshot`: N-way K-shot episodes, the Omniglot within-alphabet protocol,
  Lake-layout episode files;
- `retrieval` and `knn`: precision@1, recall@K, R-precision, MAP@R over an
  exact, chunked kNN (`siamkit.evaluation.knn.knn`);
- `calibration`: `calibration.json`;
- `plots`: ROC, DET, score histograms, a one-shot episode;
- `report`: `evaluate_run`, used by `siamkit evaluate` and `siamkit train`.

Every function takes `higher_is_similar`, so distances and similarities or
probabilities are handled without flipping signs by hand.
"""

from .calibration import calibrate, read_calibration, run_threshold, threshold, write_calibration
from .oneshot import evaluate_episodes, evaluate_lake_runs, omniglot_episodes, read_lake_runs, sample_episodes
from .pairs import all_pairs, random_pairs
from .report import evaluate_run, format_table, holdout_data, read_run_images
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
    "read_lake_runs",
    "read_run_images",
    "retrieval_metrics",
    "roc_auc",
    "roc_curve",
    "run_threshold",
    "sample_episodes",
    "tar_at_far",
    "threshold",
    "threshold_metrics",
    "verification_metrics",
    "write_calibration",
]
