"""Two-tower networks on the user's own files: towers per modality, pairing readers, bad input, the CLI."""

import json
import re

import keras
import numpy as np
import pytest
from PIL import Image

from siamkit import _io, audio, datasets, encoders, losses, models
from siamkit.cli import main
from siamkit.errors import ConfigError

WORDS = {0: ["zero", "null", "cero"], 1: ["one", "eins", "uno"], 2: ["two", "zwei", "dos"]}


def _fit_one_step_and_reload(tmp_path, tower_a, tower_b, x_a, x_b, y):
    net = models.TwoTowerNetwork(tower_a, tower_b, projection=keras.layers.Dense(8), learn_temperature=True)
    scores = models.CrossModalScores(net)
    scores([x_a[:1], x_b[:1]])
    scores.compile(optimizer="adam", loss=losses.ClipLoss())
    before = [np.array(w) for w in net.get_weights()]
    scores.fit((x_a, x_b), y, batch_size=len(y), epochs=1, verbose=0)
    assert any(not np.allclose(b, np.array(w)) for b, w in zip(before, net.get_weights())), "one step trained"
    path = tmp_path / "net.keras"
    _io.save_model(net, path)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    for side, x in (("a", x_a), ("b", x_b)):
        np.testing.assert_allclose(again.embed(x, side), net.embed(x, side), rtol=1e-5, atol=1e-6)
    return net


@pytest.mark.backend
def test_text_tower_hashes_byte_ngrams_and_round_trips(tmp_path):
    codes = datasets.encode_text(["seven", "sieben", "sept", "siete"], 12)
    assert codes.shape == (4, 12) and codes[0, 5] == 0 and codes[0, 0] == ord("s") + 1
    layer = encoders.HashedNgrams((1, 2), buckets=97, dim=3)
    out = keras.ops.convert_to_numpy(layer(codes))
    assert out.shape == (4, 12, 3)
    assert np.allclose(out[:, 6:], 0.0), "padding positions get no n-gram vector"
    # "se" opens both "seven" and "sept": equal codes give equal vectors at that position
    np.testing.assert_allclose(out[0, 0], out[2, 0])
    features = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    _fit_one_step_and_reload(
        tmp_path, encoders.build("text", (12,), embedding_dim=8, buckets=256, width=8),
        encoders.mlp((5,), embedding_dim=8, hidden_units=(8,)), codes, features, np.arange(4),
    )


@pytest.mark.backend
def test_image_towers_with_their_own_sizes_and_channels_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x_a = rng.random((4, 28, 28, 1), dtype="float32")
    x_b = rng.random((4, 8, 8, 3), dtype="float32")
    _fit_one_step_and_reload(
        tmp_path, encoders.build("cnn", (28, 28, 1), embedding_dim=8),
        encoders.build("mlp", (8, 8, 3), embedding_dim=8),
        x_a, x_b, np.arange(4),
    )


def test_audio_tower_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    clips = rng.normal(scale=0.1, size=(4, 1600)).astype("float32")
    images = rng.random((4, 8, 8, 1), dtype="float32")
    _fit_one_step_and_reload(
        tmp_path, encoders.build("mlp", (8, 8, 1), embedding_dim=8),
        audio.audio_encoder((1600,), embedding_dim=8, filters=(8,)), images, clips, np.arange(4),
    )


