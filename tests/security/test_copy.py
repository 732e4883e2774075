"""`initkit copy` attacked: SRC's links pointing out, a DEST the app has filled with links,
FIFOs, hard links and a forged manifest, directories swapped while the copy runs, special
files, huge and deep trees, SIGTERM and kill -9 in the middle of a large file."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from initkit.copytree import Copier, Settings
from tests.conftest import initkit_command, requirement

SECRET = b"root:$6$not-for-the-app\n"


@pytest.fixture(autouse=True)
def _root() -> None:
    requirement.root("device files, chown")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """What lies outside SRC and DEST: a secret file and a directory that must stay as they are."""
    out = tmp_path / "outside"
    (out / "dir").mkdir(parents=True)
    (out / "shadow").write_bytes(SECRET)
    (out / "shadow").chmod(0o600)
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes | str | None]]:
    out = {}
    for entry in [root, *sorted(root.rglob("*"))]:
        st = entry.lstat()
        body: bytes | str | None = None
        if stat.S_ISREG(st.st_mode):
            body = entry.read_bytes()
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(entry)
        out[str(entry.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_nlink, body)
    return out


def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "conf").mkdir(parents=True)
    (src / "conf" / "app.conf").write_text("listen 8080\n")
    (src / "conf" / "secret.conf").write_bytes(SECRET)
    (src / "conf" / "secret.conf").chmod(0o600)
    return src


def files_with(root: Path, data: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == data]


# --- SRC: links out of it are copied as links, never followed; special files are skipped ---------------


def test_links_out_of_src_are_copied_as_links_and_never_read(tmp_path, run_cli, outside):
    src = source(tmp_path)
    (src / "conf" / "app.conf").unlink()
    (src / "shadow").symlink_to(outside / "shadow")
    (src / "etc").symlink_to(outside / "dir")
    (src / "up").symlink_to("../outside/shadow")
    before = snapshot(outside)
    dest = tmp_path / "dest"

    result = run_cli("copy", str(src), str(dest))

    assert result.code == 0, result.stderr
    assert os.readlink(dest / "shadow") == str(outside / "shadow")
    assert os.readlink(dest / "etc") == str(outside / "dir") and os.readlink(dest / "up") == "../outside/shadow"
    assert files_with(dest, SECRET) == [str(dest / "conf" / "secret.conf")]  # SRC's own copy only
    assert snapshot(outside) == before


def test_fifos_sockets_and_devices_in_src_are_skipped_with_a_line_each(tmp_path, run_cli):
    src = source(tmp_path)
    os.mkfifo(src / "fifo")  # opening it for reading would block the copy forever
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(src / "disk", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(src / "sock"))
    dest = tmp_path / "dest"

    result = subprocess.run(initkit_command("copy", str(src), str(dest)), capture_output=True, text=True, timeout=20)

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"initkit copy: warning: skipped {src}/disk: a device (only files, directories and links)",
        f"initkit copy: warning: skipped {src}/fifo: a FIFO (only files, directories and links)",
        f"initkit copy: warning: skipped {src}/null: a device (only files, directories and links)",
        f"initkit copy: warning: skipped {src}/sock: a socket (only files, directories and links)",
        f"initkit copy: {dest}: 7 entries from 1 SRC, 2 written, 0 unchanged, 0 kept, 4 skipped",
    ]
    assert sorted(os.listdir(dest)) == [".initkit-copy.json", "conf"]


def test_a_src_directory_swapped_for_a_link_after_listing_is_not_entered(tmp_path, outside):
    src = source(tmp_path)
    listed = (src / "conf").lstat()
    (src / "conf").rename(tmp_path / "moved")
    (src / "conf").symlink_to(outside / "dir")  # between the listing and the open
    copier = Copier(str(tmp_path / "dest"), Settings())
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert copier._open_source(str(src), fd, "conf", listed, ("conf",)) is None
        (src / "conf").unlink()
        os.mkdir(src / "conf")  # another directory at the name: not the inode listed either
        assert copier._open_source(str(src), fd, "conf", listed, ("conf",)) is None
    finally:
        os.close(fd)
    assert copier.counts.skipped == [f"{src}/conf", f"{src}/conf"]


# --- DEST is the app's: links, FIFOs and hard links planted there --------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_links_planted_in_dest_are_never_followed(tmp_path, run_cli, outside, overwrite):
    src = source(tmp_path)
    (src / "logs").mkdir()
    (src / "logs" / "a.log").write_text("log\n")
    dest = tmp_path / "dest"
    (dest / "conf").mkdir(parents=True)
    (dest / "conf" / "app.conf").symlink_to(outside / "shadow")  # a file's name: a link to a secret
    (dest / "conf" / "secret.conf").symlink_to(outside / "dir" / "new")  # a dangling one, to create a file through
    (dest / "logs").symlink_to(outside / "dir")  # a directory's name: a link out
    before = snapshot(outside)

    result = run_cli("copy", str(src), str(dest), *(["--overwrite"] if overwrite else []))

    assert result.code == 0, result.stderr
    assert snapshot(outside) == before
    if overwrite:
        assert snapshot(dest)["logs/a.log"][3] == b"log\n" and not (dest / "logs").is_symlink()
        assert (dest / "conf" / "app.conf").read_text() == "listen 8080\n" and not (
            dest / "conf" / "app.conf"
        ).is_symlink()
    else:
        assert [line.split(": ")[2] for line in result.lines[:-1]] == [
            f"kept {dest}/conf/app.conf",
            f"kept {dest}/conf/secret.conf",
            f"kept {dest}/logs",
        ]
        assert (dest / "logs").is_symlink() and (dest / "conf" / "app.conf").is_symlink()


def test_a_fifo_planted_at_a_files_name_does_not_hang_the_copy(tmp_path, outside):
    src = source(tmp_path)
    dest = tmp_path / "dest"
    (dest / "conf").mkdir(parents=True)
    os.mkfifo(dest / "conf" / "app.conf")
    command = initkit_command("copy", str(src), str(dest))
    kept = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert kept.returncode == 0, kept.stderr
    assert f"kept {dest}/conf/app.conf" in kept.stderr and stat.S_ISFIFO((dest / "conf" / "app.conf").lstat().st_mode)
    forced = subprocess.run([*command, "--overwrite"], capture_output=True, text=True, timeout=20)
    assert forced.returncode == 0, forced.stderr
    assert (dest / "conf" / "app.conf").read_text() == "listen 8080\n"


def test_a_hard_link_to_a_file_outside_is_given_a_new_inode_not_a_chmod(tmp_path, run_cli, outside):
    src = source(tmp_path)
    dest = tmp_path / "dest"
    assert run_cli("copy", str(src), str(dest)).code == 0
    (dest / "conf" / "secret.conf").unlink()
    os.link(outside / "shadow", dest / "conf" / "secret.conf")  # same content as SRC's; same file system
    (outside / "shadow").chmod(0o644)  # so that a chmod to SRC's 0600 would change the outside file

    result = run_cli("copy", str(src), str(dest), "--overwrite", "--owner", "1001")

    assert result.code == 0, result.stderr
    assert snapshot(outside)["shadow"] == (0o644, 0, 1, SECRET)  # its mode and owner; DEST's name unlinked
    assert (dest / "conf" / "secret.conf").lstat().st_nlink == 1
    assert snapshot(dest)["conf/secret.conf"][:2] == (0o600, 1001)


def test_a_hostile_manifest_is_ignored_with_a_line_and_never_followed(tmp_path, run_cli, outside):
    src = source(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / ".initkit-copy.json").symlink_to(outside / "shadow")
    before = snapshot(outside)
    linked = run_cli("copy", str(src), str(dest))
    assert linked.code == 0, linked.stderr
    assert linked.lines[0] == (
        f"initkit copy: warning: ignored {dest}/.initkit-copy.json (a symlink): files that differ from SRC are kept"
    )
    assert snapshot(outside) == before
    assert stat.S_ISREG((dest / ".initkit-copy.json").lstat().st_mode)
    for garbage in (b"[" * 100_000, b'{"entries": {"conf/app.conf": ["f", 1]}}', os.urandom(4096), b"{}" * (1 << 20)):
        (dest / ".initkit-copy.json").write_bytes(garbage)
        (dest / "conf" / "app.conf").write_text("the app's\n")
        result = run_cli("copy", str(src), str(dest))
        assert result.code == 0, result.stderr
        assert "ignored" in result.lines[0] or result.lines[0].startswith(f"initkit copy: warning: kept {dest}/conf")
        assert (dest / "conf" / "app.conf").read_text() == "the app's\n"  # no record: kept


def test_dest_directories_swapped_for_links_while_copying_never_lead_out(tmp_path, outside):
    # The app swaps DEST/conf between a directory and a link out, as fast as it can, while copies run.
    src = source(tmp_path)
    for n in range(100):
        (src / "conf" / f"f{n:03}").write_text(f"{n}\n")
    dest = tmp_path / "dest"
    (dest / "conf").mkdir(parents=True)
    stop = threading.Event()

    def swap() -> None:
        real, link = dest / "conf", dest / "conf-link"
        spare = dest / "conf-dir"
        while not stop.is_set():
            with contextlib.suppress(OSError):
                link.symlink_to(outside / "dir")
                real.rename(spare)
                link.rename(real)  # conf is a link out now
                real.rename(link)
                spare.rename(real)  # and a directory again

    attacker = threading.Thread(target=swap)
    attacker.start()
    codes = []
    try:
        for _ in range(4):
            done = subprocess.run(
                initkit_command("copy", str(src), str(dest), "--overwrite"), capture_output=True, text=True, timeout=30
            )
            codes.append(done.returncode)
            assert len(done.stderr.splitlines()) <= 2, done.stderr
            assert "Traceback" not in done.stderr
    finally:
        stop.set()
        attacker.join()
    assert set(codes) <= {0, 1}
    assert os.listdir(outside / "dir") == []


# --- bounds: many entries, deep trees, large files, deadlines --------------------------------------------


def test_too_many_entries_stop_at_max_entries_with_one_line(tmp_path, run_cli):
    src = tmp_path / "src"
    for d in range(10):
        (src / f"d{d:02}").mkdir(parents=True)
        for f in range(300):
            (src / f"d{d:02}" / f"f{f}").touch()
    began = time.monotonic()
    result = run_cli("copy", str(src), str(tmp_path / "dest"), "--max-entries", "500")
    assert time.monotonic() - began < 10
    assert result.code == 1
    assert result.lines == [f"initkit copy: error: SRC holds more than 500 entries (--max-entries); stopped at {src}"]
    too_big = run_cli("copy", str(src / "d00"), str(tmp_path / "dest2"), "--max-size", "0")
    assert too_big.code == 0, too_big.stderr  # 0: no bound
    (src / "d00" / "f0").write_bytes(b"x" * 2048)
    over = run_cli("copy", str(src / "d00"), str(tmp_path / "dest3"), "--max-size", "1KiB")
    assert over.code == 1 and "more than 1024 bytes of files (--max-size)" in over.stderr


def test_a_tree_deeper_than_128_levels_is_one_line_exit_1(tmp_path, run_cli):
    src = tmp_path / "src"
    deep = src.joinpath(*["d"] * 200)
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    result = run_cli("copy", str(src), str(tmp_path / "dest"))
    assert result.code == 1
    assert len(result.lines) == 1 and result.stderr.rstrip().endswith("deeper than 128 levels")


def _big_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for n in range(100):
        (src / f"a{n:03}").write_text(f"{n}\n")
    with (src / "big").open("wb") as out:
        for _ in range(96):
            out.write(b"x" * (1 << 20))
    for n in range(100):
        (src / f"c{n:03}").write_text(f"{n}\n")
    return src


def _temps(root: Path, prefix: str = ".") -> list[str]:
    return [name for name in os.listdir(root) if ".initkit-tmp" in name and name.startswith(prefix)]


def _wait_for_temp(dest: Path, proc: subprocess.Popen[str]) -> None:
    """Until the big file's temp is there: the copy is in the middle of its 96 MiB."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            if _temps(dest, ".big."):
                return
        time.sleep(0.001)
    raise AssertionError("the copy never wrote a temp file: make the big file larger")


