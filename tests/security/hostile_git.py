"""Hostile git servers on loopback for tests/security/test_git.py.

- `Redirector`: answers every request with a redirect to the same path on another
  server (another host: 127.0.0.2), recording the headers it received.
- `StallingServer`: speaks just enough HTTP to start a (dumb-HTTP) fetch, then sends
  nothing more until stopped, as a hung server or a dropped route does.
- `RecordingProxy`: a TCP listener standing in for an HTTP proxy; records what arrives.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:  # no getfqdn(): no PTR query off the machine
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Redirector:
    def __init__(self, target: str, address: str = "127.0.0.1", status: int = 301) -> None:
        owner = self
        self.target = target.rstrip("/")  # e.g. http://127.0.0.2:PORT
        self.seen: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _redirect(self) -> None:
                owner.seen.append(dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Location", owner.target + self.path)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            do_GET = do_POST = _redirect

        self.httpd = _Server((address, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.address = address
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str, credentials: str = "") -> str:
        return f"http://{credentials}{self.address}:{self.port}/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StallingServer:
    """Every GET gets 200 and a long Content-Length, a few bytes, then silence."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        owner = self
        self.released = threading.Event()
        self.arrived = threading.Event()  # set at the first request: the client is now waiting
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                owner.arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(1 << 20))
                self.end_headers()
                self.wfile.write(b"0" * 20)
                self.wfile.flush()
                owner.released.wait(120)

        self.httpd = _Server((address, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.address = address
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://{self.address}:{self.port}/{name}"

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class RecordingProxy:
    """Accepts connections and records the first bytes of each; never answers."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.received: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{address}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    self.received.append(conn.recv(65536))

    def stop(self) -> None:
        self.sock.close()
