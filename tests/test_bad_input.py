"""Every bad-input case: a clear message naming the file, through the loaders and the CLI.

Each case builds a small folder (two good classes plus the problem) and is
checked three ways: `load_folder` raises a `DataError`; `siamkit datasets
check` and `siamkit train` exit with status 2, print one line and no
traceback, and `train` writes no model. With `skip_bad` the bad file is left
out and reported.
"""

import builtins
import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from siamkit import cli, datasets
from siamkit.datasets import memory
from siamkit.errors import DataError

RNG = np.random.default_rng(0)


def _png(path, size=(8, 8)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, size, dtype="uint8")).save(path)


def _good_folder(root, classes=("a", "b"), per_class=3):
    for c in classes:
        for i in range(per_class):
            _png(os.path.join(root, c, f"{i}.png"))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(width=100_000, height=100_000):
    """A tiny PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    )


def _corrupt_png(path, monkeypatch):
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (8, 8), dtype="uint8")).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    start = data.index(b"IDAT") + 8
    data[start : start + 4] = b"\xde\xad\xbe\xef"  # pixel bytes no longer match the chunk's CRC
    path.write_bytes(bytes(data))


def _truncated_jpeg(path, monkeypatch):
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype="uint8")).save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    scan = data.index(b"\xff\xda")  # start of the compressed pixels: the header stays whole
    path.write_bytes(data[: scan + (len(data) - scan) // 2])


def _unreadable(path, monkeypatch):
    """Make `path` unreadable: chmod when that works, else (as root) deny it in `open`."""
    _png(str(path))
    os.chmod(path, 0)
    if os.access(path, os.R_OK):  # root reads anything, so simulate the denial
        real_open = builtins.open

        def deny(file, *args, **kwargs):
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(memory, "open", deny, raising=False)  # where the image readers open files


# Each case: name -> (build(root, monkeypatch) -> the path the message names, message pattern).
def _file_case(filename, write):
    """A good folder plus `b/filename`, made bad by `write(path, monkeypatch)`."""

    def build(root, monkeypatch):
        _good_folder(root)
        path = root / "b" / filename
        write(path, monkeypatch)
        return path

    return build


def _class_with_one_image(root, monkeypatch):
    _good_folder(root)
    _png(str(root / "c" / "only.png"))
    return root / "c"


def _one_class(root, monkeypatch):
    _good_folder(root, classes=("a",))
    return root


def _empty_folder(root, monkeypatch):
    root.mkdir()
    return root


def _mixed_sizes(root, monkeypatch):
    _good_folder(root)
    _png(str(root / "b" / "wide.png"), size=(8, 12))
    return root / "b" / "wide.png"


CASES = {
    "corrupt_png": (_file_case("x.png", _corrupt_png), "corrupt or truncated image"),
    "truncated_jpeg": (_file_case("x.jpg", _truncated_jpeg), "corrupt or truncated image"),
    "zero_byte": (_file_case("x.png", lambda p, _: p.write_bytes(b"")), r"is empty \(0 bytes\)"),
    "text_renamed_png": (_file_case("x.png", lambda p, _: p.write_text("just text")), "not an image PIL can read"),
    "decompression_bomb": (_file_case("x.png", lambda p, _: p.write_bytes(_bomb_png())), "decompression bomb"),
    "unreadable": (_file_case("x.png", _unreadable), "permission denied"),
    "class_with_one_image": (_class_with_one_image, "class 'c' has only 1 image"),
    "one_class": (_one_class, r"1 usable class\(es\) \['a'\].*at least 2 classes"),
    "empty_folder": (_empty_folder, "is empty: it has no image files"),
    "mixed_sizes": (_mixed_sizes, "mixed image sizes.*--image-size"),
}
SKIPPABLE = (
    "corrupt_png",
    "truncated_jpeg",
    "zero_byte",
    "text_renamed_png",
    "decompression_bomb",
    "unreadable",
    "class_with_one_image",
)


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path, monkeypatch):
    build, message = CASES[request.param]
    root = tmp_path / "data"
    named = build(root, monkeypatch)
    return request.param, root, str(named), message


def _run_cli(capsys, argv):
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, err


def test_loader_raises_naming_the_file(case):
    _, root, named, message = case
    with pytest.raises(DataError, match=message) as info:
        datasets.load_folder(root)
    assert named in str(info.value)


def test_datasets_check_cli_exits_2(case, capsys):
    _, root, named, message = case
    code, err = _run_cli(capsys, ["datasets", "check", str(root)])
    assert code == 2
    assert err.startswith("siamkit datasets: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert named in err


def test_train_cli_exits_2_before_training(case, capsys, tmp_path):
    _, root, named, message = case
    out = tmp_path / "run"
    code, err = _run_cli(capsys, ["train", "--data", str(root), "--epochs", "1", "--out", str(out)])
    assert code == 2, err
    assert err.startswith("siamkit train: error: ") and "Traceback" not in err
    assert named in err
    assert not (out / "model.keras").exists() and not (out / "history.csv").exists()


def test_skip_bad_leaves_the_file_out_and_reports_it(case):
    name, root, named, _ = case
    if name not in SKIPPABLE:
        with pytest.raises(DataError):
            datasets.load_folder(root, skip_bad=True)
        return
    ds = datasets.load_folder(root, skip_bad=True)
    assert len(ds) == 6 and ds.info["class_names"] == ["a", "b"]
    bad = ds.info["bad_files"]
    assert bad and all(path.startswith(named) for path, _ in bad)


def test_pixel_limit_is_a_parameter(tmp_path):
    _good_folder(tmp_path)
    with pytest.raises(DataError, match=r"8x8 = 64 pixels is over the limit of 50"):
        datasets.load_folder(tmp_path, max_pixels=50)
    assert len(datasets.load_folder(tmp_path, max_pixels=64)) == 6


def test_missing_folder(tmp_path, capsys):
    code, err = _run_cli(capsys, ["datasets", "check", str(tmp_path / "nope")])
    assert code == 2 and "not a folder" in err


def test_images_without_class_folders(tmp_path):
    _png(str(tmp_path / "loose.png"))
    with pytest.raises(DataError, match="has 1 image.*no class sub-folders"):
        datasets.load_folder(tmp_path)


def _pairs_csv(tmp_path):
    _good_folder(tmp_path / "imgs")
    csv = tmp_path / "pairs.csv"
    csv.write_text("path_a,path_b,label\nimgs/a/0.png,imgs/a/1.png,1\nimgs/a/0.png,imgs/b/9.png,0\n")
    return csv


def test_csv_row_with_missing_path_through_the_cli(tmp_path, capsys):
    csv = _pairs_csv(tmp_path)
    expected = r"pairs.csv, line 3: path_b 'imgs/b/9.png' does not exist"
    with pytest.raises(DataError, match=expected):
        datasets.load_pairs(csv)
    for argv in (
        ["datasets", "check", str(csv)],
        ["train", "--pairs-csv", str(csv), "--epochs", "1", "--out", str(tmp_path / "run")],
    ):
        code, err = _run_cli(capsys, argv)
        assert code == 2 and "Traceback" not in err
        assert "line 3: path_b 'imgs/b/9.png' does not exist" in err


def test_check_cli_skip_bad_lists_bad_files(tmp_path, capsys):
    _good_folder(tmp_path)
    (tmp_path / "a" / "zero.png").write_bytes(b"")
    assert cli.main(["datasets", "check", str(tmp_path), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "6 images in 2 classes" in out and "bad files  1" in out and "zero.png: is empty" in out
