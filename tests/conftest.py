"""Shared fixtures.

`shared_data_dir` points at the real datasets (`$SIAMKIT_DATA_DIR`, else
`../shared/data` beside the repository) and skips the test when absent.
`trained_run` is a tiny digits run, trained once per session.
"""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = pathlib.Path(__file__).resolve().parent.parent


def find_shared_data():
    """The folder of the real `.npz` datasets, or None."""
    candidates = [os.environ.get("SIAMKIT_DATA_DIR"), REPO.parent / "shared" / "data"]
    for folder in candidates:
        if folder and (pathlib.Path(folder) / "mnist.npz").is_file():
            return pathlib.Path(folder)
    return None


@pytest.fixture(scope="session")
def shared_data_dir():
    folder = find_shared_data()
    if folder is None:
        pytest.skip("real datasets not found: set SIAMKIT_DATA_DIR or place them in ../shared/data")
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A digits run trained for 2 epochs with a small CNN, validated on images of all 7 training classes."""
    from siamkit.training import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    config = {"epochs": 2, "out": str(out), "embedding_dim": 16, "eval_pairs": 400, "validation": "images"}
    run, _ = train(config, verbose=0)
    return run
