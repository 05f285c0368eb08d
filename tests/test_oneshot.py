"""One-shot episodes, the Omniglot within-alphabet protocol and Lake-layout files."""

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from siamkit.errors import ConfigError, DataError
from siamkit.evaluation import lake, oneshot
from siamkit.neighbors import pairwise_costs


def _labels(classes=8, per_class=6):
    return np.repeat(np.arange(classes), per_class)


def test_sample_episodes_structure_and_seeding():
    y = _labels()
    ep = oneshot.sample_episodes(y, ways=5, shots=2, episodes=50, queries=3, seed=4)
    assert ep.support.shape == (50, 5, 2) and ep.query.shape == (50, 15)
    for e in range(50):
        classes = y[ep.support[e, :, 0]]
        assert len(set(classes)) == 5  # distinct classes
        assert (y[ep.support[e]] == classes[:, None]).all()  # shots share their class
        assert (y[ep.query[e]] == classes[ep.query_class[e]]).all()  # queries labelled by position
        used = np.r_[ep.support[e].ravel(), ep.query[e]]
        assert len(set(used)) == len(used)  # support and queries never overlap
    again = oneshot.sample_episodes(y, ways=5, shots=2, episodes=50, queries=3, seed=4)
    other = oneshot.sample_episodes(y, ways=5, shots=2, episodes=50, queries=3, seed=5)
    np.testing.assert_array_equal(ep.support, again.support)
    assert not np.array_equal(ep.support, other.support)


def test_episode_errors():
    with pytest.raises(DataError, match="at least 2 classes"):
        oneshot.sample_episodes(np.zeros(10, int), ways=2)
    with pytest.raises(DataError, match="10-way 1-shot episodes need 10 classes"):
        oneshot.sample_episodes(_labels(), ways=10)
    with pytest.raises(DataError, match="only 0 of 8 classes"):
        oneshot.sample_episodes(_labels(), ways=5, shots=6)  # 6 + 1 query > 6 per class
    with pytest.raises(ConfigError, match="ways"):
        oneshot.sample_episodes(_labels(), ways=1)


def _loop_accuracy(ep, z, distance):
    """Reference: nearest prototype, one query at a time."""
    accs = []
    for e in range(len(ep)):
        protos = np.stack([z[ep.support[e, n]].mean(axis=0) for n in range(ep.ways)])
        hits = [
            np.argmin(pairwise_costs(z[q][None], protos, distance)[0]) == c
            for q, c in zip(ep.query[e], ep.query_class[e])
        ]
        accs.append(np.mean(hits))
    return np.mean(accs), accs


@pytest.mark.parametrize("distance", ["euclidean", "cosine", "manhattan"])
def test_prototype_accuracy_matches_a_loop_reference(distance):
    rng = np.random.default_rng(0)
    y = _labels(10, 8)
    z = rng.normal(size=(len(y), 6)) + 0.8 * rng.normal(size=(10, 6))[y]
    ep = oneshot.sample_episodes(y, ways=5, shots=3, episodes=40, queries=2, seed=1)
    got = oneshot.evaluate_episodes(ep, z, distance=distance)
    expected, per_episode = _loop_accuracy(ep, z, distance)
    assert got["accuracy"] == pytest.approx(expected)
    assert 0.2 < got["accuracy"] < 1.0  # neither trivial nor perfect
    # 95% CI: normal approximation over episodes, as scipy computes it.
    half = stats.norm.ppf(0.975) * stats.sem(per_episode)
    assert got["ci95"] == pytest.approx(half)
    assert got["episodes"] == 40 and got["ways"] == 5 and got["shots"] == 3


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_local_scaling_matches_a_loop_reference(distance):
    rng = np.random.default_rng(3)
    y = _labels(12, 4)
    z = rng.normal(size=(len(y), 5)) + 0.7 * rng.normal(size=(12, 5))[y]
    ep = oneshot.sample_episodes(y, ways=8, shots=2, episodes=25, queries=2, seed=2)
    got = oneshot.episode_scores(ep, z, distance, local_scaling=0.3, scaling_neighbors=3)
    for e in (0, 7, 24):
        protos = np.stack([z[ep.support[e, n]].mean(axis=0) for n in range(ep.ways)])
        between = pairwise_costs(protos, protos, distance)
        crowding = [np.mean(sorted(np.delete(between[n], n))[:3]) for n in range(ep.ways)]
        for m, q in enumerate(ep.query[e]):
            expected = -(pairwise_costs(z[q][None], protos, distance)[0] - 0.3 * np.array(crowding))
            np.testing.assert_allclose(got[e, m], expected, rtol=1e-5, atol=1e-6)
    # Off by default; more neighbors than the episode has other classes means all of them.
    plain = oneshot.episode_scores(ep, z, distance)
    np.testing.assert_allclose(plain, oneshot.episode_scores(ep, z, distance, local_scaling=0))
    assert not np.allclose(plain, got)
    everyone = oneshot.episode_scores(ep, z, distance, local_scaling=0.3, scaling_neighbors=50)
    all_seven = oneshot.episode_scores(ep, z, distance, local_scaling=0.3, scaling_neighbors=7)
    np.testing.assert_allclose(everyone, all_seven)
    result = oneshot.evaluate_episodes(ep, z, distance, local_scaling=0.3, scaling_neighbors=3)
    assert result["method"] == f"prototype ({distance}, local scaling 0.3, k=3)"