def test_kill_9_in_the_middle_of_a_large_file_is_finished_by_the_next_run(tmp_path):
    src = _big_source(tmp_path)
    dest = tmp_path / "dest"
    command = initkit_command("copy", str(src), str(dest))
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_temp(dest, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert _temps(dest), "killed after the rename: make the big file larger"
    assert not (dest / "c000").exists() and (dest / "a099").read_text() == "99\n"

    again = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        f"initkit copy: {dest}: 201 entries from 1 SRC, 101 written, 100 unchanged, 0 kept, 0 skipped"
    ]
    assert _temps(dest) == []
    assert sorted(os.listdir(dest)) == sorted([*os.listdir(src), ".initkit-copy.json"])
    assert (dest / "big").stat().st_size == 96 << 20


def test_sigterm_in_the_middle_of_a_large_file_exits_143_within_a_second_leaving_no_temp(tmp_path):
    src = _big_source(tmp_path)
    dest = tmp_path / "dest"
    proc = subprocess.Popen(initkit_command("copy", str(src), str(dest)), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_temp(dest, proc)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = proc.wait(timeout=5)
        elapsed = time.monotonic() - sent
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert (code, err) == (143, "initkit copy: error: stopped by SIGTERM\n") or (code == 0 and not _temps(dest))
    assert elapsed < 1.0
    assert _temps(dest) == []


def test_the_timeout_stops_the_copy_with_one_line(tmp_path, run_cli):
    src = _big_source(tmp_path)
    result = run_cli("copy", str(src), str(tmp_path / "dest"), "--timeout", "1ms")
    assert result.code == 1
    assert result.lines == [
        "initkit copy: error: the --timeout passed; what was copied so far stays, the next run goes on"
    ]
