"""The memory budgets of issue 7, in one table that tests/test_budgets.py enforces and
bench/bench_cli.py prints: peak RSS (GNU time %M) of each real command, in MiB.

git-clone's figure is the largest process of its tree; with the one-commit repository used
here that is initkit's own Python process (a git child of a tiny clone stays under 10 MiB).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.gitservers import GitDaemon, served_repo
from tests.servers import DnsServer, ScriptedHttpServer

GNU_TIME = "/usr/bin/time"  # Debian package `time`
# The console script beside this interpreter (a venv's bin/), as a pod would run it.
INITKIT = shutil.which("initkit", path=os.path.dirname(sys.executable)) or shutil.which("initkit") or "initkit"


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    budget_mib: float


def cases(*, workdir: Path, dns_server: str, dns_name: str, tcp_port: int, http_url: str, git_url: str) -> list[Case]:
    """Each command as a pod runs it, against servers the caller started on loopback."""
    template = workdir / "app.conf.j2"
    template.write_text("listen {{ pod.ip }}:{{ port }}\n{% for k, v in db.items() %}{{ k }}={{ v }}\n{% endfor %}")
    values = workdir / "values.yaml"
    values.write_text("port: 8080\ndb:\n  host: mydb\n  replicas: 3\n")
    wait = [INITKIT, "wait-for", "--timeout", "20s"]
    return [
        Case("sleep", [INITKIT, "sleep", "0"], 20),
        Case("wait-for tcp", [*wait, f"tcp:127.0.0.1:{tcp_port}"], 32),
        Case("wait-for dns", [*wait, f"dns:{dns_name}", "--dns-server", dns_server], 32),
        Case("wait-for http", [*wait, http_url], 32),
        Case("register", [INITKIT, "register", http_url, "--data", "ip={{ pod.ip }}", "--timeout", "20s"], 40),
        Case("render", [INITKIT, "render", str(template), str(workdir / "out.conf"), "--values", str(values)], 40),
        Case("git-clone", [INITKIT, "git-clone", git_url, str(workdir / "checkout")], 40),
    ]


@contextlib.contextmanager
def loopback_cases(workdir: Path, dns: DnsServer) -> Iterator[list[Case]]:
    """`cases`, with the servers they talk to started on loopback (a name on `dns`, a TCP
    listener, an HTTP server, a git daemon serving a one-commit repository) and stopped after."""
    dns.add("budget.test", "10.0.0.1")
    tcp = socket.create_server(("127.0.0.1", 0))
    http = ScriptedHttpServer()
    daemon = GitDaemon(served_repo(workdir, {"README.md": "budget\n"})).start()
    try:
        yield cases(
            workdir=workdir,
            dns_server=dns.server,
            dns_name="budget.test",
            tcp_port=tcp.getsockname()[1],
            http_url=http.url("/healthz"),
            git_url=daemon.url("site.git"),
        )
    finally:
        daemon.stop()
        http.stop()
        tcp.close()


def environment() -> dict[str, str]:
    """The pod's facts; no coverage hooks (they would load coverage into the measured process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "COVERAGE_"))}
    env.update(POD_IP="10.1.2.3", POD_NAME="bench", POD_NAMESPACE="default", NO_PROXY="*")
    return env


def peak_rss_mib(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(peak RSS in MiB, exit code, stderr) of argv, through GNU time.

    GNU time forks the command itself, so the figure is the command's own, not this
    (large) process's pages up to an exec."""
    proc = subprocess.run(
        [GNU_TIME, "-f", "%M", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env if env is not None else environment(),
        text=True,
        timeout=60,
    )
    lines = proc.stderr.strip().splitlines()
    rss = int(lines.pop().split()[-1])
    if lines and lines[-1].startswith(("Command exited with non-zero status", "Command terminated by signal")):
        lines.pop()  # GNU time's own line, not the command's
    return rss / 1024, proc.returncode, "\n".join(lines)
