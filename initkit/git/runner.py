"""How git-clone runs git: one environment, forced settings, and one deadline.

- Every git is started by GitPython (`git.cmd.Git.execute`) from os.environ, minus what
  would point it at another repository (`scrub_environment`), plus `git_environment`:
  settings go in through GIT_CONFIG_COUNT/KEY/VALUE (never argv, never .git/config),
  so they need no HOME; initkit's forced settings come after the user's and win; ssh
  runs as GIT_SSH_COMMAND=initkit-ssh (no shell needed).
- A child git dies with us: it runs in its own session (its own process group), and
  the job's deadline or any BaseException (Stopped by SIGTERM, KeyboardInterrupt)
  interrupting the wait terminates that whole group, then kills it after 0.5 s;
  PR_SET_PDEATHSIG kills git when initkit itself is killed with -9.
- Why initkit waits for git itself, rather than through GitPython (3.1.44, the images'):
  `execute(kill_after_timeout=...)` finds the children to kill with `ps --ppid`, which the
  image lacks (the timer thread then dies with FileNotFoundError and git runs on), kills
  only git and its direct children (not git-remote-https's, nor ssh's), measures one call
  rather than the job, and nothing in `execute` kills git when a signal interrupts its
  wait (the `AutoInterrupt` handle signals git alone, not its process group). So git is
  started with `as_process=True`, GitPython's documented way for a caller to do the waiting,
  and `Git.run` adds the deadline and the group kill; the rest (finding git, Popen, the
  environment, the pipes) is GitPython's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

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
    "GIT_CONFIG",
)

# On every call. The last group wins over the same keys in DEST/.git/config, which the app
# container can write: no fsmonitor hook, no hooks, no credential helper, no ext:: transport,
# no recursion into submodules behind our back; and a stalled http server fails.
LOW_SPEED_LIMIT = 1000  # bytes/s ...
LOW_SPEED_TIME = 60  # ... over this many seconds
FORCED_CONFIG = (
    ("advice.detachedHead", "false"),
    ("init.defaultBranch", "main"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("credential.helper", ""),  # the empty value empties the list of helpers
    ("protocol.ext.allow", "never"),
    ("submodule.recurse", "false"),
    ("http.sslVerify", "true"),
)


def git_environment(
    header: str | None = None,
    scope: str | None = None,
    ssh: list[str] | None = None,
    credentials: list[tuple[str, str]] | None = None,
    user_config: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """What git-clone adds to the environment of every git it runs.

    `credentials` are (scope URL, Authorization header) pairs; `user_config` is what
    --git-config asked for (checked by `config.check_user_config`). The user's keys come
    before initkit's own, so that for a key set twice initkit's value wins.
    GitPython starts each child from os.environ plus these, so `scrub_environment`
    removes what must not reach git from this process first.
    """
    env: dict[str, str] = {}
    config = [("http.lowSpeedLimit", str(LOW_SPEED_LIMIT)), ("http.lowSpeedTime", str(LOW_SPEED_TIME))]
    config += list(user_config or ())
    config += FORCED_CONFIG
    pairs = list(credentials or ())
    if header and scope:
        pairs.insert(0, (scope, header))
    # git sends every http.<url>.extraHeader whose URL matches, the less specific ones first.
    # Where a credential's URL lies below another's, an empty value first clears the list, so
    # the most specific credential alone is sent (the user's own unscoped headers are re-added).
    own = [value for key, value in user_config or () if key.lower() == "http.extraheader"]
    for url, value in sorted(pairs, key=lambda pair: len(pair[0])):
        if any(other != url and url.startswith(other.rstrip("/") + "/") for other, _ in pairs):
            config += [(f"http.{url}.extraHeader", item) for item in ("", *own)]
        config.append((f"http.{url}.extraHeader", value))
    if pairs or own:
        # git follows a redirect of its first request and sends every later one, header and
        # all, to the new host; curl would drop the header, git does not. Refuse redirects
        # (a user's own header may be a token too, whatever its name).
        config.append(("http.followRedirects", "false"))
    try:
        first = max(int(os.environ.get("GIT_CONFIG_COUNT", "0")), 0)
    except ValueError:
        first = 0
    for index, (key, value) in enumerate(config, start=first):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(first + len(config))
    env["GIT_TERMINAL_PROMPT"] = "0"
    # Set and empty, these win over core.askPass and core.gitProxy of an untrusted checkout.
    env["GIT_ASKPASS"] = ""
    env["SSH_ASKPASS"] = ""
    env["GIT_PROXY_COMMAND"] = os.environ.get("GIT_PROXY_COMMAND", "")
    env["LC_ALL"] = "C"
    if ssh is not None:
        import json

        from initkit.git.remote import ssh_wrapper
        from initkit.git.ssh import OPTIONS_VAR

        # GIT_SSH_COMMAND wins over core.sshCommand (GIT_SSH would not); a path without
        # blanks or shell characters is executed directly, so no shell is needed.
        env["GIT_SSH_COMMAND"] = shlex.quote(ssh_wrapper())
        env["GIT_SSH_VARIANT"] = "ssh"
        env[OPTIONS_VAR] = json.dumps(ssh)
    return env


def scrub_environment() -> None:
    """Remove from this process what would point git at another repository (see git_environment)."""
    for key in _REPO_ENV:
        os.environ.pop(key, None)


# --- running git --------------------------------------------------------------------


def _death_signal() -> Any:
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
    """Runs `git ARGS` through GitPython with the environment built for one repository,
    within one deadline for the whole job."""

    def __init__(
        self, env: dict[str, str], credentials: bool = False, timeout: float = 0, started: float | None = None
    ) -> None:
        # GitPython checks for git when imported; quiet, so that a missing git is the
        # "needs git" exit 2 below rather than an ImportError.
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        import git.cmd

        self.cmd = git.cmd.Git("/")  # no repository is ever discovered from the working directory
        self.env = env
        self.credentials = credentials  # whether a failed login means wrong credentials
        self.preexec = _death_signal()
        self.timeout = timeout
        # `started`: when the job began (an askpass request may already have used some of it)
        self.deadline = (started or time.monotonic()) + timeout if timeout else None

    def run(self, *args: str) -> Outcome:
        import git.exc

        argv = ["git", *args]
        log.debug("running: " + " ".join(shlex.quote(arg) for arg in argv))
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self.expired()
        try:  # as_process: the waiting is ours, for the deadline and the group kill (see the module's doc)
            handle = self.cmd.execute(
                argv, as_process=True, env=self.env, start_new_session=True, preexec_fn=self.preexec
            )
        except git.exc.GitCommandNotFound:
            raise BadInput(
                "git-clone needs git, which is not on PATH (initkit-slim has no git: use the initkit image)"
            ) from None
        proc: subprocess.Popen = handle.proc
        try:
            out, err = self._wait(proc)
        except BaseException:
            stop(proc)
            raise
        text = err.decode(errors="replace")
        for line in text.splitlines():
            if line.strip():
                log.debug(f"git: {line.rstrip()}")
        return Outcome(proc.returncode, out.decode(errors="replace"), text)

    def _wait(self, proc: subprocess.Popen) -> tuple[bytes, bytes]:
        """Read git's output until it exits, on the run's token: Stopped when a signal cancels
        it, the job's timeout when the deadline passes (the caller then kills git's group)."""
        from initkit import cancel

        output: list[tuple[bytes, bytes]] = []
        done = threading.Event()

        def talk() -> None:
            try:
                output.append(proc.communicate())
            except (OSError, ValueError):  # the pipes closed under it: git's group was stopped
                pass
            finally:
                done.set()

        threading.Thread(target=talk, name="git", daemon=True).start()
        left = None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)
        if not cancel.current().wait_event(done, left):
            raise self.expired()
        return output[0]

    def check(self, *args: str, what: str) -> Outcome:
        outcome = self.run(*args)
        if not outcome.ok:
            raise failure(what, outcome, self.credentials)
        return outcome

    def expired(self) -> JobFailed:
        from initkit.durations import format_duration

        return JobFailed(f"timed out after {format_duration(self.timeout)} (--timeout); git was stopped")


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
        asked = re.search(r"for '([^']*)'", denied[0])
        where = f" for {redact.redact(asked.group(1))}" if asked else ""
        return JobFailed(
            f"{what} failed: authentication failed{where}: the server refused the credentials given, "
            "or none were given for that URL (see --credential)"
        )
    if denied:
        return JobFailed(f"{what} failed: authentication failed ({denied[0]})")
    if any(re.search(r"returned error: 30[12378]\b", line) for line in lines):
        return JobFailed(
            f"{what} failed: the server answered with a redirect ({reason(lines)}); with credentials, "
            "initkit follows no redirect (git would send them to the new host): give the final URL"
        )
    if any("Host key verification failed" in line for line in lines):
        return JobFailed(f"{what} failed: ssh host key verification failed (is the host in --known-hosts-file?)")
    return JobFailed(f"{what} failed: {reason(lines) or f'git exited with status {outcome.code}'}")


def reason(lines: list[str]) -> str:
    for prefix in ("fatal:", "error:"):
        found = [line for line in lines if line.startswith(prefix)]
        if found:
            return found[0] if prefix == "fatal:" else found[-1]
    return lines[-1] if lines else ""
