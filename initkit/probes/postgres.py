"""`postgres://[USER@]HOST[:PORT][/DB]`: ready as PostgreSQL itself says, through libpq (psycopg).

Without a password or expectations, what `pg_isready` reports (libpq's PQping): the server
answers the startup with an authentication request or any error but "starting up", "shutting
down" or "in recovery" (57P03). With them, a login, `SELECT 1` and each expectation. A wrong
password, an unknown role or database is said to be a configuration error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from initkit.probes import NotReady
from initkit.probes.db import Budget, ConfigError, DbUrl, one_line, parse_url

if TYPE_CHECKING:
    from initkit.cancel import Token

DEFAULT_PORT = 5432
# libpq's own minimum: a connect_timeout of 1 is taken as 2
MIN_CONNECT_TIMEOUT = 2
_CONFIG = (
    "password authentication failed",
    "no password supplied",
    "does not exist",  # database "x", role "x"
    "no pg_hba.conf entry",
    "permission denied",
    "authentication failed",
    "certificate",  # a client certificate the server refuses
)


class PostgresProbe:
    def __init__(self, label: str, db: DbUrl, deadline: float | None = None) -> None:
        self.label = label
        self.db = db
        self.deadline = deadline

    @classmethod
    def parse(cls, target: str, deadline: float | None = None) -> PostgresProbe:
        return cls(target, parse_url(target, default_port=DEFAULT_PORT, sql=True), deadline)

    def conninfo(self, seconds: float, *, password: bool) -> str:
        """libpq's connection string; every setting explicit, so no PG* environment variable or
        ~/.pgpass changes what is checked."""
        from psycopg.conninfo import make_conninfo

        db = self.db
        params: dict[str, Any] = {
            "host": db.host,
            "port": db.port,
            "dbname": db.database or db.user or "postgres",
            "user": db.user or "postgres",
            "connect_timeout": max(MIN_CONNECT_TIMEOUT, int(seconds + 0.999)),
            "application_name": "initkit",
            "gssencmode": "disable",  # no Kerberos lookup before the startup packet
        }
        if password and db.password is not None:
            params["password"] = db.password
        if db.tls is None:
            params["sslmode"] = "disable"
        else:
            params.update(sslmode="verify-full", sslrootcert=db.tls.ca_bundle)
            if db.tls.cert_file:
                params.update(sslcert=db.tls.cert_file, sslkey=db.tls.key_file)
            if db.tls.server_name:
                params.update(host=db.tls.server_name, hostaddr=_address(db.host))
        return str(make_conninfo(**params))

    def check(self, token: Token | None = None) -> str:
        from initkit import cancel

        token = token or cancel.current()
        try:
            import psycopg
        except ImportError as exc:
            raise NotReady(f"this image cannot check postgres:// targets ({exc})") from None
        with Budget(token, self.deadline) as budget:
            if not self.db.login:
                return self._ping(budget, token)
            return self._login(psycopg, budget, token)

    def _ping(self, budget: Budget, token: Token) -> str:
        """pg_isready: an authentication request or any server error but 57P03 means the server runs."""
        try:
            pgconn = _open(self.conninfo(budget.seconds, password=False), budget, token)
        except _Failed as failed:
            reason = _reason(failed.message)
            if "no password supplied" in failed.message:
                return "accepting connections (it asks for a password)"
            if "FATAL:" in failed.message and not _starting(reason):
                return f"accepting connections ({str(reason).removeprefix('configuration error: ')})"
            raise reason from None
        pgconn.finish()
        return "accepting connections"

    def _login(self, psycopg: Any, budget: Budget, token: Token) -> str:
        try:
            pgconn = _open(self.conninfo(budget.seconds, password=True), budget, token)
        except _Failed as failed:
            raise _reason(failed.message) from None
        pgconn.nonblocking = 1
        conn = psycopg.Connection(pgconn)
        conn.autocommit = True
        try:
            budget.watch(pgconn.socket)
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                for table in self.db.tables:
                    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                    row = cursor.fetchone()
                    if not row or not row[0]:
                        raise NotReady(f"no table {table}")
                for query in self.db.queries:
                    cursor.execute(query)
                    if cursor.description is None or cursor.fetchone() is None:
                        raise NotReady(f"query returned no row: {one_line(query, 80)}")
        except psycopg.Error as exc:
            if budget.cut:
                raise budget.timed_out() from None
            raise NotReady(f"query failed: {one_line(str(exc))}") from None
        finally:
            conn.close()
        checked = len(self.db.tables) + len(self.db.queries)
        return "logged in, SELECT 1" + (f", {checked} expectation{'s' * (checked > 1)} met" if checked else "")


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _open(conninfo: str, budget: Budget, token: Token) -> Any:
    """libpq's non-blocking connect (PQconnectStart/Poll), waited for on its socket and the token:
    it ends at the budget's end however the server drips (libpq's connect_timeout is 2 s at least),
    and at once when the run is cancelled."""
    import select
    import time

    from psycopg import pq

    deadline = time.monotonic() + budget.seconds
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        while True:
            if pgconn.status == pq.ConnStatus.BAD:
                raise _Failed(pgconn.error_message.decode(errors="replace"))
            status = pgconn.connect_poll()
            if status == pq.PollingStatus.OK:
                return pgconn
            if status == pq.PollingStatus.FAILED:
                raise _Failed(pgconn.error_message.decode(errors="replace"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise budget.timed_out()
            cancelled = token.fileno()
            if status == pq.PollingStatus.READING:
                select.select([pgconn.socket, cancelled], [], [], left)
            else:
                select.select([cancelled], [pgconn.socket], [], left)
            token.check()
    except BaseException:
        pgconn.finish()
        raise


def _starting(reason: NotReady) -> bool:
    lowered = str(reason).lower()
    return any(text in lowered for text in ("starting up", "shutting down", "recovery", "not accepting", "not yet"))


def _reason(message: str) -> NotReady:
    """libpq's 'connection failed: connection to server at "h", port p failed: FATAL:  why' as why."""
    text = message.rsplit(" failed: ", 1)[-1]
    text = one_line(text.replace("FATAL:", "").replace("DETAIL:", "-"))
    lowered = text.lower()
    if _starting(NotReady(text)):
        return NotReady(text)
    if any(marker in lowered for marker in _CONFIG):
        return ConfigError(text)
    return NotReady(text)


def _address(host: str) -> str:
    """HOST as an address, for libpq's hostaddr (server_name then names the certificate)."""
    import socket

    try:
        return str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0])
    except OSError as exc:
        raise NotReady(f"cannot resolve {host}: {exc.strerror or exc}") from None
