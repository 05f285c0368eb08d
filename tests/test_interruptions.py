"""Real interruptions and concurrent writers: nothing is lost, the index on disk is the old or the new one.

Each case starts a real `siamkit` process and stops it at seeded random
moments: SIGKILL (nothing runs after it), SIGTERM and SIGINT (the command
stops with a message, status 143 or 130). Afterwards the index loads, its
checksums valid, and holds exactly the old items or the new ones; rerunning
the command gives the uninterrupted result, and leaves no temporary file.
A stopped `siamkit train` (Siamese or two-tower) resumes: each epoch in
`history.csv` once, the uninterrupted run's weights. A `siamkit serve`
killed during `POST /v1/index/items` leaves the old or the new index.

`siamkit index add` and `remove` read `.npz` embeddings and run with
`KERAS_BACKEND=numpy`, so each process starts in about a second; the
`train`, `embed`, `index build` and `serve` cases load TensorFlow and a
model, and are marked slow."""

import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import module_report
from siamkit.errors import DataError
from siamkit.index import Index, files

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
KILLS = int(os.environ.get("SIAMKIT_KILLS", 2))  # moments per case
ROWS, DIM, NEW = 10000, 16, 2000
# Per case: stops tried, then found with the old index (and finished by a rerun) or the new one.
OUTCOMES = collections.defaultdict(collections.Counter)


_outcomes_report = module_report(
    "SIAMKIT_KILL_REPORT", lambda: {case: dict(counts) for case, counts in sorted(OUTCOMES.items())}
)


def siamkit(*args, backend="numpy"):
    """A `siamkit` command line and its environment."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), KERAS_BACKEND=backend)
    return [sys.executable, "-c", "import sys; from siamkit.cli import main; sys.exit(main())", *args], env


def run(*args, backend="numpy"):
    argv, env = siamkit(*args, backend=backend)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def stopped(argv, env, delay, sig):
    """Run `argv` and send `sig` after `delay` seconds: its `CompletedProcess`, or None if it ended before or exited 0."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.wait(timeout=delay)
        process.communicate()
        return None
    except subprocess.TimeoutExpired:
        process.send_signal(sig)
    out, err = process.communicate(timeout=300)
    if process.returncode == 0:  # the signal came as it exited, its work done: it finished first
        return None
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def check_stopped_cleanly(result, sig):
    """A SIGTERM or SIGINT that reached siamkit ended it with status 143 or 130 and a last line saying so."""
    if sig == signal.SIGKILL or result.returncode == -sig:  # -sig: stopped before siamkit started
        return
    assert result.returncode == 128 + sig, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in result.stderr.strip().splitlines()[-1]


def stop_signals(count):
    """SIGKILL, SIGTERM and SIGINT in turn, `count` of them."""
    return [(signal.SIGKILL, signal.SIGTERM, signal.SIGINT)[i % 3] for i in range(count)]


def temporary_files(folder):
    return [name for name in os.listdir(folder) if ".tmp" in name]


def index_args(root):
    """The arguments of `siamkit index add` and `remove` in the gallery below `root`."""
    return {"add": ("--data", str(root / "more.npz"), "--quiet"), "remove": ("--ids", *map(str, range(0, ROWS, 2)))}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """A fake run directory, a saved index of it, `.npz` embeddings to add; the uninterrupted results."""
    root = tmp_path_factory.mktemp("interruptions")
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (run_dir / "model.keras").write_bytes(b"not a model: the index commands only hash it")
    rng = np.random.default_rng(0)
    index = Index(DIM, info={"run": str(run_dir)})
    index.add(rng.normal(size=(ROWS, DIM)).astype("float32"), metadata=[{"path": f"{i}.png"} for i in range(ROWS)])
    index.save(root / "template")
    np.savez(root / "more.npz", embeddings=rng.normal(size=(NEW, DIM)).astype("float32"))
    # The moments to stop at lie after the imports, where the command reads and writes.
    argv, env = siamkit()
    start = time.monotonic()
    subprocess.run([argv[0], "-c", "import siamkit.cli, siamkit.index.inputs, siamkit.runs"], env=env, check=True)
    timings = {"startup": time.monotonic() - start}
    for name, args in index_args(root).items():
        folder = root / f"uninterrupted-{name}"
        shutil.copytree(root / "template", folder)
        start = time.monotonic()
        result = run("index", name, str(folder), *args)
        timings[name] = time.monotonic() - start
        assert result.returncode == 0, result.stderr
    return root, timings


