"""`mysql://[USER@]HOST[:PORT][/DB]` (MariaDB too): ready as `mysqladmin ping` reports, through PyMySQL.

Without a password or expectations: the server sends its handshake (an "access denied" after it
still means the server runs, as for mysqladmin). With them: a login, a ping and each
expectation. Access denied or an unknown database is said to be a configuration error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from initkit.probes import NotReady
from initkit.probes.db import AnswerTooLong, Budget, ConfigError, DbUrl, connect, one_line, parse_url

if TYPE_CHECKING:
    from initkit.cancel import Token

DEFAULT_PORT = 3306
# ER_DBACCESS_DENIED_ERROR, ER_ACCESS_DENIED_ERROR, ER_BAD_DB_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR,
# ER_TABLEACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_ACCOUNT_HAS_BEEN_LOCKED
CONFIG_ERRORS = {1044, 1045, 1049, 1698, 1142, 1227, 3118, 4151}


class MysqlProbe:
    def __init__(self, label: str, db: DbUrl, deadline: float | None = None) -> None:
        self.label = label
        self.db = db
        self.deadline = deadline

    @classmethod
    def parse(cls, target: str, deadline: float | None = None) -> MysqlProbe:
        return cls(target, parse_url(target, default_port=DEFAULT_PORT, sql=True), deadline)

    def check(self, token: Token | None = None) -> str:
        from initkit import cancel

        token = token or cancel.current()
        try:
            import pymysql
        except ImportError as exc:
            raise NotReady(f"this image cannot check mysql:// targets ({exc})") from None
        with Budget(token, self.deadline) as budget:
            conn = self._connection(pymysql, budget)
            try:
                return self._check(pymysql, conn, budget)
            finally:
                if conn.open:
                    conn._force_close()  # no COM_QUIT: its socket may be shut down already

    def _connection(self, pymysql: Any, budget: Budget) -> Any:
        db = self.db
        return pymysql.connections.Connection(
            host=db.tls.server_name if db.tls and db.tls.server_name else db.host,  # the name TLS checks
            port=db.port,
            user=db.user or "",
            password=db.password or "",
            database=db.database,
            connect_timeout=budget.seconds,
            read_timeout=budget.seconds,
            write_timeout=budget.seconds,
            ssl=db.tls.context() if db.tls else None,
            program_name="initkit",
            defer_connect=True,
        )

    def _check(self, pymysql: Any, conn: Any, budget: Budget) -> str:
        err = pymysql.err
        try:
            conn.connect(sock=connect(self.db, budget))
        except err.OperationalError as exc:
            code, message = (*exc.args, 0, "")[:2]
            handshake = getattr(conn, "server_version", None) is not None
            if budget.cut:
                raise budget.timed_out() from None
            if handshake and not self.db.login and isinstance(code, int) and code < 2000:
                return f"server {one_line(conn.server_version, 60)} answers ({one_line(str(message), 100)})"
            if code in CONFIG_ERRORS:
                raise ConfigError(one_line(str(message))) from None
            raise NotReady(one_line(str(message) or str(exc))) from None
        except AnswerTooLong as exc:
            raise NotReady(str(exc)) from None
        except (err.MySQLError, ValueError, IndexError, KeyError, UnicodeError, OSError) as exc:
            # garbage where a handshake should be (PyMySQL's parser raises what it meets)
            if budget.cut:
                raise budget.timed_out() from None
            raise NotReady(f"not a MySQL answer ({type(exc).__name__}: {one_line(str(exc), 100)})") from None
        version = one_line(conn.get_server_info(), 60)
        if not self.db.login:
            return f"server {version} answers"
        try:
            conn.ping(reconnect=False)
            with conn.cursor() as cursor:
                for table in self.db.tables:
                    schema, _, name = table.rpartition(".")
                    cursor.execute(
                        "SELECT 1 FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) "
                        "AND table_name = %s",
                        (schema or None, name),
                    )
                    if cursor.fetchone() is None:
                        raise NotReady(f"no table {table}")
                for query in self.db.queries:
                    cursor.execute(query)
                    if cursor.fetchone() is None:
                        raise NotReady(f"query returned no row: {one_line(query, 80)}")
        except (err.MySQLError, AnswerTooLong, OSError) as exc:
            if budget.cut:
                raise budget.timed_out() from None
            raise NotReady(f"query failed: {one_line(str(exc))}") from None
        checked = len(self.db.tables) + len(self.db.queries)
        met = f", {checked} expectation{'s' * (checked > 1)} met" if checked else ""
        return f"logged in to {version}, ping{met}"
