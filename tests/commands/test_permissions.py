"""initkit permissions on real file systems: a tmpfs volume holding another owner's files, a
nested mount, lost+found, links pointing out of the tree, a non-root user, a container's
capability set (setpriv), and SIGTERM in the middle of a large tree."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from initkit.modes import parse
from initkit.owners import Owner
from initkit.permtree import Walker as _Walker
from tests.conftest import initkit_command, missing, requirement

OTHER = 2000  # the previous owner of the volume's files
APP = 1001


def _mount_tmpfs(path: Path) -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=512m", "tmpfs", str(path)], check=False)
    if done.returncode != 0:
        missing("cannot mount a tmpfs here", "run as root")


@pytest.fixture(autouse=True)
def _root() -> None:
    requirement.root("tmpfs mounts and chown")


@pytest.fixture
def setpriv() -> str:
    return requirement.tool("setpriv", "apt-get install util-linux")


@pytest.fixture
def volume() -> Iterator[Path]:
    """A fresh tmpfs, as a new volume: root-owned 0755. Its parent is world-searchable, so another user reaches it."""
    base = Path(tempfile.mkdtemp(prefix="initkit-perms-"))
    base.chmod(0o755)
    vol = base / "data"
    vol.mkdir()
    try:
        _mount_tmpfs(vol)
        yield vol
    finally:
        for mount in sorted((m for m in _mounts() if m.startswith(str(base))), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _mounts() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


def _file(path: Path, mode: int, uid: int = OTHER, gid: int = OTHER, text: str = "x") -> Path:
    path.write_text(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def _dir(path: Path, mode: int, uid: int = OTHER, gid: int = OTHER) -> Path:
    path.mkdir()
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def _app_tree(root: Path) -> None:
    """What an app leaves on its volume: assorted modes, special bits, a fifo, a socket, links inside."""
    _dir(root / "conf", 0o755)
    _file(root / "conf" / "app.conf", 0o644)
    _file(root / "conf" / "secret", 0o600)
    _file(root / "conf" / "none", 0o000)
    _dir(root / "bin", 0o750)
    _file(root / "bin" / "run", 0o755)
    _file(root / "bin" / "suid", 0o4755)
    _file(root / "bin" / "sgid-noexec", 0o2644)
    _dir(root / "shared", 0o2775)
    _dir(root / "shared" / "tmp", 0o1777)
    _dir(root / "shared" / "tmp" / "private", 0o700)
    _file(root / "shared" / "tmp" / "private" / "db", 0o640)
    os.mkfifo(root / "shared" / "fifo", 0o620)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "shared" / "sock"))
    (root / "shared" / "to-conf").symlink_to("../conf/app.conf")
    (root / "shared" / "dangling").symlink_to("nowhere")
    for link in ("fifo", "sock", "to-conf", "dangling"):
        os.chown(root / "shared" / link, OTHER, OTHER, follow_symlinks=False)


def _state(root: Path) -> dict[str, tuple[int, int, int]]:
    """relative path -> (uid, gid, mode) of every entry, links themselves, not followed."""
    out = {}
    for entry in [root, *root.rglob("*")]:
        st = entry.lstat()
        out[str(entry.relative_to(root))] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
    return out


def _ctimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_ctime_ns for p in [root, *root.rglob("*")]}


def _ids(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_uid, p.lstat().st_gid) for p in [root, *root.rglob("*")]}


# --- the same result as chown -R + chmod -R, without their faults -------------------------------------


@pytest.mark.parametrize("spec", ["g+rwX", "u+rwX,g+rwX,o-rwx", "a=rX", "0750", "g=u", "+X"])
def test_same_owners_and_modes_as_chown_and_chmod_recursive(volume, run_cli, spec):
    ours, theirs = volume / "ours", volume / "theirs"
    for root in (ours, theirs):
        _dir(root, 0o755)
        _app_tree(root)
    baseline = subprocess.run(
        ["sh", "-c", f'chown -R {APP}:{APP} "$1" && chmod -R -- {spec} "$1"', "sh", str(theirs)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    assert baseline.returncode == 0 or "new permissions are" in baseline.stderr, baseline.stderr

    result = run_cli("permissions", str(ours), "--owner", f"{APP}:{APP}", "--mode", spec)

    assert result.code == 0, result.stderr
    assert len(result.lines) == 1, result.stderr  # the summary; no warning of a link it tried to chmod
    assert _state(ours) == _state(theirs)
    assert _state(ours) != {k: v for k, v in _state(ours).items() if v[:2] == (OTHER, OTHER)}  # something changed


def test_volume_with_foreign_files_mount_lost_and_found_and_links_out(volume, run_cli, tmp_path):
    outside_file = _file(tmp_path / "outside.conf", 0o640, uid=0, gid=0)
    outside_dir = _dir(tmp_path / "outside", 0o700, uid=0, gid=0)
    _file(outside_dir / "inner", 0o600, uid=0, gid=0)
    lost = _dir(volume / "lost+found", 0o700, uid=0, gid=0)
    _file(lost / "#1234", 0o600, uid=0, gid=0)
    _app_tree(volume)
    _dir(volume / "shared" / "lost+found", 0o700)  # only the top's is the file system's
    (volume / "conf" / "out-file").symlink_to(outside_file)
    (volume / "conf" / "out-dir").symlink_to(outside_dir)
    nested = _dir(volume / "cache", 0o755, uid=0, gid=0)
    _mount_tmpfs(nested)
    _file(nested / "blob", 0o644, uid=OTHER, gid=OTHER)
    outside_before = {p: _state(p) for p in (outside_dir,)} | {"file": outside_file.lstat()}
    nested_before = _state(nested)
    modes_before = {rel: mode for rel, (_u, _g, mode) in _state(volume).items()}
    lost_before = _state(lost)

    result = run_cli("permissions", str(volume), "--owner", f"{APP}:{APP}", "--mode", "u+rwX,g+rwX")

    assert result.code == 0, result.stderr
    # Nothing beyond the volume changed: not the links' targets, not the mount, not lost+found.
    assert outside_file.lstat().st_uid == 0
    assert stat.S_IMODE(outside_file.lstat().st_mode) == 0o640
    assert outside_file.lstat().st_ctime_ns == outside_before["file"].st_ctime_ns
    assert _state(outside_dir) == outside_before[outside_dir]
    assert _state(nested) == nested_before
    assert _state(lost) == lost_before
    assert result.lines[:-1] == [
        f"initkit permissions: skipped {nested}: on another file system (give a mount as its own PATH)"
    ]
    # Everything else belongs to the app now, links included (lchown, as chown -R does).
    walked = {rel: ids for rel, ids in _state(volume).items() if rel.split("/")[0] not in ("lost+found", "cache")}
    assert {ids[:2] for ids in walked.values()} == {(APP, APP)}
    assert walked["shared/lost+found"] == (APP, APP, 0o770)
    assert walked["conf/secret"] == (APP, APP, 0o660)
    assert walked["conf/none"] == (APP, APP, 0o660)
    assert walked["bin/run"] == (APP, APP, 0o775)
    links = [rel for rel in walked if (volume / rel).is_symlink()]
    assert len(links) == 4
    assert all(walked[rel][2] == 0o777 for rel in links)  # never chmod'ed
    assert result.lines[-1] == (
        f"initkit permissions: {volume}: {len(walked)} entries checked, {len(walked)} changed "
        f"({len(walked)} owner, {sum(walked[rel][2] != modes_before[rel] for rel in walked)} mode)"
    )


def test_rerun_changes_nothing_not_even_ctime(volume, run_cli):
    _app_tree(volume)
    first = run_cli("permissions", str(volume), "--owner", f"{APP}:{APP}", "--mode", "g+rwX,o-rwx")
    assert first.code == 0, first.stderr
    before, state = _ctimes(volume), _state(volume)
    time.sleep(0.05)  # well past the file system's timestamp granularity

    again = run_cli("permissions", str(volume), "--owner", f"{APP}:{APP}", "--mode", "g+rwX,o-rwx")

    assert again.code == 0, again.stderr
    assert again.lines[-1].endswith(f"{len(before)} entries checked, 0 changed (0 owner, 0 mode)")
    assert _ctimes(volume) == before
    assert _state(volume) == state
    # The check above can fail: the one-liner this replaces rewrites every inode on a re-run.
    subprocess.run(["chown", "-R", f"{APP}:{APP}", str(volume)], check=True)
    assert all(_ctimes(volume)[rel] != ctime for rel, ctime in before.items())


def test_owner_only_group_only_and_mode_only(volume, run_cli):
    _app_tree(volume)
    assert run_cli("permissions", str(volume), "--owner", f":{APP}").code == 0
    assert set(_ids(volume).values()) == {(OTHER, APP), (0, APP)}  # the volume's root was root's
    assert run_cli("permissions", str(volume), "--owner", str(APP)).code == 0
    assert set(_ids(volume).values()) == {(APP, APP)}
    modes = {rel: m for rel, (_u, _g, m) in _state(volume).items()}
    result = run_cli("permissions", str(volume), "--mode", "o-rwx")
    assert result.code == 0, result.stderr
    for rel, (_u, _g, mode) in _state(volume).items():
        if not (volume / rel).is_symlink():
            assert mode == modes[rel] & ~0o007, rel


def test_a_file_path_and_several_paths(volume, run_cli):
    one = _file(volume / "one", 0o600)
    two = _dir(volume / "two", 0o700)
    _file(two / "inner", 0o600)
    result = run_cli("permissions", str(one), str(two), "--owner", f"{APP}:{APP}", "--mode", "g+r")
    assert result.code == 0, result.stderr
    assert _state(volume)["one"] == (APP, APP, 0o640)
    assert _state(volume)["two"] == (APP, APP, 0o740)
    assert _state(volume)["two/inner"] == (APP, APP, 0o640)
    assert result.lines[-2].endswith(f"{one}: 1 entry checked, 1 changed (1 owner, 1 mode)")
    assert result.lines[-1].endswith(f"{two}: 2 entries checked, 2 changed (2 owner, 2 mode)")


def test_every_option_from_the_environment_and_json_logs(volume, run_cli):
    a, b = _dir(volume / "a", 0o700), _dir(volume / "b", 0o700)
    result = run_cli(
        "--log-format",
        "json",
        "permissions",
        env={
            "INITKIT_PERMISSIONS_PATHS": f"{a} {b}",
            "INITKIT_PERMISSIONS_OWNER": f"{APP}:{APP}",
            "INITKIT_PERMISSIONS_MODE": "g+rwX",
        },
    )
    assert result.code == 0, result.stderr
    assert _state(volume)["a"] == _state(volume)["b"] == (APP, APP, 0o770)
    records = [json.loads(line) for line in result.lines]
    assert [(r["command"], r["path"], r["checked"], r["changed"]) for r in records] == [
        ("permissions", str(a), 1, 1),
        ("permissions", str(b), 1, 1),
    ]


def test_progress_lines_on_a_large_tree(volume, run_cli, monkeypatch):
    from initkit import permtree

    for d in range(3):
        sub = volume / f"d{d}"
        sub.mkdir()
        for f in range(1000):
            (sub / f"f{f}").touch()
    monkeypatch.setattr(permtree, "PROGRESS_EVERY", 0.0)  # a line every 1,024 entries
    result = run_cli("permissions", str(volume), "--owner", str(APP))
    assert result.code == 0, result.stderr
    assert result.lines[:-1] == [
        f"initkit permissions: {volume}: {n} entries checked so far, {n} changed" for n in (1024, 2048)
    ]
    assert result.lines[-1].endswith("3004 entries checked, 3004 changed (3004 owner, 0 mode)")


def test_a_mode_without_who_letters_leaves_the_umask_bits_alone(volume, run_cli):
    target = _file(volume / "f", 0o600)
    previous = os.umask(0o027)
    try:
        result = run_cli("permissions", str(target), "--mode", "+r")
    finally:
        os.umask(previous)
    assert result.code == 0, result.stderr
    assert _state(volume)["f"][2] == 0o640  # as chmod +r: not o+r, the umask holds it


def test_errors_are_json_too(volume, run_cli):
    result = run_cli("--log-format", "json", "permissions", str(volume / "nope"), "--owner", "1")
    assert result.code == 2
    (record,) = [json.loads(line) for line in result.lines]
    assert record["level"] == "error" and record["msg"] == f"{volume}/nope: not found (--mkdir creates it)"


# --- bad input: exit 2, one line, nothing changed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--owner", "app"], "give numeric ids such as 1001:1001"),
        (["--owner", "app:app"], "give numeric ids"),
        (["--owner", "1001:"], "give the group as a number too"),
        (["--owner", ":"], "is not UID[:GID] or :GID"),
        (["--owner", "4294967295"], "is not a valid id"),
        (["--owner", "-1"], "give numeric ids"),
        (["--mode", "u+s"], "setuid, setgid or sticky"),
        (["--mode", "2775"], "setuid, setgid or sticky"),
        (["--mode", "u+rwx,"], "is not [ugoa...]"),
        ([], "nothing to do: give --owner, --mode or both"),
    ],
)
def test_bad_input_is_exit_2_and_changes_nothing(volume, run_cli, args, words):
    _app_tree(volume)
    before = _state(volume)
    result = run_cli("permissions", str(volume), *args)
    assert result.code == 2
    assert len(result.lines) == 1 and words in result.stderr, result.stderr
    assert _state(volume) == before


def test_missing_path_or_a_link_as_path_is_exit_2(volume, run_cli, tmp_path):
    (volume / "link").symlink_to(tmp_path)
    missing = run_cli("permissions", str(volume / "nope"), "--owner", "1")
    assert (missing.code, missing.lines) == (
        2,
        [f"initkit permissions: error: {volume}/nope: not found (--mkdir creates it)"],
    )
    link = run_cli("permissions", str(volume / "link"), "--owner", "1")
    assert link.code == 2
    assert "is a symlink: give the path it points to" in link.stderr
    assert tmp_path.stat().st_uid == 0


# --- privileges: a non-root user, and root with a container's capability set ------------------------------


def _setpriv(*prefix: str, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # Without coverage's subprocess hook: uid 65532 cannot write its data file into the checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    return subprocess.run(
        ["setpriv", *prefix, *initkit_command(*args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
    )


NON_ROOT = ("--reuid", "65532", "--regid", "65532", "--clear-groups")
CONTAINER = ("--bounding-set", "-all,+chown,+fowner")  # root with only what the chart step adds


@pytest.mark.usefixtures("setpriv")
def test_non_root_cannot_chown_root_files_exit_1_naming_the_capability(volume):
    _file(volume / "root\nfile", 0o644, uid=0, gid=0)
    before = _state(volume)
    done = _setpriv(*NON_ROOT, args=["permissions", str(volume), "--owner", f"{APP}:{APP}"])
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"initkit permissions: error: not permitted to chown {volume}/root\\nfile to {APP}:{APP}: "
        "the container needs CAP_CHOWN"
    ]
    assert _state(volume) == before


@pytest.mark.usefixtures("setpriv")
def test_non_root_cannot_chmod_root_files_exit_1_naming_the_capability(volume):
    _file(volume / "f", 0o644, uid=0, gid=0)
    done = _setpriv(*NON_ROOT, args=["permissions", str(volume), "--mode", "g+w"])
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"initkit permissions: error: not permitted to chmod {volume}/f: the container needs CAP_FOWNER "
        "(it does not own the file)"
    ]
    assert _state(volume)["f"] == (0, 0, 0o644)


@pytest.mark.usefixtures("setpriv")
def test_chown_and_fowner_are_enough_for_a_volume_root_can_search(volume):
    _app_tree(volume)
    os.chmod(volume / "shared" / "tmp" / "private", 0o755)
    os.chmod(volume / "bin", 0o755)
    args = ["permissions", str(volume), "--owner", f"{APP}:{APP}", "--mode", "g+rwX"]
    first = _setpriv(*CONTAINER, args=args)
    assert first.returncode == 0, first.stderr
    assert {ids[:2] for ids in _state(volume).values()} == {(APP, APP)}
    again = _setpriv(*CONTAINER, args=args)  # a restart: the tree is the app's now, and 0775
    assert again.returncode == 0, again.stderr
    assert again.stderr.rstrip().endswith(" 0 changed (0 owner, 0 mode)")


@pytest.mark.usefixtures("setpriv")
def test_a_directory_root_cannot_search_needs_dac_read_search_or_dac_override(volume):
    private = _dir(volume / "pgdata", 0o700)  # a database's data directory: the app's, 0700
    _file(private / "PG_VERSION", 0o600)
    args = ["permissions", str(volume), "--owner", f"{APP}:{APP}"]
    denied = _setpriv(*CONTAINER, args=args)
    assert denied.returncode == 1, denied.stderr
    assert denied.stderr.splitlines() == [
        f"initkit permissions: error: cannot open directory {private}: permission denied "
        "(to walk directories it cannot search otherwise, the container needs CAP_DAC_READ_SEARCH, "
        "or CAP_DAC_OVERRIDE under Pod Security's baseline)"
    ]
    assert _state(volume)["pgdata/PG_VERSION"] == (OTHER, OTHER, 0o600)
    for extra in ("dac_read_search", "dac_override"):
        os.chown(private / "PG_VERSION", OTHER, OTHER)
        allowed = _setpriv("--bounding-set", f"-all,+chown,+fowner,+{extra}", args=args)
        assert allowed.returncode == 0, allowed.stderr
        assert _state(volume)["pgdata/PG_VERSION"] == (APP, APP, 0o600)


# --- races: a directory or file swapped for a link after it was listed ------------------------------------


def test_a_directory_swapped_for_a_link_after_listing_is_not_entered(volume, tmp_path):
    outside = _dir(tmp_path / "outside", 0o700, uid=0, gid=0)
    _file(outside / "inner", 0o600, uid=0, gid=0)
    victim = _dir(volume / "d", 0o755)
    listed = victim.lstat()
    victim.rmdir()
    victim.symlink_to(outside)  # what an attacker sharing the volume would do between listing and opening
    walker = _Walker(Owner(APP, APP), parse("a+rwX"), 0o022)
    walker._dev = listed.st_dev
    fd = os.open(volume, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert walker._open_dir(fd, "d", listed.st_ino) is None
    finally:
        os.close(fd)
    assert _state(outside) == {".": (0, 0, 0o700), "inner": (0, 0, 0o600)}


def test_a_directory_replaced_by_another_after_listing_is_skipped(volume, run_cli):
    # The listing's checks (same file system, not lost+found) were made on the inode listed, not this one.
    victim = _dir(volume / "d", 0o755)
    listed = victim.lstat()
    other = _dir(volume / "other", 0o700)
    victim.rmdir()
    other.rename(victim)
    walker = _Walker(Owner(APP, APP), None, 0o022)
    walker._dev = listed.st_dev  # the walk's file system, as when it lists the volume
    fd = os.open(volume, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert walker._open_dir(fd, "d", listed.st_ino) is None
        os.close(walker._open_dir(fd, "d", victim.lstat().st_ino))  # the inode it is now would be entered
    finally:
        os.close(fd)


def test_a_file_swapped_for_a_link_after_listing_is_not_chmodded(volume, tmp_path):
    outside = _file(tmp_path / "outside", 0o600, uid=0, gid=0)
    victim = _file(volume / "f", 0o644)
    listed = victim.lstat()
    victim.unlink()
    victim.symlink_to(outside)
    walker = _Walker(None, parse("a+rwx"), 0o022)
    fd = os.open(volume, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert walker._chmod_nofollow(fd, "f", listed, 0o777) is False
    finally:
        os.close(fd)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600


# --- SIGTERM in the middle of a large tree ----------------------------------------------------------------


def _walking(pid: int, root: Path) -> bool:
    """True once the process holds a descriptor inside root: the walk has begun."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd).startswith(f"{root}/") for fd in os.listdir(fds))
    except OSError:
        return False


