"""initkit.fs.remove_tree: trees deeper than Python's stack and the descriptor limit, links never followed.

A hostile party that can write beside DEST (the shared volume) plants a tree
1,500 levels deep at the temp name fetch or git-clone removes; shutil.rmtree
ended every run in RecursionError (and, being fd-based, needs a descriptor per
level). The deep tests run in a child process limited to 64 descriptors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from initkit import fs
from tests import gitservers

ROOT = Path(__file__).resolve().parent.parent
LIMITED = "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    """Where a test plants its deep tree; removed afterwards whatever happened (pytest's own clean-up of
    old temp directories, shared by every session on the machine, is shutil.rmtree: it would choke)."""
    yield tmp_path
    for name in os.listdir(tmp_path):
        fs.remove_tree(str(tmp_path / name))


def plant_deep_tree(parent: Path, name: str, depth: int = 1500) -> None:
    """`depth` levels of 200-character names (a path of 300 KB, far past PATH_MAX), a file at each level."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            part = name if level == 0 else f"{level:04d}" + "d" * 196
            os.mkdir(part, dir_fd=fd)
            sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
            os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def run_limited(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Python `code` in a child with RLIMIT_NOFILE 64 and the default recursion limit."""
    return subprocess.run(
        [sys.executable, "-c", LIMITED + code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_tree_1500_levels_deep_is_removed_with_64_descriptors(deep):
    tmp_path = deep
    plant_deep_tree(tmp_path, "deep")
    out = run_limited("import sys\nfrom initkit import fs\nfs.remove_tree(sys.argv[1])\n", str(tmp_path / "deep"))
    assert out.returncode == 0, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_shutil_rmtree_fails_on_the_same_tree(deep):
    """The repro: what remove_tree replaces cannot do it (so the test above is not vacuous)."""
    tmp_path = deep
    plant_deep_tree(tmp_path, "deep")
    out = run_limited("import shutil, sys\nshutil.rmtree(sys.argv[1])\n", str(tmp_path / "deep"))
    assert out.returncode != 0 and ("RecursionError" in out.stderr or "Too many open files" in out.stderr)


def test_links_are_removed_never_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "file").write_text("x")
    (tree / "a" / "to-dir").symlink_to(outside)
    (tree / "a" / "b" / "to-file").symlink_to(outside / "sub" / "keep")
    (tree / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tree / "a" / "fifo")
    fs.remove_tree(str(tree))
    assert not tree.exists() and (outside / "sub" / "keep").read_text() == "keep"


def test_a_link_at_the_top_is_unlinked_and_its_target_kept(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    fs.remove_tree(str(tmp_path / "link"))
    assert not (tmp_path / "link").exists() and (tmp_path / "target" / "keep").exists()


def test_relative_to_a_directory_descriptor_and_wide_directories(tmp_path):
    wide = tmp_path / "wide"
    wide.mkdir()
    for i in range(300):
        (wide / f"d{i}").mkdir()
        (wide / f"d{i}" / "f").write_text("x")
        (wide / f"f{i}").write_text("x")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fs.remove_tree("wide", dir_fd=fd)
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_nothing_there_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fs.remove_tree(str(tmp_path / "missing"))


def test_git_clone_removes_a_deep_tree_planted_at_its_temp_git_dir(deep):
    """DEST/.git.initkit-tmp, 1,500 levels deep: git-clone removes it and clones (64 descriptors)."""
    tmp_path = deep
    served = gitservers.served_repo(tmp_path, {"README": "hello\n"})
    daemon = gitservers.GitDaemon(served).start()
    try:
        dest = tmp_path / "dest"
        dest.mkdir()
        plant_deep_tree(dest, ".git.initkit-tmp")
        code = "from initkit.cli import main\nmain()\n"
        out = run_limited(code, "git-clone", daemon.url("site.git"), str(dest))
    finally:
        daemon.stop()
    assert out.returncode == 0, out.stderr
    assert (dest / "README").read_text() == "hello\n" and not (dest / ".git.initkit-tmp").exists()
    # shutil.rmtree gave up (no descriptor left) and `git init` reused the half-removed directory:
    # the planted tree ended up inside DEST/.git
    assert sorted(p.name for p in (dest / ".git").iterdir() if p.name.startswith("0001") or p.name == "f") == []
