import os

import pytest

from initkit.atomic import write_if_changed


def test_writes_new_file_with_default_mode(tmp_path):
    path = tmp_path / "f"
    assert write_if_changed(str(path), b"a\n") is True
    assert path.read_bytes() == b"a\n" and (path.stat().st_mode & 0o777) == 0o644


def test_unchanged_content_keeps_mtime_but_fixes_mode(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"same")
    os.utime(path, (1_000_000, 1_000_000))
    assert write_if_changed(str(path), b"same", mode=0o600) is False
    assert path.stat().st_mtime == 1_000_000 and (path.stat().st_mode & 0o777) == 0o600


def test_changed_content_replaces_and_keeps_existing_mode(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    path.chmod(0o640)
    assert write_if_changed(str(path), b"new") is True
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_if_changed(str(path), "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]
