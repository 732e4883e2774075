"""The register sidecar against a registry that stalls its heartbeats.

The kubelet gives a pod `terminationGracePeriodSeconds` after SIGTERM, then
SIGKILLs it. A heartbeat the registry accepts and never answers (or answers
with a long Retry-After) must not hold the deregistration back: SIGTERM cuts
it at once, and the deregistration reaches the registry within a second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time

from tests.conftest import initkit_command
from tests.security.hostile_http import _read_request, _TcpServer

POD = {"POD_NAME": "myapp-7d4b9", "POD_NAMESPACE": "shop", "POD_IP": "10.244.1.17", "POD_UID": "8d2c-11"}


class StallingRegistry(_TcpServer):
    """Answers the first POST 201; every later POST (a heartbeat) is `stall`ed; a DELETE is answered 200.

    stall="forever": the heartbeat is read and never answered.
    stall="retry-after": it is answered 503 with `Retry-After: 2`, so the sidecar backs off.
    stall="registration" / "deregistration": the first POST / the DELETE is never answered.
    Events mark when a heartbeat arrived and when the deregistration did."""

    def __init__(self, stall: str) -> None:
        self.stall = stall
        self.posts = 0
        self.registering = threading.Event()
        self.heartbeat = threading.Event()
        self.deregistered = threading.Event()
        self.deregistered_at = 0.0
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            head = _read_request(conn)
            if head.startswith(b"DELETE "):
                self.deregistered_at = time.monotonic()
                self.deregistered.set()
                if self.stall == "deregistration":
                    while conn.recv(1024):
                        pass
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.posts += 1
            if self.posts == 1 and self.stall == "registration":
                self.registering.set()
                while conn.recv(1024):
                    pass
                return
            if self.posts == 1:
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self.heartbeat.set()
            if self.stall == "retry-after":
                conn.sendall(b"HTTP/1.1 503 Busy\r\nRetry-After: 2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            while conn.recv(1024):  # never answer; end when the client hangs up
                pass


class Sidecar:
    """`initkit register` as a sidecar child; its stderr lines collected as they come."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            initkit_command("register", url, "--deregister-method", "DELETE", *args),
            env={**os.environ, **POD},
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_line(self, text: str, within: float = 10.0) -> None:
        with self._changed:
            found = self._changed.wait_for(lambda: any(text in line for line in self.lines), within)
        assert found, (text, self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _sigterm_then_deregistration(registry: StallingRegistry, sidecar: Sidecar) -> tuple[float, int]:
    sidecar.wait_line("staying up")
    assert registry.heartbeat.wait(10), sidecar.lines
    if registry.stall == "retry-after":
        sidecar.wait_line("retrying in 2s")  # the sidecar now sleeps before the next attempt
    signalled = time.monotonic()
    sidecar.proc.send_signal(signal.SIGTERM)
    assert registry.deregistered.wait(5), sidecar.lines
    return registry.deregistered_at - signalled, sidecar.proc.wait(timeout=5)


def test_sigterm_cuts_a_heartbeat_the_registry_never_answers():
    registry = StallingRegistry("forever")
    sidecar = Sidecar(registry.url("/n"), "--heartbeat", "2s", "--deregister-timeout", "10s")
    try:
        took, code = _sigterm_then_deregistration(registry, sidecar)
    finally:
        sidecar.stop()
        registry.stop()
    assert took < 1.0, (took, sidecar.lines)
    assert code == 0, sidecar.lines  # deregistered: the documented exit
    assert "deregistered (HTTP 200)" in sidecar.lines[-1]
    assert not any("warning: heartbeat" in line for line in sidecar.lines)  # a cut heartbeat is no failure


def test_sigterm_cuts_a_heartbeat_backing_off_after_a_retry_after():
    registry = StallingRegistry("retry-after")
    sidecar = Sidecar(registry.url("/n"), "--heartbeat", "3s", "--deregister-timeout", "10s")
    try:
        took, code = _sigterm_then_deregistration(registry, sidecar)
    finally:
        sidecar.stop()
        registry.stop()
    assert took < 1.0, (took, sidecar.lines)
    assert code == 0, sidecar.lines
    assert registry.posts == 2  # no heartbeat retried after the signal: it would register the pod again


def test_sigterm_during_the_registration_is_143_and_sends_no_deregistration():
    registry = StallingRegistry("registration")
    sidecar = Sidecar(registry.url("/n"), "--timeout", "1m")
    try:
        assert registry.registering.wait(10), sidecar.lines
        signalled = time.monotonic()
        sidecar.proc.send_signal(signal.SIGTERM)
        code = sidecar.proc.wait(timeout=5)
        took = time.monotonic() - signalled
    finally:
        sidecar.stop()
        registry.stop()
    assert code == 143, sidecar.lines
    assert took < 1.0, took
    assert not registry.deregistered.is_set()  # it never registered: nothing to undo
    assert sidecar.lines[-1].endswith("error: stopped by SIGTERM\n"), sidecar.lines


def test_a_second_sigterm_stops_a_stalled_deregistration_at_once():
    registry = StallingRegistry("deregistration")
    sidecar = Sidecar(registry.url("/n"), "--deregister-timeout", "1m")
    try:
        sidecar.wait_line("staying up")
        sidecar.proc.send_signal(signal.SIGTERM)
        assert registry.deregistered.wait(5), sidecar.lines  # the DELETE is in flight, unanswered
        signalled = time.monotonic()
        sidecar.proc.send_signal(signal.SIGTERM)
        code = sidecar.proc.wait(timeout=5)
        took = time.monotonic() - signalled
    finally:
        sidecar.stop()
        registry.stop()
    assert code == 143, sidecar.lines
    assert took < 1.0, took
    assert sidecar.lines[-1].endswith("error: stopped by SIGTERM\n"), sidecar.lines
