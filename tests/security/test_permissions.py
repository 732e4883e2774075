"""Hostile shared volumes for `initkit permissions` (issue 15): a tree deeper than PATH_MAX that
must be walked in flat memory with a handful of descriptors, bind mounts of the same file system
inside PATH (which st_dev cannot tell apart), and a directory moved while the walk is inside it.

Every test mounts a fresh tmpfs, as a new volume, and runs as root like the chart's init container."""

from __future__ import annotations

import os
import resource
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from initkit.errors import JobFailed
from initkit.modes import parse
from initkit.owners import Owner
from initkit.permtree import Level as _Level
from initkit.permtree import Walker as _Walker
from tests.conftest import initkit_command, missing, requirement

OTHER = 2000  # the previous owner of the volume's files
APP = 1001
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CONTAINER = ("setpriv", "--bounding-set", "-all,+chown,+fowner")  # the chart step's capabilities


def _need(condition: bool, reason: str) -> None:
    if not condition:
        missing(reason, "run as root, with util-linux")


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    _need(done.returncode == 0, f"cannot mount here (needs root): {done.stderr.strip()}")


@pytest.fixture
def volume() -> Iterator[Path]:
    """A fresh tmpfs (root's, 0755); everything mounted below it is unmounted in teardown, always."""
    _need(os.geteuid() == 0, "needs root: tmpfs and bind mounts, chown")
    base = Path(tempfile.mkdtemp(prefix="initkit-perms-sec-"))
    base.chmod(0o755)
    vol = base / "vol"
    vol.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "mode=0755,size=256m", "tmpfs", str(vol))
        yield vol
    finally:
        for point in sorted((p for p in _mount_points() if p.startswith(f"{base}/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _mount_points() -> list[str]:
    # The test's own reading of the table, independent of the code under test.
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].encode().decode("unicode_escape") for line in lines]


def _file(path: Path, mode: int = 0o600, uid: int = OTHER) -> Path:
    path.write_text("x")
    os.chown(path, uid, uid)
    os.chmod(path, mode)
    return path


def _dir(path: Path, mode: int = 0o755, uid: int = OTHER) -> Path:
    path.mkdir()
    os.chown(path, uid, uid)
    os.chmod(path, mode)
    return path


def _ids(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


# --- 10: a tree deeper than PATH_MAX, in flat memory and with few descriptors ----------------------------

DEPTH = 2000
NAME = 250  # 2,000 levels of 250 characters: a path of 502,000 characters, 123 times PATH_MAX


def _level_name(level: int) -> str:
    return f"{level:04}".ljust(NAME, "d")


def _deep_tree(root: Path) -> None:
    """Built as an attacker would: mkdir relative to the parent's descriptor, as no path reaches the bottom."""
    fd = os.open(root, _DIR)
    try:
        for level in range(DEPTH):
            name = _level_name(level)
            os.mkdir(name, 0o755, dir_fd=fd)
            child = os.open(name, _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
            os.chown(fd, OTHER, OTHER)
        os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=fd))
        os.chown("leaf", OTHER, OTHER, dir_fd=fd)
    finally:
        os.close(fd)


def _deep_state(root: Path) -> list[tuple[int, int, int]]:
    """(uid, gid, mode) of every level, top to bottom, then of the leaf."""
    out = []
    fd = os.open(root, _DIR)
    try:
        for level in range(DEPTH):
            child = os.open(_level_name(level), _DIR, dir_fd=fd)
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            out.append((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
        st = os.stat("leaf", dir_fd=fd, follow_symlinks=False)
        out.append((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
    finally:
        os.close(fd)
    return out


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_a_tree_deeper_than_path_max_is_walked_in_flat_memory_with_64_descriptors(volume, tmp_path):
    _need(shutil.which("setpriv") is not None, "needs setpriv (util-linux)")
    root = _dir(volume / "data", 0o755)
    _deep_tree(root)
    err = tmp_path / "stderr"
    # Without coverage's subprocess hook: its tracer's memory is not initkit's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    # GNU time measures the peak: the rusage of a child forked from pytest itself would count
    # pytest's own memory (Linux keeps the high-water mark across fork and exec).
    gnu_time = requirement.path("/usr/bin/time", "apt-get install time")
    rss = tmp_path / "rss"
    argv = [gnu_time, "-f", "%M", "-o", str(rss), *CONTAINER]
    argv += initkit_command("permissions", str(root), "--owner", f"{APP}:{APP}", "--mode", "g+rwX")
    with err.open("w") as stderr:
        proc = subprocess.run(argv, stderr=stderr, env=env, cwd="/", preexec_fn=_limited, timeout=120, check=False)

    peak_mib = int(rss.read_text().split()[-1]) / 1024  # KiB
    text = err.read_text()
    assert proc.returncode == 0, text[:2000]
    assert text.splitlines() == [
        f"initkit permissions: {root}: {DEPTH + 2} entries checked, {DEPTH + 2} changed "
        f"({DEPTH + 2} owner, {DEPTH + 2} mode)"
    ]
    assert set(_deep_state(root)) == {(APP, APP, 0o775), (APP, APP, 0o660)}
    assert _deep_state(root)[-2:] == [(APP, APP, 0o775), (APP, APP, 0o660)]  # the bottom level and the leaf
    assert peak_mib < 60, f"peak RSS {peak_mib:.0f} MiB"


# --- 13: bind mounts of the same file system inside PATH ---------------------------------------------------


def test_a_bind_mount_of_the_same_file_system_inside_path_is_skipped(volume, run_cli):
    # The node's disk holds both the volume and whatever the bind mount shows (emptyDir, hostPath):
    # st_dev is the same, so only the mount table tells them apart.
    elsewhere = _dir(volume / "elsewhere", 0o700, uid=0)
    secret = _file(elsewhere / "secret", 0o600, uid=0)
    data = _dir(volume / "data")
    _file(data / "app.db")
    # mountinfo escapes a space, tab, newline and backslash (\040 \011 \012 \134), not a carriage return.
    point = _dir(data / "a mount\tpoint\n\\x\ry", 0o755)
    _mount("--bind", str(elsewhere), str(point))
    assert os.stat(point).st_dev == os.stat(data).st_dev
    before = {p: _ids(p) for p in (point, point / "secret", secret)}

    result = run_cli("permissions", str(data), "--owner", f"{APP}:{APP}", "--mode", "g+rwX")

    assert result.code == 0, result.stderr
    assert {p: _ids(p) for p in before} == before
    assert _ids(data / "app.db") == (APP, APP, 0o660)
    assert _ids(data) == (APP, APP, 0o775)
    shown = repr(str(point))[1:-1]  # on one line
    assert result.lines == [
        f"initkit permissions: skipped {shown}: a mount point (give a mount as its own PATH)",
        f"initkit permissions: {data}: 2 entries checked, 2 changed (2 owner, 2 mode)",
    ]


def test_a_file_bind_mounted_from_the_same_file_system_is_skipped(volume, run_cli):
    secret = _file(volume / "node-secret", 0o600, uid=0)
    data = _dir(volume / "data")
    target = _file(data / "config", 0o644)
    _mount("--bind", str(secret), str(target))

    result = run_cli("permissions", str(data), "--owner", f"{APP}:{APP}", "--mode", "a+rwX")

    assert result.code == 0, result.stderr
    assert _ids(secret) == (0, 0, 0o600)
    assert result.lines[0] == f"initkit permissions: skipped {target}: a mount point (give a mount as its own PATH)"


def test_the_source_of_a_bind_mount_inside_path_is_still_walked(volume, run_cli):
    # The mount's root is the very inode of its source: the mount point is skipped, the source is not.
    data = _dir(volume / "data")
    source = _dir(data / "source", 0o700)
    inner = _file(source / "inner", 0o600)
    point = _dir(data / "view")
    _mount("--bind", str(source), str(point))

    result = run_cli("permissions", str(data), "--owner", f"{APP}:{APP}")

    assert result.code == 0, result.stderr
    assert _ids(inner)[:2] == (APP, APP)
    assert result.lines == [
        f"initkit permissions: skipped {point}: a mount point (give a mount as its own PATH)",
        f"initkit permissions: {data}: 3 entries checked, 3 changed (3 owner, 0 mode)",
    ]


# --- 10: climbing back out of a directory moved while the walk was inside it ------------------------------


def test_a_directory_moved_while_walked_stops_the_walk_on_the_way_back(volume):
    data = _dir(volume / "data")
    a = _dir(data / "a")
    b = _dir(a / "b")
    other = _dir(volume / "other", 0o700, uid=0)  # outside PATH: never to be changed
    walker = _Walker(Owner(APP, APP), parse("a+rwX"), 0o022)
    # The walk's state once it has come down to b, holding only b's descriptor.
    walker._dev = data.stat().st_dev
    walker._levels = [_Level(str(data), data.stat().st_ino), _Level("a", a.stat().st_ino), _Level("b", b.stat().st_ino)]
    fd = os.open(b, _DIR)
    try:
        b.rename(other / "b")  # the app moves the directory the walk is in: `..` is other now
        with pytest.raises(JobFailed, match=r"^\S+/data/a/b: moved while it was walked \(stopped\)$"):
            walker._climb(fd, a.stat().st_ino)
        os.close(walker._climb(fd, other.stat().st_ino))  # the check can pass: `..` is opened
    finally:
        os.close(fd)
    assert _ids(other) == (0, 0, 0o700)


def test_mkdir_never_creates_through_a_link_the_app_planted(volume, run_cli, tmp_path):
    # The app replaced the directory the data directory goes in with a link out of the volume.
    outside = tmp_path / "outside"
    outside.mkdir()
    (volume / "postgresql").symlink_to(outside)
    result = run_cli("permissions", "--path", str(volume / "postgresql" / "data"), "1001:1001", "0700", "--mkdir")
    assert result.code == 1
    assert result.lines == [
        f"initkit permissions: error: --mkdir {volume}/postgresql/data: "
        f"{volume}/postgresql is a symlink: initkit never writes through links"
    ]
    assert os.listdir(outside) == []
