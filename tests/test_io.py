"""Atomic writes: all or nothing, with the permissions of a plain write."""

import os
import stat
import sys

import numpy as np
import pytest

from siamkit import _io


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_files_get_the_umask_mode_not_owner_only(tmp_path, monkeypatch):
    monkeypatch.setattr(_io, "_UMASK", 0o022)
    _io.write_json(tmp_path / "a.json", {"x": np.float32(1.5)})
    _io.save_npz(tmp_path / "b.npz", x=np.arange(3))
    for name in ("a.json", "b.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    # an existing file keeps its mode, as with a plain open(path, "w")
    os.chmod(tmp_path / "a.json", 0o600)
    _io.write_json(tmp_path / "a.json", {"x": 2})
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    _io.write_json(path, {"auc": 0.9})
    with pytest.raises(TypeError, match="cannot write object as JSON"):
        _io.write_json(path, {"auc": object()})
    assert path.read_text() == '{\n  "auc": 0.9\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
