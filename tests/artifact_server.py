"""A real HTTP artifact store on loopback for `initkit fetch` tests.

Serves bytes by path and can misbehave on purpose: answer with a status
first, cut a body off mid-way (the full Content-Length announced, the
connection closed early), or send slowly. It records every request, so a test
can tell a re-run that used no network from one that did.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Artifact:
    body: bytes
    statuses: list[int] = field(default_factory=list)  # answered (with an empty body) before the body
    cut_after: int | None = None  # send only this many bytes, then close ...
    cuts: int = 1  # ... on this many requests
    rate: float | None = None  # bytes a second, in 16 KiB steps
    headers: dict[str, str] = field(default_factory=dict)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks socket.getfqdn(), a PTR query that may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class ArtifactServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        """`host`: a loopback address, or a Docker network's gateway for image tests."""
        self.host = host
        self.files: dict[str, Artifact] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    self._get()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (a timeout, a kill): expected

            def _get(self) -> None:
                owner.requests.append((self.command, self.path, dict(self.headers.items())))
                artifact = owner.files.get(self.path.split("?")[0])
                if artifact is None:
                    self._send(404, b"no such artifact")
                    return
                if artifact.statuses:
                    self._send(artifact.statuses.pop(0), b"")
                    return
                body = artifact.body
                self.send_response(200)
                for key, value in artifact.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if artifact.cut_after is not None and artifact.cuts > 0:
                    artifact.cuts -= 1
                    self.wfile.write(body[: artifact.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if artifact.rate:
                    step = 16384
                    for start in range(0, len(body), step):
                        self.wfile.write(body[start : start + step])
                        self.wfile.flush()
                        time.sleep(step / artifact.rate)
                    return
                self.wfile.write(body)

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = _Server((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes, **kw: object) -> str:
        self.files[path] = Artifact(body, **kw)  # type: ignore[arg-type]
        return self.url(path)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def gets(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p.split("?")[0] == path)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
