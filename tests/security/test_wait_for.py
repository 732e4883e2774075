"""wait-for against a hostile health endpoint: a body built to make a regex backtrack forever.

`^(\\w+\\s?)*$` against forty word characters and a `!` takes a backtracking
engine (Python's `re`) longer than any deadline, inside one C call that holds
the GIL, so neither `--timeout` nor SIGTERM could end it. The engine initkit
uses (RE2) runs in time linear in the body, so both must.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from tests.conftest import initkit_command
from tests.security.hostile_http import _TcpServer

CATASTROPHIC = r"^(\w+\s?)*$"


class EvilBodyServer(_TcpServer):
    """Answers 200 with a body that defeats a backtracking regex, larger than the probe reads.

    The probe reads 64 KiB and hangs up; `hung_up` is set then, the moment the probe
    has the whole of what it will match, so a test can signal it while it matches."""

    BODY = b"a" * 40 + b"!" + b" " * (100 * 1024)

    def __init__(self) -> None:
        self.hung_up = threading.Event()
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.BODY) + self.BODY)
        try:
            while conn.recv(65536):
                pass
        finally:  # EOF, or a reset: the probe closed with the rest of the body unread
            self.hung_up.set()


def _target(server: EvilBodyServer) -> str:
    return server.url("/health") + "#regex=" + urllib.parse.quote(CATASTROPHIC, safe="")


def test_a_catastrophic_regex_against_a_hostile_body_ends_by_the_timeout():
    server = EvilBodyServer()
    try:
        started = time.monotonic()
        proc = subprocess.run(
            initkit_command("wait-for", _target(server), "--timeout", "2s"),
            capture_output=True,
            text=True,
            timeout=15,
        )
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 4, (elapsed, proc.stderr)
    assert "timed out after 2s" in lines[-1] and "body does not match" in lines[-1], proc.stderr
    assert server.connections >= 2  # the check ended and was retried, not stuck in its first match


def test_sigterm_during_a_catastrophic_match_exits_143_within_a_second():
    server = EvilBodyServer()
    proc = subprocess.Popen(
        initkit_command("wait-for", _target(server), "--timeout", "60s"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.hung_up.wait(15), "the probe never read the body"
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = proc.wait(timeout=5)
        elapsed = time.monotonic() - signalled
        assert code == 143, proc.stderr.read() if proc.stderr else ""
        assert elapsed < 1.0, elapsed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        server.stop()


def test_a_pattern_the_linear_engine_refuses_is_one_line_exit_2():
    """Backreferences and lookaround need backtracking: refused at start, without the engine's own logging."""
    target = "http://127.0.0.1:1/h#regex=" + urllib.parse.quote(r"(a+)\1", safe="")
    proc = subprocess.run(initkit_command("wait-for", target, "--timeout", "1s"), capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "not a valid regular expression" in proc.stderr and "RE2 syntax" in proc.stderr
