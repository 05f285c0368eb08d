"""Shared fixtures.

`shared_data_dir` points at the real datasets (`$SIAMKIT_DATA_DIR`, else
`../shared/data` beside the repository) and skips the test when absent.
`trained_run` is a tiny digits run, trained once per session.
`results_digest()` fingerprints the committed benchmark results.
`brute_force_knn` is the oracle of the exact nearest-neighbor searches.
Hypothesis profiles: `ci` (the default, a few dozen examples per reader) and
`long` (thousands), chosen with `HYPOTHESIS_PROFILE=long`.
"""

import hashlib
import os
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A reader that takes seconds on one input is a hang as far as a user is concerned.
_FUZZ = dict(deadline=10_000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=40, derandomize=True, **_FUZZ)
settings.register_profile("long", max_examples=2000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = pathlib.Path(__file__).resolve().parent.parent


def results_digest():
    """SHA-256 over the names and bytes of every file in `benchmarks/results/`."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "benchmarks" / "results").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


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
    """A digits run trained for 2 epochs with a small CNN: a real run directory."""
    from siamkit.training import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    run, _ = train({"epochs": 2, "out": str(out), "embedding_dim": 16, "eval_pairs": 400}, verbose=0)
    return run


SCIPY_NAMES = {"euclidean": "euclidean", "sqeuclidean": "sqeuclidean", "manhattan": "cityblock", "cosine": "cosine"}


def brute_force_distances(queries, references, distance):
    """Float64 distances (similarities for `dot`) of every query to every reference, by SciPy."""
    from scipy.spatial.distance import cdist

    q, r = np.asarray(queries, float), np.asarray(references, float)
    return q @ r.T if distance == "dot" else cdist(q, r, SCIPY_NAMES[distance])


def brute_force_knn(queries, references, k, distance, exclude_self=False):
    """The oracle of every exact search: full matrix, stable sort, ties to the lower reference index."""
    d = brute_force_distances(queries, references, distance)
    cost = -d if distance == "dot" else d.copy()
    if exclude_self:
        np.fill_diagonal(cost, np.inf)
    order = np.argsort(cost, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)
def clustered(n, dim=16, seed=0, centers=40):
    """Embedding-like data: noisy points around class centres."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    return (c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, dim))).astype("float32")


