"""`Decision`: a run's same/different decision, made once from a given or calibrated threshold."""

import json

import numpy as np
import pytest

from siamkit import runs
from siamkit.errors import DataError
from siamkit.evaluation import calibration as cal

pytestmark = pytest.mark.backend


@pytest.fixture
def run_dir(tmp_path):
    """A run directory whose config records the score direction (distances), so no model is loaded."""
    (tmp_path / runs.CONFIG_FILE).write_text(json.dumps({"input_shape": [2], "higher_is_similar": False}))
    (tmp_path / runs.MODEL_FILE).write_bytes(b"")
    return tmp_path


def _calibrate(run_dir, higher_is_similar=False):
    scores = [0.1, 0.2, 0.6, 0.8] if not higher_is_similar else [0.9, 0.8, 0.4, 0.2]
    cal.write_calibration(run_dir, cal.calibrate([1, 1, 0, 0], scores, higher_is_similar, default="eer"))


def test_a_given_threshold_wins_and_decides_by_the_score_direction(run_dir):
    _calibrate(run_dir)
    decision = cal.Decision.for_run(run_dir, threshold=0.5, method="accuracy")
    assert (decision.threshold, decision.source, decision.higher_is_similar) == (0.5, "given", False)
    assert decision([0.4, 0.5, 0.6]).tolist() == [True, True, False]
    assert decision.to_json() == {"value": 0.5, "source": "given"}
    assert cal.Decision(0.5, "given", True)([0.4, 0.5]).tolist() == [False, True]


def test_calibrated_threshold_read_once(run_dir):
    _calibrate(run_dir)
    calibration = cal.read_calibration(run_dir)
    decision = cal.Decision.for_run(runs.Run(run_dir))
    assert decision.threshold == cal.threshold(calibration) and decision.source == "calibration.json (eer)"
    assert cal.Decision.for_run(run_dir, method="far").threshold == cal.threshold(calibration, "far")
    (run_dir / runs.CALIBRATION_FILE).unlink()
    assert decision([0.0]).tolist() == [True]  # made once: the file is not read again


def test_without_calibration_there_is_no_decision_until_one_is_needed(run_dir):
    decision = cal.Decision.for_run(run_dir)
    assert (decision.threshold, decision.source, decision.to_json()) == (None, "none", None)
    with pytest.raises(DataError, match="siamkit evaluate"):
        decision(np.array([0.1]))
    with pytest.raises(DataError, match=r"calibration\.json does not exist"):
        cal.Decision.for_run(run_dir, required=True)
    with pytest.raises(DataError, match=r"calibration\.json does not exist"):
        cal.Decision.for_run(run_dir, method="eer")  # a calibrated method needs the calibration


def test_a_calibration_of_another_score_direction_is_refused(run_dir):
    _calibrate(run_dir, higher_is_similar=True)
    with pytest.raises(DataError, match="score direction"):
        cal.Decision.for_run(run_dir)
