"""wait-for's database targets against real servers: PostgreSQL, MariaDB and Redis from Debian's packages."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import initkit_command
from tests.dbservers import MariaDb, Postgres, Redis
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
    # 3 s: the first check imports psycopg, which takes over a second on a loaded 2-core machine
    result = run_cli("wait-for", f"postgres://127.0.0.1:{free_port()}", "--timeout", "3s", "--interval", "200ms")
    assert result.code == 1
    assert "(Connection refused Is the server running on that host" in result.lines[-1]


def test_postgres_standby_in_recovery_is_not_ready_until_promoted(run_cli, pg, tmp_path):
    """pg_isready semantics: a server in recovery rejects connections (57P03); promoted, it is ready."""
    pg.standby(True)
    pg.start("hot_standby=off", wait_for="entering standby mode")
    try:
        target = f"postgres://127.0.0.1:{pg.port}"
        result = run_cli("wait-for", target, "--timeout", "1s", "--interval", "200ms")
        assert result.code == 1
        assert "(the database system is not accepting connections - Hot standby mode is disabled.)" in result.lines[-1]
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


# --- MariaDB (mysql://) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def maria(certs: dict[str, Path]) -> Iterator[MariaDb]:
    server = MariaDb(tls=(certs["ca"], certs["cert"], certs["key"]))
    yield server
    server.remove()


@pytest.fixture(scope="module")
def maria_up(maria: MariaDb) -> Iterator[MariaDb]:
    maria.start()
    yield maria
    maria.stop()


def test_mariadb_that_starts_later_is_waited_for(maria):
    proc = wait_for(f"mysql://127.0.0.1:{maria.port}", "--interval", "100ms", "--timeout", "60s")
    try:
        maria.start(wait=False)
        code, err = finish(proc)
    finally:
        maria.wait_log("ready for connections")
        maria.stop()
    assert code == 0, err
    assert "answers" in err


def test_mariadb_login_ping_and_expectations(run_cli, maria_up, tmp_path):
    pw = secret(tmp_path, maria_up.password)
    target = f"mysql://app@127.0.0.1:{maria_up.port}/appdb?password_file={pw}"
    result = run_cli("wait-for", target + "#table=seen&query=SELECT%201", "--timeout", "5s")
    assert result.code == 0, result.stderr
    assert "2 expectations met" in result.stderr
    result = run_cli("wait-for", target + "#table=schema_migrations", "--timeout", "1s", "--interval", "200ms")
    assert result.code == 1
    assert "(no table schema_migrations)" in result.lines[-1]


@pytest.mark.parametrize(
    ("path", "password", "reason"),
    [
        ("/appdb", "wrong-password-123", "configuration error: Access denied for user 'app'@"),
        ("/nosuchdb", None, "configuration error: Access denied for user 'app'@'%' to database 'nosuchdb'"),
    ],
)
def test_mariadb_wrong_password_or_database_is_a_configuration_error(
    run_cli, maria_up, tmp_path, path, password, reason
):
    pw = secret(tmp_path, password or maria_up.password)
    target = f"mysql://app@127.0.0.1:{maria_up.port}{path}?password_file={pw}"
    result = run_cli("wait-for", target, "--timeout", "1s")
    assert result.code == 1
    assert reason in result.lines[-1]
    assert (password or maria_up.password) not in result.stderr


def test_mariadb_over_tls_checks_the_certificate(run_cli, maria_up, certs, tmp_path):
    pw = secret(tmp_path, maria_up.password)
    base = f"mysql://app@127.0.0.1:{maria_up.port}/appdb?password_file={pw}"
    result = run_cli("wait-for", f"{base}&ca_file={certs['ca']}&server_name=db.test", "--timeout", "5s")
    assert result.code == 0, result.stderr
    result = run_cli("wait-for", f"{base}&ca_file={certs['other']}", "--timeout", "1s")
    assert result.code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.lines[-1] or "certificate verify failed" in result.lines[-1]


# --- Redis ----------------------------------------------------------------------------------------


def test_redis_that_starts_later_is_waited_for(tmp_path):
    port = free_port()
    proc = wait_for(f"redis://127.0.0.1:{port}", "--interval", "100ms", "--timeout", "30s")
    server = Redis(tmp_path / "redis", port=port)
    try:
        code, err = finish(proc)
    finally:
        server.stop()
    assert code == 0, err
    assert "(PONG)" in err


def test_redis_loading_its_dataset_is_not_ready(run_cli, tmp_path):
    """A real LOADING: an RDB of 1000 keys, each loaded 3 ms apart (key-load-delay), events between them."""
    import redis

    work = tmp_path / "redis"
    seed = Redis(work, "--dbfilename", "dump.rdb")
    client = redis.Redis(port=seed.port)
    client.mset({f"key{i}": "x" * 1024 for i in range(1000)})
    client.save()
    client.close()
    seed.stop()
    slow = ("--dbfilename", "dump.rdb", "--key-load-delay", "3000", "--loading-process-events-interval-bytes", "1024")
    server = Redis(work, *slow, port=seed.port, wait=False)
    try:
        server.wait_log("Loading RDB")
        result = run_cli("wait-for", f"redis://127.0.0.1:{server.port}", "--timeout", "500ms", "--interval", "100ms")
        assert result.code == 1
        assert "LOADING: the server is loading its dataset" in result.lines[-1]
        result = run_cli("wait-for", f"redis://127.0.0.1:{server.port}", "--timeout", "60s", "--interval", "100ms")
        assert result.code == 0, result.stderr
        assert "DB loaded from disk" in server.log.read_text()
    finally:
        server.stop()


def test_redis_replica_with_its_master_down_and_role_master(run_cli, tmp_path):
    down = free_port()
    replica = Redis(tmp_path / "replica", "--replicaof", "127.0.0.1", str(down), "--replica-serve-stale-data", "no")
    try:
        result = run_cli("wait-for", f"redis://127.0.0.1:{replica.port}", "--timeout", "3s")  # a loaded machine
        assert result.code == 1
        assert "(MASTERDOWN: Link with MASTER is down" in result.lines[-1]
    finally:
        replica.stop()
    stale = Redis(tmp_path / "stale", "--replicaof", "127.0.0.1", str(down))
    try:
        assert run_cli("wait-for", f"redis://127.0.0.1:{stale.port}", "--timeout", "5s").code == 0
        result = run_cli("wait-for", f"redis://127.0.0.1:{stale.port}?role=master", "--timeout", "3s")
        assert result.code == 1
        assert "(role is slave, expected master)" in result.lines[-1]
    finally:
        stale.stop()


def test_redis_passwords_and_acl_users(run_cli, tmp_path):
    server = Redis(
        tmp_path / "redis", "--requirepass", Redis.password, "--user", "app", "on", ">app-pass-123", "~*", "+@all"
    )
    try:
        plain = f"redis://127.0.0.1:{server.port}"
        result = run_cli("wait-for", plain, "--timeout", "5s")
        assert result.code == 0, result.stderr
        assert "answers (it requires AUTH)" in result.stderr
        good = f"{plain}/0?password_file={secret(tmp_path, Redis.password)}&role=master"
        result = run_cli("wait-for", good, "--timeout", "5s")
        assert result.code == 0, result.stderr
        assert "PONG, role:master" in result.stderr
        acl = f"redis://app@127.0.0.1:{server.port}?password_file={secret(tmp_path, 'app-pass-123', 'app')}"
        assert run_cli("wait-for", acl, "--timeout", "5s").code == 0
        wrong = f"{plain}?password_file={secret(tmp_path, 'wrong-pass-456', 'bad')}"
        result = run_cli("wait-for", wrong, "--timeout", "1s")
        assert result.code == 1
        assert "(configuration error: login refused: " in result.lines[-1]
        assert "wrong-pass-456" not in result.stderr
    finally:
        server.stop()


def test_rediss_checks_the_certificate(run_cli, tmp_path, certs):
    port = free_port()
    tls = ("--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs["cert"]))
    tls += ("--tls-key-file", str(certs["key"]), "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no")
    server = Redis(tmp_path / "redis", *tls, port=port)
    try:
        result = run_cli("wait-for", f"rediss://127.0.0.1:{port}?ca_file={certs['ca']}", "--timeout", "5s")
        assert result.code == 0, result.stderr
        result = run_cli("wait-for", f"rediss://127.0.0.1:{port}?ca_file={certs['other']}", "--timeout", "1s")
        assert result.code == 1
        assert "certificate verify failed" in result.lines[-1].lower()
    finally:
        server.stop()


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


# --- the README's examples, run -------------------------------------------------------------------


def _readme_examples() -> list[str]:
    import re

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("\n#### Databases\n")
    (block,) = re.findall(r"```sh\n(.*?)```", text[start : text.index("\n### ", start)], re.DOTALL)
    return block.splitlines()


def test_readme_examples_run_against_real_servers(run_cli, pg_up, maria_up, certs, tmp_path):
    """Every line of the README's database block, its hosts, secrets and CA mapped to loopback servers."""
    import re
    import shlex

    plain, tls = free_port(), free_port()
    redis_tls = ("--tls-port", str(tls), "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]))
    redis_tls += ("--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no", "--requirepass", Redis.password)
    server = Redis(tmp_path / "redis", *redis_tls, port=plain)
    pg_up.psql_app("CREATE TABLE IF NOT EXISTS schema_migrations (v int); ALTER TABLE schema_migrations OWNER TO app")
    hosts = {
        ("postgres", "mydb"): pg_up.port,
        ("mysql", "mariadb"): maria_up.port,
        ("redis", "cache"): plain,
        ("rediss", "cache"): tls,
    }
    files = {
        "/secrets/pg/password": secret(tmp_path, pg_up.password, "pg"),
        "/secrets/mariadb/password": secret(tmp_path, maria_up.password, "maria"),
        "/secrets/redis/password": secret(tmp_path, Redis.password, "redis-pw"),
        "/certs/ca.crt": str(certs["ca"]),
    }

    def on_loopback(match: re.Match[str]) -> str:
        scheme, user, host = match.groups()
        return f"{scheme}://{user or ''}127.0.0.1:{hosts[scheme, host]}"

    lines = _readme_examples()
    assert len(lines) == 4
    try:
        for line in lines:
            argv = shlex.split(line)
            assert argv[:2] == ["initkit", "wait-for"]
            args = [re.sub(r"^(\w+)://(\w+@)?([a-z]+)", on_loopback, arg) for arg in argv[2:]]
            for path, real in files.items():
                args = [arg.replace(path, real) for arg in args]
            result = run_cli("wait-for", *args)
            assert result.code == 0, (line, result.stderr)
            assert "is ready" in result.stderr
    finally:
        server.stop()
