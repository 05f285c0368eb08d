"""Decision thresholds chosen on validation pairs, saved as `calibration.json`.

A calibration records one threshold per method (best validation accuracy,
the EER, a target FAR), the method used by default, and the score direction,
so that `siamkit compare` and other readers can decide "same or different"
without knowing how the run was trained. A run's decision (`Decision`) is
read from it once, or given as a threshold, and then applied to pair scores.

Example:

>>> cal = calibrate([1, 1, 0, 0], [0.1, 0.2, 0.6, 0.8], higher_is_similar=False)
>>> threshold(cal)
0.4
>>> threshold(cal, "eer")
0.4
"""

import dataclasses
import json
import os

import numpy as np

from .. import _io
from ..errors import DataError, check_choice
from ..runs import CALIBRATION_FILE, Run
from .verification import THRESHOLD_METHODS, choose_threshold, decide

VERSION = 1
# The validation pairs of a run's further class folds (`calibration_folds`), scored in training.
FOLD_PAIRS_FILE = "calibration_folds.npz"


def calibrate(labels, scores, higher_is_similar=True, target_far=1e-3, default="accuracy", output_kind=None):
    """Choose a threshold by every method on validation pairs.

    Args:
        labels: validation labels, 1 = same class, 0 = different.
        scores: validation scores, one per pair.
        higher_is_similar: False when `scores` are distances.
        target_far: the FAR for the `"far"` method.
        default: the method `threshold(calibration)` uses.
        output_kind: the model's output kind (`"distance"`, `"similarity"`,
            `"probability"`), recorded for readers.

    Returns:
        A JSON-ready dict: `version`, `higher_is_similar`, `output_kind`,
        `default`, `n_pairs`, `n_positive`, `n_negative`, and `thresholds`,
        `{method: choose_threshold(...) result}`.
    """
    check_choice("default threshold method", default, THRESHOLD_METHODS)
    thresholds = {
        method: choose_threshold(labels, scores, method, higher_is_similar, target_far) for method in THRESHOLD_METHODS
    }
    n_pos = int(sum(int(v) for v in labels))
    return {
        "version": VERSION,
        "chosen_on": "validation pairs",
        "higher_is_similar": bool(higher_is_similar),
        "output_kind": output_kind,
        "default": default,
        "n_pairs": len(labels),
        "n_positive": n_pos,
        "n_negative": len(labels) - n_pos,
        "thresholds": thresholds,
    }


def threshold(calibration, method=None):
    """The threshold of `method` (default: the calibration's own default)."""
    method = method or calibration["default"]
    check_choice("threshold method", method, sorted(calibration["thresholds"]))
    return float(calibration["thresholds"][method]["threshold"])


def _run_dir(run):
    return run.path if isinstance(run, Run) else os.fspath(run)


def write_calibration(run, calibration):
    """Atomically write `calibration.json` into a run directory; returns its path."""
    path = os.path.join(_run_dir(run), CALIBRATION_FILE)
    _io.write_json(path, calibration)
    return path


def write_fold_pairs(folder, labels, scores, fold):
    """Atomically write scored validation pairs of further folds to `folder/calibration_folds.npz`.

    Args:
        folder: a run directory (or a fold's folder).
        labels: 1 = same class, 0 = different, one per pair.
        scores: the pair scores, in the pair head's units.
        fold: the fold (1, 2, ...) each pair comes from.
    """
    path = os.path.join(_run_dir(folder), FOLD_PAIRS_FILE)
    _io.save_npz(path, labels=np.asarray(labels, "int64"), scores=np.asarray(scores, "float64"),
                 fold=np.asarray(fold, "int64"))
    return path


def read_fold_pairs(folder):
    """`(labels, scores, fold)` of `folder/calibration_folds.npz`, or None when there is none."""
    path = os.path.join(_run_dir(folder), FOLD_PAIRS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            labels, scores, fold = data["labels"], data["scores"], data["fold"]
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path} is not a valid file of fold pairs ({err}); train the run again") from None
    if not len(labels) == len(scores) == len(fold):
        raise DataError(f"{path}: labels, scores and fold differ in length; train the run again")
    return labels, scores, fold


