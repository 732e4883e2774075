"""Hostile archives served by a real HTTP server: `initkit fetch --extract` writes nothing of them.

Each archive tries to put something outside DEST (or a device inside it). The
whole extraction must fail with exit 1, DEST must not appear, no temp tree may
stay behind, and the planted target outside must be untouched.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from initkit import archive
from tests.artifact_server import ArtifactServer


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