def test_sigterm_mid_walk_exits_143_within_a_second_and_a_rerun_finishes(volume):
    for d in range(60):
        sub = volume / f"d{d:02}"
        sub.mkdir()
        for f in range(1000):
            os.close(os.open(sub / f"f{f}", os.O_CREAT | os.O_WRONLY, 0o644))
    total = 1 + 60 + 60_000
    args = ["permissions", str(volume), "--owner", f"{APP}:{APP}", "--mode", "g+rwX"]
    proc = subprocess.Popen(initkit_command(*args), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _walking(proc.pid, volume) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)  # into the walk, which takes about a second here
        assert proc.poll() is None, "the walk ended before it could be stopped: make the tree larger"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(timeout=5)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with proc.stderr:
        err = proc.stderr.read()
    assert code == 143, err
    assert elapsed < 1.0
    assert err.splitlines() == ["initkit permissions: error: stopped by SIGTERM"]
    owners = [p.lstat().st_uid for p in volume.rglob("*")]
    assert owners.count(APP) < len(owners)  # stopped mid-walk (it had begun: it held a directory inside)
    rerun = subprocess.run(initkit_command(*args), capture_output=True, text=True, timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total} entries checked" in rerun.stderr
    assert {p.lstat().st_uid for p in volume.rglob("*")} == {APP}


