"""initkit.fs: is_within, no-follow directories and atomic writes, temp names and sweep, whole trees.

remove_tree: a hostile party that can write beside DEST (the shared volume)
plants a tree 1,500 levels deep at the temp name fetch or git-clone removes;
shutil.rmtree ended every run in RecursionError (and, being fd-based, needs a
descriptor per level). The deep tests run in a child process limited to 64
descriptors.
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


# ---- is_within: one meaning, the stricter --------------------------------------------------------------


def test_is_within_compares_whole_components_of_real_paths(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data2").mkdir()
    (tmp_path / "data" / "out").symlink_to(tmp_path / "data2")
    (tmp_path / "data" / "in").symlink_to(tmp_path / "data" / "sub")
    data = str(tmp_path / "data")
    assert fs.is_within(data, data) and fs.is_within(data + "/", data)
    assert fs.is_within(str(tmp_path / "data" / "sub" / "missing"), data)
    assert fs.is_within(str(tmp_path / "data" / "in"), data)
    assert not fs.is_within(str(tmp_path / "data2"), data)  # a sibling sharing the prefix
    assert not fs.is_within(str(tmp_path / "data" / "out" / "f"), data)  # a link leading out
    assert not fs.is_within(data + "/../data2", data)  # render's string check said inside
    assert fs.is_within(str(tmp_path), "/")


# ---- write_atomic, through directories opened without following links ------------------------------------


def write(path: os.PathLike[str] | str, data: bytes, mode: int | None = None) -> bool:
    """write_atomic for a path whose directory is trusted."""
    directory, name = os.path.split(path)
    with fs.open_dir(directory) as dir_fd:
        return fs.write_atomic(dir_fd, name, data, mode, shown=str(path))


def test_writes_new_file_with_default_mode(tmp_path):
    path = tmp_path / "f"
    assert write(str(path), b"a\n") is True
    assert path.read_bytes() == b"a\n" and (path.stat().st_mode & 0o777) == 0o644


def test_unchanged_content_keeps_mtime_but_fixes_mode(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"same")
    os.utime(path, (1_000_000, 1_000_000))
    assert write(str(path), b"same", mode=0o600) is False
    assert path.stat().st_mtime == 1_000_000 and (path.stat().st_mode & 0o777) == 0o600


def test_changed_content_replaces_and_keeps_existing_mode(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    path.chmod(0o640)
    assert write(str(path), b"new") is True
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write(str(path), "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


# --- never through a symlink below the trusted directory ------------------------------------------------


def test_a_symlink_at_the_file_is_refused_not_followed_nor_replaced(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    outside.chmod(0o600)
    (tmp_path / "dest").mkdir()
    link = tmp_path / "dest" / "f"
    link.symlink_to(outside)
    for data in (b"keep", b"new"):  # unchanged content (a chmod) and changed content (a rename)
        with pytest.raises(fs.UnsafePath, match="is a symlink"):
            write(str(link), data, mode=0o644)
    assert outside.read_bytes() == b"keep" and (outside.stat().st_mode & 0o777) == 0o600
    assert link.is_symlink() and os.listdir(tmp_path / "dest") == ["f"]


def test_a_symlinked_directory_below_the_root_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "etc").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(fs.UnsafePath, match="etc is a symlink"):
        fs.check_tree(str(tmp_path / "dest"), ["etc", "passwd"])
    with (
        pytest.raises(fs.UnsafePath, match="etc is a symlink"),
        fs.open_dir(str(tmp_path / "dest"), ["etc"], create=True),
    ):
        pass
    assert os.listdir(tmp_path / "elsewhere") == []


def test_the_trusted_root_may_be_a_symlink(tmp_path):
    (tmp_path / "volume").mkdir()
    (tmp_path / "dest").symlink_to(tmp_path / "volume")
    with fs.open_dir(str(tmp_path / "dest"), ["a", "b"], create=True) as fd:
        assert fs.write_atomic(fd, "f", b"x") is True
    assert (tmp_path / "volume" / "a" / "b" / "f").read_bytes() == b"x"


def test_a_fifo_where_the_file_goes_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(fs.UnsafePath, match="not a regular file"):
        write(str(tmp_path / "f"), b"")


def test_a_second_hard_link_is_not_chmodded_through(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"same")
    outside.chmod(0o600)
    os.link(outside, tmp_path / "f")
    assert write(str(tmp_path / "f"), b"same", mode=0o644) is True
    assert (outside.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "f").stat().st_mode & 0o777) == 0o644


def test_a_directory_swapped_for_a_symlink_after_opening_is_not_followed(tmp_path):
    """The app races initkit: once a directory is open, writes go through its descriptor."""
    dest = tmp_path / "dest"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with fs.open_dir(str(dest), ["etc"], create=True) as fd:
        os.rename(dest / "etc", dest / "moved")
        (dest / "etc").symlink_to(elsewhere)
        assert fs.write_atomic(fd, "passwd", b"x") is True
    assert os.listdir(elsewhere) == []
    assert (dest / "moved" / "passwd").read_bytes() == b"x"


# ---- one temp name scheme, and the sweep of what a killed run left -------------------------------------------


def test_temp_names_follow_one_scheme(tmp_path):
    name = fs.temp_name("app.conf")
    assert name.startswith(".app.conf.") and name.endswith(".initkit-tmp") and len(name) == len(".app.conf.") + 20
    assert fs.temp_of(name) == ("app.conf", "") and fs.temp_of(fs.temp_name("p", "old")) == ("p", "old")
    assert fs.temp_of(name, ("other",)) is None
    for foreign in (".app.conf", ".app.conf.initkit-tmp", ".git.initkit-tmp", "app.conf.0123abcd.initkit-tmp"):
        assert fs.temp_of(foreign) is None, foreign


def test_sweep_removes_only_the_schemes_temps_beside_the_names_given(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "keep").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    (work / ".a.0123abcd.initkit-tmp").write_text("half")
    (work / ".a.0123abcd.initkit-tmp.d" / "x" / "y").mkdir(parents=True)
    (work / ".a.0123abcd.initkit-tmp.d" / "x" / "out").symlink_to(outside)
    (work / ".a.89abcdef.initkit-tmp.old").symlink_to(outside / "sub")  # a link with a temp name: unlinked only
    kept = [".b.0123abcd.initkit-tmp", ".a.initkit-tmp", "a", ".a.0123ABCD.initkit-tmp"]
    for name in kept:
        (work / name).write_text("keep")
    removed = fs.sweep(str(work), ("a",))
    assert sorted(removed) == [".a.0123abcd.initkit-tmp", ".a.0123abcd.initkit-tmp.d", ".a.89abcdef.initkit-tmp.old"]
    assert sorted(os.listdir(work)) == sorted(kept) and (outside / "sub" / "keep").read_text() == "keep"
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert fs.sweep(fd) == [".b.0123abcd.initkit-tmp"]  # by descriptor, every name
    finally:
        os.close(fd)


# ---- replace_tree and its recovery -----------------------------------------------------------------------


def test_replace_tree_swaps_a_whole_tree_and_removes_the_old_one(tmp_path):
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "old").write_text("1")
    new = tmp_path / fs.temp_name("dest", "d")
    new.mkdir()
    (new / "new").write_text("2")
    fs.replace_tree(str(new), str(tmp_path / "dest"))
    assert os.listdir(tmp_path) == ["dest"] and os.listdir(tmp_path / "dest") == ["new"]
    fresh = tmp_path / fs.temp_name("fresh", "d")
    fresh.mkdir()
    fs.replace_tree(str(fresh), str(tmp_path / "fresh"))  # nothing there before
    assert sorted(os.listdir(tmp_path)) == ["dest", "fresh"]


def test_replace_tree_puts_the_old_tree_back_when_the_second_rename_fails(tmp_path):
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "old").write_text("1")
    with pytest.raises(FileNotFoundError):
        fs.replace_tree(str(tmp_path / ".dest.0123abcd.initkit-tmp.d"), str(tmp_path / "dest"))  # no new tree
    assert os.listdir(tmp_path) == ["dest"] and (tmp_path / "dest" / "old").read_text() == "1"
    with pytest.raises(ValueError, match="not in the same directory"):
        fs.replace_tree(str(tmp_path / "elsewhere" / "t"), str(tmp_path / "dest"))


def test_recover_tree_puts_back_only_a_vouched_for_directory_when_dest_is_gone(tmp_path):
    (tmp_path / ".dest.0123abcd.initkit-tmp.old").mkdir()
    (tmp_path / ".dest.0123abcd.initkit-tmp.old" / "mine").write_text("1")
    (tmp_path / ".dest.89abcdef.initkit-tmp.old").mkdir()  # not vouched for
    (tmp_path / ".dest.fedcba98.initkit-tmp.old").symlink_to(tmp_path)  # a link: never
    vouch = lambda path: os.path.lexists(os.path.join(path, "mine"))  # noqa: E731
    assert fs.recover_tree(str(tmp_path / "dest"), vouch) == str(tmp_path / ".dest.0123abcd.initkit-tmp.old")
    assert (tmp_path / "dest" / "mine").read_text() == "1"
    assert fs.recover_tree(str(tmp_path / "dest"), vouch) is None  # DEST is there: nothing to do


# ---- remove_tree ------------------------------------------------------------------------------------------


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
    """A temp git dir (fs's scheme) 1,500 levels deep: git-clone removes it and clones (64 descriptors)."""
    tmp_path = deep
    served = gitservers.served_repo(tmp_path, {"README": "hello\n"})
    daemon = gitservers.GitDaemon(served).start()
    try:
        dest = tmp_path / "dest"
        dest.mkdir()
        plant_deep_tree(dest, ".git.0badcafe.initkit-tmp.d")
        code = "from initkit.cli import main\nmain()\n"
        out = run_limited(code, "git-clone", daemon.url("site.git"), str(dest))
    finally:
        daemon.stop()
    assert out.returncode == 0, out.stderr
    assert (dest / "README").read_text() == "hello\n" and not (dest / ".git.0badcafe.initkit-tmp.d").exists()
    # shutil.rmtree gave up (no descriptor left) and `git init` reused the half-removed directory:
    # the planted tree ended up inside DEST/.git
    assert sorted(p.name for p in (dest / ".git").iterdir() if p.name.startswith("0001") or p.name == "f") == []
