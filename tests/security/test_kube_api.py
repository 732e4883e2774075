"""A hostile API server on loopback (TLS, a trustme CA) against wait-for's API targets.

It answers the list as an API server would, then its watch drips, floods, sends a 100 MB
object, lies about resourceVersions (410 Gone for ever, or a resourceVersion of 1 MB) or
never ends. Each run must end by its deadline with one line naming the target, in bounded
memory (the peak RSS of the initkit process), and never show the token.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.budgets import peak_rss_mib
from tests.conftest import ROOT
from tests.security.hostile_http import _TcpServer

TOKEN = "hostile-test-token-0123456789"
RSS_LIMIT_KB = 200 * 1024  # initkit with requests is about 40 MB; a 100 MB object kept would pass this


def _list(rv: str = "7") -> bytes:
    body = json.dumps({"kind": "List", "metadata": {"resourceVersion": rv}, "items": []}).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"


def _event(kind: str, name: str, rv: str = "8") -> bytes:
    obj = {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


class FakeApiServer(_TcpServer):
    """Answers lists honestly; its watch does what MODE says."""

    def __init__(self, mode: str, tls: object) -> None:
        self.mode = mode
        self.watches = 0
        self.lists = 0
        super().__init__(tls)  # type: ignore[arg-type]

    def serve(self, conn: socket.socket) -> None:
        head = self.heads[-1]
        if b"watch=1" not in head.split(b"\r\n")[0]:
            self.lists += 1
            rv = "1" * (1 << 20) if self.mode == "huge-version" else "7"
            conn.sendall(_list(rv))
            return
        self.watches += 1
        conn.sendall(STREAM_HEAD)
        if self.mode == "drip":
            conn.sendall(b'{"type":"ADDED","object":')
            while not self.stopped.is_set():
                conn.sendall(b" ")
                time.sleep(0.05)
        elif self.mode == "flood":
            n = 0
            while not self.stopped.is_set():
                conn.sendall(b"".join(_event("ADDED", f"p{n + i}") for i in range(500)))
                n += 500
        elif self.mode == "huge":
            conn.sendall(b'{"type":"ADDED","object":{"metadata":{"name":"x","resourceVersion":"8"},"pad":"')
            chunk = b"a" * (1 << 20)
            for _ in range(100):
                conn.sendall(chunk)
            conn.sendall(b'"}}\n')
        elif self.mode == "gone":
            conn.sendall(json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410}}).encode() + b"\n")
        elif self.mode == "never":
            while not self.stopped.is_set():
                conn.sendall(_event("BOOKMARK", "", "9"))
                time.sleep(0.01)


@pytest.fixture
def tls(tmp_path: Path) -> tuple[object, Path]:
    import trustme

    ca = trustme.CA()
    context = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


def _kubeconfig(tmp_path: Path, port: int, ca_file: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": f"https://127.0.0.1:{port}", "certificate-authority": str(ca_file)},
                    }
                ],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
                "current-context": "x",
            }
        )
    )
    return path


def _run(config: Path, target: str, timeout: str = "3s") -> tuple[int, list[str], float, int]:
    """initkit's exit code, stderr lines, seconds taken and peak RSS (KiB), through GNU time (its own
    process's figure: a child's own getrusage would include this pytest process's pre-exec pages)."""
    started = time.monotonic()
    rss_mib, code, err = peak_rss_mib(
        [sys.executable, "-m", "initkit", "wait-for", target, "--kubeconfig", str(config), "--timeout", timeout],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    elapsed = time.monotonic() - started
    return code, err.splitlines(), elapsed, int(rss_mib * 1024)


@pytest.mark.parametrize(
    ("mode", "target", "reason"),
    [
        ("drip", "job:x", "job default/x does not exist"),
        ("flood", "pods:app=x", "10000"),  # kept up to MAX_OBJECTS, then an error and a relist
        ("huge", "job:x", "the API server sent a watch event over 4 MiB"),
        ("gone", "job:x", "jobs.batch: resourceVersion expired (410 Gone)"),
        ("huge-version", "job:x", "the API server sent a resourceVersion that is not one"),
        ("never", "job:x", "job default/x does not exist"),
    ],
)
def test_a_hostile_api_server_ends_at_the_deadline_in_bounded_memory(
    tls: tuple[object, Path], tmp_path: Path, mode: str, target: str, reason: str
) -> None:
    context, ca_file = tls
    server = FakeApiServer(mode, context)
    try:
        code, lines, elapsed, rss = _run(_kubeconfig(tmp_path, server.port, ca_file), target)
    finally:
        server.stop()
    assert code == 1, lines
    assert elapsed < 6, elapsed
    assert rss < RSS_LIMIT_KB, f"peak RSS {rss} KiB"
    assert lines[-1].startswith(f"initkit wait-for: error: timed out after 3s; not ready: {target} ("), lines
    assert reason in lines[-1], lines
    assert all(TOKEN not in line for line in lines)
    if mode in ("gone", "huge-version", "huge"):
        # a relist or reconnect loop waits its jittered backoff: a handful of requests, not thousands
        assert server.lists + server.watches < 40, (server.lists, server.watches)


def test_rss_is_measured_for_real() -> None:
    """The RSS probe above can fail: a child that holds 300 MB reports it, and a small one is small
    although this pytest process is large."""
    held, _, _ = peak_rss_mib([sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"])
    assert held * 1024 > RSS_LIMIT_KB
    small, _, _ = peak_rss_mib([sys.executable, "-c", "pass"])
    assert small < 64
