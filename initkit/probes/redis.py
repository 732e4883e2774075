"""`redis://[USER@]HOST[:PORT][/DB]`, `rediss://...` (TLS): ready when PING answers PONG (redis-py).

LOADING (reading its dataset) and MASTERDOWN (a replica that serves no stale data) are not
ready. Without a password, a server that asks for one (NOAUTH) answers, so it runs, as for
`pg_isready`; with one, AUTH (ACL: USER@ too) must pass, and a refused login is a configuration
error. `?role=master` also asks INFO replication for role:master (not a replica).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from initkit.errors import BadInput
from initkit.probes import NotReady
from initkit.probes.db import AnswerTooLong, Budget, CappedSocket, ConfigError, DbUrl, one_line, parse_url
from initkit.urls import shown

if TYPE_CHECKING:
    from initkit.cancel import Token

DEFAULT_PORT = 6379


class RedisProbe:
    def __init__(self, label: str, db: DbUrl, index: int, role: str | None, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.label = label
        self.db = db
        self.index = index
        self.role = role

    @classmethod
    def parse(cls, target: str, deadline: float | None = None) -> RedisProbe:
        db = parse_url(target, default_port=DEFAULT_PORT, extra_keys=("role",), tls_schemes=("rediss",))
        index = db.database or "0"
        if not index.isascii() or not index.isdigit() or len(index) > 5:
            raise BadInput(f"malformed target {shown(target)!r}: /{index}: a redis database is a number (/0, /1, ...)")
        if db.tls and db.tls.server_name:
            raise BadInput(
                f"malformed target {shown(target)!r}: redis targets take no server_name (redis-py checks the "
                "certificate against HOST): give the certificate's name as HOST"
            )
        role = db.options.get("role")
        if role not in (None, "master"):
            raise BadInput(f"malformed target {shown(target)!r}: role={role!r}: the only value is role=master")
        return cls(target, db, int(index), role, deadline)

    def check(self, token: Token | None = None) -> str:
        from initkit import cancel

        token = token or cancel.current()
        try:
            import redis
        except ImportError as exc:
            raise NotReady(f"this image cannot check redis:// targets ({exc})") from None
        with Budget(token, self.deadline) as budget:
            conn = self._connection(redis, budget)
            try:
                return self._check(redis, conn, budget)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, AnswerTooLong, OSError) as exc:
                if budget.cut:
                    raise budget.timed_out() from None
                raise NotReady(_connection_reason(exc)) from None
            except redis.exceptions.RedisError as exc:  # garbage: an answer redis-py cannot parse
                raise NotReady(f"not a Redis answer ({one_line(str(exc), 120)})") from None
            finally:
                conn.disconnect()

    def _connection(self, redis: Any, budget: Budget) -> Any:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        class Capped(redis.connection.Connection):  # type: ignore[misc, name-defined]
            """Its socket is watched by the budget and capped (under TLS: watched only)."""

            def _connect(self) -> Any:
                sock = CappedSocket.adopt(super()._connect())
                budget.watch(sock.fileno())
                return sock

        class CappedTls(redis.connection.SSLConnection, Capped):  # type: ignore[misc, name-defined]
            pass

        db, tls = self.db, self.db.tls
        kwargs: dict[str, Any] = {
            "host": db.host,
            "port": db.port,
            "db": self.index,
            "username": db.user,
            "password": db.password,
            "socket_timeout": budget.seconds,
            "socket_connect_timeout": budget.seconds,
            "retry": Retry(NoBackoff(), 0),
            "lib_name": None,
            "lib_version": None,
        }
        if tls is None:
            return Capped(**kwargs)
        return CappedTls(
            **kwargs,
            ssl_cert_reqs="required",
            ssl_ca_certs=tls.ca_file,
            ssl_certfile=tls.cert_file,
            ssl_keyfile=tls.key_file,
            ssl_check_hostname=True,
        )

    def _check(self, redis: Any, conn: Any, budget: Budget) -> str:
        exceptions = redis.exceptions
        try:
            conn.connect()  # AUTH and SELECT, when asked for
            conn.send_command("PING")
            answer = conn.read_response()
        except exceptions.BusyLoadingError:
            raise NotReady("LOADING: the server is loading its dataset") from None
        except exceptions.AuthenticationError as exc:
            if self.db.password is None and not self.role and "required" in str(exc).lower():
                return "answers (it requires AUTH)"
            raise ConfigError(f"login refused: {one_line(str(exc), 120)}") from None
        except exceptions.MasterDownError as exc:
            raise NotReady(f"MASTERDOWN: {one_line(str(exc), 160)}") from None
        except exceptions.ResponseError as exc:
            text = one_line(str(exc), 160)
            if "password" in text.lower() or text.startswith(("WRONGPASS", "NOPERM", "ERR DB index")):
                raise ConfigError(text) from None
            raise NotReady(text) from None
        if answer not in (b"PONG", "PONG"):
            raise NotReady(f"PING answered {one_line(repr(answer), 80)}, not PONG")
        if self.role == "master":
            conn.send_command("INFO", "replication")
            info = conn.read_response()
            text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
            role = next((line[5:].strip() for line in text.splitlines() if line.startswith("role:")), "")
            if role != "master":
                raise NotReady(f"role is {one_line(role, 40) or 'unknown'}, expected master")
            return "PONG, role:master"
        return "PONG"


def _connection_reason(exc: BaseException) -> str:
    """redis-py's 'Error 111 connecting to h:p. Connection refused.' as 'connection refused'."""
    text = one_line(str(exc), 200)
    lowered = text.lower()
    for marker, reason in (
        ("connection refused", "connection refused"),
        ("timeout connecting", "connect timed out"),
        ("timed out", "no complete answer in time"),
        ("closed by server", "connection closed by the server"),
    ):
        if marker in lowered:
            return reason
    return text
