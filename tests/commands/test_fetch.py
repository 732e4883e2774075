"""`initkit fetch`: a verified download against a real HTTP server, re-runs, cuts, kills."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from initkit import fs
from initkit.commands import fetch
from tests.artifact_server import ArtifactServer
from tests.conftest import initkit_command, wait_until

PAYLOAD = os.urandom(300_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server() -> Iterator[ArtifactServer]:
    s = ArtifactServer()
    yield s
    s.stop()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz", prefix: str = "plugin-1.0/") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes], prefix: str = "plugin-1.0/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(prefix + name)
            info.create_system = 3
            info.external_attr = (0o100755 if name.endswith(".sh") else 0o100644) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if fs.TEMP_MARK in p.name)


def test_download_is_verified_then_renamed_and_a_rerun_uses_no_network(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD)
    dest = tmp_path / "bin" / "tool"
    dest.parent.mkdir()
    result = run_cli("fetch", url, str(dest), "--sha256", DIGEST, "--mode", "0755")
    assert result.code == 0, result.stderr
    assert dest.read_bytes() == PAYLOAD
    assert dest.stat().st_mode & 0o777 == 0o755
    assert "sha256 verified" in result.stderr and leftovers(dest.parent) == []
    server.stop()  # no network at all now
    again = run_cli("fetch", url, str(dest), "--sha256", DIGEST.upper(), "--mode", "0755")
    assert again.code == 0, again.stderr
    assert "already matches" in again.stderr
    assert server.gets("/tool") == 1


def test_a_changed_dest_is_downloaded_again(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD)
    dest = tmp_path / "tool"
    dest.write_bytes(b"old version")
    assert run_cli("fetch", url, str(dest), "--sha256", DIGEST).code == 0
    assert dest.read_bytes() == PAYLOAD and server.gets("/tool") == 1


def test_checksum_mismatch_is_exit_1_naming_both_digests_and_writes_nothing(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD)
    wrong = sha(b"something else")
    dest = tmp_path / "tool"
    result = run_cli("fetch", url, str(dest), "--sha256", wrong)
    assert result.code == 1
    assert len(result.lines) == 1  # one line: the download is never reported as done
    assert wrong in result.lines[-1] and DIGEST in result.lines[-1] and "nothing written" in result.lines[-1]
    assert not dest.exists() and leftovers(tmp_path) == []


def test_mismatch_leaves_an_existing_dest_untouched(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD)
    dest = tmp_path / "tool"
    dest.write_bytes(b"keep me")
    assert run_cli("fetch", url, str(dest), "--sha256", sha(b"x")).code == 1
    assert dest.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    ("mode", "make"),
    [
        ("w:gz", lambda f: tar_bytes(f, "w:gz")),
        ("w:xz", lambda f: tar_bytes(f, "w:xz")),
        ("w:bz2", lambda f: tar_bytes(f, "w:bz2")),
        ("w", lambda f: tar_bytes(f, "w")),
        ("zip", zip_bytes),
    ],
)
def test_extract_archives_with_strip_components(run_cli, server, tmp_path, mode, make):
    files = {"bin/run.sh": b"#!/bin/sh\necho hi\n", "README": b"docs", "lib/a/b.txt": b"deep"}
    archive = make(files)
    url = server.add("/plugin.pkg", archive)
    dest = tmp_path / "plugins" / "myplugin"
    dest.parent.mkdir()
    result = run_cli("fetch", url, str(dest), "--sha256", sha(archive), "--extract", "--strip-components", "1")
    assert result.code == 0, result.stderr
    assert (dest / "bin" / "run.sh").read_bytes() == files["bin/run.sh"]
    assert (dest / "bin" / "run.sh").stat().st_mode & 0o111  # the executable bit survives
    assert (dest / "lib" / "a" / "b.txt").read_bytes() == b"deep"
    marker = json.loads((dest / fetch.MARKER).read_text())
    assert marker == {"sha256": sha(archive), "strip_components": 1}
    assert leftovers(dest.parent) == []
    server.stop()
    again = run_cli("fetch", url, str(dest), "--sha256", sha(archive), "--extract", "--strip-components", "1")
    assert again.code == 0 and "already matches" in again.stderr


def test_a_new_archive_replaces_the_old_tree_whole(run_cli, server, tmp_path):
    old = tar_bytes({"old.txt": b"1", "shared": b"old"})
    new = tar_bytes({"new.txt": b"2", "shared": b"new"})
    server.add("/v1.tgz", old)
    server.add("/v2.tgz", new)
    dest = tmp_path / "p"
    assert run_cli("fetch", server.url("/v1.tgz"), str(dest), "--sha256", sha(old), "--extract").code == 0
    assert (dest / "plugin-1.0" / "old.txt").exists()
    assert run_cli("fetch", server.url("/v2.tgz"), str(dest), "--sha256", sha(new), "--extract").code == 0
    assert sorted(p.name for p in (dest / "plugin-1.0").iterdir()) == ["new.txt", "shared"]
    assert (dest / "plugin-1.0" / "shared").read_bytes() == b"new"
    assert leftovers(tmp_path) == []


def test_extract_refuses_a_foreign_non_empty_directory(run_cli, server, tmp_path):
    archive = tar_bytes({"a": b"1"})
    url = server.add("/a.tgz", archive)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "precious").write_text("user data")
    result = run_cli("fetch", url, str(dest), "--sha256", sha(archive), "--extract")
    assert result.code == 2 and "did not make" in result.stderr
    assert (dest / "precious").read_text() == "user data" and server.gets("/a.tgz") == 0


def test_not_an_archive_is_exit_1_and_writes_nothing(run_cli, server, tmp_path):
    url = server.add("/plain", PAYLOAD)
    dest = tmp_path / "p"
    result = run_cli("fetch", url, str(dest), "--sha256", DIGEST, "--extract")
    assert result.code == 1 and "not a tar" in result.stderr
    assert not dest.exists() and leftovers(tmp_path) == []


def test_a_body_cut_mid_way_is_retried_from_the_start(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD, cut_after=100_000, cuts=1)
    dest = tmp_path / "tool"
    result = run_cli("fetch", url, str(dest), "--sha256", DIGEST)
    assert result.code == 0, result.stderr
    assert "closed the connection before the end of the body; retrying" in result.stderr
    assert dest.read_bytes() == PAYLOAD and server.gets("/tool") == 2


def test_a_body_cut_mid_way_on_the_last_attempt_writes_nothing_and_a_rerun_succeeds(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD, cut_after=100_000, cuts=2)
    dest = tmp_path / "tool"
    result = run_cli("fetch", url, str(dest), "--sha256", DIGEST, "--attempts", "2")
    assert result.code == 1
    assert "closed the connection before the end of the body; gave up after 2 attempts" in result.lines[-1]
    assert not dest.exists() and leftovers(tmp_path) == []
    again = run_cli("fetch", url, str(dest), "--sha256", DIGEST)
    assert again.code == 0 and dest.read_bytes() == PAYLOAD


def test_5xx_is_retried_and_4xx_fails_at_once(run_cli, server, tmp_path):
    url = server.add("/tool", PAYLOAD, statuses=[503, 502])
    assert run_cli("fetch", url, str(tmp_path / "t"), "--sha256", DIGEST).code == 0
    assert server.gets("/tool") == 3
    missing = run_cli("fetch", server.url("/nope"), str(tmp_path / "n"), "--sha256", DIGEST)
    assert missing.code == 1 and "HTTP 404" in missing.stderr and server.gets("/nope") == 1
    assert not (tmp_path / "n").exists()
    url = server.add("/down", PAYLOAD, statuses=[503] * 3)
    down = run_cli("fetch", url, str(tmp_path / "d"), "--sha256", DIGEST, "--attempts", "3")
    assert down.code == 1 and down.lines[-1].endswith(f"GET {url} failed: HTTP 503; gave up after 3 attempts")
    assert server.gets("/down") == 3 and not (tmp_path / "d").exists()


def test_the_timeout_is_a_deadline_for_a_slow_body(run_cli, server, tmp_path):
    url = server.add("/slow", PAYLOAD, rate=20_000)  # 15 s for all of it
    began = time.monotonic()
    result = run_cli("fetch", url, str(tmp_path / "t"), "--sha256", DIGEST, "--timeout", "1s")
    assert result.code == 1 and "timed out" in result.lines[-1] and "1s timeout passed" in result.lines[-1]
    assert time.monotonic() - began < 3
    assert leftovers(tmp_path) == []


def test_progress_lines_on_a_long_download(run_cli, server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "PROGRESS_EVERY", 0.3)
    url = server.add("/slow", PAYLOAD, rate=300_000)  # about a second
    result = run_cli("--log-format", "json", "fetch", url, str(tmp_path / "t"), "--sha256", DIGEST)
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in result.lines]
    progress = [r for r in records if "rate" in r]
    assert progress, records
    assert progress[-1]["bytes"] > 0 and "KiB/s" in progress[-1]["msg"] and "of 293.0 KiB" in progress[-1]["msg"]


def test_secrets_in_the_url_and_token_file_are_never_printed(run_cli, server, tmp_path):
    server.add("/tool", PAYLOAD, statuses=[503])
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    url = f"http://user:hunter22@127.0.0.1:{server.port}/tool?X-Amz-Signature=abcdef123&v=1"
    result = run_cli("fetch", url, str(tmp_path / "t"), "--sha256", DIGEST, "--token-file", str(token))
    assert result.code == 0, result.stderr
    assert "hunter22" not in result.stderr and "abcdef123" not in result.stderr and "s3cr3t" not in result.stderr
    assert "X-Amz-Signature=***&v=1" in result.stderr
    assert server.requests[-1][2]["Authorization"] == "Bearer s3cr3t-token"


def test_options_from_the_environment(run_cli, server, tmp_path):
    archive = tar_bytes({"x": b"1"})
    url = server.add("/e.tgz", archive)
    env = {
        "INITKIT_FETCH_URL": url,
        "INITKIT_FETCH_DEST": str(tmp_path / "e"),
        "INITKIT_FETCH_SHA256": sha(archive),
        "INITKIT_FETCH_EXTRACT": "true",
        "INITKIT_FETCH_STRIP_COMPONENTS": "1",
        "INITKIT_FETCH_HEADER": "X-Team: a\nX-Other: b",
    }
    result = run_cli("fetch", env=env)
    assert result.code == 0, result.stderr
    assert (tmp_path / "e" / "x").read_bytes() == b"1"
    assert server.requests[-1][2]["X-Team"] == "a" and server.requests[-1][2]["X-Other"] == "b"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sha256", "abc"], "64 hex digits"),
        (["--sha256", DIGEST, "--strip-components", "1"], "needs --extract"),
        (["--sha256", DIGEST, "--header", "novalue"], "malformed --header"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(run_cli, server, tmp_path, args, message):
    result = run_cli("fetch", server.url("/x"), str(tmp_path / "x"), *args)
    assert result.code == 2 and len(result.lines) == 1 and message in result.stderr
    assert server.requests == []


def test_dest_that_is_a_symlink_is_refused(run_cli, server, tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"victim")
    (tmp_path / "dest").symlink_to(outside)
    result = run_cli("fetch", server.add("/t", PAYLOAD), str(tmp_path / "dest"), "--sha256", DIGEST)
    assert result.code == 2 and "symlink" in result.stderr and outside.read_bytes() == b"victim"


def _popen(url: str, dest: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        initkit_command("fetch", url, str(dest), "--sha256", DIGEST, *extra),
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_temp(parent: Path, within: float = 10) -> None:
    def started() -> bool:
        temps = [p for p in parent.iterdir() if fs.TEMP_MARK in p.name]
        return bool(temps) and temps[0].stat().st_size > 0

    wait_until(started, within, "the download to start")


ARCHIVE = tar_bytes({"big": PAYLOAD})


@pytest.mark.parametrize("extract", [False, True], ids=["file", "extract"])
def test_kill_9_mid_download_then_a_rerun_cleans_up_and_succeeds(server, tmp_path, extract):
    body, flags = (ARCHIVE, ["--extract"]) if extract else (PAYLOAD, [])
    url = server.add("/slow", body, rate=50_000)
    dest = tmp_path / "tool"
    command = initkit_command("fetch", url, str(dest), "--sha256", sha(body), *flags)
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _wait_for_temp(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=5)
    assert not dest.exists() and leftovers(tmp_path)  # kill -9 runs no cleanup
    server.files["/slow"].rate = None
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert (dest / "plugin-1.0" / "big" if extract else dest).read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == [] and os.listdir(tmp_path) == ["tool"]


def test_sigterm_mid_download_exits_143_within_a_second_leaving_nothing(server, tmp_path):
    url = server.add("/slow", PAYLOAD, rate=50_000)
    proc = _popen(url, tmp_path / "tool")
    _wait_for_temp(tmp_path)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 143
    assert time.monotonic() - began < 1
    assert "stopped by SIGTERM" in proc.stderr.read()
    assert leftovers(tmp_path) == [] and not (tmp_path / "tool").exists()


def test_a_rerun_with_nothing_to_fetch_loads_no_http_library(server, tmp_path):
    url = server.add("/tool", PAYLOAD)
    dest = tmp_path / "tool"
    dest.write_bytes(PAYLOAD)
    dest.chmod(0o644)
    code = (
        "import sys\n"
        "from initkit.cli import run\n"
        f"code = run(['fetch', {url!r}, {str(dest)!r}, '--sha256', {DIGEST!r}])\n"
        "print(code, 'requests' in sys.modules, 'urllib3' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["0", "False", "False"], out.stderr
    assert server.gets("/tool") == 0


def test_a_python_without_lzma_names_the_missing_module(run_cli, server, tmp_path, monkeypatch):
    archive = tar_bytes({"x": b"1"}, "w:xz")
    monkeypatch.setitem(sys.modules, "lzma", None)  # as in a slim image's Python without it
    monkeypatch.setitem(sys.modules, "_lzma", None)
    result = run_cli("fetch", server.add("/a.txz", archive), str(tmp_path / "d"), "--sha256", sha(archive), "--extract")
    assert result.code == 1
    assert "xz-compressed: that needs Python's lzma module" in result.lines[-1]
    assert leftovers(tmp_path) == [] and not (tmp_path / "d").exists()


def test_a_run_killed_between_the_two_renames_gets_its_old_tree_back(run_cli, server, tmp_path):
    archive = tar_bytes({"a": b"1"})
    url = server.add("/a.tgz", archive)
    dest = tmp_path / "p"
    assert run_cli("fetch", url, str(dest), "--sha256", sha(archive), "--extract").code == 0
    dest.rename(tmp_path / ".p.0badcafe.initkit-tmp.old")  # where the kill left it: no DEST
    (tmp_path / ".p.0badcafe.initkit-tmp.d").mkdir()  # and half a new tree
    server.stop()
    again = run_cli("fetch", url, str(dest), "--sha256", sha(archive), "--extract")
    assert again.code == 0, again.stderr
    assert "restoring" in again.stderr and "already matches" in again.stderr
    assert (dest / "plugin-1.0" / "a").read_bytes() == b"1" and leftovers(tmp_path) == []
