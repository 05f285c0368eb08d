"""Shared fixtures.

`shared_data_dir` points at the real datasets (`$SIAMKIT_DATA_DIR`, else
`../shared/data` beside the repository) and skips the test when absent.
`trained_run` is a tiny digits run, trained once per session.
`results_digest()` fingerprints the committed benchmark results.
`brute_force_knn` is the oracle of the exact nearest-neighbor searches.
`browser` is a headless Chromium driven by Selenium (skipped when absent);
`shots` the folder its screenshots go to (`$SIAMKIT_SCREENSHOTS`, else a
temporary one).
Hypothesis profiles: `ci` (the default, a few dozen examples per reader) and
`long` (thousands), chosen with `HYPOTHESIS_PROFILE=long`.
"""

import hashlib
import json
import os
import pathlib
import tempfile

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
    """A digits run trained for 2 epochs with a small CNN, validated on images of all 7 training classes."""
    from siamkit.training import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    config = {"epochs": 2, "out": str(out), "embedding_dim": 16, "eval_pairs": 400, "validation": "images"}
    run, _ = train(config, verbose=0)
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


@pytest.fixture(scope="session")
def live_server():
    """`live_server(app) -> base URL`: an ASGI app on uvicorn in a thread, on a free loopback port.

    Real HTTP, lifespan included; every server stops at the end of the session.
    """
    import threading
    import time

    import uvicorn

    servers = []

    def start(app):
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
    for server, thread in servers:
        thread.join(timeout=10)


def digit_pngs(folder, n=12):
    """`n` 8x8 digit PNGs of scikit-learn's digits in class folders under `folder`; returns their paths."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(n):
        path = pathlib.Path(folder) / str(digits.target[i]) / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(digits.images[i] / 16 * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def gallery_index(trained_run, tmp_path_factory):
    """`(index_dir, paths)`: 12 digit PNGs and an index of them built with `trained_run` (do not write to it)."""
    from siamkit.cli import main

    paths = digit_pngs(tmp_path_factory.mktemp("gallery"))
    index_dir = tmp_path_factory.mktemp("index") / "ix"
    assert main(["index", "build", trained_run.path, "--data", str(paths[0].parent.parent), "--out", str(index_dir),
                 "--quiet"]) == 0
    return index_dir, paths


def module_report(env_var, snapshot):
    """An autouse module fixture that writes `snapshot()` as JSON to `$env_var` (when set) after the module's
    tests, for `benchmarks/robustness.py` to count what they tried."""

    @pytest.fixture(scope="module", autouse=True)
    def report():
        yield
        path = os.environ.get(env_var)
        if path:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(snapshot(), f, indent=2)

    return report


CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--window-size=1100,900")


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.skip(f"needs Chromium and its driver ({CHROMIUM}, {DRIVER}): apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def shots():
    folder = pathlib.Path(os.environ.get("SIAMKIT_SCREENSHOTS") or tempfile.mkdtemp(prefix="siamkit-pages-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the pages: {folder}")
    return folder


@pytest.fixture
def cli(capsys):
    """`cli(*argv) -> (exit code, stdout, stderr)` of `siamkit` run in process."""
    from siamkit.cli import main

    def call(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call