def contents(folder):
    index = Index.load(folder)  # verifies every checksum
    return index.ids.tolist(), index.embeddings(index.ids)


def moments(seed, first, last, count=KILLS):
    """`count` seeded moments between `first` and `last` seconds."""
    return np.random.default_rng(seed).uniform(first, last, count)


@pytest.mark.parametrize(
    "action, sig",
    [
        ("add", signal.SIGKILL),
        ("remove", signal.SIGKILL),
        ("add", signal.SIGTERM),
        ("remove", signal.SIGINT),
        pytest.param("add", signal.SIGINT, marks=pytest.mark.slow),
        pytest.param("remove", signal.SIGTERM, marks=pytest.mark.slow),
    ],
    ids=["add-kill", "remove-kill", "add-term", "remove-int", "add-int", "remove-term"],
)
def test_an_index_write_stopped_at_any_moment_leaves_the_old_or_the_new_index(gallery, tmp_path, action, sig):
    root, timings = gallery
    outcomes = OUTCOMES[f"index {action} {signal.Signals(sig).name}"]
    args = index_args(root)
    old, new = contents(root / "template"), contents(root / f"uninterrupted-{action}")
    seed = ["add", "remove"].index(action) * 100 + sig
    first = min(0.8 * timings["startup"], 0.5 * timings[action])
    for i, delay in enumerate(moments(seed, first, 1.05 * timings[action])):
        folder = tmp_path / f"index-{i}"
        shutil.copytree(root / "template", folder)
        argv, env = siamkit("index", action, str(folder), *args[action])
        result = stopped(argv, env, delay, sig)
        ids, vectors = contents(folder)
        assert (ids, vectors.tolist()) in [(old[0], old[1].tolist()), (new[0], new[1].tolist())]
        if result is None:  # it finished first
            continue
        outcomes["stops"] += 1
        outcomes["old index, rerun" if ids == old[0] else "new index"] += 1
        check_stopped_cleanly(result, sig)
        if sig != signal.SIGKILL and result.returncode != -sig:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        if ids == old[0]:  # interrupted before the new index was in place: the rerun finishes the work
            rerun = run("index", action, str(folder), *args[action])
            assert rerun.returncode == 0, rerun.stderr
        else:  # stopped after its save: a lock file it left locks nothing
            with files.locked(folder, timeout=1):
                pass
        ids, vectors = contents(folder)
        assert ids == new[0] and np.array_equal(vectors, new[1])
        outcomes["equal to uninterrupted"] += 1
        assert temporary_files(folder) == [] and not os.path.exists(folder / files.LOCK)


def test_a_second_writer_waits_for_the_first_then_fails_with_a_clear_message(tmp_path):
    Index(2).save(tmp_path)
    release = threading.Event()
    holding = threading.Event()

    def hold():
        with files.locked(tmp_path):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    try:
        start = time.monotonic()
        with pytest.raises(DataError, match="is being written by another process .waited 0.3 s"):
            Index(2).save(tmp_path, lock_timeout=0.3)
        assert time.monotonic() - start >= 0.3
        result = run("index", "remove", str(tmp_path), "--ids", "0", "--lock-timeout", "0.2")
        assert result.returncode == 2 and "is being written by another process" in result.stderr
    finally:
        release.set()
        holder.join()
    Index(2).save(tmp_path, lock_timeout=0.3)  # let go: the next writer gets the lock at once
    assert sorted(os.listdir(tmp_path)) == sorted(["manifest.json", "embeddings.2.npy", "ids.2.npy", "metadata.2.json"])


