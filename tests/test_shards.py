"""Distributed embedding: the batch -> batch embedder, Parquet shards, `embed --shards`, `index build --from-shards`."""

import json
import pickle
import shutil

import numpy as np
import pytest
from conftest import digit_pngs

from siamkit.cli import main
from siamkit.errors import DataError
from siamkit.index import load, shards
from siamkit.index.embedder import BatchEmbedder

pytest.importorskip("pyarrow", reason="embedding shards need pyarrow (siamkit[ray])")
pytestmark = pytest.mark.slow  # every test uses the session-trained `trained_run`


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    paths = digit_pngs(tmp_path_factory.mktemp("digits"), n=300)
    return paths[0].parent.parent, sorted(str(p) for p in paths)


def _read_all(directory):
    _, rows = shards.read(directory)
    ids, vectors, metadata = zip(*rows)
    return np.concatenate(ids), np.concatenate(vectors), [m for part in metadata for m in part]


def test_the_embedder_takes_ray_spark_and_dask_batches_and_pickles_without_its_model(trained_run, pngs):
    from siamkit.index.inputs import embed_files

    _, paths = pngs
    embed = BatchEmbedder(trained_run.path, batch_size=16)
    want = embed_files(trained_run, paths[:20], 16, progress=False)
    got = embed({"path": np.array(paths[:20]), "label": np.arange(20)})  # Ray's numpy batches
    np.testing.assert_array_equal(got["vector"], want)
    assert got["label"].tolist() == list(range(20))
    np.testing.assert_array_equal(embed(np.array(paths[:20])), want)  # Spark's predict_batch_udf: an array in
    assert len(pickle.dumps(embed)) < 1000  # shipped to workers without the model
    with pytest.raises(DataError, match="no 'path' column"):
        embed({"file": np.array(paths[:2])})


def test_shards_hold_the_local_embedding_and_index_like_the_folder(trained_run, pngs, tmp_path, capsys):
    from siamkit.index.inputs import embed_files

    folder, paths = pngs
    assert main(["embed", trained_run.path, "--data", str(folder), "--shards", str(tmp_path / "s"),
                 "--batch-size", "64", "--quiet"]) == 0
    ids, vectors, metadata = _read_all(tmp_path / "s")
    np.testing.assert_array_equal(ids, np.arange(300))
    np.testing.assert_array_equal(vectors, embed_files(trained_run, paths, 64, progress=False))
    assert [m["path"] for m in metadata] == paths and metadata[0]["label"] == paths[0].split("/")[-2]
    files, fingerprint, distance, dim = shards.describe(tmp_path / "s")
    assert (fingerprint, distance, dim) == (trained_run.fingerprint(), trained_run.distance, vectors.shape[1])

    assert main(["index", "build", trained_run.path, "--from-shards", str(tmp_path / "s"), "--out",
                 str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["index", "build", trained_run.path, "--data", str(folder), "--out", str(tmp_path / "b"),
                 "--quiet"]) == 0
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    assert len(a) == len(b) == 300 and a.metadata([5]) == b.metadata([5])
    np.testing.assert_array_equal(a.search(vectors[:10], 5).ids, b.search(vectors[:10], 5).ids)
    capsys.readouterr()
    # Existing shard folders are never written into.
    code = main(["embed", trained_run.path, "--data", str(folder), "--shards", str(tmp_path / "s"), "--quiet"])
    assert code == 2 and "exists already" in capsys.readouterr().err


def test_shards_of_another_model_or_size_are_refused_and_nothing_is_written(trained_run, tmp_path, capsys):
    rng = np.random.default_rng(0)
    mine, dim = trained_run.fingerprint(), trained_run.embed(np.zeros((1, *trained_run.input_shape), "f4")).shape[1]
    shards.write(tmp_path / "a", np.arange(4), ["a.png"] * 4, ["x"] * 4, rng.random((4, dim)), mine, "euclidean")
    shards.write(tmp_path / "b", np.arange(4, 8), ["b.png"] * 4, [None] * 4, rng.random((4, dim + 1)), mine,
                 "euclidean")
    shards.write(tmp_path / "c", np.arange(4), ["c.png"] * 4, [None] * 4, rng.random((4, dim)), "0" * 64,
                 "euclidean")
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "a", mixed)
    shutil.copy(tmp_path / "b" / "part-00000.parquet", mixed / "part-00001.parquet")
    for source, message in ((mixed, "differ in embedding size"), (tmp_path / "c", "another model")):
        code = main(["index", "build", trained_run.path, "--from-shards", str(source), "--out",
                     str(tmp_path / "ix"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1
        assert not (tmp_path / "ix").exists()
    assert json.loads(json.dumps(_read_all(tmp_path / "a")[2][0])) == {"path": "a.png", "label": "x"}


def test_ray_shards_equal_the_local_embedding_exactly(trained_run, pngs, tmp_path):
    ray = pytest.importorskip("ray", reason="the ray engine needs Ray (siamkit[ray])")
    folder, _ = pngs
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for engine in ("local", "ray"):
            assert main(["embed", trained_run.path, "--data", str(folder), "--shards", str(tmp_path / engine),
                         "--engine", engine, "--workers", "2", "--batch-size", "50", "--quiet"]) == 0
    finally:
        ray.shutdown()
    local, distributed = _read_all(tmp_path / "local"), _read_all(tmp_path / "ray")
    np.testing.assert_array_equal(distributed[0], local[0])
    np.testing.assert_array_equal(distributed[1], local[1])
    assert distributed[2] == local[2]