def test_local_scaling_stops_a_crowded_prototype_taking_other_queries():
    """Classes 0-2 crowd together (0 in the middle) and class 3 is alone; a query of class 3 that
    lies a little nearer class 0's prototype than its own goes to 3 once crowding is charged."""
    z = np.array([[0.0, 0.0], [0.5, 0.0], [-0.5, 0.0], [0.0, 4.0], [0.0, 1.9]])
    ep = oneshot.Episodes(support=np.arange(4)[None, :, None], query=np.array([[4]]), query_class=np.array([[3]]))
    assert oneshot.evaluate_episodes(ep, z, "euclidean")["accuracy"] == 0.0
    assert oneshot.evaluate_episodes(ep, z, "euclidean", local_scaling=0.3, scaling_neighbors=1)["accuracy"] == 1.0


def test_local_scaling_errors():
    y = _labels(4, 3)
    ep = oneshot.sample_episodes(y, ways=3, episodes=2)
    z = np.random.default_rng(0).normal(size=(len(y), 2))
    with pytest.raises(ConfigError, match="local_scaling must be zero or a positive weight, got -0.1"):
        oneshot.evaluate_episodes(ep, z, local_scaling=-0.1)
    with pytest.raises(ConfigError, match="scaling_neighbors must be an integer of at least 1"):
        oneshot.evaluate_episodes(ep, z, local_scaling=0.2, scaling_neighbors=0)
    with pytest.raises(ConfigError, match="not a pair head's scores"):
        oneshot.evaluate_episodes(ep, z, pair_score=lambda a, b: -np.abs(a - b).sum(1), local_scaling=0.2)


def test_pair_score_mode_averages_over_shots_and_respects_direction():
    rng = np.random.default_rng(2)
    y = _labels(6, 5)
    z = rng.normal(size=(len(y), 4)) + rng.normal(size=(6, 4))[y]
    ep = oneshot.sample_episodes(y, ways=4, shots=1, episodes=30, seed=0)

    def euclid(a, b):
        return np.linalg.norm(a - b, axis=1)

    # K = 1: the distance head's score gives the same answers as the prototype rule.
    by_distance = oneshot.evaluate_episodes(ep, z, pair_score=euclid, higher_is_similar=False)
    by_prototype = oneshot.evaluate_episodes(ep, z, distance="euclidean")
    assert by_distance["accuracy"] == pytest.approx(by_prototype["accuracy"])
    assert by_distance["method"] == "pair_score"
    # The same scores read the wrong way round pick the farthest class.
    flipped = oneshot.evaluate_episodes(ep, z, pair_score=euclid, higher_is_similar=True)
    assert flipped["accuracy"] < by_distance["accuracy"]
    # K > 1: the score is the mean over the shots.
    ep3 = oneshot.sample_episodes(y, ways=3, shots=3, episodes=10, seed=0)
    scores = oneshot.episode_scores(ep3, z, pair_score=euclid, higher_is_similar=False)
    e, m, n = 4, 1, 2
    expected = -np.mean([euclid(z[[ep3.query[e, m]]], z[[s]])[0] for s in ep3.support[e, n]])
    assert scores[e, m, n] == pytest.approx(expected)


