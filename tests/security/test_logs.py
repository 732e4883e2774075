"""What reaches stderr from hostile or secret-bearing URLs and servers (issue 15).

Secrets in a URL's query string (a presigned URL's X-Amz-Signature, `?token=`)
must never be printed, by any command, in text or JSON logs, with --debug
(urllib3's request line) too. A server's reason phrase and body must not be
able to write control characters to a terminal or a log: a `\\x1b[2K\\r` would
erase the line and forge another.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.gitservers import GitHTTPSServer, served_repo
from tests.security.hostile_http import RawServer
from tests.servers import Reply, ScriptedHttpServer

POD = {"POD_NAME": "myapp-7d4b9", "POD_NAMESPACE": "shop", "POD_IP": "10.244.1.17", "POD_UID": "8d2c-11"}
SECRETS = ("tok-S3CRET-a", "sig-S3CRET-b", "cred-S3CRET-c")
QUERY = f"?token={SECRETS[0]}&page=1&X-Amz-Signature={SECRETS[1]}&X-Amz-Credential={SECRETS[2]}"
FORMATS = [["--log-format", "text"], ["--log-format", "json"], ["--log-format", "text", "--debug"]]
# What a terminal acts on: C0 (tab included), DEL, C1, line and paragraph separators, bidi controls.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def server():
    s = ScriptedHttpServer()
    yield s
    s.stop()


def _assert_no_secret(result, *, lines: int | None = None) -> None:
    for secret in SECRETS:
        assert secret not in result.stderr, result.stderr
        assert "S3CRET" not in result.stderr, result.stderr
    for line in result.lines:
        if line.startswith("{"):
            json.loads(line)  # JSON logs stay one object a line
    if lines is not None:
        assert len(result.lines) == lines, result.stderr


def _ids(formats: list[str]) -> str:
    return "-".join(f for f in formats if not f.startswith("--log"))


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
def test_register_never_prints_a_secret_query_value(run_proc, server, fmt):
    server.script = [Reply(503, "busy")]  # one retry line, then the success line
    result = run_proc(*fmt, "register", server.url("/r" + QUERY), "--attempts", "2", env=POD)
    assert result.code == 0, result.stderr
    assert server.seen[-1].path == "/r" + QUERY  # sent as given
    assert "retrying" in result.stderr and "registered (HTTP 200)" in result.stderr
    assert "token=***" in result.stderr and "page=1" in result.stderr
    _assert_no_secret(result)
    if "--debug" in fmt:
        assert '"POST /r?token=***' in result.stderr  # urllib3's request line, masked


@pytest.mark.parametrize("fmt", FORMATS[:2], ids=_ids)
def test_register_failure_lines_never_print_a_secret_query_value(run_proc, server, fmt):
    server.default = Reply(503, "busy")
    result = run_proc(*fmt, "register", server.url("/r" + QUERY), "--attempts", "2", "--timeout", "20s", env=POD)
    assert result.code == 1, result.stderr
    assert "HTTP 503; gave up after 2 attempts" in result.lines[-1]
    _assert_no_secret(result, lines=2)


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
def test_wait_for_never_prints_a_secret_query_value(run_proc, server, fmt):
    server.script = [Reply(503, "starting")]
    result = run_proc(*fmt, "wait-for", server.url("/health" + QUERY), "--interval", "0.1s", "--timeout", "10s")
    assert result.code == 0, result.stderr
    assert "is ready" in result.stderr
    _assert_no_secret(result)
    timeout = run_proc(*fmt, "wait-for", "http://127.0.0.1:9/x" + QUERY, "--interval", "0.1s", "--timeout", "1s")
    assert timeout.code == 1 and "not ready" in timeout.stderr
    _assert_no_secret(timeout)


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
def test_fetch_never_prints_a_secret_query_value(run_proc, server, tmp_path, fmt):
    server.script = [Reply(503, "busy")]
    server.default = Reply(200, "payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    result = run_proc(*fmt, "fetch", server.url("/a.bin" + QUERY), str(tmp_path / "a"), "--sha256", digest)
    assert result.code == 0, result.stderr
    assert (tmp_path / "a").read_bytes() == b"payload"
    _assert_no_secret(result)


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
def test_git_clone_never_prints_a_secret_query_value(run_proc, tmp_path, fmt):
    https = GitHTTPSServer(served_repo(tmp_path, {"a": "b"}), tmp_path / "tls", open_access=True).start()
    try:
        url = https.url("site.git") + QUERY
        ca = str(https.ca_file)
        result = run_proc(*fmt, "git-clone", url, str(tmp_path / "site"), "--ca-file", ca, "--timeout", "20s")
    finally:
        https.stop()
    assert https.requests == 0  # a credential in REPO's query never reaches git (its helper's argv)
    assert result.code == 2, result.stderr
    _assert_no_secret(result)


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
@pytest.mark.parametrize("command", ["register", "fetch"])
def test_a_redirect_to_ftp_is_the_servers_failure_and_prints_no_signature(run_proc, server, tmp_path, command, fmt):
    """A presigned URL that redirects off HTTP: exit 1 (the server's doing, not the operator's), one line."""
    server.default = Reply(302, "", {"Location": "ftp://files.example/a.tgz" + QUERY})
    if command == "register":
        result = run_proc(*fmt, "register", server.url("/r"), "--attempts", "3", env=POD)
    else:
        digest = hashlib.sha256(b"x").hexdigest()
        result = run_proc(*fmt, "fetch", server.url("/a.tgz"), str(tmp_path / "a"), "--sha256", digest)
    assert result.code == 1, result.stderr
    _assert_no_secret(result)
    final = [line for line in result.lines if "debug" not in line]
    assert len(final) == 1, result.stderr
    assert "redirected to ftp://files.example/a.tgz?token=***" in final[0]
    assert len(server.seen) == 1  # not retried: the same answer would come again
    assert not (tmp_path / "a").exists()


# ---- control characters from a server ---------------------------------------------------------------------

FORGED = "initkit register: POST http://registry/r: registered (HTTP 201)"
HOSTILE_REASON = b"Unprocessable \x1b[2K\r" + FORGED.encode() + b" \x9b2J\x7f"
HOSTILE_BODY = "oops \x1b[2K\rfake\n\u2028initkit: done \u202egnp.exe \x1b]0;owned\x07".encode()


def _hostile(status: int) -> RawServer:
    head = b"HTTP/1.1 %d " % status + HOSTILE_REASON + b"\r\nContent-Length: %d\r\n\r\n" % len(HOSTILE_BODY)
    return RawServer(head + HOSTILE_BODY)


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("command", ["register", "fetch"])
def test_a_hostile_reason_phrase_and_body_print_no_control_characters(run_proc, tmp_path, command, fmt):
    hostile = _hostile(422 if command == "register" else 404)
    try:
        if command == "register":
            result = run_proc("--log-format", fmt, "register", hostile.url("/r"), env=POD)
        else:
            digest = hashlib.sha256(b"x").hexdigest()
            result = run_proc("--log-format", fmt, "fetch", hostile.url("/a"), str(tmp_path / "a"), "--sha256", digest)
    finally:
        hostile.stop()
    assert result.code == 1, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    assert not _CONTROL.search(result.stderr), ascii(result.stderr)
    line = json.loads(result.stderr)["msg"] if fmt == "json" else result.stderr
    assert "was refused: HTTP" in line and "\\x1b[2K" in ascii(line)
