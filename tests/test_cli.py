"""The CLI contract: help, exit codes, env-var options, JSON logs, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from initkit import __version__
from initkit.cli import COMMANDS

ALL_COMMANDS = list(COMMANDS)


def test_version(run_cli):
    result = run_cli("--version")
    assert result.code == 0 and result.stdout == f"initkit {__version__}\n"


def test_group_help_lists_commands_exit_codes_and_env(run_cli):
    result = run_cli("--help")
    assert result.code == 0
    for name in ALL_COMMANDS:
        assert name in result.stdout
    assert "128+N" in result.stdout and "INITKIT_LOG_FORMAT" in result.stdout


@pytest.mark.parametrize("name", ALL_COMMANDS)
def test_every_command_has_help_with_exit_codes(run_cli, name):
    result = run_cli(name, "--help")
    assert result.code == 0, result.stderr
    assert f"Usage: initkit {name}" in result.stdout
    assert "Exit codes: 0 done; 1" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("name", "envvar"),
    [
        ("wait-for", "INITKIT_WAIT_FOR_TIMEOUT"),
        ("register", "INITKIT_REGISTER_TOKEN_FILE"),
        ("register", "INITKIT_REGISTER_JSON"),
        ("register", "INITKIT_REGISTER_HEADER"),
        ("git-clone", "INITKIT_GIT_CLONE_DEPTH"),
        ("render", "INITKIT_RENDER_MODE"),
        ("certs", "INITKIT_CERTS_DNS_NAME"),
    ],
)
def test_help_shows_environment_variables(run_cli, name, envvar):
    import re

    assert re.search(rf"\b{envvar}\b", run_cli(name, "--help").stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'"),
        (["sleep", "1", "--bogus"], "No such option"),
        (["--log-format", "xml", "sleep", "0"], "Invalid value for '--log-format'"),
        (["wait-for"], "Missing argument 'TARGETS...'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(run_cli, args, message):
    result = run_cli(*args)
    assert result.code == 2
    assert len(result.lines) == 1, result.stderr
    assert message in result.stderr  # click's wording, which differs a little between its versions
    assert args[-1] in result.stderr or args[0] in result.stderr


def test_json_logs_for_usage_errors_too(run_cli):
    result = run_cli("--log-format", "json", "sleep", "soon")
    assert result.code == 2
    (record,) = [json.loads(line) for line in result.lines]
    assert record["level"] == "error" and "invalid duration 'soon'" in record["msg"]


def test_log_format_from_environment(run_cli):
    result = run_cli("sleep", "x", env={"INITKIT_LOG_FORMAT": "json"})
    assert json.loads(result.stderr)["command"] == "sleep"


def test_quiet_prints_errors_only(run_cli, tmp_path):
    ok = run_cli("--quiet", "wait-for", f"file:{tmp_path}")
    assert ok.code == 0 and ok.stderr == ""
    failed = run_cli("-q", "wait-for", "file:/nonexistent", "--timeout", "100ms")
    assert failed.code == 1 and len(failed.lines) == 1


def test_internal_errors_are_one_line_with_traceback_only_under_debug(run_cli, monkeypatch):
    from initkit import cancel

    def broken(token: cancel.Token, seconds: float | None = None) -> bool:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cancel.Token, "wait", broken)  # what `initkit sleep` calls
    plain = run_cli("sleep", "1")
    assert plain.code == 1
    assert plain.lines == ["initkit sleep: error: internal error: ZeroDivisionError: boom (rerun with --debug)"]
    debug = run_cli("--debug", "sleep", "1")
    assert debug.code == 1 and "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr


def test_python_dash_m_and_console_script_agree():
    as_module = subprocess.run([sys.executable, "-m", "initkit", "--version"], capture_output=True, text=True)
    installed = os.path.join(os.path.dirname(sys.executable), "initkit")  # the console script
    script = subprocess.run([installed, "--version"], capture_output=True, text=True)
    assert as_module.stdout == script.stdout == f"initkit {__version__}\n"


HEAVY = (
    "requests",
    "jinja2",
    "dns",
    "git",
    "yaml",
    "urllib3",
    "ruamel",
    "iniparse",
    "javaproperties",
    "configparser",
    "cryptography",
    "jks",
)
DRIVERS = ("psycopg", "pymysql", "redis")  # wait-for's database targets: each its own only


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--version"], ()),
        (["sleep", "0"], ()),
        (["wait-for", "tcp:127.0.0.1:9", "--timeout", "1ms"], ()),
        (["wait-for", "file:/", "--timeout", "1ms"], ()),
        (["wait-for", "dns:a.test", "--dns-server", "127.0.0.1:9", "--timeout", "1ms"], ("dns",)),
        (["sysctl", "--root", "/nonexistent", "vm.max_map_count=1"], ()),  # exit 1 before any read
        # render's config libraries load only for --merge / --edit of their format
        (["render", "/etc/hostname"], ("jinja2", "yaml")),
        (["render", "--edit", "/nonexistent.properties", "--set", "a=1"], ()),
        (["certs", "--help"], ()),
        (["info"], ()),
        (["wait-for", "postgres://127.0.0.1:9", "--timeout", "2s"], ("psycopg",)),
        (["wait-for", "mysql://127.0.0.1:9", "--timeout", "2s"], ("pymysql", "cryptography", "configparser")),
        (["wait-for", "redis://127.0.0.1:9", "--timeout", "2s"], ("redis", "cryptography")),  # drivers' own
    ],
)
def test_subcommands_import_only_what_they_use(args, allowed):
    code = (
        "import sys\nfrom initkit.cli import run\nrun(sys.argv[1:])\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, env=_no_coverage_env()
    )
    loaded = set(proc.stdout.split())
    assert "click" in loaded
    heavy = set(HEAVY + DRIVERS)
    assert not (loaded & heavy) - set(allowed), f"{args} imported {(loaded & heavy) - set(allowed)}"
    # a database target did check (its driver loaded), so the line above saw a real run; its 2 s
    # timeout lets the first check start on a loaded machine (1 ms ended the run before it)
    assert set(allowed) & set(DRIVERS) <= loaded


@pytest.mark.parametrize(
    "args",
    [
        ["sleep", "0"],
        ["wait-for", "tcp:127.0.0.1:9", "--timeout", "1ms"],
        ["wait-for", "file:/", "dns:a.test", "--dns-server", "127.0.0.1:9", "--timeout", "1ms"],
    ],
)
def test_only_api_targets_import_the_kubernetes_client(args):
    """initkit.kube (its client, watch, config and their yaml) loads for job:, pods:... only."""
    code = (
        "import sys\nfrom initkit.cli import run\nrun(sys.argv[1:])\n"
        "print('loaded:', *sorted(m for m in sys.modules if m.startswith(('initkit.kube', 'initkit.probes.kube'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, env=_no_coverage_env()
    )
    assert proc.stdout.splitlines()[-1] == "loaded:", proc.stdout + proc.stderr


def test_python_warnings_are_json_lines_too(run_cli, monkeypatch):
    import warnings

    from initkit import cancel

    def warn_then_sleep(token: cancel.Token, seconds: float | None = None) -> bool:
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
        return False

    monkeypatch.setattr(cancel.Token, "wait", warn_then_sleep)  # what `initkit sleep` calls
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        result = run_cli("--log-format", "json", "sleep", "0")
    (record,) = [json.loads(line) for line in result.lines]
    assert record["level"] == "warning" and record["msg"] == "DeprecationWarning: old API"


@pytest.mark.parametrize("args", [["--version"], ["sleep", "0"]])
def test_start_up_loads_no_process_or_json_machinery(args):
    """bench/bench_cli.py's start-up target (<= 1.25x `import click`) rests on this: the run's
    token and the text logs load neither subprocess (selectors) nor json."""
    code = (
        "import sys\nfrom initkit.cli import run\nrun(sys.argv[1:])\n"
        "print('loaded:', *sorted(m for m in sys.modules if m in ('subprocess', 'selectors', 'json')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, env=_no_coverage_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "loaded:", proc.stdout


def test_an_api_target_in_a_pod_reads_no_yaml(tmp_path):
    """In a pod the configuration is the ServiceAccount's files: PyYAML (for a kubeconfig) stays unloaded."""
    (tmp_path / "token").write_text("t0ken\n")
    (tmp_path / "namespace").write_text("app\n")
    code = (
        "import sys\nfrom initkit.kube import config\n"
        f"config.SERVICEACCOUNT_DIR = {str(tmp_path)!r}\n"
        "from initkit.cli import run\nrun(sys.argv[1:])\n"
        "print('loaded:', *sorted(m for m in sys.modules if m.split('.')[0] == 'yaml'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env |= {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "9"}
    args = ["wait-for", "job:x", "--timeout", "300ms"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, env=env)
    assert "job:x (" in proc.stderr, proc.stderr  # timed out on the in-cluster server, not refused as input
    assert proc.stdout.splitlines()[-1] == "loaded:", proc.stdout + proc.stderr


def _no_coverage_env() -> dict[str, str]:
    """The environment without coverage's subprocess hook: under `make test` it would load
    coverage (configparser, json, selectors) into the child whose imports these tests count."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
