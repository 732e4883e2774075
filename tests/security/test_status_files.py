"""git-clone's --error-file and --touch-file in a volume the app has poisoned.

The app container shares the volume these files live in, and can plant
`vol/sub -> /outside-dir` before initkit runs. A file named `vol/sub/ready`
must then be neither created, touched nor removed in /outside-dir: the path is
refused at start (exit 2, one line), and every write or removal walks the
directories with O_NOFOLLOW (initkit/fs.py), so a link planted later is
refused too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from initkit import fs
from tests.conftest import initkit_command


@pytest.fixture
def repo(tmp_path: Path) -> str:
    work = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "index.html").write_text("hello\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "c1"], check=True, env=env)
    return str(work)


@pytest.fixture
def poisoned(tmp_path: Path) -> tuple[Path, Path]:
    """vol/sub -> outside (a directory outside the volume); returns (vol, outside)."""
    vol, outside = tmp_path / "vol", tmp_path / "outside"
    vol.mkdir()
    outside.mkdir()
    (vol / "sub").symlink_to(outside)
    return vol, outside


def _clone(repo: str, dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        initkit_command("git-clone", repo, str(dest), *args), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("flag", "ref"),
    [
        ("--error-file", "nope"),  # a failed clone writes the error file
        ("--touch-file", "main"),  # a clone that changed DEST touches the file
    ],
)
def test_a_status_file_below_a_planted_directory_link_is_refused_and_nothing_is_written_outside(
    repo, poisoned, tmp_path, flag, ref
):
    vol, outside = poisoned
    result = _clone(repo, tmp_path / "site", "--ref", ref, flag, str(vol / "sub" / "ready"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert flag in result.stderr and "symlink" in result.stderr
    assert os.listdir(outside) == []
    assert not (tmp_path / "site").exists()  # refused before anything was cloned


def test_an_error_file_below_a_planted_directory_link_is_not_removed_outside(repo, poisoned, tmp_path):
    vol, outside = poisoned
    (outside / "ready").write_text("the app's own file\n")
    result = _clone(repo, tmp_path / "site", "--error-file", str(vol / "sub" / "ready"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert (outside / "ready").read_text() == "the app's own file\n"


def test_a_deeper_planted_link_is_refused_too(repo, poisoned, tmp_path):
    vol, outside = poisoned
    result = _clone(repo, tmp_path / "site", "--ref", "nope", "--error-file", str(vol / "sub" / "a" / "b" / "error"))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert os.listdir(outside) == []


# ---- the write-time walk, for a link planted after the start check ------------------------------


def test_the_no_follow_writes_refuse_a_directory_link_planted_later(poisoned):
    vol, outside = poisoned
    (outside / "ready").write_text("keep\n")
    path = str(vol / "sub" / "ready")
    with pytest.raises(fs.UnsafePath, match="is a symlink"):
        fs.write_path(path, b"error\n", 0o644)
    with pytest.raises(fs.UnsafePath, match="is a symlink"):
        fs.remove_path(path)
    with pytest.raises(fs.UnsafePath, match="is a symlink"):
        fs.touch_path(str(vol / "sub" / "new"))
    assert sorted(os.listdir(outside)) == ["ready"]
    assert (outside / "ready").read_text() == "keep\n"


def test_the_no_follow_writes_create_remove_and_touch_in_real_directories(tmp_path):
    path = tmp_path / "status" / "deep" / "error"
    assert fs.write_path(str(path), b"failed\n", 0o644)
    assert path.read_text() == "failed\n"
    assert fs.remove_path(str(path)) and not path.exists()
    assert not fs.remove_path(str(path))  # already gone
    assert not fs.remove_path(str(tmp_path / "missing" / "error"))
    touched = tmp_path / "t" / "ready"
    fs.touch_path(str(touched))
    os.utime(touched, (1, 1))
    fs.touch_path(str(touched))
    assert touched.stat().st_mtime > 1