@pytest.mark.slow  # a full MobileNetV3Small: tens of seconds, so on the default lane only
def test_a_keras_applications_backbone_is_a_tower_beside_an_audio_tower(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((4, 32, 32, 1), dtype="float32")  # 1 channel, repeated to the backbone's 3 inside
    clips = rng.normal(scale=0.1, size=(4, 1600)).astype("float32")
    net = _fit_one_step_and_reload(
        tmp_path, encoders.build("mobilenetv3small", (32, 32, 1), embedding_dim=8),
        audio.audio_encoder((1600,), embedding_dim=8, filters=(8,)), images, clips, np.arange(4),
    )
    assert "MobileNetV3Small" in [layer.name for layer in net.encoder_a.layers]


@pytest.mark.parametrize("name", ["koch", "resnet", "alexnet", "vgg"])
def test_every_image_encoder_builds_as_a_tower(name):
    from siamkit.training import resolve
    from siamkit.training.two_tower import build_network

    config = resolve(overrides={"data": "a", "data_b": "b", "encoder": name, "embedding_dim": 8})
    net = build_network(config, ((64, 64, 3), (16,)), ("image", "features"))
    net([np.zeros((1, 64, 64, 3), "float32"), np.zeros((1, 16), "float32")])
    assert net.embed(np.zeros((2, 64, 64, 3), "float32"), "a").shape == (2, 8)
    with pytest.raises(ConfigError, match="cannot read audio"):
        build_network({**config, "encoder_b": "cnn"}, ((64, 64, 3), (800,)), ("image", "audio"))


# ---- files ----


def _digits():
    from sklearn.datasets import load_digits

    return load_digits()


def make_roots(tmp_path, kind_b="text", per_class=9):
    """images/<digit>/k.png and side b of `kind_b` (text, features, audio) for digits 0-2."""
    d = _digits()
    for c in range(3):
        (tmp_path / "img" / str(c)).mkdir(parents=True, exist_ok=True)
        (tmp_path / kind_b / str(c)).mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(d.target == c)[:per_class]):
            Image.fromarray((d.images[i] * 15).astype("uint8")).save(tmp_path / "img" / str(c) / f"{k}.png")
            if kind_b == "text":
                (tmp_path / "text" / str(c) / f"{k}.txt").write_text(WORDS[c][k % 3], encoding="utf-8")
            elif kind_b == "features":
                np.save(tmp_path / "features" / str(c) / f"{k}.npy", (d.data[i] / 16).astype("float32"))
            else:
                t = np.arange(800) / 8000
                tone = 0.3 * np.sin(2 * np.pi * (200 + 150 * c) * t)
                audio.write_wav(tmp_path / "audio" / str(c) / f"{k}.wav", tone, 8000)
    return tmp_path / "img", tmp_path / kind_b


@pytest.mark.parametrize("kind", ["text", "features", "audio"])
def test_two_roots_pair_by_class_folder(tmp_path, kind):
    root_a, root_b = make_roots(tmp_path, kind, per_class=3)
    a, b = datasets.load_cross_modal(root_a, root_b)
    assert (a.info["modality"], b.info["modality"]) == ("image", kind)
    assert a.info["class_names"] == b.info["class_names"] == ["0", "1", "2"]
    assert a.y.tolist() == b.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    if kind == "text":
        assert b.x.tolist()[:3] == ["zero", "null", "cero"]
    elif kind == "features":
        assert b.x.shape == (9, 64) and b.x.dtype == np.float32
    else:
        assert b.x.sample_rate == 8000 and len(b.x) == 9


def test_pair_csv_with_a_text_column_and_labels(tmp_path):
    root_a, _ = make_roots(tmp_path, "text", per_class=3)
    rows = ["path_a,path_b,label"] + [f"{c}/{k}.png,{WORDS[c][k]},{c}" for c in range(3) for k in range(3)]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    a, b = datasets.load_positive_pairs(tmp_path / "pairs.csv", root_a=root_a, text_b=True)
    assert b.info["modality"] == "text" and b.x[4] == "eins" and a.x.shape == (9, 8, 8, 1)
    assert a.y.tolist() == b.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert a.meta["line"].tolist() == list(range(2, 11))
    # without labels every a-file is its own class
    (tmp_path / "nolabel.csv").write_text("\n".join(r.rsplit(",", 1)[0] for r in rows[1:]) + "\n")
    a, b = datasets.load_positive_pairs(tmp_path / "nolabel.csv", root_a=root_a, text_b=True)
    assert sorted(a.y.tolist()) == list(range(9))


# ---- the CLI, end to end and on bad input ----


def run_embeddings(run_dir, path, side):
    from siamkit.runs import Run

    run = Run(str(run_dir))
    return run.embed(run.read_inputs([path], side), side)[0]