# --- the CLI contract ---------------------------------------------------------------------------------------


def test_help_names_the_one_liner_and_every_environment_variable(run_cli):
    result = run_cli("permissions", "--help")
    assert result.code == 0
    text = " ".join(result.stdout.split())
    assert "Replaces: chown -R 1001:1001 /data && chmod -R g+rwX /data" in text
    assert "INITKIT_PERMISSIONS_OWNER" in text and "INITKIT_PERMISSIONS_MODE" in text


def test_imports_no_library_it_does_not_use(volume):
    code = (
        "import sys\nfrom initkit.cli import run\nassert run(sys.argv[1:]) == 0\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    args = ["permissions", str(volume), "--owner", "1001", "--mode", "g+rwX"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, check=True)
    loaded = set(done.stdout.split())
    assert "click" in loaded
    assert not loaded & {"requests", "jinja2", "dns", "git", "yaml", "urllib3"}


# --- --exclude, per-path owner and mode, --mkdir, read-only file systems (issue 17: 5-8) -----------------


def test_default_excludes_are_lost_and_found_and_snapshot_at_the_top_only(volume, run_cli):
    top_lost, top_snap = _dir(volume / "lost+found", 0o700), _dir(volume / ".snapshot", 0o555)
    _file(top_snap / "hourly.0", 0o444)
    deep = _dir(volume / "app", 0o755)
    deep_snap = _dir(deep / ".snapshot", 0o755)
    before = {p: _state(p) for p in (top_lost, top_snap)}

    result = run_cli("permissions", str(volume), "--owner", f"{APP}:{APP}")

    assert result.code == 0, result.stderr
    assert {p: _state(p) for p in (top_lost, top_snap)} == before
    assert deep_snap.lstat().st_uid == APP  # only PATH's own: as Bitnami's `find -mindepth 1 -maxdepth 1`
    assert result.lines[-1].endswith("3 entries checked, 3 changed (3 owner, 0 mode)")


def test_exclude_globs_match_paths_relative_to_each_path(volume, run_cli):
    for rel in ("a/cache", "b/cache", "a/deep/cache", "a/keep", "lost+found", "x.log", "a/y.log"):
        target = volume / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".log"):
            _file(target, 0o644)
        else:
            _dir(target, 0o755)
    args = ["--exclude", "*/cache", "--exclude", "**/*.log", "--owner", str(APP)]

    result = run_cli("permissions", str(volume), *args)

    assert result.code == 0, result.stderr
    owners = {rel: uid for rel, (uid, _g) in _ids(volume).items()}
    assert owners["a/cache"] == owners["b/cache"] == OTHER  # one level down, as */ says
    assert owners["x.log"] == owners["a/y.log"] == OTHER  # **/ is any depth, the top too
    assert owners["a/deep/cache"] == owners["a/keep"] == owners["lost+found"] == APP  # the defaults replaced
    nothing = run_cli("permissions", str(volume), "--exclude", "", "--owner", str(APP + 1))
    assert nothing.code == 0, nothing.stderr
    assert {uid for uid, _g in _ids(volume).values()} == {APP + 1}


