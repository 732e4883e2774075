"""wait-for's database targets against real servers: PostgreSQL, MariaDB and Redis from Debian's packages."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import initkit_command
from tests.dbservers import Postgres
from tests.servers import free_port


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.remove()


@pytest.fixture
def pg_up(pg: Postgres) -> Iterator[Postgres]:
    pg.standby(False)
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import trustme

    root = tmp_path_factory.mktemp("certs")
    root.chmod(0o755)  # the servers (postgres) read their key from a copy; the CA stays readable
    ca = trustme.CA()
    server = ca.issue_cert("db.test", "127.0.0.1")
    names = {"ca": "ca.pem", "cert": "server.pem", "key": "server.key", "other": "other.pem"}
    paths = {key: root / name for key, name in names.items()}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server.private_key_pem.write_to_path(str(paths["key"]))
    trustme.CA().cert_pem.write_to_path(str(paths["other"]))
    return paths


def secret(tmp_path: Path, value: str, name: str = "pw") -> str:
    path = tmp_path / name
    path.write_text(value + "\n")
    return str(path)


def wait_for(*args: str) -> subprocess.Popen[str]:
    """wait-for in a child process, once its first line (the targets) is out."""
    proc = subprocess.Popen(initkit_command("wait-for", *args), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    assert "waiting for" in proc.stderr.readline()
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_that_starts_later_is_waited_for(pg):
    proc = wait_for(f"postgres://127.0.0.1:{pg.port}", "--interval", "100ms", "--timeout", "30s")
    try:
        pg.start()
        code, err = finish(proc)
    finally:
        pg.stop()
    assert code == 0, err
    assert "is ready" in err and "accepting connections" in err


def test_postgres_refused_is_named(run_cli):
    result = run_cli("wait-for", f"postgres://127.0.0.1:{free_port()}", "--timeout", "1s", "--interval", "200ms")
    assert result.code == 1
    assert "(connection refused)" in result.lines[-1]


def test_postgres_standby_in_recovery_is_not_ready_until_promoted(run_cli, pg, tmp_path):
    """pg_isready semantics: a server in recovery rejects connections (57P03); promoted, it is ready."""
    pg.standby(True)
    pg.start("hot_standby=off", wait_for="entering standby mode")
    try:
        target = f"postgres://127.0.0.1:{pg.port}"
        result = run_cli("wait-for", target, "--timeout", "1s", "--interval", "200ms")
        assert result.code == 1
        assert "rejects connections (starting up, shutting down or in recovery)" in result.lines[-1]
        with_login = f"postgres://app@127.0.0.1:{pg.port}/appdb?password_file={secret(tmp_path, pg.password)}"
        result = run_cli("wait-for", with_login, "--timeout", "1s", "--interval", "200ms")
        assert result.code == 1
        assert "the database system is not accepting connections" in result.lines[-1]
        assert "configuration error" not in result.stderr
        proc = wait_for(target, with_login, "--interval", "100ms", "--timeout", "30s")
        pg.promote()
        code, err = finish(proc)
        assert code == 0, err
    finally:
        pg.stop()
        pg.standby(False)


def test_postgres_login_select_and_expectations(run_cli, pg_up, tmp_path):
    target = f"postgres://app@127.0.0.1:{pg_up.port}/appdb?password_file={secret(tmp_path, pg_up.password)}"
    result = run_cli("wait-for", target, "--timeout", "5s")
    assert result.code == 0, result.stderr
    assert "logged in, SELECT 1" in result.stderr
    expecting = target + "#table=schema_migrations&query=SELECT%201%20FROM%20schema_migrations%20WHERE%20v%3D2"
    result = run_cli("wait-for", expecting, "--timeout", "1s", "--interval", "200ms")
    assert result.code == 1
    assert "(no table schema_migrations)" in result.lines[-1]
    pg_up.psql_app("CREATE TABLE schema_migrations (v int); ALTER TABLE schema_migrations OWNER TO app")
    result = run_cli("wait-for", expecting, "--timeout", "1s", "--interval", "200ms")
    assert result.code == 1
    assert "query returned no row: SELECT 1 FROM schema_migrations WHERE v=2" in result.lines[-1]
    pg_up.psql_app("INSERT INTO schema_migrations VALUES (2)")
    result = run_cli("wait-for", expecting, "--timeout", "5s")
    assert result.code == 0, result.stderr
    assert "2 expectations met" in result.stderr


@pytest.mark.parametrize(
    ("path", "password", "reason"),
    [
        ("/appdb", "wrong-password-123", 'configuration error: password authentication failed for user "app"'),
        ("/nosuchdb", None, 'configuration error: database "nosuchdb" does not exist'),
    ],
)
def test_postgres_wrong_password_or_database_is_a_configuration_error(run_cli, pg_up, tmp_path, path, password, reason):
    pw = secret(tmp_path, password or pg_up.password)
    result = run_cli("wait-for", f"postgres://app@127.0.0.1:{pg_up.port}{path}?password_file={pw}", "--timeout", "1s")
    assert result.code == 1
    assert reason in result.lines[-1]
    assert len(result.lines) == 2  # the waiting line, the timeout line
    assert (password or pg_up.password) not in result.stderr


def test_postgres_over_tls_checks_the_certificate(run_cli, pg, certs, tmp_path):
    pg.tls(certs["cert"], certs["key"])
    pg.start("ssl=on")
    try:
        pw = secret(tmp_path, pg.password)
        base = f"postgres://app@127.0.0.1:{pg.port}/appdb?password_file={pw}"
        result = run_cli("wait-for", f"{base}&ca_file={certs['ca']}&server_name=db.test", "--timeout", "5s")
        assert result.code == 0, result.stderr
        result = run_cli("wait-for", f"postgres://127.0.0.1:{pg.port}?ca_file={certs['ca']}", "--timeout", "5s")
        assert result.code == 0, result.stderr
        result = run_cli("wait-for", f"{base}&ca_file={certs['other']}", "--timeout", "1s")
        assert result.code == 1
        assert "certificate verify failed" in result.lines[-1]
    finally:
        pg.stop()


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("postgres://app:hunter2@db/x", "name a file with password_file=PATH"),
        ("postgres://db/x?password_file=/nonexistent/pw", "password file /nonexistent/pw does not exist"),
        ("postgres://db/x?sslmode=disable", "unknown option 'sslmode'"),
        ("postgres://db/x?cert_file=/etc/hostname", "cert_file and key_file go together"),
        ("postgres://db/x#table=a;drop", "table='a;drop': expected NAME or SCHEMA.NAME"),
        ("postgres://db/x#rows=3", "unknown expectation 'rows'"),
        ("postgres://db:99999/x", "Port out of range"),
        ("redis://db/x", "a redis database is a number"),
        ("redis://db?role=replica", "the only value is role=master"),
        ("redis://db#table=x", "redis targets take no '#' expectations"),
        ("mysql://db/a/b", "at most one /DATABASE"),
        ("mysql://db?tls=off", "the only value is tls=verify"),
    ],
)
def test_malformed_database_targets_are_exit_2_at_once(run_cli, target, message):
    result = run_cli("wait-for", target, "--timeout", "1m")
    assert result.code == 2
    assert message in result.stderr
    assert "hunter2" not in result.stderr
    assert len(result.lines) == 1
