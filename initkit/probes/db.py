"""What every database / broker target shares: its URL, its credentials, its TLS and its time.

    SCHEME://[USER@]HOST[:PORT][/DB][?KEY=VALUE&...][#EXPECT]

Query keys, the same for every protocol (a protocol may add its own, e.g. redis's role):
    password_file=PATH  the password, read once at start (initkit.secretfile); never in the URL
    tls=verify          TLS, the server's certificate checked against the system CAs (or ca_file)
    ca_file=PATH        TLS, the server's certificate checked against this CA bundle
    cert_file=PATH, key_file=PATH   a client certificate (TLS)
    server_name=NAME    the name the certificate must hold (and SNI), when HOST is an address
Any TLS key turns TLS on (rediss:// too); a TLS connection is always verified, name included.

Fragment (SQL databases): table=[SCHEMA.]NAME (the table exists), query=SQL (SQL returns a row),
values percent-decoded, '&' between items. Expectations, like a password, mean a login.

Each check runs under a `Budget`: min(CHECK_TIMEOUT, the run's remaining time). The drivers get
it as their connect and socket timeouts, and a timer shuts the connection's socket down when it
runs out or the run is cancelled, so a server that drips one byte a second cannot hold a check
past it. `CappedSocket` ends a connection that sends more than ANSWER_LIMIT bytes: a flood
cannot grow the drivers' buffers.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from initkit.errors import BadInput
from initkit.probes import NotReady
from initkit.urls import shown

if TYPE_CHECKING:
    from initkit.cancel import Token

CHECK_TIMEOUT = 5.0  # one check, however slowly the server answers
MIN_BUDGET = 0.2  # a check started just before the deadline still gets a chance to connect
ANSWER_LIMIT = 1 << 20  # bytes a server may send in one check (a PING, a handshake, SELECT 1)
TLS_KEYS = ("tls", "ca_file", "cert_file", "key_file", "server_name")
COMMON_KEYS = ("password_file", *TLS_KEYS)
SQL_EXPECT_KEYS = "table=[SCHEMA.]NAME, query=SQL"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


class ConfigError(NotReady):
    """Not ready because of what the target says (a wrong password, no such database): retrying
    will not help unless someone fixes it, so the waiting line says so."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"configuration error: {reason}")


@dataclass
class Tls:
    ca_file: str | None = None  # None: the system's CAs
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the certificate and the name (server_name or HOST)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    @property
    def ca_bundle(self) -> str:
        """A CA file path for drivers that take only a path (libpq): ca_file or the system's bundle."""
        if self.ca_file:
            return self.ca_file
        paths = ssl.get_default_verify_paths()
        return paths.cafile or paths.openssl_cafile


@dataclass
class DbUrl:
    scheme: str
    host: str
    port: int
    user: str | None = None
    database: str | None = None
    password: str | None = None
    tls: Tls | None = None
    options: dict[str, str] = field(default_factory=dict)  # the protocol's own query keys
    tables: list[str] = field(default_factory=list)  # fragment table=
    queries: list[str] = field(default_factory=list)  # fragment query=

    @property
    def login(self) -> bool:
        """A login (and its checks) rather than only asking whether the server answers."""
        return self.password is not None or bool(self.tables or self.queries)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_url(
    target: str,
    *,
    default_port: int,
    extra_keys: tuple[str, ...] = (),
    sql: bool = False,
    tls_schemes: tuple[str, ...] = (),
) -> DbUrl:
    """TARGET as a DbUrl; BadInput (exit 2) for anything wrong in it, its files included."""

    def bad(why: str) -> BadInput:
        return BadInput(f"malformed target {shown(target)!r}: {why}")

    if re.search(r"[\x00-\x20\x7f]", target):
        raise bad("a target cannot hold whitespace or control characters")
    url, _, fragment = target.partition("#")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Port out of range 0-65535", "Invalid IPv6 URL"
        raise bad(str(exc).rstrip(".")) from None
    scheme = parts.scheme.lower()
    if not parts.hostname:
        raise bad(f"expected {scheme}://[USER@]HOST[:PORT]/...")
    if parts.password is not None:
        raise bad("a password in the URL would show in the pod spec and in ps: name a file with password_file=PATH")
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise bad("port must be 1 to 65535")
    host = parts.hostname
    if "[" in parts.netloc:
        import ipaddress

        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise bad(f"{host!r} in brackets is not an IPv6 address") from None
    db = DbUrl(scheme, host, port or default_port, user=urllib.parse.unquote(parts.username or "") or None)
    path = urllib.parse.unquote(parts.path.removeprefix("/"))
    if "/" in path:
        raise bad(f"expected at most one /DATABASE after the host, got {path!r}")
    db.database = path or None
    query = _query(parts.query, bad)
    allowed = (*COMMON_KEYS, *extra_keys)
    for key in query:
        if key not in allowed:
            raise bad(f"unknown option {key!r}: expected {', '.join(allowed)}")
    if "password_file" in query:
        from initkit import secretfile

        db.password = secretfile.read(query.pop("password_file"), "password file")
    db.tls = _tls(query, bad, on=scheme in tls_schemes)
    db.options = {key: value for key, value in query.items() if key not in TLS_KEYS}
    if fragment:
        if not sql:
            raise bad(f"{scheme} targets take no '#' expectations")
        _expectations(db, fragment, bad)
    return db


def _query(text: str, bad: Any) -> dict[str, str]:
    query: dict[str, str] = {}
    for item in text.split("&") if text else ():
        key, sep, raw = item.partition("=")
        value = urllib.parse.unquote(raw)
        if not sep or not value:
            raise bad(f"expected KEY=VALUE after '?', got {item!r}")
        if key in query:
            raise bad(f"option {key!r} given twice")
        query[key] = value
    return query