@pytest.mark.parametrize("glob", ["/abs", "a//b", "../up", "a/./b", "a/**/b", "**"])
def test_an_exclude_that_cannot_match_a_relative_path_is_exit_2(volume, run_cli, glob):
    result = run_cli("permissions", str(volume), "--owner", str(APP), "--exclude", glob)
    assert result.code == 2
    assert len(result.lines) == 1 and "give a path relative to PATH" in result.stderr
    assert volume.stat().st_uid == 0


def test_postgresql_data_directory_0700_and_dev_shm_in_one_run_and_a_rerun_changes_nothing(volume, run_cli):
    # The README's example: the volume g+rwX for the app, PostgreSQL's data directory u=rwX,go= (it
    # refuses to start on 0770), and /dev/shm its own mode; the data directory is not made.
    shm = _dir(volume / "shm", 0o755, uid=0, gid=0)
    _app_tree(volume)
    args = [
        *("permissions", str(volume), "--owner", f"{APP}:{APP}", "--mode", "u+rwX,g+rwX", "--mkdir"),
        *("--path", str(volume / "data"), "-", "u=rwX,go="),
        *("--path", str(shm), "-", "a+rwX"),
    ]

    first = run_cli(*args)

    assert first.code == 0, first.stderr
    assert first.lines[0] == f"initkit permissions: created {volume}/data"
    state = _state(volume)
    assert state["data"] == (APP, APP, 0o700)
    assert state["shm"] == (APP, APP, 0o777)
    assert state["conf/app.conf"] == (APP, APP, 0o664)
    _file(volume / "data" / "PG_VERSION", 0o644, uid=APP, gid=APP)
    pg = run_cli(*args)
    assert pg.code == 0, pg.stderr
    assert _state(volume)["data/PG_VERSION"] == (APP, APP, 0o600)
    before, state = _ctimes(volume), _state(volume)
    time.sleep(0.05)  # past the file system's timestamp granularity

    again = run_cli(*args)

    assert again.code == 0, again.stderr
    assert [line.split(": ", 2)[-1] for line in again.lines] == [
        f"{len(before) - 3} entries checked, 0 changed (0 owner, 0 mode)",  # data/ and shm/ left to their own
        "2 entries checked, 0 changed (0 owner, 0 mode)",
        "1 entry checked, 0 changed (0 owner, 0 mode)",
    ]
    assert _ctimes(volume) == before and _state(volume) == state


