"""The evaluation that ends training: held-out metrics and a calibrated threshold.

Thresholds are always chosen on validation pairs and applied to test pairs;
`siamkit.evaluation` does the work, this module picks the data and writes the
short `metrics.json` summary at the top of the run directory.
"""

import dataclasses

import numpy as np

from .. import evaluation
from ..data import validation_info

# Labelled pairs have no classes to hold out: they are split at random.
PAIRS_VALIDATION = {
    "validation": "held-out-pairs",
    "validation_reason": "the pair CSV is split at random into train, validation and test pairs",
}


def evaluate_classes(run, dataset, val_idx, test_idx, config):
    """Full evaluation on held-out classes; `eval/metrics.json`, plots, `calibration.json`."""
    protocol = "all" if len(np.unique(dataset.y[test_idx])) >= 2 else "verification"
    validation = dataset.subset(val_idx)
    described = validation_info(config["validation"], config["validation_reason"])
    return evaluation.evaluate_run(
        run,
        protocol=protocol,
        validation=dataclasses.replace(validation, info={**validation.info, **described}),
        test=dataset.subset(test_idx),
        seed=config["seed"],
        n_pairs=config["eval_pairs"],
    )


def evaluate_pairs(run, val_pairs, test_pairs):
    """Verification on labelled pairs, thresholds calibrated on the validation pairs."""
    model = run.model

    def scores(pairs):
        return model.score_embeddings(model.embed(pairs.first), model.embed(pairs.second))

    higher = model.higher_is_similar
    calibration = evaluation.calibrate(val_pairs.y, scores(val_pairs), higher, output_kind=model.output_kind)
    calibration.update(PAIRS_VALIDATION)
    evaluation.write_calibration(run, calibration)
    thresholds = {name: t["threshold"] for name, t in calibration["thresholds"].items()}
    report = evaluation.verification_metrics(test_pairs.y, scores(test_pairs), higher, thresholds=thresholds)
    report["calibration"] = calibration["thresholds"]
    return {"verification": report, **PAIRS_VALIDATION}


def summary(report):
    """The headline numbers of an evaluation report, for `metrics.json`."""
    verification = report["verification"]
    at_best = verification["at_threshold"]["accuracy"]
    out = {
        "test_roc_auc": verification["roc_auc"],
        "test_accuracy": at_best["accuracy"],
        # the best accuracy of any threshold on the test pairs: a bound on `test_accuracy`, not for decisions
        "test_oracle_accuracy": verification["oracle"]["accuracy"],
        "test_eer": verification["eer"],
        "threshold": at_best["threshold"],
        "test_pairs": verification["n_pairs"],
    }
    for key in ("validation", "validation_reason"):
        if key in report:
            out[key] = report[key]
    if verification.get("validation_folds", 1) > 1:  # the threshold's validation pairs came from several class folds
        out["validation_folds"] = verification["validation_folds"]
    for name, result in report.get("oneshot", {}).items():
        if "accuracy" in result:  # not a protocol that was skipped (e.g. Omniglot's with no 20-character alphabet)
            out[f"oneshot_{name.replace(' ', '_')}"] = result["accuracy"]
    if "retrieval" in report:
        out["precision_at_1"] = report["retrieval"]["precision_at_1"]
        out["map_at_r"] = report["retrieval"]["map_at_r"]
    return out
