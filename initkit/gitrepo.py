"""Running the git binary for `git-clone`.

- A child git dies with us: any BaseException (Stopped by SIGTERM, KeyboardInterrupt)
  that interrupts the wait terminates its process group, then kills it after 0.5 s;
  PR_SET_PDEATHSIG kills it when initkit itself is killed with -9.
- An environment that needs no HOME and no ~/.ssh: settings go in through
  GIT_CONFIG_COUNT/KEY/VALUE, ssh options through GIT_SSH=initkit-ssh (no shell needed).
- Credentials never reach argv nor .git/config: http(s) credentials become an
  `Authorization` header scoped to the repository's origin (scheme, host, port).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from initkit import log, redact
from initkit.errors import BadInput, JobFailed

# Variables that would point git at another repository than the one named on its command line.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
)

# Always set: the volume may belong to another uid; no background gc may outlive us.
_BASE_CONFIG = (
    ("safe.directory", "*"),
    ("advice.detachedHead", "false"),
    ("init.defaultBranch", "main"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("core.hooksPath", os.devnull),
)

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?:\[[^\]/]+\]|[^:/]+):")
FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Remote:
    """A repository location, split into what may be stored and what may not."""

    url: str  # stored as origin and printed: no credentials
    kind: str  # "http", "ssh", "git" or "file"
    username: str | None = None
    password: str | None = None
    scope: str | None = None  # http(s): "scheme://host[:port]/", what a header is scoped to


def parse_remote(repo: str) -> Remote:
    if "://" not in repo:
        if _SCP_LIKE.match(repo):  # user@host:path, as git reads it
            return Remote(repo, "ssh")
        return Remote(os.path.abspath(repo), "file")
    parts = urlsplit(repo)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        userinfo, at, hostport = parts.netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if colon else None
        url = urlunsplit((scheme, hostport, parts.path, parts.query, ""))
        return Remote(url, "http", username, password, f"{scheme}://{hostport.lower()}/")
    if scheme in ("ssh", "git+ssh", "ssh+git"):
        return Remote(repo, "ssh")
    if scheme == "file":
        return Remote(repo, "file")
    return Remote(repo, scheme)


def same_repository(a: str, b: str) -> bool:
    """Whether two locations name the same repository (credentials, case of the
    host, a trailing slash or `.git` do not matter)."""
    return _normal(a) == _normal(b)


def _normal(location: str) -> str:
    url = parse_remote(location).url
    if "://" in url:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2].lower()
        url = f"{parts.scheme.lower()}://{host}{parts.path}"
    elif _SCP_LIKE.match(url):
        url = url.split("@", 1)[-1] if "@" in url.split(":", 1)[0] else url
    url = url.rstrip("/")
    return url.removesuffix(".git").rstrip("/")


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    redact.register(token)
    return f"Authorization: Basic {token}"


def ssh_options(key_file: str | None, known_hosts_file: str | None) -> list[str]:
    """ssh options that need nothing from ~/.ssh nor /etc/ssh/ssh_config."""

    def ssh_path(path: str) -> str:  # ssh expands % tokens and splits on blanks
        path = os.path.abspath(path)
        if '"' in path:
            raise BadInput(f"unsupported character '\"' in {path}")
        return '"' + path.replace("%", "%%") + '"'

    options = ["-F", os.devnull, "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"]
    options += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
    if key_file:
        options += ["-o", "IdentitiesOnly=yes", "-o", f"IdentityFile={ssh_path(key_file)}"]
    if known_hosts_file:
        options += ["-o", f"UserKnownHostsFile={ssh_path(known_hosts_file)}"]
        options += ["-o", f"GlobalKnownHostsFile={os.devnull}"]
    options += ["-o", "StrictHostKeyChecking=yes"]
    return options


def ssh_wrapper() -> str:
    """Path of `initkit-ssh`, which git runs as GIT_SSH without a shell."""
    import shutil
    import sys

    beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "initkit-ssh")
    for candidate in (
        beside,
        os.path.join(os.path.dirname(sys.executable), "initkit-ssh"),
        shutil.which("initkit-ssh"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BadInput("initkit-ssh is not installed beside initkit; reinstall initkit")


def git_environment(header: str | None = None, scope: str | None = None, ssh: list[str] | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in _REPO_ENV}
    config = list(_BASE_CONFIG)
    if header and scope:
        config.append((f"http.{scope}.extraHeader", header))
    try:
        first = max(int(env.get("GIT_CONFIG_COUNT", "0")), 0)
    except ValueError:
        first = 0
    for index, (key, value) in enumerate(config, start=first):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(first + len(config))
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    if ssh is not None:
        import json

        from initkit.gitssh import OPTIONS_VAR

        env.pop("GIT_SSH_COMMAND", None)  # it would win over GIT_SSH
        env["GIT_SSH"] = ssh_wrapper()
        env["GIT_SSH_VARIANT"] = "ssh"
        env[OPTIONS_VAR] = json.dumps(ssh)
    return env


def _death_signal() -> object | None:
    """A preexec_fn asking the kernel to SIGKILL the child when initkit dies (even by -9)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None

    def die_with_parent() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return die_with_parent


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class Git:
    """Runs `git ARGS` with the environment built for one repository."""

    def __init__(self, env: dict, credentials: bool = False) -> None:
        self.env = env
        self.credentials = credentials  # whether a failed login means wrong credentials
        self.preexec = _death_signal()

    def run(self, *args: str, cwd: str | None = None) -> Outcome:
        argv = ["git", *args]
        log.debug("running: " + " ".join(shlex.quote(arg) for arg in argv))
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=self.preexec,
            )
        except FileNotFoundError:
            raise BadInput(
                "git-clone needs git, which is not on PATH (initkit-slim has no git: use the initkit image)"
            ) from None
        try:
            out, err = proc.communicate()
        except BaseException:
            stop(proc)
            raise
        text = err.decode(errors="replace")
        for line in text.splitlines():
            if line.strip():
                log.debug(f"git: {line.rstrip()}")
        return Outcome(proc.returncode, out.decode(errors="replace"), text)

    def check(self, *args: str, what: str, cwd: str | None = None) -> Outcome:
        outcome = self.run(*args, cwd=cwd)
        if not outcome.ok:
            raise failure(what, outcome, self.credentials)
        return outcome


def stop(proc: subprocess.Popen) -> None:
    """Terminate the child's process group, kill it after 0.5 s, reap it."""
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


_AUTH = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "Permission denied (publickey",
    "HTTP 401",
    "returned error: 401",
    "returned error: 403",
)


def failure(what: str, outcome: Outcome, credentials: bool = False) -> JobFailed:
    """JobFailed naming git's most telling stderr line."""
    lines = [line.strip() for line in outcome.err.splitlines() if line.strip()]
    denied = [line for line in lines if any(marker in line for marker in _AUTH)]
    if denied and credentials and "could not read" in denied[0]:  # git asked again after a 401
        return JobFailed(f"{what} failed: authentication failed: the server refused the credentials given")
    if denied:
        return JobFailed(f"{what} failed: authentication failed ({denied[0]})")
    if any("Host key verification failed" in line for line in lines):
        return JobFailed(f"{what} failed: ssh host key verification failed (is the host in --known-hosts-file?)")
    return JobFailed(f"{what} failed: {reason(lines) or f'git exited with status {outcome.code}'}")


def reason(lines: list[str]) -> str:
    for prefix in ("fatal:", "error:"):
        found = [line for line in lines if line.startswith(prefix)]
        if found:
            return found[0] if prefix == "fatal:" else found[-1]
    return lines[-1] if lines else ""
