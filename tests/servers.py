"""Real servers for the tests: dnsmasq and a scripted HTTP(S) server.

dnsmasq answers only from files the test writes and NXDOMAIN for everything
else (`local=/#/`, no upstream), so no DNS query ever leaves the machine.
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_next_address = itertools.count(1)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class DnsServer:
    """dnsmasq on ADDRESS:53 (port 53, so glibc and resolv.conf can use it), answering only
    from the records a test adds and never forwarding anything."""

    def __init__(
        self,
        workdir: Path,
        port: int = 53,
        extra: tuple[str, ...] = (),
        nxdomain_for_unknown: bool = True,
        address: str | None = None,
    ) -> None:
        """`address`: where to listen, e.g. a Docker network's gateway; default a fresh 127.53.x.y."""
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not os.path.exists(binary):
            raise RuntimeError("dnsmasq is not installed (apt-get install dnsmasq-base)")
        self.address = address or f"127.53.{os.getpid() % 250 + 1}.{next(_next_address) % 250 + 1}"
        self.port = port
        self.hostsdir = workdir / "hosts"
        self.hostsdir.mkdir(parents=True, exist_ok=True)
        self.pidfile = workdir / "dnsmasq.pid"
        self.logfile = workdir / "dnsmasq.log"
        self.conf = workdir / "dnsmasq.conf"
        self.conf.write_text(
            "\n".join(
                [
                    f"port={port}",
                    f"listen-address={self.address}",
                    "bind-interfaces",
                    "no-resolv",
                    "no-hosts",
                    f"hostsdir={self.hostsdir}",
                    # NXDOMAIN for every name it was not given; without it: REFUSED
                    *(["local=/#/"] if nxdomain_for_unknown else []),
                    "local-ttl=0",
                    "neg-ttl=0",
                    "user=root",
                    f"pid-file={self.pidfile}",
                    "log-queries",
                    f"log-facility={self.logfile}",
                    *extra,
                ]
            )
            + "\n"
        )
        self.binary = binary
        self._start()

    def _start(self) -> None:
        self.pidfile.unlink(missing_ok=True)
        subprocess.run([self.binary, "-C", str(self.conf)], check=True)
        self._wait_until_answering()

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.pidfile.exists() and self.pidfile.read_text().strip():
                return
            time.sleep(0.02)
        raise RuntimeError("dnsmasq did not start")

    def add(self, name: str, *addresses: str) -> None:
        """Publish NAME -> ADDRESS... (dnsmasq picks the file up by inotify)."""
        path = self.hostsdir / f"{name}.hosts"
        tmp = path.with_suffix(".tmp-write")
        tmp.write_text("".join(f"{address} {name}\n" for address in addresses))
        tmp.rename(path)

    def srv(self, name: str, target: str, port: int, priority: int = 0, weight: int = 0) -> None:
        """Publish an SRV record (restarts dnsmasq: only hosts files are reloaded while it runs)."""
        self.publish(f"srv-host={name},{target},{port},{priority},{weight}")

    def txt(self, name: str, *strings: str) -> None:
        self.publish(f"txt-record={name}," + ",".join(f'"{text}"' for text in strings))

    def cname(self, alias: str, target: str) -> None:
        self.publish(f"cname={alias},{target}")

    def publish(self, *options: str) -> None:
        """Add dnsmasq options and restart it on the same address (SIGHUP does not reread them)."""
        with self.conf.open("a") as f:
            f.writelines(f"{option}\n" for option in options)
        self.stop()
        self._start()

    def queries(self) -> list[str]:
        if not self.logfile.exists():
            return []
        return [line for line in self.logfile.read_text().splitlines() if "query[" in line]

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)


def _wait_gone(pid: int, within: float = 5.0) -> None:
    """Until PID has exited (a zombie counts: dnsmasq daemonizes, and nobody here reaps it)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up (wait-for closes after the status line) is not an error here."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks socket.getfqdn(), a PTR query that may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: str


class ScriptedHttpServer:
    """A real HTTP(S) server answering from a script of replies, recording requests.

    When the script runs out it repeats `default`.
    """

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        """`host`: any 127.0.0.0/8 address, e.g. 127.0.0.2 for a second host in a cross-host test."""
        self.host = host
        self.script: list[Reply] = []
        self.default = Reply(200, "ok")
        self.seen: list[Seen] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                owner.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                reply = owner.script.pop(0) if owner.script else owner.default
                payload = reply.body.encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        self.httpd = _QuietServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
