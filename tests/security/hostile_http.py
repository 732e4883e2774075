"""Hostile HTTP servers on loopback: one that drips its answer, one that floods it.

Each is a real TCP server speaking just enough HTTP/1.1 to be believed. They
count the connections they accept, so a test can tell a check that was cut off
(and retried) from one that hung.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time


def _read_request(conn: socket.socket) -> bytes:
    """The request head and as much of a body as its Content-Length announces (requests are small)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            missing = int(value.strip()) - len(body)
            while missing > 0:
                chunk = conn.recv(min(missing, 65536))
                if not chunk:
                    break
                missing -= len(chunk)
    return head


class _TcpServer:
    """Accepts connections on 127.0.0.1 and runs `serve(conn)` for each in a thread."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.heads: list[bytes] = []  # every request's head, as sent
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
        with conn, contextlib.suppress(OSError):
            self.heads.append(_read_request(conn))
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


class DripServer(_TcpServer):
    """Answers one byte every `every` seconds, forever.

    part="headers": the status line and then a header that never ends.
    part="body": a complete head (status, a large Content-Length), then the body byte by byte.
    """

    def __init__(
        self, part: str = "headers", status: int = 200, every: float = 0.5, tls: ssl.SSLContext | None = None
    ) -> None:
        if part not in ("headers", "body"):
            raise ValueError(part)
        self.part, self.status, self.every = part, status, every
        super().__init__(tls)

    def serve(self, conn: socket.socket) -> None:
        if self.part == "headers":
            conn.sendall(f"HTTP/1.1 {self.status} Drip\r\n".encode())
            prefix = b"X-Drip: "
        else:
            conn.sendall(f"HTTP/1.1 {self.status} Drip\r\nContent-Length: 1000000\r\n\r\n".encode())
            prefix = b""
        conn.sendall(prefix)
        while not self.stopped.wait(self.every):
            conn.sendall(b"a")


class FloodServer(_TcpServer):
    """Answers `status` with a body of `size` bytes (10 GB by default), sent as fast as the client reads."""

    def __init__(self, status: int = 422, size: int = 10 * 1024**3, headers: str = "") -> None:
        """`headers`: extra header lines, each ending in CRLF (e.g. a Location for a redirect)."""
        self.status, self.size, self.headers = status, size, headers
        self.sent = 0
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 {self.status} Flood\r\n{self.headers}Content-Length: {self.size}\r\n\r\n".encode())
        block = b"flood " * 10923  # 64 KiB
        while self.sent < self.size and not self.stopped.is_set():
            conn.sendall(block)
            self.sent += len(block)


class RawServer(_TcpServer):
    """Answers every request with `reply`, bytes as they are: a status line, headers and a body
    that no well-behaved HTTP server library would send (control characters in the reason phrase)."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.sendall(self.reply)


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


class CrossHostRedirect:
    """`origin` on 127.0.0.1 answers every request with `status` and a Location on another host,
    `landing` on 127.0.0.2 (a different host to requests, though both are this machine)."""

    def __init__(self, status: int = 307) -> None:
        from tests.servers import Reply, ScriptedHttpServer

        self.landing = ScriptedHttpServer(host="127.0.0.2")
        self.origin = ScriptedHttpServer(host="127.0.0.1")
        self.origin.default = Reply(status, "moved", {"Location": self.landing.url("/landing")})

    def stop(self) -> None:
        self.origin.stop()
        self.landing.stop()