def test_per_path_specs_from_the_environment(volume, run_cli):
    spaced, other = _dir(volume / "with space", 0o755), _dir(volume / "other", 0o755)
    result = run_cli(
        "permissions",
        env={
            "INITKIT_PERMISSIONS_PATH": f"{spaced} {APP}:{APP} 0700\n\n{other}  -  g+w\n",
            "INITKIT_PERMISSIONS_OWNER": "7",
        },
    )
    assert result.code == 0, result.stderr
    assert _state(volume)["with space"] == (APP, APP, 0o700)
    assert _state(volume)["other"] == (7, OTHER, 0o775)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--path", "{v}/a", "app", "0700"], "give numeric ids"),
        (["--path", "{v}/a", "-", "u+s"], "setuid, setgid or sticky"),
        (["--path", "{v}/a", "-", "-"], "nothing to do: give --owner, --mode or both (for {v}/a)"),
        (["{v}/a", "--owner", "1", "--path", "{v}/a/", "-", "-"], "is given twice"),
        (["--path", "{v}/a", "1"], "requires 3 arguments"),
        (["--owner", "1"], "nothing to do: give a PATH or --path PATH OWNER MODE"),
    ],
)
def test_bad_per_path_specs_are_exit_2(volume, run_cli, args, words):
    _dir(volume / "a", 0o700)
    result = run_cli("permissions", *(arg.format(v=volume) for arg in args))
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and words.format(v=volume) in result.stderr, result.stderr
    assert _state(volume)["a"] == (OTHER, OTHER, 0o700)


