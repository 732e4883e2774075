"""`tcp:HOST:PORT`: ready when a TCP connection succeeds (`nc -z HOST PORT`)."""

from __future__ import annotations

import errno
import socket

from initkit.errors import BadInput
from initkit.probes import NotReady

CONNECT_TIMEOUT = 2.0


class TcpProbe:
    def __init__(self, label: str, host: str, port: int) -> None:
        self.label = label
        self.host = host
        self.port = port

    @classmethod
    def parse(cls, label: str, rest: str) -> TcpProbe:
        host, sep, port_text = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # [::1]:80
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BadInput(f"malformed target {label!r}: expected tcp:HOST:PORT with a port from 1 to 65535")
        return cls(label, host, int(port_text))

    def check(self) -> str:
        try:
            with socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT):
                return "connected"
        except socket.gaierror as exc:
            raise NotReady(f"cannot resolve {self.host}: {exc.strerror}") from None
        except TimeoutError:
            raise NotReady("connect timed out") from None
        except OSError as exc:
            reason = errno.errorcode.get(exc.errno or 0, "")
            text = {"ECONNREFUSED": "connection refused", "EHOSTUNREACH": "host unreachable"}.get(reason)
            raise NotReady(text or (exc.strerror or str(exc)).lower()) from None
