"""Hostile archives served by a real HTTP server: `initkit fetch --extract` writes nothing of them.

Each archive tries to put something outside DEST (or a device inside it). The
whole extraction must fail with exit 1, DEST must not appear, no temp tree may
stay behind, and the planted target outside must be untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import stat
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from initkit import archive, fs
from tests.artifact_server import ArtifactServer
from tests.security.hostile_http import FloodServer, _TcpServer
from tests.test_fs import plant_deep_tree


@pytest.fixture
def server() -> Iterator[ArtifactServer]:
    s = ArtifactServer()
    yield s
    s.stop()


def _tar(*members: tuple[str, str, str | bytes]) -> bytes:
    """members: (kind, name, data or link target); kind in file, dir, sym, hard, chr, fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for kind, name, extra in members:
            info = tarfile.TarInfo(name)
            data = b""
            if kind == "file":
                data = extra if isinstance(extra, bytes) else extra.encode()
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(extra)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(extra)
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _zip(*members: tuple[str, int, bytes]) -> bytes:
    """members: (name, st_mode, data); a symlink's data is its target."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        for name, mode, data in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _writestr_raw_name(name: str) -> bytes:
    """A zip whose entry name is stored as is (ZipInfo would keep it, zipfile.extract would rewrite it)."""
    return _zip((name, stat.S_IFREG | 0o644, b"pwned"))


REG, LNK = stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777

HOSTILE: dict[str, Callable[[Path], bytes]] = {
    "tar ../ traversal": lambda o: _tar(("file", "ok", "x"), ("file", f"../{o.name}/pwned", "pwned")),
    "tar absolute path": lambda o: _tar(("file", f"{o}/pwned", "pwned")),
    "tar symlink out (absolute)": lambda o: _tar(("sym", "link", str(o)), ("file", "link/pwned", "pwned")),
    "tar symlink out (relative)": lambda o: _tar(("sym", "link", f"../{o.name}"), ("file", "link/pwned", "pwned")),
    "tar symlink chain out": lambda o: _tar(("sym", "m", "."), ("sym", "l", f"m/../{o.name}")),
    "tar hardlink out (absolute)": lambda o: _tar(("hard", "hl", str(o / "victim"))),
    "tar hardlink out (relative)": lambda o: _tar(("hard", "hl", f"../{o.name}/victim")),
    "tar character device": lambda o: _tar(("chr", "null", "")),
    "tar fifo": lambda o: _tar(("fifo", "pipe", "")),
    "zip ../ traversal": lambda o: _writestr_raw_name(f"../{o.name}/pwned"),
    "zip absolute path": lambda o: _writestr_raw_name(f"{o}/pwned"),
    "zip symlink out (absolute)": lambda o: _zip(("link", LNK, str(o).encode())),
    "zip symlink out (relative)": lambda o: _zip(("link", LNK, f"../{o.name}".encode())),
    "zip symlink chain out": lambda o: _zip(("m", LNK, b"."), ("l", LNK, f"m/../{o.name}".encode())),
    "zip link then a file through it": lambda o: _zip(("d", LNK, b"."), ("d/x", LNK, b"../escape")),
    "zip character device": lambda o: _zip(("null", stat.S_IFCHR | 0o666, b"")),
    "zip same path twice": lambda o: _zip(("a", REG, b"1"), ("a", REG, b"2")),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archive_is_refused_whole(run_cli, server, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    data = HOSTILE[case](outside)
    url = server.add("/evil", data)
    dest = tmp_path / "work" / "dest"
    dest.parent.mkdir()
    result = run_cli("fetch", url, str(dest), "--sha256", hashlib.sha256(data).hexdigest(), "--extract")
    assert result.code == 1, result.stderr
    assert (
        result.lines[-1].startswith("initkit fetch: error: refusing the archive")
        and "nothing written" in result.lines[-1]
    )
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no temp file, no temp tree
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "untouched"


def test_links_pointing_inside_are_kept(run_cli, server, tmp_path):
    data = _tar(("dir", "d", ""), ("file", "d/f", "hello"), ("sym", "s", "d/f"), ("hard", "h", "d/f"))
    url = server.add("/ok", data)
    dest = tmp_path / "dest"
    assert run_cli("fetch", url, str(dest), "--sha256", hashlib.sha256(data).hexdigest(), "--extract").code == 0
    assert (dest / "s").is_symlink() and (dest / "s").read_text() == "hello"
    assert (dest / "h").read_text() == "hello" and not (dest / "h").is_symlink()
    zdata = _zip(("d/f", REG, b"zip"), ("s", LNK, b"d/f"))
    zdest = tmp_path / "zdest"
    url = server.add("/okzip", zdata)
    assert run_cli("fetch", url, str(zdest), "--sha256", hashlib.sha256(zdata).hexdigest(), "--extract").code == 0
    assert (zdest / "s").is_symlink() and (zdest / "s").read_text() == "zip"


def test_setuid_and_world_writable_bits_are_dropped(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("suid")
        info.mode, info.size = 0o4777, 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    (tmp_path / "out").mkdir()
    archive.extract(str(tmp_path / "a.tar"), str(tmp_path / "out"))
    assert (tmp_path / "out" / "suid").stat().st_mode & 0o7777 == 0o755
    (tmp_path / "a.zip").write_bytes(_zip(("suid", stat.S_IFREG | 0o4777, b"x")))
    (tmp_path / "zout").mkdir()
    archive.extract(str(tmp_path / "a.zip"), str(tmp_path / "zout"))
    assert (tmp_path / "zout" / "suid").stat().st_mode & 0o7777 == 0o755


# ---- issue 15: a hostile-input round ---------------------------------------------------------------------


def _dest_in(work: Path) -> tuple[Path, int]:
    """DEST below `work`, and the length of the temp tree fetch extracts into (.dest.XXXXXXXX.initkit-tmp.d)."""
    work.mkdir()
    return work / "dest", len(str(work / fs.temp_name("dest", "d")))


def _path_max_chain(tree_len: int, outside: str) -> bytes:
    """CVE-2025-4517: symlinks whose expansion passes PATH_MAX, so os.path.realpath stops resolving them
    (and tarfile's data filter, on 3.11.0 to 3.11.12, believes `escape` stays inside), then a file
    written through `escape` lands in ../../`outside`."""
    steps = "abcdefghijklmnop"
    component = "d" * ((os.pathconf("/", "PC_PATH_MAX") - tree_len - 1) // (len(steps) + 1))
    members: list[tuple[str, str, str | bytes]] = []
    path = ""
    for step in steps:
        members.append(("dir", f"{path}{component}", ""))
        members.append(("sym", f"{path}{step}", component))
        path += component + "/"
    link = "/".join(steps) + "/" + "l" * 254
    members.append(("sym", link, "/".join([".."] * len(steps))))  # back to the top, never expanded by realpath
    members.append(("sym", "escape", link + "/../.."))  # the top's parent's parent
    members.append(("file", f"escape/{outside}/pwned", "pwned"))
    return _tar(*members)


def test_a_symlink_chain_past_path_max_cannot_write_outside(run_cli, server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest, tree_len = _dest_in(tmp_path / "work")
    data = _path_max_chain(tree_len, "outside")
    result = run_cli("fetch", server.add("/chain.tgz", data), str(dest), "--sha256", _sha(data), "--extract")
    assert result.code == 1, result.stderr
    assert "refusing the archive" in result.lines[-1] and "outside the target" in result.lines[-1]
    assert list(outside.iterdir()) == [] and not dest.exists() and list(dest.parent.iterdir()) == []


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


HOSTILE_MORE: dict[str, Callable[[Path], bytes]] = {
    # a link made before its target turns into a way out: judged again once the tree is whole
    "tar link whose target later becomes a way out": lambda o: _tar(("sym", "l", "x/y/../.."), ("sym", "x", ".")),
    "tar link loop": lambda o: _tar(("sym", "a", "b"), ("sym", "b", "a"), ("file", "a/f", "x")),
    "tar hard link to a symlink": lambda o: _tar(("dir", "d", ""), ("sym", "d/s", "../ok"), ("hard", "h", "d/s")),
    "tar hard link to a directory": lambda o: _tar(("dir", "d", ""), ("hard", "h", "d")),
    "tar same file twice (hard link then overwrite)": lambda o: _tar(
        ("file", "f", "1"), ("hard", "h", "f"), ("file", "h", "2")
    ),
    "tar link climbing through a link to the top": lambda o: _tar(
        ("dir", "a", ""), ("sym", "a/top", ".."), ("sym", "a/out", f"top/../{o.name}")
    ),
    "tar empty link name": lambda o: _tar(("sym", "e", "")),
}


@pytest.mark.parametrize("case", list(HOSTILE_MORE))
def test_more_hostile_links_are_refused_whole(run_cli, server, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    data = HOSTILE_MORE[case](outside)
    dest, _ = _dest_in(tmp_path / "work")
    result = run_cli("fetch", server.add("/evil", data), str(dest), "--sha256", _sha(data), "--extract")
    assert result.code == 1, result.stderr
    assert result.lines[-1].startswith("initkit fetch: error: refusing the archive"), result.stderr
    assert not dest.exists() and list(dest.parent.iterdir()) == [] and list(outside.iterdir()) == []


def test_links_through_links_inside_are_kept(tmp_path):
    data = _tar(
        ("dir", "a/b", ""),
        ("file", "a/b/f", "deep"),
        ("sym", "a/up", ".."),  # a/up -> the top
        ("sym", "x", "a/up/a/b"),  # through a link, still inside
        ("file", "x/g", "through"),  # written into a/b
        ("hard", "h", "x/f"),
    )
    (tmp_path / "a.tgz").write_bytes(data)
    (tmp_path / "out").mkdir()
    assert archive.extract(str(tmp_path / "a.tgz"), str(tmp_path / "out")) == 6
    assert (tmp_path / "out" / "a" / "b" / "g").read_text() == "through"
    assert (tmp_path / "out" / "h").read_text() == "deep" and (tmp_path / "out" / "x" / "f").read_text() == "deep"


def test_owner_is_the_running_user_not_the_archives(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.uid, info.gid, info.uname, info.gname, info.size, info.mode = 4242, 4242, "x", "x", 1, 0o664
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    (tmp_path / "out").mkdir()
    archive.extract(str(tmp_path / "a.tar"), str(tmp_path / "out"))
    st = (tmp_path / "out" / "f").stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()) and st.st_mode & 0o7777 == 0o644


TAR_OK = _tar(
    ("dir", "p", ""), ("file", "p/run.sh", "#!/bin/sh\n"), ("sym", "p/s", "run.sh"), ("hard", "p/h", "p/run.sh")
)


def test_a_tar_extracts_on_a_python_without_the_data_filter(run_cli, server, tmp_path, monkeypatch):
    """Debian 12's python3 (3.11.2) has no tarfile.data_filter: initkit judges and writes entries itself."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)  # Debian 12's 3.11.2 has none to remove
    dest = tmp_path / "dest"
    result = run_cli("fetch", server.add("/ok.tgz", TAR_OK), str(dest), "--sha256", _sha(TAR_OK), "--extract")
    assert result.code == 0, result.stderr
    assert (dest / "p" / "s").read_text() == "#!/bin/sh\n" and (dest / "p" / "h").read_text() == "#!/bin/sh\n"


def test_archive_extraction_runs_on_the_systems_own_python(tmp_path):
    """initkit.archive uses the standard library only: run it under /usr/bin/python3 (Debian 12: 3.11.2, no
    data filter); where that is absent, under this Python with tarfile.data_filter removed first."""
    (tmp_path / "ok.tgz").write_bytes(TAR_OK)
    evil = tmp_path / "evil.tgz"
    evil.write_bytes(_tar(("sym", "l", ".."), ("file", "l/pwned", "x")))
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    code = (
        f"import sys; sys.path.insert(0, {str(Path(archive.__file__).parent.parent)!r})\n"
        "import tarfile\n"
        "if hasattr(tarfile, 'data_filter'): del tarfile.data_filter\n"
        "from initkit import archive\n"
        "import os\n"
        "for name in ('ok', 'evil'):\n"
        "    os.mkdir(name)\n"
        "    try: print(name, archive.extract(f'{name}.tgz', name))\n"
        "    except archive.UnsafeArchive as exc: print(name, 'refused', exc)\n"
    )
    out = subprocess.run([python, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "ok 4" and lines[1].startswith("evil refused"), out.stdout
    assert (tmp_path / "ok" / "p" / "h").read_text() == "#!/bin/sh\n" and not (tmp_path / "pwned").exists()


def _bz2_bomb(name: str, size_gib: int = 16) -> bytes:
    """A tar.bz2 of about 140 KB holding one file of `size_gib` GiB of zeros (bz2 streams concatenated)."""
    import bz2

    info = tarfile.TarInfo(name)
    info.size = size_gib << 30
    head = bz2.compress(info.tobuf(format=tarfile.GNU_FORMAT))
    zeros = bz2.compress(bytes(16 << 20), 1)
    return head + zeros * (size_gib * 64) + bz2.compress(bytes(1024))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _bz2_bomb("bomb/zero")


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_bz2_bomb_stops_at_max_extracted_size(run_cli, server, tmp_path, bomb, how):
    dest, _ = _dest_in(tmp_path / "work")
    args = ["fetch", server.add("/bomb.tar.bz2", bomb), str(dest), "--sha256", _sha(bomb), "--extract"]
    env = {}
    if how == "option":
        args += ["--max-extracted-size", "8MiB"]
    else:
        env["INITKIT_FETCH_MAX_EXTRACTED_SIZE"] = "8MiB"
    began = time.monotonic()
    result = run_cli(*args, env=env)
    assert result.code == 1, result.stderr
    assert "refusing the archive" in result.lines[-1] and "--max-extracted-size" in result.lines[-1]
    assert time.monotonic() - began < 5 and list(dest.parent.iterdir()) == []


def test_the_timeout_covers_the_extraction(run_cli, server, tmp_path):
    """16 GiB of zeros that --strip-components skips: no byte is written, tarfile would decompress for a minute."""
    skipped = _bz2_bomb("zero")
    dest, _ = _dest_in(tmp_path / "work")
    url = server.add("/skip.tar.bz2", skipped)
    began = time.monotonic()
    result = run_cli(
        "fetch", url, str(dest), "--sha256", _sha(skipped), "--extract", "--strip-components", "1", "--timeout", "2s"
    )
    assert result.code == 1, result.stderr
    assert "timed out: the 2s timeout passed; nothing written" in result.lines[-1]
    assert time.monotonic() - began < 4 and list(dest.parent.iterdir()) == []


def test_too_many_entries_are_refused(run_cli, server, tmp_path):
    data = _tar(*[("file", f"f{i}", "") for i in range(50)])
    dest, _ = _dest_in(tmp_path / "work")
    result = run_cli(
        "fetch", server.add("/many.tgz", data), str(dest), "--sha256", _sha(data), "--extract", "--max-entries", "20"
    )
    assert result.code == 1 and "more than 20 entries (--max-entries)" in result.lines[-1], result.stderr
    assert list(dest.parent.iterdir()) == []


def test_a_huge_long_name_header_is_refused_without_reading_it_into_memory(tmp_path):
    import bz2

    info = tarfile.TarInfo("././@LongLink")
    info.type, info.size = tarfile.GNUTYPE_LONGNAME, 1 << 30  # a 1 GiB "name"
    data = bz2.compress(info.tobuf(format=tarfile.GNU_FORMAT)) + bz2.compress(bytes(16 << 20), 1) * 64
    (tmp_path / "a.tar.bz2").write_bytes(data)
    (tmp_path / "out").mkdir()
    with pytest.raises(archive.UnsafeArchive, match="long name or pax header"):
        archive.extract(str(tmp_path / "a.tar.bz2"), str(tmp_path / "out"))


class _EndlessChunks(_TcpServer):
    """200 with a chunked body that never ends: no Content-Length to refuse up front."""

    def __init__(self) -> None:
        self.sent = 0
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + bytes(0x10000) + b"\r\n"
        while not self.stopped.is_set():
            conn.sendall(chunk)
            self.sent += 0x10000


def test_a_content_length_over_max_size_stops_at_once_and_is_not_retried(run_cli, tmp_path):
    flood = FloodServer(status=200, size=64 << 20)
    try:
        result = run_cli("fetch", flood.url("/big"), str(tmp_path / "big"), "--sha256", "0" * 64, "--max-size", "1MiB")
    finally:
        flood.stop()
    assert result.code == 1 and len(result.lines) == 1, result.stderr
    assert "larger than --max-size (1.0 MiB): its Content-Length is 67108864 bytes" in result.lines[0]
    assert flood.connections == 1 and list(tmp_path.iterdir()) == []


def test_a_body_past_max_size_stops_streaming_and_is_not_retried(run_cli, tmp_path):
    endless = _EndlessChunks()
    try:
        result = run_cli(
            "fetch", endless.url("/big"), str(tmp_path / "big"), "--sha256", "0" * 64, "--max-size", "1MiB"
        )
    finally:
        endless.stop()
    assert result.code == 1 and len(result.lines) == 1, result.stderr
    assert "larger than --max-size (1.0 MiB): its body passed 1048576 bytes" in result.lines[0]
    assert endless.connections == 1 and endless.sent < 16 << 20 and list(tmp_path.iterdir()) == []


def test_the_bounds_have_defaults_and_environment_variables(run_cli):
    from initkit.commands import fetch

    defaults = {p.name: p.default for p in fetch.command.params}
    assert (defaults["max_size"], defaults["max_extracted_size"], defaults["max_entries"]) == ("1GiB", "4GiB", 100_000)
    result = run_cli("fetch", "--help")
    for name in ("MAX_SIZE", "MAX_EXTRACTED_SIZE", "MAX_ENTRIES"):
        assert f"INITKIT_FETCH_{name}" in result.stdout


def _zip_one(name: str = "a", data: bytes = b"hello world") -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(name, data)
    return bytearray(buf.getvalue())


def _patch_zip(flags: int = 0, method: int | None = None, flip_data: bool = False) -> bytes:
    raw = _zip_one()
    central = raw.index(b"PK\x01\x02")
    for offset in (6, central + 8):  # general purpose flags: local header, central directory
        raw[offset] |= flags
    if method is not None:
        for offset in (8, central + 10):
            raw[offset : offset + 2] = method.to_bytes(2, "little")
    if flip_data:
        raw[30 + 1] ^= 0xFF  # the first byte of the data of "a" (30-byte header, 1-byte name)
    return bytes(raw)


DAMAGED_ZIPS = {
    "bad CRC": (_patch_zip(flip_data=True), "damaged zip archive (BadZipFile: Bad CRC-32"),
    "encrypted entry": (_patch_zip(flags=0x1), "zip entry 'a' is encrypted"),
    "unsupported method": (_patch_zip(method=99), "zip entry 'a' uses compression method 99"),
}


@pytest.mark.parametrize("case", list(DAMAGED_ZIPS))
def test_a_damaged_zip_is_one_line_and_exit_1(run_cli, server, tmp_path, case):
    data, message = DAMAGED_ZIPS[case]
    dest, _ = _dest_in(tmp_path / "work")
    result = run_cli("fetch", server.add("/d.zip", data), str(dest), "--sha256", _sha(data), "--extract")
    assert result.code == 1, result.stderr
    assert result.lines[-1].startswith("initkit fetch: error: cannot extract") and message in result.lines[-1]
    assert "internal error" not in result.stderr and list(dest.parent.iterdir()) == []


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, as a full pod volume (the tests run as root)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(volume)], check=True)
    try:
        yield volume
    finally:
        subprocess.run(["umount", str(volume)], check=True)


def test_a_full_volume_is_named_and_not_retried(run_cli, server, small_volume):
    payload = os.urandom(2 << 20)
    url = server.add("/big", payload)
    dest = small_volume / "big"
    result = run_cli("fetch", url, str(dest), "--sha256", _sha(payload))
    assert result.code == 1, result.stderr
    # the error line, not a traceback the loopback server may print when the client hangs up
    error = [line for line in result.lines if line.startswith("initkit fetch: error:")]
    assert len(error) == 1 and error[0].endswith(
        f"cannot write the download beside {dest}: no space left on {dest}'s file system"
    )
    assert "retrying" not in result.stderr and server.gets("/big") == 1
    assert list(small_volume.iterdir()) == []


def test_a_volume_that_fills_during_the_extraction_is_named(run_cli, server, small_volume):
    data = _tar(("file", "random", os.urandom(600_000)))  # fits once (the download), not twice
    dest = small_volume / "tree"
    result = run_cli("fetch", server.add("/t.tgz", data), str(dest), "--sha256", _sha(data), "--extract")
    assert result.code == 1, result.stderr
    assert f"no space left on {dest}'s file system; nothing written" in result.lines[-1]
    assert list(small_volume.iterdir()) == []


def test_a_deep_tree_planted_at_the_temp_name_is_removed_with_few_descriptors(server, tmp_path):
    """1,500 levels at `.dest.….initkit-tmp.d`: shutil.rmtree ended every run in RecursionError."""
    url = server.add("/tool", b"tool")
    planted = tmp_path / ".dest.0badcafe.initkit-tmp.d"
    plant_deep_tree(tmp_path, planted.name)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
    code = f"{limit}from initkit.cli import main\nmain()\n"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code, "fetch", url, str(tmp_path / "dest"), "--sha256", _sha(b"tool")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:  # never left for pytest's clean-up (shutil.rmtree) to choke on
        with contextlib.suppress(FileNotFoundError):
            fs.remove_tree(str(planted))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]