def test_mkdir_makes_each_missing_level_with_the_owner_and_mode(volume, run_cli):
    target = volume / "a" / "b" / "c"
    result = run_cli("permissions", str(target), "--owner", f"{APP}:{APP}", "--mode", "u=rwX,g=rX,o=", "--mkdir")
    assert result.code == 0, result.stderr
    assert [_state(volume)[rel] for rel in ("a", "a/b", "a/b/c")] == [(APP, APP, 0o750)] * 3
    assert result.lines == [
        *(f"initkit permissions: created {volume}/{rel}" for rel in ("a", "a/b", "a/b/c")),
        f"initkit permissions: {target}: 1 entry checked, 0 changed (0 owner, 0 mode)",
    ]
    assert (
        run_cli("permissions", str(target), "--owner", str(APP), "--mkdir")
        .lines[-1]
        .endswith("0 changed (0 owner, 0 mode)")
    )


def _mount_read_only(path: Path) -> None:
    """A read-only bind mount of path on itself, as a snapshot or a `readOnly: true` volume."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)


def test_a_read_only_path_is_left_with_one_warning_and_the_others_are_done(volume, run_cli):
    snapshot = _dir(volume / "snapshot", 0o755)
    for n in range(3):
        _file(_dir(snapshot / f"d{n}", 0o700) / "f", 0o600)
    writable = _dir(volume / "writable", 0o700)
    _mount_read_only(snapshot)
    before = _state(snapshot)

    result = run_cli("permissions", str(snapshot), str(writable), "--owner", f"{APP}:{APP}", "--mode", "g+rwX")

    assert result.code == 0, result.stderr  # it was exit 1, "read-only file system", and writable undone
    assert result.lines[0] == f"initkit permissions: warning: left {snapshot} as it is: read-only file system"
    assert result.lines[1].startswith(f"initkit permissions: {snapshot}: ")
    assert result.lines[2] == f"initkit permissions: {writable}: 1 entry checked, 1 changed (1 owner, 1 mode)"
    assert len(result.lines) == 3
    assert _state(snapshot) == before
    assert _state(volume)["writable"] == (APP, APP, 0o770)


def test_a_read_only_volume_holding_only_directories_is_one_warning_too(volume, run_cli):
    # The first change is found deep down, after the walk has gone through levels it leaves again.
    deep = volume / "ro"
    deep.mkdir()
    (deep / "a" / "b" / "c").mkdir(parents=True)
    (deep / "z" / "y").mkdir(parents=True)
    _mount_read_only(deep)
    result = run_cli("permissions", str(deep), "--owner", str(APP))
    assert result.code == 0, result.stderr
    assert result.lines == [
        f"initkit permissions: warning: left {deep} as it is: read-only file system",
        f"initkit permissions: {deep}: 0 entries checked, 0 changed (0 owner, 0 mode)",
    ]


def test_excludes_from_the_environment_one_a_line(volume, run_cli):
    for name in ("lost+found", "a b", "c"):
        _dir(volume / name, 0o755)
    result = run_cli(
        "permissions",
        str(volume),
        env={"INITKIT_PERMISSIONS_EXCLUDE": "a b\nc\n", "INITKIT_PERMISSIONS_OWNER": str(APP)},
    )
    assert result.code == 0, result.stderr
    assert {rel: uid for rel, (uid, _g) in _ids(volume).items()} == {
        ".": APP,
        "lost+found": APP,
        "a b": OTHER,
        "c": OTHER,
    }
    none = run_cli(
        "permissions", str(volume), env={"INITKIT_PERMISSIONS_EXCLUDE": "\n", "INITKIT_PERMISSIONS_OWNER": "5"}
    )
    assert none.code == 0, none.stderr
    assert {uid for uid, _g in _ids(volume).values()} == {5}
