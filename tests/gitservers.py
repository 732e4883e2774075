"""Real git servers on 127.0.0.1 for the git-clone tests, and the repositories they serve.

- `git daemon` (git://),
- smart HTTP: `git http-backend` run as CGI by a small threaded HTTP server with
  Basic auth, which can throttle chosen repositories (to stop a clone mid-fetch),
- sshd with its own config, host key and authorized key.

Needs only git and openssh-server/openssh-client (Debian: git openssh-client openssh-server).
Import the fixtures into a test module: `from tests.gitservers import git_repos, ...`.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import missing

USERNAME = "alice"
PASSWORD = "pw-Zq8-very-secret-77"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str | Path, cwd: Path | None = None) -> str:
    """Run real git for the fixtures; returns stdout."""
    return subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, proc: subprocess.Popen | None = None, host: str = "127.0.0.1", timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.connect((host, port))
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {host}:{port}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- repositories -------------------------------------------------------------------


@dataclass
class Repos:
    root: Path  # every server serves this folder
    shas: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.root / name


def _commit(work: Path, files: dict[str, str | bytes], message: str) -> str:
    for name, content in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def served_repo(tmp_path: Path, files: dict[str, str | bytes], name: str = "site.git") -> Path:
    """One commit of `files`, as a bare repository NAME under a fresh folder to serve; returns the folder."""
    work, served = tmp_path / f"{name}-work", tmp_path / f"{name}-served"
    git("init", "-q", "-b", "main", work)
    _commit(work, files, "site")
    served.mkdir()
    git("clone", "-q", "--bare", work, served / name)
    return served


def make_repos(root: Path, work_root: Path, daemon_port: int, big_mb: int = 64) -> Repos:
    """main.git: c1 (tags v1, annotated, and light) <- c2 (main, HEAD); feature: c1 <- c3.
    other.git: an unrelated repository. sub.git, super.git (submodule over git://).
    big.git: big_mb MiB of incompressible blobs."""
    repos = Repos(root)
    work = work_root / "main"
    git("init", "-q", "-b", "main", work)
    repos.shas["c1"] = _commit(work, {"README.md": "# demo\n", "app/config.txt": "version=1\n"}, "c1")
    git("tag", "-a", "v1", "-m", "release 1", cwd=work)
    git("tag", "light", cwd=work)
    git("checkout", "-q", "-b", "feature", cwd=work)
    repos.shas["c3"] = _commit(work, {"feature.txt": "feature\n"}, "c3")
    git("checkout", "-q", "main", cwd=work)
    repos.shas["c2"] = _commit(work, {"app/config.txt": "version=2\n", "notes.txt": "two\n"}, "c2")
    git("clone", "-q", "--bare", work, root / "main.git")

    work = work_root / "other"
    git("init", "-q", "-b", "main", work)
    repos.shas["other"] = _commit(work, {"other.txt": "other\n"}, "other")
    git("clone", "-q", "--bare", work, root / "other.git")

    work = work_root / "sub"
    git("init", "-q", "-b", "main", work)
    repos.shas["sub"] = _commit(work, {"lib.txt": "library\n"}, "sub")
    git("clone", "-q", "--bare", work, root / "sub.git")

    work = work_root / "super"
    git("init", "-q", "-b", "main", work)
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", root / "sub.git", "vendor/sub", cwd=work)
    git("config", "-f", ".gitmodules", "submodule.vendor/sub.url", f"git://127.0.0.1:{daemon_port}/sub.git", cwd=work)
    repos.shas["super"] = _commit(work, {"top.txt": "top\n"}, "super")
    git("clone", "-q", "--bare", work, root / "super.git")

    big = root / "big.git"
    git("init", "-q", "--bare", "-b", "main", big)
    git("config", "core.bigFileThreshold", "128k", cwd=big)
    work = work_root / "big"
    work.mkdir()
    for i in range(big_mb):
        (work / f"blob{i:03}.bin").write_bytes(os.urandom(1 << 20))
    tree = ["--git-dir", big, "--work-tree", work]
    git(*tree, "add", "-A")
    git(*tree, "commit", "-q", "-m", "big")
    git("repack", "-q", "-a", "-d", "--window=0", cwd=big)
    repos.shas["big"] = git("rev-parse", "HEAD", cwd=big)
    return repos


# --- git daemon ---------------------------------------------------------------------


class GitDaemon:
    def __init__(self, root: Path, port: int | None = None, address: str = "127.0.0.1") -> None:
        self.root = root
        self.address = address
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> GitDaemon:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors",
             f"--base-path={self.root}", f"--listen={self.address}", f"--port={self.port}", str(self.root)],
            env={**os.environ, **_GIT_ENV},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.proc, self.address)
        return self

    def stop(self) -> None:
        if self.proc:
            _stop(self.proc)

    def url(self, name: str) -> str:
        return f"git://{self.address}:{self.port}/{name}"


# --- smart HTTP ---------------------------------------------------------------------


class _GitHandler(BaseHTTPRequestHandler):
    server: GitHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self.server.requests += 1
        self.server.seen.append(dict(self.headers.items()))
        if self.server.expected_auth and self.headers.get("Authorization") != self.server.expected_auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": USERNAME,
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        proc = subprocess.Popen(
            ["git", "http-backend"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        try:
            threading.Thread(target=self._feed, args=(proc, body), daemon=True).start()
            status, headers = 200, []
            while line := proc.stdout.readline().rstrip(b"\r\n"):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            rate = self.server.throttle_rate if any(n in path for n in self.server.throttled) else 0
            sent, started = 0, time.monotonic()
            while chunk := proc.stdout.read1(64 * 1024):
                self.wfile.write(chunk)
                sent += len(chunk)
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:  # the client went away (killed on purpose)
            pass
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()

    @staticmethod
    def _feed(proc: subprocess.Popen, body: bytes) -> None:
        with contextlib.suppress(OSError):
            proc.stdin.write(body)
            proc.stdin.close()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        root: Path,
        throttled: tuple[str, ...] = (),
        throttle_rate: int = 0,
        address: str = "127.0.0.1",
        open_access: bool = False,
    ) -> None:
        super().__init__((address, 0), _GitHandler)
        self.address = address
        self.root = root
        # open_access: serve anyone (the headers received are still recorded in `seen`)
        basic = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        self.expected_auth = None if open_access else basic
        self.seen: list[dict[str, str]] = []
        self.throttled = throttled
        self.throttle_rate = throttle_rate
        self.requests = 0
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks socket.getfqdn(), a PTR query that may leave the machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def start(self) -> GitHTTPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def url(self, name: str, credentials: str = "") -> str:
        return f"http://{credentials}{self.address}:{self.port}/{name}"


# --- sshd ---------------------------------------------------------------------------


@dataclass
class SSHServer:
    root: Path
    port: int
    key_file: Path
    known_hosts_file: Path
    proc: subprocess.Popen
    address: str = "127.0.0.1"

    def url(self, name: str) -> str:
        return f"ssh://root@{self.address}:{self.port}{self.root / name}"


def start_sshd(root: Path, conf: Path, address: str = "127.0.0.1") -> SSHServer:
    conf.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", conf / name], check=True)
    (conf / "client_key").chmod(0o600)
    shutil.copy(conf / "client_key.pub", conf / "authorized_keys")
    port = free_port()
    host_key = (conf / "host_key.pub").read_text().split()
    (conf / "known_hosts").write_text(f"[{address}]:{port} {host_key[0]} {host_key[1]}\n")
    (conf / "sshd_config").write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {conf / 'host_key'}\n"
        f"AuthorizedKeysFile {conf / 'authorized_keys'}\nPidFile {conf / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nAcceptEnv GIT_PROTOCOL\nLogLevel ERROR\n"
    )
    proc = subprocess.Popen(
        [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(conf / "sshd_config")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc, address)
    return SSHServer(root, port, conf / "client_key", conf / "known_hosts", proc, address)


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitDaemon]:
    daemon = GitDaemon(tmp_path_factory.mktemp("git-served")).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def git_repos(git_daemon: GitDaemon, tmp_path_factory: pytest.TempPathFactory) -> Repos:
    return make_repos(git_daemon.root, tmp_path_factory.mktemp("git-work"), git_daemon.port)


@pytest.fixture(scope="session")
def git_http(git_repos: Repos) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(git_repos.root, throttled=("/big.git/",), throttle_rate=20 << 20).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def git_sshd(git_repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    if not shutil.which("sshd") and not Path("/usr/sbin/sshd").exists():
        missing("sshd is not installed", "apt-get install openssh-server (.ci/setup.sh)")
    server = start_sshd(git_repos.root, tmp_path_factory.mktemp("sshd"))
    yield server
    _stop(server.proc)


# --- for git-sync's options (tests/commands/test_git_clone_sync.py) -----------------


class AskpassServer:
    """git-sync's askpass endpoint: every GET is answered with `answer` (status `status`)."""

    def __init__(self, answer: str, status: int = 200, address: str = "127.0.0.1") -> None:
        owner = self
        self.answer, self.status, self.requests = answer, status, 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                body = owner.answer.encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((address, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{address}:{self.port}/credentials"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GitHTTPSServer(GitHTTPServer):
    """GitHTTPServer behind TLS, with a certificate for 127.0.0.1 from its own CA (`ca_file`)."""

    def __init__(self, root: Path, conf: Path, **kwargs: object) -> None:
        import ssl

        conf.mkdir(parents=True, exist_ok=True)
        self.ca_file, key = conf / "cert.pem", conf / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", self.ca_file, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        super().__init__(root, **kwargs)  # type: ignore[arg-type]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    def shutdown_request(self, request: object) -> None:
        # a body that ends with the connection must end with TLS's close_notify (GnuTLS insists)
        with contextlib.suppress(OSError, ValueError):
            request.settimeout(2)  # type: ignore[attr-defined]
            request.unwrap()  # type: ignore[attr-defined]
        super().shutdown_request(request)  # type: ignore[arg-type]

    def url(self, name: str, credentials: str = "") -> str:
        return f"https://{credentials}{self.address}:{self.port}/{name}"


def add_repo(root: Path, work_root: Path, name: str, commits: list[dict[str, object]]) -> list[str]:
    """A bare repository NAME under root from a list of commits; returns their SHAs.

    Each commit maps a path to file content (str), to None (remove the path, a
    submodule included) or to ("submodule", URL, SHA) (add or move a submodule)."""
    work = work_root / name.removesuffix(".git")
    git("init", "-q", "-b", "main", work)
    shas = []
    for index, files in enumerate(commits):
        for path, content in files.items():
            if content is None:
                git("rm", "-q", "-r", "--", path, cwd=work)
            elif isinstance(content, tuple):
                _, url, sha = content
                if not (work / path).exists():
                    git("-c", "protocol.allow=always", "submodule", "add", "-q", url, path, cwd=work)
                git("-C", work / path, "fetch", "-q", "origin")
                git("-C", work / path, "checkout", "-q", sha)
            else:
                target = work / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(str(content))
        git("add", "-A", cwd=work)
        git("commit", "-q", "--allow-empty", "-m", f"commit {index}", cwd=work)
        shas.append(git("rev-parse", "HEAD", cwd=work))
    git("clone", "-q", "--bare", work, root / name)
    return shas
