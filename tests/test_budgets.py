"""Issue 7's memory budgets, enforced on the real commands under GNU time (tests/budgets.py).

Each command runs once against a real server on loopback: dnsmasq, a TCP listener, an HTTP
server and a git daemon. Run in the venv, as CI does, so the figures are the ones in the README.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests import budgets
from tests.gitservers import GitDaemon, served_repo
from tests.servers import DnsServer, ScriptedHttpServer

pytestmark = pytest.mark.skipif(not os.path.exists(budgets.GNU_TIME), reason="GNU time is not installed")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("budgets")
    dns = DnsServer(workdir / "dns")
    dns.add("budget.test", "10.0.0.1")
    tcp = socket.create_server(("127.0.0.1", 0))
    http = ScriptedHttpServer()
    daemon = GitDaemon(served_repo(workdir, {"README.md": "budget\n"})).start()
    try:
        yield budgets.cases(
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
        dns.stop()


@pytest.mark.parametrize(
    "name", ["sleep", "wait-for tcp", "wait-for dns", "wait-for http", "register", "render", "git-clone"]
)
def test_peak_rss_within_budget(servers: list[budgets.Case], name: str, tmp_path: Path) -> None:
    case = next(c for c in servers if c.name == name)
    rss, code, stderr = budgets.peak_rss_mib(case.argv)
    assert code == 0, f"{case.name} failed: {stderr}"
    assert rss <= case.budget_mib, f"{case.name}: peak RSS {rss:.1f} MiB over its {case.budget_mib} MiB budget"
