"""Decision thresholds chosen on validation pairs, saved as `calibration.json`.

A calibration records one threshold per method (best validation accuracy,
the EER, a target FAR), the method used by default, and the score direction,
so that `siamkit compare` and other readers can decide "same or different"
without knowing how the run was trained.

Example:

>>> cal = calibrate([1, 1, 0, 0], [0.1, 0.2, 0.6, 0.8], higher_is_similar=False)
>>> threshold(cal)
0.4
>>> threshold(cal, "eer")
0.4
"""

import json
import os

from .. import _io
from ..errors import DataError, check_choice
from ..runs import CALIBRATION_FILE, Run
from .verification import THRESHOLD_METHODS, choose_threshold

VERSION = 1


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


def run_threshold(run, method=None):
    """`(threshold, source)` from a run's `calibration.json`, checked against its model.

    Args:
        run: a `Run`.
        method: `accuracy`, `eer` or `far`; default: the calibration's own.
    """
    calibration = read_calibration(run)
    if calibration["higher_is_similar"] != run.higher_is_similar:
        raise DataError(
            f"{run.file(CALIBRATION_FILE)} does not match the run's model (score direction differs); "
            "re-run `siamkit evaluate`"
        )
    method = method or calibration["default"]
    return threshold(calibration, method), f"calibration.json ({method})"