def _tls(query: dict[str, str], bad: Any, *, on: bool) -> Tls | None:
    if "tls" in query and query["tls"] != "verify":
        raise bad(f"tls={query['tls']!r}: the only value is tls=verify (a certificate is always checked)")
    if not on and not any(key in query for key in TLS_KEYS):
        return None
    tls = Tls(query.get("ca_file"), query.get("cert_file"), query.get("key_file"), query.get("server_name"))
    if bool(tls.cert_file) != bool(tls.key_file):
        raise bad("cert_file and key_file go together")
    for what, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        if path is not None and not os.access(path, os.R_OK):
            raise bad(f"{what} {path} cannot be read")
    if tls.server_name is not None and not re.fullmatch(r"[A-Za-z0-9*]([A-Za-z0-9.*-]{0,252})", tls.server_name):
        raise bad(f"server_name={tls.server_name!r} is not a host name")
    try:
        tls.context()  # a CA file that is no PEM, a key that is not the certificate's: exit 2 now
    except (ssl.SSLError, OSError) as exc:
        raise bad(f"TLS files cannot be used: {exc.strerror or exc}") from None
    return tls


def _expectations(db: DbUrl, fragment: str, bad: Any) -> None:
    for item in fragment.split("&"):
        key, sep, raw = item.partition("=")
        value = urllib.parse.unquote(raw)
        if not sep or not value.strip():
            raise bad(f"expected KEY=VALUE after '#', one of {SQL_EXPECT_KEYS}; got {item!r}")
        if key == "table":
            if not all(_IDENTIFIER.fullmatch(part) for part in value.split(".")) or value.count(".") > 1:
                raise bad(f"table={value!r}: expected NAME or SCHEMA.NAME (letters, digits, _ and $)")
            db.tables.append(value)
        elif key == "query":
            db.queries.append(value)
        else:
            raise bad(f"unknown expectation {key!r}: expected {SQL_EXPECT_KEYS}")


def one_line(text: str, limit: int = 300) -> str:
    """A driver's message as one short line (servers and drivers put line breaks in them)."""
    from initkit.urls import printable

    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Budget:
    """One check's time. `seconds` is what the drivers get as timeouts; `watch`ed sockets are shut
    down (a blocked read returns at once, whatever the driver) when it runs out or TOKEN is cancelled."""

    def __init__(self, token: Token, deadline: float | None = None) -> None:
        """DEADLINE (on the token's clock): wait-for's, a little before its timeout, so the last check
        ends in time to name its reason."""
        left = token.remaining()
        if deadline is not None:
            until = max(0.0, deadline - token.clock.monotonic())
            left = until if left is None else min(left, until)
        self.seconds = CHECK_TIMEOUT if left is None else max(MIN_BUDGET, min(CHECK_TIMEOUT, left))
        self.cut = False
        self._lock = threading.Lock()
        self._duplicates: list[socket.socket] = []
        self._timer = threading.Timer(self.seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()
        self._unsubscribe = token.on_cancel(self._cut)

    def watch(self, fileno: int) -> None:
        """Shut the socket FILENO down at the budget's end (a duplicate: the driver may close its own)."""
        try:
            duplicate = socket.socket(fileno=os.dup(fileno))
        except OSError:
            return
        with self._lock:
            self._duplicates.append(duplicate)
            cut = self.cut
        if cut:
            self._shut(duplicate)

    def _cut(self) -> None:
        with self._lock:
            self.cut = True
            duplicates = list(self._duplicates)
        for duplicate in duplicates:
            self._shut(duplicate)

    @staticmethod
    def _shut(duplicate: socket.socket) -> None:
        with contextlib.suppress(OSError):  # closed by the peer meanwhile
            duplicate.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        self._unsubscribe()
        with self._lock:
            duplicates, self._duplicates = self._duplicates, []
        for duplicate in duplicates:
            duplicate.close()

    def __enter__(self) -> Budget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def timed_out(self) -> NotReady:
        return NotReady(f"no complete answer within {self.seconds:.1f} s")


class AnswerTooLong(ConnectionError):
    pass


class CappedSocket(socket.socket):
    """A socket that refuses to receive more than ANSWER_LIMIT bytes in all (a flooding server):
    the driver sees a connection error instead of growing its buffer."""

    received = 0

    @classmethod
    def adopt(cls, sock: socket.socket) -> CappedSocket:
        timeout = sock.gettimeout()
        capped = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        capped.settimeout(timeout)
        return capped

    def _count(self, n: int) -> int:
        self.received += n
        if self.received > ANSWER_LIMIT:
            raise AnswerTooLong(f"the server sent more than {ANSWER_LIMIT >> 20} MiB")
        return n

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        self._count(len(data))
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return self._count(super().recv_into(buffer, nbytes, flags))


def connect(db: DbUrl, budget: Budget) -> CappedSocket:
    """A TCP connection to DB's host within the budget, watched by it and capped."""
    try:
        sock = socket.create_connection((db.host, db.port), timeout=budget.seconds)
    except socket.gaierror as exc:
        raise NotReady(f"cannot resolve {db.host}: {exc.strerror}") from None
    except TimeoutError:
        raise NotReady("connect timed out") from None
    except OSError as exc:
        raise NotReady((exc.strerror or str(exc)).lower()) from None
    capped = CappedSocket.adopt(sock)
    budget.watch(capped.fileno())
    return capped
