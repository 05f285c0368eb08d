"""Data-parallel training: one step and a short run over 2 virtual CPU devices equal one device's.

Each backend runs in its own process (`benchmarks/data_parallel_probe.py`), since the device count is
fixed when a backend starts and must not leak into the rest of the suite: JAX with
`XLA_FLAGS=--xla_force_host_platform_device_count=2`, TensorFlow with the CPU split into 2 logical
devices. The probe fits one SGD step (learning rate 1, so the weights' change is the gradient) from
the same weights on one device and data-parallel, and trains `siamkit.training.train` on digits for
2 epochs both ways.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PROBE = REPO / "benchmarks" / "data_parallel_probe.py"
# The losses checked: batch-hard triplet (mined in the batch), and CLIP on a two-tower network.
CASES = ("triplet", "clip")


def _probe(backend):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(PROBE), backend, "--replicas", "2", "--cases", *CASES],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["jax", "tensorflow"])
def probe(request):
    pytest.importorskip(request.param)
    return _probe(request.param)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_one_step_over_two_replicas_equals_one_device(probe, case):
    step = probe["steps"][case]
    assert step["max_abs_loss_diff"] <= 1e-5 * max(1.0, abs(step["loss_single"]))
    assert step["max_abs_grad_diff"] <= 1e-5 * max(1.0, step["max_abs_grad"])
    assert step["max_abs_grad"] > 1e-3  # the step moved the weights: there was a gradient to compare
    # Each replica's slice alone gives another loss: the step saw the global batch.
    assert abs(step["slices_loss"] - step["loss_single"]) > 1e-2


@pytest.mark.slow
def test_short_run_over_two_replicas_matches_one_device(probe):
    run = probe["run"]
    assert run["max_abs_weight_diff"] < 1e-3
    assert run["loss_data_parallel"] == pytest.approx(run["loss_single"], abs=1e-4)
    for key, value in run["metrics_single"].items():
        assert run["metrics_data_parallel"][key] == pytest.approx(value, abs=1e-3), key


def test_data_parallel_on_torch_is_refused_in_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    import keras

    from siamkit.cli import main

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    out = tmp_path / "run"
    assert main(["train", "--distribute", "data-parallel", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "torch backend" in err and "jax" in err and "tensorflow" in err, err
    assert not out.exists()


def test_an_unknown_distribution_is_refused():
    from siamkit.errors import ConfigError
    from siamkit.training import resolve, train

    with pytest.raises(ConfigError, match="distribute 'model-parallel'.*'data-parallel'"):
        resolve(overrides={"distribute": "model-parallel"})
    with pytest.raises(ConfigError, match="distribute 'ddp'"):
        train({"epochs": 1}, distribution="ddp")


def test_batches_that_do_not_split_evenly_between_replicas_are_refused(monkeypatch):
    import numpy as np

    from siamkit.data import PairDataset
    from siamkit.errors import ConfigError
    from siamkit.training import distribute

    x, y = np.zeros((40, 4, 4, 1), "float32"), np.repeat(np.arange(4), 10)
    distribute.check_batches(PairDataset(x, y, batch_size=8, pairs_per_epoch=15))  # one device: any batch
    monkeypatch.setattr(distribute, "replicas", lambda: 2)
    distribute.check_batches(PairDataset(x, y, batch_size=8, pairs_per_epoch=16))
    with pytest.raises(ConfigError, match="batch 0 holds 7 items.*multiples of 2"):
        distribute.check_batches(PairDataset(x, y, batch_size=7, pairs_per_epoch=14))