def _sk(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_evaluate_compare_search_and_serve_on_two_folders(tmp_path, capsys):
    root_a, root_b = make_roots(tmp_path, "text")
    out = tmp_path / "run"
    code, printed, err = _sk(capsys, "train", "--data", root_a, "--data-b", root_b, "--epochs", "2", "--batch-size",
                             "8", "--embedding-dim", "16", "--out", out, "--quiet")
    assert code == 0, err
    assert "text_to_image" in printed and "image_to_text" in printed and "ROC AUC" in printed
    config = json.loads((out / "config.json").read_text())
    assert (config["towers"], config["modality_a"], config["modality_b"], config["encoder"], config["encoder_b"]) == (
        2, "image", "text", "cnn", "text")
    assert (out / "manifest.csv").is_file() and (out / "manifest_b.csv").is_file()
    code, printed, _ = _sk(capsys, "evaluate", out, "--json")
    metrics = json.loads(printed)
    assert code == 0 and set(metrics["retrieval"]) == {"text_to_image", "image_to_text"}
    # 9 test items a side: R@10 is left out, not reported as a trivial 1.0
    assert metrics["test_items"] == {"a": 9, "b": 9}
    assert set(metrics["retrieval"]["text_to_image"]) == {"R@1", "R@5", "map_at_r"}
    # either modality first
    query = tmp_path / "q.txt"
    query.write_text("eins", encoding="utf-8")
    image = root_a / "1" / "0.png"
    one = _sk(capsys, "compare", out, image, query, "--json")
    other = _sk(capsys, "compare", out, query, image, "--json")
    assert one[0] == other[0] == 0 and json.loads(one[1])["score"] == pytest.approx(json.loads(other[1])["score"])
    # a text query searches an index of images
    index = tmp_path / "images.index"
    assert _sk(capsys, "index", "build", out, "--data", root_a, "--out", index)[0] == 0
    code, printed, err = _sk(capsys, "search", index, query, "-k", "3", "--json")
    assert code == 0, err
    assert "1/" in printed or "0/" in printed or "2/" in printed
    # its report shows text queries and their nearest images, and images and their nearest texts
    code, _, err = _sk(capsys, "report", out, "--out", tmp_path / "report.html", "--projection", "pca", "--quiet")
    assert code == 0, err
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="crossmodal"'):]
    section = section[: section.index("</section>")]
    assert "<h3>Image to text</h3>" in section and "<h3>Text to image</h3>" in section
    texts = re.findall(r'<span class="text thumb[^"]*" title="[^"]*">([^<]*)</span>', section)
    assert texts and set(texts) <= {w for words in WORDS.values() for w in words}
    # the service compares an image with an uploaded text, embeds either, and says what it cannot read
    from fastapi.testclient import TestClient

    from siamkit.service import create_app

    client = TestClient(create_app(str(out)))
    answer = client.post("/v1/compare", files={"a": ("1.png", image.read_bytes()), "b": ("q.txt", b"eins")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["score"] == pytest.approx(json.loads(one[1])["score"], rel=1e-5)
    embedded = client.post("/v1/embed", files=[("files", ("q.txt", "eins".encode())),
                                                    ("files", ("1.png", image.read_bytes()))]).json()
    np.testing.assert_allclose(embedded["embeddings"][0], run_embeddings(out, query, "b"), rtol=1e-5, atol=1e-6)
    audio.write_wav(tmp_path / "tone.wav", np.zeros(800), 8000)
    wav = client.post("/v1/embed", files={"files": ("tone.wav", (tmp_path / "tone.wav").read_bytes())})
    assert wav.status_code == 400 and "takes no audio input" in wav.json()["error"]
    binary = client.post("/v1/embed", files={"files": ("x.bin", b"\x00\x01\x02")})
    assert binary.status_code == 400 and "not an image or UTF-8 text" in binary.json()["error"]
    # options of the other kind of evaluation are refused
    code, _, err = _sk(capsys, "evaluate", out, "--ways", "3")
    assert code == 2 and "--ways does not apply" in err


def _one_line_error(capsys, argv, *fragments):
    code, _, err = _sk(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_bad_input_is_one_line_naming_the_file_class_or_row(tmp_path, capsys):
    train = ["train", "--epochs", "1", "--quiet", "--out", tmp_path / "never"]
    root_a, root_b = make_roots(tmp_path, "text", per_class=3)
    # a class in one root only
    (root_a / "9").mkdir()
    Image.new("L", (8, 8)).save(root_a / "9" / "0.png")
    _one_line_error(capsys, [*train, "--data", root_a, "--data-b", root_b], str(root_a / "9"), "'9'", "--skip-bad")
    (root_a / "9" / "0.png").unlink()
    (root_a / "9").rmdir()
    # a modality the tower cannot read
    _one_line_error(capsys, [*train, "--data", root_a, "--data-b", root_b, "--modality-b", "audio"],
                    str(root_b), "holds text data")
    _one_line_error(capsys, [*train, "--data", root_a, "--data-b", root_b, "--encoder-b", "cnn"],
                    "encoder_b 'cnn' cannot read text")
    # an empty text, and text that is not UTF-8
    (root_b / "1" / "0.txt").write_text("  \n")
    _one_line_error(capsys, [*train, "--data", root_a, "--data-b", root_b], str(root_b / "1" / "0.txt"), "empty")
    (root_b / "1" / "0.txt").write_bytes(b"\xff\xfe\xfa")
    _one_line_error(capsys, [*train, "--data", root_a, "--data-b", root_b], "0.txt", "not UTF-8")
    assert not (tmp_path / "never").exists()


def test_bad_feature_vectors_and_unpaired_rows(tmp_path, capsys):
    train = ["train", "--epochs", "1", "--quiet", "--out", tmp_path / "never"]
    root_a, root_b = make_roots(tmp_path, "features", per_class=3)
    np.save(root_b / "2" / "1.npy", np.zeros(10, "float32"))
    _one_line_error(capsys, [*train, "--data", root_a, "--data-b", root_b], str(root_b / "2" / "1.npy"),
                    "length 10, expected 64")
    # the CSV of matching pairs: an unpaired row, then a missing file
    rows = ["path_a,path_b"] + [f"{c}/{k}.png,{WORDS[c][k]}" for c in range(3) for k in range(3)]
    rows[4] = "1/0.png,"
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    csv_train = [*train, "--pairs-csv", csv_path, "--data", root_a, "--towers", "2", "--modality-b", "text"]
    _one_line_error(capsys, csv_train, f"{csv_path}, line 5", "unpaired")
    rows[4] = "1/7.png,eins"
    csv_path.write_text("\n".join(rows) + "\n")
    _one_line_error(capsys, csv_train, "line 5", "'1/7.png' does not exist")
    assert not (tmp_path / "never").exists()
    # --skip-bad leaves the row out and reports it
    out = tmp_path / "skipped"
    code, _, err = _sk(capsys, "train", "--epochs", "1", "--quiet", "--out", out, "--pairs-csv", csv_path, "--data",
                       root_a, "--towers", "2", "--modality-b", "text", "--skip-bad", "--batch-size", "4")
    assert code == 0, err
    report = (out / "bad_files.csv").read_text()
    assert "pairs.csv:5" in report and "does not exist" in report


def _vector_table(path, labels, vectors):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"label": labels, "embedding": vectors}), path)
    return path


def test_a_parquet_table_of_vectors_pairs_with_a_class_folder_and_trains(tmp_path, capsys):
    root_a, _ = make_roots(tmp_path, "text", per_class=9)
    d = _digits()
    rows = [i for c in range(3) for i in np.flatnonzero(d.target == c)[:9]]
    table = _vector_table(tmp_path / "vectors.parquet", [str(d.target[i]) for i in rows],
                          [(d.data[i] / 16).tolist() for i in rows])
    a, b = datasets.load_cross_modal(root_a, table)
    assert (a.info["modality"], b.info["modality"]) == ("image", "features")
    assert b.x.shape == (27, 64) and b.y.tolist() == [0] * 9 + [1] * 9 + [2] * 9
    np.testing.assert_allclose(b.x[10], d.data[rows[10]] / 16, rtol=1e-6)
    assert b.meta["path"][0] == "vectors.parquet:row 1"
    out = tmp_path / "run"
    code, printed, err = _sk(capsys, "train", "--data", root_a, "--data-b", table, "--epochs", "1", "--batch-size",
                             "8", "--embedding-dim", "8", "--out", out, "--quiet")
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["modality_b"] == "features"


@pytest.mark.parametrize("labels, vectors, fragment", [
    (["0", "1"], [[0.0, 1.0], [1.0]], "row 2: embedding has length 1, expected 2"),
    (["0", None], [[0.0, 1.0], [1.0, 0.0]], "row 2 has no label"),
    (["0", "1"], [[0.0, 1.0], [float("nan"), 0.0]], "row 2: embedding has NaN"),
    (["0", "1"], [[0.0, 1.0], []], "row 2: embedding [] is not a list of numbers"),
])
def test_a_bad_vector_table_is_one_line_naming_the_row(tmp_path, capsys, labels, vectors, fragment):
    root_a, _ = make_roots(tmp_path, "text", per_class=2)
    table = _vector_table(tmp_path / "v.parquet", labels, vectors)
    _one_line_error(capsys, ["train", "--data", root_a, "--data-b", table, "--out", tmp_path / "run"],
                    "v.parquet", fragment)