def test_nan_embeddings_are_refused():
    y = _labels(3, 3)
    ep = oneshot.sample_episodes(y, ways=3, episodes=2)
    z = np.ones((len(y), 2))
    z[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        oneshot.evaluate_episodes(ep, z)


def _synthetic_omniglot(alphabets=3, chars=(5, 6, 4), drawers=4):
    y, alphabet, drawer = [], [], []
    label = 0
    for a in range(alphabets):
        for _ in range(chars[a]):
            for d in range(1, drawers + 1):
                y.append(label)
                alphabet.append(a)
                drawer.append(d)
            label += 1
    return np.array(y), np.array(alphabet), np.array(drawer)


def test_omniglot_protocol_structure():
    y, alphabet, drawer = _synthetic_omniglot()
    ep = oneshot.omniglot_episodes(y, alphabet, drawer, trials=9, ways=4, seed=0)
    assert ep.support.shape == (9, 4, 1) and ep.query.shape == (9, 4)
    support = ep.support[:, :, 0]
    np.testing.assert_array_equal(y[support], y[ep.query])  # query n is character n of the support
    np.testing.assert_array_equal(ep.query_class, np.tile(np.arange(4), (9, 1)))
    for t in range(9):
        assert len(set(alphabet[support[t]])) == 1 and len(set(alphabet[ep.query[t]])) == 1
        assert len(set(drawer[support[t]])) == 1 and len(set(drawer[ep.query[t]])) == 1  # one drawer per side
        assert drawer[support[t, 0]] != drawer[ep.query[t, 0]]  # two different drawers
        assert len(set(y[support[t]])) == 4
    # Spread evenly: three trials per alphabet.
    assert np.bincount(alphabet[support[:, 0]]).tolist() == [3, 3, 3]


def test_omniglot_protocol_errors():
    y, alphabet, drawer = _synthetic_omniglot()
    with pytest.raises(ConfigError, match="spread evenly"):
        oneshot.omniglot_episodes(y, alphabet, drawer, trials=10, ways=4)
    with pytest.raises(DataError, match="a 5-way trial needs 5 characters"):
        oneshot.omniglot_episodes(y, alphabet, drawer, trials=3, ways=5)
    with pytest.raises(DataError, match="exactly one image"):
        oneshot.omniglot_episodes(np.r_[y, y[:1]], np.r_[alphabet, alphabet[:1]], np.r_[drawer, drawer[:1]], 3, 4)


@pytest.mark.data
def test_omniglot_protocol_on_the_real_evaluation_set(shared_data_dir):
    with np.load(shared_data_dir / "omniglot.npz") as f:
        ev = f["split"] == 1
        y, alphabet, drawer = f["label"][ev], f["alphabet"][ev], f["drawer"][ev]
    ep = oneshot.omniglot_episodes(y, alphabet, drawer, trials=400, ways=20, seed=0)
    assert ep.support.shape == (400, 20, 1)
    assert np.bincount(alphabet[ep.support[:, 0, 0]] - 30).tolist() == [20] * 20
    np.testing.assert_array_equal(y[ep.support[:, :, 0]], y[ep.query])
    assert (drawer[ep.support[:, :, 0]] != drawer[ep.query]).all()


def _write_lake_run(folder, name, answers, images, prefix_run=False, wrong=()):
    """A run: class NN is pattern images[NN]; item i shows its answer's pattern (or another for `wrong`)."""
    run = folder / name
    (run / "training").mkdir(parents=True)
    (run / "test").mkdir()
    for c in range(len(images)):
        Image.fromarray(images[c]).save(run / "training" / f"class{c + 1:02d}.png")
    lines = []
    for i, c in enumerate(answers):
        shown = (c + 1) % len(images) if i in wrong else c
        Image.fromarray(images[shown]).save(run / "test" / f"item{i + 1:02d}.png")
        pre = f"{name}/" if prefix_run else ""
        lines.append(f"{pre}test/item{i + 1:02d}.png {pre}training/class{c + 1:02d}.png")
    (run / "class_labels.txt").write_text("\n".join(lines) + "\n")


def _read_pixels(paths):
    return np.stack([np.asarray(Image.open(p), dtype="float64").ravel() / 255 for p in paths])


def test_lake_layout_evaluator(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.random((5, 6, 6)) > 0.5).astype("uint8") * 255
    _write_lake_run(tmp_path, "run01", [3, 0, 4, 1, 2], images)
    _write_lake_run(tmp_path, "run02", [1, 2, 0, 4, 3], images, prefix_run=True, wrong=(2,))
    (tmp_path / "notes").mkdir()  # other folders are ignored
    runs = lake.read_lake_runs(tmp_path)
    assert [r.name for r in runs] == ["run01", "run02"]
    assert runs[0].answer.tolist() == [3, 0, 4, 1, 2]
    assert [p.rsplit("/", 2)[-2:] for p in runs[1].query][0] == ["test", "item01.png"]
    result = lake.evaluate_lake_runs(runs, _read_pixels)
    assert [r["error"] for r in result["runs"]] == [0.0, pytest.approx(20.0)]
    assert result["error"] == pytest.approx(10.0)
    assert result["runs"][0]["ways"] == 5 and result["runs"][0]["queries"] == 5


def test_lake_layout_errors(tmp_path):
    with pytest.raises(DataError, match="no runNN folders"):
        lake.read_lake_runs(tmp_path)
    (tmp_path / "run01").mkdir()
    with pytest.raises(DataError, match="class_labels.txt is missing"):
        lake.read_lake_runs(tmp_path)
    (tmp_path / "run01" / "class_labels.txt").write_text("test/item01.png training/class01.png\n")
    with pytest.raises(DataError, match="does not exist"):
        lake.read_lake_runs(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        lake.read_lake_runs(tmp_path / "missing")