def read_calibration(run):
    """Read and check `calibration.json` of a run (a `Run` or its directory).

    Raises a `DataError` naming the file when it is missing or malformed.
    """
    path = os.path.join(_run_dir(run), CALIBRATION_FILE)
    if not os.path.isfile(path):
        raise DataError(
            f"{path} does not exist: run `siamkit evaluate {_run_dir(run)}` to calibrate a threshold, "
            "or pass --threshold"
        )
    try:
        with open(path, encoding="utf-8") as f:
            calibration = json.load(f)
        methods = calibration["thresholds"]
        for method in methods.values():
            float(method["threshold"])
        if calibration["default"] not in methods or not isinstance(calibration["higher_is_similar"], bool):
            raise ValueError("bad default method or score direction")
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path} is not a valid calibration file ({err}); re-run `siamkit evaluate`") from None
    return calibration


_calibrated_threshold = threshold  # `Decision.for_run` takes an argument named `threshold`


@dataclasses.dataclass(frozen=True)
class Decision:
    """A run's same-or-different decision on pair scores, fixed once.

    A pair is "same" when its pair-head score `s` passes the threshold `t`:
    `s >= t` when higher scores mean more similar (similarity and
    probability heads), `s <= t` otherwise (distance heads).

    A run without `calibration.json`, and no threshold given, has no
    decision: `threshold` is None, `source` is `"none"`, and calling the
    decision raises a `DataError` that says how to get one (run `siamkit
    evaluate`, or pass a threshold). Readers that can do without a decision
    (search results without a match column) check `threshold is None`.

    Args:
        threshold: in the pair head's units, or None.
        source: `"given"`, `"calibration.json (METHOD)"` (the calibrated
            method used), or `"none"`.
        higher_is_similar: the score direction of the run's pair head.
        run_path: the run directory, named in the error of a missing decision.

    Example:

    >>> decision = Decision(0.4, "given", higher_is_similar=False)
    >>> decision([0.1, 0.5]).tolist()
    [True, False]
    >>> Decision.for_run("runs/digits", method="eer").source       # doctest: +SKIP
    'calibration.json (eer)'
    """

    threshold: float | None
    source: str
    higher_is_similar: bool
    run_path: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def for_run(cls, run, threshold=None, method=None, required=False):
        """The decision of a run: `threshold` if given, else its calibrated one.

        `calibration.json` is read here, once, and checked against the run's
        model (score direction).

        Args:
            run: a `Run` or its directory.
            threshold: decision threshold in the pair head's units; wins over
                the calibration.
            method: which calibrated threshold (`accuracy`, `eer`, `far`);
                default: the calibration's own default. Naming a method
                requires `calibration.json`.
            required: raise the missing-decision `DataError` now rather than
                when the decision is first called.

        Raises:
            DataError: `calibration.json` is malformed or made for another
                model; or it is missing while `method` or `required` asks for it.
        """
        run = run if isinstance(run, Run) else Run(run)
        higher = run.higher_is_similar
        if threshold is not None:
            return cls(float(threshold), "given", higher, run.path)
        if method is None and not required and not os.path.isfile(run.file(CALIBRATION_FILE)):
            return cls(None, "none", higher, run.path)
        calibration = read_calibration(run)
        if calibration["higher_is_similar"] != higher:
            raise DataError(
                f"{run.file(CALIBRATION_FILE)} does not match the run's model (score direction differs); "
                "re-run `siamkit evaluate`"
            )
        method = method or calibration["default"]
        return cls(_calibrated_threshold(calibration, method), f"calibration.json ({method})", higher, run.path)

    def __call__(self, scores):
        """Boolean array: which `scores` are "same"."""
        if self.threshold is None:
            run = self.run_path or "RUN_DIR"
            raise DataError(
                f"the run {run!r} had no {CALIBRATION_FILE} when it was opened, so it has no decision threshold: "
                f"run `siamkit evaluate {run}` to calibrate one, or pass --threshold"
            )
        return decide(scores, self.threshold, self.higher_is_similar)

    def to_json(self):
        """`{"value", "source"}`, or None without a threshold: how the CLI and the service report it."""
        return None if self.threshold is None else {"value": self.threshold, "source": self.source}
