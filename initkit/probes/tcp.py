"""`tcp:HOST:PORT`: ready when a TCP connection succeeds (`nc -z HOST PORT`)."""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from typing import TYPE_CHECKING

from initkit.errors import BadInput
from initkit.probes import NotReady

if TYPE_CHECKING:
    from initkit.cancel import Token

CONNECT_TIMEOUT = 2.0


class TcpProbe:
    def __init__(self, label: str, host: str, port: int) -> None:
        self.label = label
        self.host = host
        self.port = port

    @classmethod
    def parse(cls, label: str, rest: str) -> TcpProbe:
        host, sep, port_text = rest.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        if bracketed:
            host = host[1:-1]  # [::1]:80
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses
        if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536:
            raise BadInput(f"malformed target {label!r}: expected tcp:HOST:PORT with a port from 1 to 65535")
        if any(ch.isspace() or not ch.isprintable() or ch in "[]/@" for ch in host):
            raise BadInput(f"malformed target {label!r}: {host!r} is not a host name or address")
        if bracketed:
            try:
                ipaddress.IPv6Address(host.split("%", 1)[0])
            except ValueError:
                raise BadInput(f"malformed target {label!r}: {host!r} in brackets is not an IPv6 address") from None
        return cls(label, host, int(port_text))

    def check(self, token: Token | None = None) -> str:
        """One connect, within CONNECT_TIMEOUT and the token's deadline. It is not woken by a signal:
        wait-for's main thread is, and it does not wait for a check to end."""
        from initkit import cancel

        token = token or cancel.current()
        left = token.remaining()
        timeout = CONNECT_TIMEOUT if left is None else max(0.05, min(CONNECT_TIMEOUT, left))
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return "connected"
        except socket.gaierror as exc:
            raise NotReady(f"cannot resolve {self.host}: {exc.strerror}") from None
        except TimeoutError:
            raise NotReady("connect timed out") from None
        except OSError as exc:
            reason = errno.errorcode.get(exc.errno or 0, "")
            text = {"ECONNREFUSED": "connection refused", "EHOSTUNREACH": "host unreachable"}.get(reason)
            raise NotReady(text or (exc.strerror or str(exc)).lower()) from None
