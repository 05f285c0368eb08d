"""A full disk or a read-only folder: a one-line error that says what to do, and every earlier file intact.

The failure is injected where the write lands (`os.replace` of the atomic
write, for paths below the folder under test only), as a full disk or a
read-only mount would raise it.
"""

import csv
import errno
import os
import shutil

import pytest

from siamkit.cli import main
from siamkit.index import load

FAULTS = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system"}


@pytest.fixture
def failing_writes(monkeypatch):
    """`failing_writes(folder, code, name=None)`: writes below `folder` (to files called `name`) fail with `code`."""
    real = os.replace

    def arm(folder, code, name=None):
        folder = os.path.abspath(folder)

        def replace(src, dst, *args, **kwargs):
            dst_path = os.path.abspath(os.fspath(dst))
            if dst_path.startswith(folder + os.sep) and (name is None or os.path.basename(dst_path) == name):
                raise OSError(code, FAULTS[code], dst_path)
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)

    yield arm
    monkeypatch.setattr(os, "replace", real)


def _snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, folder)] = handle.read()
    return out


def _one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_full_disk_during_index_add_keeps_the_old_index(gallery_index, tmp_path, failing_writes, capsys):
    index_dir, paths = gallery_index
    copy = tmp_path / "ix"
    shutil.copytree(index_dir, copy)
    before = _snapshot(copy)
    failing_writes(copy, errno.ENOSPC)
    code = main(["index", "add", str(copy), "--data", str(paths[0]), "--quiet"])
    err = _one_line(capsys)
    assert code == 2 and "No space left on device" in err and "disk is full" in err and str(copy) in err
    assert _snapshot(copy) == before, "the index on disk is the old one, with no temporary file left"
    assert len(load(copy)) == len(load(index_dir))


def test_a_read_only_run_folder_during_evaluate_changes_nothing(trained_run, tmp_path, failing_writes, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained_run.path, copy)
    before = _snapshot(copy)
    failing_writes(copy, errno.EROFS)
    code = main(["evaluate", str(copy)])
    err = _one_line(capsys)
    assert code == 2 and "read-only" in err and "--out" in err
    assert _snapshot(copy) == before


def test_a_full_disk_at_the_model_save_keeps_the_training_and_the_rerun_finishes(tmp_path, failing_writes, capsys):
    out = tmp_path / "run"
    command = ["train", "--encoder", "mlp", "--epochs", "2", "--embedding-dim", "8", "--no-early-stopping",
               "--out", str(out), "--quiet"]
    failing_writes(out, errno.ENOSPC, name="model.keras")
    assert main(command) == 2
    assert "disk is full" in _one_line(capsys)
    assert (out / "config.json").is_file() and (out / "backup").is_dir() and not (out / "model.keras").exists()
    failing_writes(tmp_path / "elsewhere", errno.ENOSPC)  # the disk has room again
    assert main(command) == 0
    with open(out / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1], "no epoch lost or repeated"
    assert (out / "model.keras").is_file()
