"""Issue 7's memory budgets, enforced on the real commands under GNU time (tests/budgets.py).

Each command runs once against a real server on loopback: dnsmasq, a TCP listener, an HTTP
server and a git daemon. Run in the venv, as CI does, so the figures are the ones in the README.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import budgets
from tests.conftest import requirement
from tests.servers import DnsServer


@pytest.fixture(autouse=True, scope="module")
def _gnu_time() -> None:
    requirement.path(budgets.GNU_TIME, "apt-get install time")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("budgets")
    dns = DnsServer(workdir / "dns")
    try:
        with budgets.loopback_cases(workdir, dns) as cases:
            yield cases
    finally:
        dns.stop()


@pytest.mark.parametrize(
    "name", ["sleep", "wait-for tcp", "wait-for dns", "wait-for http", "register", "render", "git-clone"]
)
def test_peak_rss_within_budget(servers: list[budgets.Case], name: str, tmp_path: Path) -> None:
    case = next(c for c in servers if c.name == name)
    rss, code, stderr = budgets.peak_rss_mib(case.argv)
    assert code == 0, f"{case.name} failed: {stderr}"
    assert rss <= case.budget_mib, f"{case.name}: peak RSS {rss:.1f} MiB over its {case.budget_mib} MiB budget"
