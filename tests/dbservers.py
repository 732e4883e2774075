"""Real database servers for the wait-for tests: PostgreSQL, MariaDB and Redis from Debian's packages.

Each runs on loopback, on a free port, from a data directory made for it, and is
waited for by its own log line (never a pause). PostgreSQL and MariaDB refuse to
run as root: PostgreSQL runs as the `postgres` user (runuser), MariaDB with
`--user=root` explicitly allowed. Nothing listens on a Unix socket another
process could share.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import requirement, wait_until
from tests.servers import free_port

PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), "/usr/lib/postgresql/15/bin")
PG_FIX = "apt-get install postgresql (see .ci/setup.sh)"


def _log_has(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


class Postgres:
    """A PostgreSQL cluster made once (initdb) and started / stopped as a test needs.

    The user `app` (password in `password`) owns the database `appdb`; `postgres` may log in
    without one (trust), so tests can run SQL through psql."""

    password = "s3cret-pg-pass"

    def __init__(self) -> None:
        requirement.path(f"{PG_BIN}/initdb", PG_FIX)
        requirement.root("PostgreSQL runs as the postgres user")
        self.root = Path(tempfile.mkdtemp(prefix="initkit-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        pwfile = self.root / "pw"
        pwfile.write_text("postgres-bootstrap\n")
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
        self._as_postgres(
            f"{PG_BIN}/initdb", "-D", str(self.data), "-U", "postgres", "--auth-host=trust", "-A", "trust"
        )
        hba = self.data / "pg_hba.conf"
        # app and nobody log in with a password (scram); postgres is trusted (the tests' own psql)
        hba.write_text(
            "host all postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        self.start()
        self.psql(f"CREATE ROLE app LOGIN PASSWORD '{self.password}'")
        self.psql("CREATE DATABASE appdb OWNER app")
        self.stop()

    def _as_postgres(self, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, text=True, **kw
        )

    def start(self, *settings: str, wait_for: str = "database system is ready to accept connections") -> None:
        """Start postgres with -c SETTINGS; wait for WAIT_FOR in its log (empty: do not wait)."""
        self.log.write_text("")
        shutil.chown(self.log, "postgres", "postgres")
        argv = [f"{PG_BIN}/postgres", "-D", str(self.data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
        argv += ["-c", "unix_socket_directories=", "-c", "logging_collector=off"]
        for setting in settings:
            argv += ["-c", setting]
        log = open(self.log, "ab")  # noqa: SIM115 (the child holds it)
        self.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", *argv], stdout=log, stderr=log)
        log.close()
        if wait_for:
            self.wait_log(wait_for)

    def wait_log(self, text: str, timeout: float = 30) -> None:
        wait_until(lambda: _log_has(self.log, text) or (self.proc and self.proc.poll() is not None), timeout, text)
        if not _log_has(self.log, text):
            raise RuntimeError(f"postgres ended: {self.log.read_text()[-2000:]}")

    def psql(self, sql: str) -> str:
        argv = [f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        return self._as_postgres(*argv, "-X", "-q", "-A", "-t", "-c", sql, cwd="/").stdout

    def psql_app(self, sql: str) -> str:
        argv = [f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "appdb"]
        return self._as_postgres(*argv, "-X", "-q", "-A", "-t", "-c", sql, cwd="/").stdout

    def standby(self, on: bool) -> None:
        """With standby.signal the next start is a standby in recovery (with hot_standby off: 57P03)."""
        signal_file = self.data / "standby.signal"
        if on:
            signal_file.write_text("")
            shutil.chown(signal_file, "postgres", "postgres")
        else:
            signal_file.unlink(missing_ok=True)

    def promote(self) -> None:
        self._as_postgres(f"{PG_BIN}/pg_ctl", "promote", "-D", str(self.data), cwd="/")

    def tls(self, cert_pem: Path, key_pem: Path) -> None:
        """Serve TLS with this certificate (ssl=on from the next start)."""
        for name, source in (("server.crt", cert_pem), ("server.key", key_pem)):
            dest = self.data / name
            shutil.copyfile(source, dest)
            dest.chmod(0o600)
            shutil.chown(dest, "postgres", "postgres")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # runuser forwards SIGTERM; postgres's "smart" shutdown would wait for clients: fast (SIGINT)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.postmaster_pid(), signal.SIGINT)
            self.proc.wait(30)
        self.proc = None

    def postmaster_pid(self) -> int:
        text = (self.data / "postmaster.pid").read_text()
        return int(text.split()[0])

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """redis-server on a free loopback port, no persistence unless asked, in its own directory."""

    password = "s3cret-redis-pass"

    def __init__(self, workdir: Path, *args: str, port: int | None = None, wait: bool = True) -> None:
        binary = requirement.tool("redis-server", "apt-get install redis-server (see .ci/setup.sh)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = workdir / "redis.log"
        self.log.write_text("")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir)]
        argv += ["--logfile", str(self.log), "--save", "", "--appendonly", "no", *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            self.wait_log("Ready to accept connections")

    def wait_log(self, text: str, timeout: float = 20) -> None:
        wait_until(lambda: _log_has(self.log, text) or self.proc.poll() is not None, timeout, text)
        if not _log_has(self.log, text):
            raise RuntimeError(f"redis-server ended: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


class MariaDb:
    """mariadbd with a data directory made once (mariadb-install-db); the user app (password in
    `password`) has the database appdb. Started with --user=root: the tests run as root."""

    password = "s3cret-maria-pass"

    def __init__(self, tls: tuple[Path, Path, Path] | None = None) -> None:
        """TLS: (CA, server certificate, key)."""
        install = requirement.tool("mariadb-install-db", "apt-get install mariadb-server (see .ci/setup.sh)")
        requirement.root("mariadbd runs as root here")
        self.root = Path(tempfile.mkdtemp(prefix="initkit-maria-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.data}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        init = self.root / "init.sql"
        init.write_text(
            f"CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '{self.password}';\n"
            "CREATE DATABASE IF NOT EXISTS appdb;\nGRANT ALL ON appdb.* TO 'app'@'%';\n"
            "CREATE TABLE IF NOT EXISTS appdb.seen (id INT);\n"
        )
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        argv = [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.data}", "--user=root", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--socket={self.root}/sock", f"--pid-file={self.root}/pid",
            f"--log-error={self.log}", f"--init-file={self.root}/init.sql", "--skip-name-resolve",
            "--innodb-buffer-pool-size=8M", "--performance-schema=off",
        ]  # fmt: skip
        if self.tls:
            ca, cert, key = self.tls
            argv += [f"--ssl-ca={ca}", f"--ssl-cert={cert}", f"--ssl-key={key}"]
        self.log.write_text("")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            self.wait_log("ready for connections")

    def wait_log(self, text: str, timeout: float = 60) -> None:
        wait_until(lambda: _log_has(self.log, text) or (self.proc and self.proc.poll() is not None), timeout, text)
        if not _log_has(self.log, text):
            raise RuntimeError(f"mariadbd ended: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
