"""calibration.json: thresholds chosen on validation pairs, written and read back."""

import json

import numpy as np
import pytest

from siamkit.errors import ConfigError, DataError
from siamkit.evaluation import calibration as cal
from siamkit.evaluation import verification as v


def _val(seed=0, n=500):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    d = np.abs(rng.normal(size=n) + 1.5 * (1 - y))  # distances: same-class pairs nearer
    return y, d


def test_calibrate_records_every_method_as_choose_threshold_does():
    y, d = _val()
    c = cal.calibrate(y, d, higher_is_similar=False, target_far=0.01, output_kind="distance")
    assert set(c["thresholds"]) == {"accuracy", "eer", "far"}
    for method in ("accuracy", "eer", "far"):
        expected = v.choose_threshold(y, d, method, higher_is_similar=False, target_far=0.01)
        assert c["thresholds"][method] == expected
    assert c["thresholds"]["far"]["far"] <= 0.01
    assert c["higher_is_similar"] is False and c["output_kind"] == "distance"
    assert (c["n_positive"], c["n_negative"]) == (int(y.sum()), int(len(y) - y.sum()))
    # The best-accuracy threshold really is the best on validation.
    acc = np.mean(v.decide(d, cal.threshold(c), higher_is_similar=False) == y)
    assert acc == pytest.approx(c["thresholds"]["accuracy"]["accuracy"])


def test_write_read_roundtrip_and_threshold_selection(tmp_path):
    y, d = _val(1)
    c = cal.calibrate(y, 1 - d, default="eer")  # similarities
    path = cal.write_calibration(tmp_path, c)
    assert path == str(tmp_path / "calibration.json")
    back = cal.read_calibration(tmp_path)
    assert back == json.loads(json.dumps(c))
    assert cal.threshold(back) == back["thresholds"]["eer"]["threshold"]
    assert cal.threshold(back, "far") == back["thresholds"]["far"]["threshold"]
    with pytest.raises(ConfigError, match="threshold method"):
        cal.threshold(back, "median")


def test_missing_calibration_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="siamkit evaluate"):
        cal.read_calibration(tmp_path)


@pytest.mark.parametrize(
    "content",
    ["not json", '{"thresholds": {}}', '{"default": "accuracy", "higher_is_similar": true, "thresholds": '
     '{"accuracy": {"threshold": "x"}}}', '{"default": "eer", "higher_is_similar": true, "thresholds": '
     '{"accuracy": {"threshold": 0.5}}}'],
)
def test_malformed_calibration_is_a_data_error(tmp_path, content):
    (tmp_path / "calibration.json").write_text(content)
    with pytest.raises(DataError, match="not a valid calibration file"):
        cal.read_calibration(tmp_path)


def test_calibrate_refuses_degenerate_validation():
    with pytest.raises(DataError, match="validation pairs"):
        cal.calibrate([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="default threshold method"):
        cal.calibrate([1, 0], [0.9, 0.1], default="best")
