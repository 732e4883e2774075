"""Shared fixtures: an isolated HOME, a network guard, and ways to run initkit.

The guard is autouse: a test that opens a socket to anything but loopback (or
a network a fixture explicitly allows, such as a Docker network it created)
fails loudly instead of reaching off the machine.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from initkit import cli, log, redact

ROOT = Path(__file__).resolve().parent.parent
_allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []


def _check_address(address: object) -> None:
    if not isinstance(address, tuple) or not address:
        return  # AF_UNIX paths and the like
    host = address[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise RuntimeError(f"test connected to a name ({host!r}); use an IP the test started") from None
    if ip.is_loopback or any(ip in net for net in _allowed_networks):
        return
    raise RuntimeError(f"test tried to reach {host}: off the machine (the network guard refused it)")


@pytest.fixture(autouse=True)
def _network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect, real_connect_ex, real_sendto = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.socket.sendto,
    )

    def connect(self: socket.socket, address: object) -> None:
        _check_address(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        _check_address(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: object) -> int:
        _check_address(args[-1])
        return real_sendto(self, data, *args)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    yield
    _allowed_networks.clear()


@pytest.fixture
def allow_network() -> object:
    """allow_network("172.18.0.0/16"): let this test reach a network it created."""

    def allow(cidr: str) -> None:
        _allowed_networks.append(ipaddress.ip_network(cidr, strict=False))

    return allow


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in list(os.environ):
        if var.startswith("INITKIT_") or var in (
            "POD_IP", "POD_NAME", "POD_NAMESPACE", "POD_UID", "NODE_NAME",
            "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "REQUESTS_CA_BUNDLE",
        ):  # fmt: skip
            monkeypatch.delenv(var)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> object:
    """Run initkit in this process (for coverage and speed): run_cli("sleep", "0", env={...})."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        log.configure("text", log.INFO)
        redact.forget_all()
        code = cli.run(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def initkit_command(*args: str) -> list[str]:
    """argv that runs initkit in a child process (coverage follows it)."""
    return [sys.executable, "-m", "initkit", *args]


@pytest.fixture
def run_proc() -> object:
    """Run initkit as a real child process: run_proc("sleep", "0", env=..., timeout=30)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw: object) -> Result:
        proc = subprocess.run(
            initkit_command(*args),
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


# --- skips: one policy ------------------------------------------------------------------------
# Outside CI a missing tool or server skips the tests that need it, with the fix in the reason.
# Under CI=true every skip is a failure (`pytest_runtest_makereport` below), so a suite that
# lost a tool cannot pass silently. Tests ask for what they need through `require` (or the
# module-level `requirement` helpers), never through their own skip logic.

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

MARKERS = {
    "docker": "needs a Docker engine and the initkit images (make images)",
    "podman": "needs podman (kube play) besides Docker",
    "release": "runs `make release` against a local registry (buildah, qemu)",
    "helm": "runs the helm binaries from .ci/setup-helm.sh",
    "root": "needs root: mounts, chown to other uids, unshare",
    "cluster": "runs on the real single-node Kubernetes (make cluster): root, Docker, Go",
    "slow": "CPU-heavy (Hypothesis at full example counts, checkov's scan, the demo): make test only",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, help_ in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_}")


# Tests that mount file systems, chown to other uids or unshare, by module or by fixture:
# marked `root` here rather than in each file, so `make check` can leave them out.
ROOT_MODULES = {"tests/commands/test_permissions.py", "tests/security/test_permissions.py"}
ROOT_FIXTURES = {"small_disk", "own_network"}
# The CPU-heaviest modules (about a third of `make check`'s CPU on 2 cores): `slow`, so the edit
# loop stays under 2 minutes; `make test` runs them.
SLOW_MODULES = {
    "tests/test_modes.py",
    "tests/test_demo.py",
    "tests/security/test_parsers_property.py",
    "tests/charts/test_checkov.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        if module in ROOT_MODULES or ROOT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.root)
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (every skip is a failure in CI): {reason}"


def missing(what: str, fix: str) -> None:
    """Skip (outside CI) or fail (CI=true) because WHAT is missing; FIX says how to get it."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: {fix})", pytrace=False)
    pytest.skip(f"{what}; {fix}")


class Require:
    """`require.tool("setpriv", "apt-get install util-linux")`, `require.root()`, `require.module("trustme")`."""

    def tool(self, name: str, fix: str) -> str:
        import shutil

        path = shutil.which(name)
        if path is None:
            missing(f"{name} is not installed", fix)
        return path  # type: ignore[return-value]

    def root(self, why: str = "mounts and chown") -> None:
        if os.geteuid() != 0:
            missing(f"needs root ({why})", "run as root")

    def module(self, name: str, fix: str = "make .venv/.test") -> object:
        import importlib

        try:
            return importlib.import_module(name)
        except ImportError:
            missing(f"Python module {name} is not installed", fix)
            raise  # not reached: missing() raises

    def path(self, path: str, fix: str) -> str:
        if not os.path.exists(path):
            missing(f"{path} does not exist", fix)
        return path


@pytest.fixture(scope="session")
def require() -> Require:
    return Require()


requirement = Require()  # the same checks, for module-level and helper code


# --- waiting for events, not for time ---------------------------------------------------------


def wait_until(predicate: object, timeout: float = 10.0, what: str = "condition") -> object:
    """Poll PREDICATE (a cheap check of an event: a file, a /proc field, a socket) until it is true."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def handles_signal(pid: int, signum: int) -> bool:
    """Whether process PID has installed a handler for SIGNUM (the kernel's SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    caught = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(caught & (1 << (signum - 1)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time PID has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_handler(pid: int, signum: int = 15, timeout: float = 30.0) -> None:
    """Until PID's SIGNUM handler is in place: the moment a signal test may send it."""
    wait_until(lambda: handles_signal(pid, signum), timeout, f"pid {pid} to handle signal {signum}")