WRITER = """
import sys
import numpy as np
from siamkit.index import Index, files
folder, first = sys.argv[1], int(sys.argv[2])
for i in range(first, first + 5):
    with files.locked(folder):
        index = Index.load(folder)
        index.add(np.full((1, 2), i, "float32"), ids=[i])
        index.save(folder)
"""


def test_two_processes_writing_one_index_lose_nothing(tmp_path):
    Index(2).save(tmp_path)
    env = dict(os.environ, PYTHONPATH=SRC)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(n)], env=env) for n in (0, 100)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    index = Index.load(tmp_path)
    assert sorted(index.ids.tolist()) == [*range(5), *range(100, 105)]
    assert np.array_equal(index.embeddings([103])[0], [103, 103])


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("gallery")
    rng = np.random.default_rng(0)
    for label in "0123456789":
        (folder / label).mkdir()
        for i in range(30):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / label / f"{i}.png")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("command", ["embed", "index build"])
def test_embed_and_build_killed_and_rerun_equal_an_uninterrupted_run(trained_run, image_folder, tmp_path, command):
    def argv(out):
        return [*command.split(), trained_run.path, "--data", str(image_folder), "--out", str(out), "--quiet",
                "--batch-size", "16"]

    def result(out):
        if command == "embed":
            with np.load(out, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        index = Index.load(out)
        return {"ids": index.ids, "embeddings": index.embeddings(index.ids), "metadata": index.metadata(index.ids)}

    out = tmp_path / ("reference.npz" if command == "embed" else "reference")
    start = time.monotonic()
    assert run(*argv(out), backend="tensorflow").returncode == 0
    duration = time.monotonic() - start
    expected = result(out)
    outcomes = OUTCOMES[command]
    for i, (delay, sig) in enumerate(zip(moments(7, 0.3 * duration, duration), stop_signals(KILLS))):
        out = tmp_path / (f"out-{i}.npz" if command == "embed" else f"out-{i}")
        cmd, env = siamkit(*argv(out), backend="tensorflow")
        stop = stopped(cmd, env, delay, sig)
        was_stopped = stop is not None
        if was_stopped:
            check_stopped_cleanly(stop, sig)
        outcomes["stops"] += was_stopped
        rerun = run(*argv(out), backend="tensorflow")
        assert rerun.returncode == 0, rerun.stderr
        got = result(out)
        assert sorted(got) == sorted(expected)
        for key in expected:
            assert np.array_equal(np.asarray(got[key]), np.asarray(expected[key])) if key != "metadata" else (
                got[key] == expected[key])
        outcomes["equal to uninterrupted"] += was_stopped


def train_args(kind, folder):
    """The arguments of a `siamkit train` of `kind` (Siamese or two-tower) that trains in seconds; its data in `folder`."""
    common = ["--epochs", "6", "--embedding-dim", "8", "--no-early-stopping", "--quiet"]
    if kind == "siamese":  # scikit-learn's digits
        return ["--encoder", "mlp", *common]
    from test_towers import make_roots

    images, sounds = make_roots(folder, "audio")  # digit images and tones of 3 classes
    return ["--data", str(images), "--data-b", str(sounds), "--batch-size", "8", *common]


@pytest.mark.slow
@pytest.mark.parametrize("kind, seed", [("siamese", 11), ("two-tower", 13)])
def test_train_killed_and_rerun_equals_an_uninterrupted_run(tmp_path, kind, seed):
    from siamkit.runs import Run

    args = train_args(kind, tmp_path / "data")

    def argv(out):
        return ["train", *args, "--out", str(out)]

    def weights(out):
        return Run(out).model.get_weights()

    reference = tmp_path / "reference"
    start = time.monotonic()
    assert run(*argv(reference), backend="tensorflow").returncode == 0
    duration = time.monotonic() - start
    expected = weights(reference)
    outcomes = OUTCOMES["train" if kind == "siamese" else f"train {kind}"]
    for i, (delay, sig) in enumerate(zip(moments(seed, 0.4 * duration, duration), stop_signals(KILLS))):
        out = tmp_path / f"run-{i}"
        cmd, env = siamkit(*argv(out), backend="tensorflow")
        result = stopped(cmd, env, delay, sig)
        was_stopped = result is not None
        outcomes["stops"] += was_stopped
        if was_stopped:  # a finished run is not trained again
            check_stopped_cleanly(result, sig)
            rerun = run(*argv(out), backend="tensorflow")
            assert rerun.returncode == 0, rerun.stderr
        assert (out / "metrics.json").is_file() and not (out / "backup").exists()
        with open(out / "history.csv") as f:
            assert [int(line.split(",")[0]) for line in f.read().splitlines()[1:]] == list(range(6))
        got = weights(out)
        assert len(got) == len(expected)
        for g, want in zip(got, expected):  # TensorFlow on CPU is deterministic for a seed
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
        outcomes["equal to uninterrupted"] += was_stopped


KEY = "interruptions-key"


def serving(run_dir, index_dir):
    """A `siamkit serve` process of `run_dir` with the index `index_dir`, ready for requests: `(process, url)`."""
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv, env = siamkit("serve", run_dir, "--index", str(index_dir), "--port", str(port), backend="tensorflow")
    env["SIAMKIT_SERVE_API_KEY"] = KEY
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(url + "/health/ready", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the service did not start")


def served_contents(folder):
    """The ids, embeddings and metadata of the index in `folder`, upload paths relative to it."""
    index = Index.load(folder)
    metadata = [{**m, **({"path": os.path.relpath(m["path"], folder)} if "path" in m else {})}
                for m in index.metadata(index.ids)]
    return index.ids.tolist(), index.embeddings(index.ids).tolist(), metadata


@pytest.mark.slow
def test_the_services_index_write_killed_leaves_the_old_or_the_new_index(trained_run, gallery_index, tmp_path):
    """SIGKILL a `siamkit serve` at seeded moments of a `POST /v1/index/items`: the index is old or new."""
    import httpx
    from fastapi.testclient import TestClient

    from siamkit.service import Settings, create_app

    template = tmp_path / "template"
    index = Index.load(gallery_index[0])  # 12 digits, grown so that its save takes a while
    index.add(np.random.default_rng(0).normal(size=(ROWS, index.dim)).astype("float32"))
    index.save(template)
    uploads = [("files", (p.name, p.read_bytes())) for p in gallery_index[1]]

    def add(url, answers):
        try:
            answers.append(httpx.post(url + "/v1/index/items", files=uploads, headers={"X-API-Key": KEY}, timeout=120))
        except httpx.TransportError:  # the service was killed before it answered
            pass

    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    process, url = serving(trained_run.path, reference)
    start, answers = time.monotonic(), []
    add(url, answers)
    assert answers[0].status_code == 201
    duration = time.monotonic() - start
    process.terminate()
    process.wait(timeout=60)
    old, new = served_contents(template), served_contents(reference)
    outcomes = OUTCOMES["service index add SIGKILL"]
    for i, delay in enumerate(moments(17, 0, 1.05 * duration)):
        folder = tmp_path / f"index-{i}"
        shutil.copytree(template, folder)
        process, url = serving(trained_run.path, folder)
        answer = []
        request = threading.Thread(target=add, args=(url, answer))
        request.start()
        time.sleep(delay)
        process.kill()
        process.wait(timeout=60)
        request.join(timeout=120)
        got = served_contents(folder)  # loads, every checksum verified
        assert got in (old, new)
        if answer and answer[0].status_code == 201:  # it had answered: a real stop needs it still running
            assert got == new
            continue
        outcomes["stops"] += 1
        outcomes["old index, rerun" if got == old else "new index"] += 1
        if got == old:  # the client saw no answer: it sends the request again, to the restarted service
            with TestClient(create_app(trained_run, str(folder), Settings(api_key=KEY))) as client:
                assert client.post("/v1/index/items", files=uploads, headers={"X-API-Key": KEY}).status_code == 201
        assert served_contents(folder) == new
        outcomes["equal to uninterrupted"] += 1
        assert temporary_files(folder) == [] and not os.path.exists(folder / files.LOCK)
