"""`initkit info`: the pod facts, and which wait-for targets this installation can check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[2]
DB_SCHEMES = ["postgres", "postgresql", "mysql", "mariadb", "redis", "rediss"]
# every image: DNS, TCP, HTTP, files, and the Kubernetes API targets (requests only)
CORE = ["dns", "tcp", "http", "https", "file", "job", "pods", "endpoints", "daemonset", "cr"]


def test_info_lists_every_scheme_whose_driver_is_installed(run_cli):
    result = run_cli("info", env={"POD_IP": "10.0.0.9"})
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["wait_for"] == [*CORE, *DB_SCHEMES]
    assert info["pod"]["ip"] == "10.0.0.9"


def only_click(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python sees initkit and click only, as in the slim image: no drivers."""
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "click").symlink_to(Path(click.__file__).parent)
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{libs}", "POD_IP": "10.0.0.9"}


def test_without_the_drivers_info_lists_the_core_schemes_and_a_db_target_is_bad_input(tmp_path):
    env = only_click(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "initkit", "info"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["wait_for"] == CORE

    for target, driver in [("postgres://db", "psycopg"), ("mysql://db", "pymysql"), ("rediss://cache", "redis")]:
        proc = subprocess.run(
            [sys.executable, "-S", "-m", "initkit", "wait-for", target, "--timeout", "5s"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.splitlines()
        assert f"the {driver} driver, which this image leaves out: use the initkit image" in line


def test_info_imports_no_driver():
    """find_spec finds a driver without importing it: info stays as fast as the other commands."""
    code = (
        "import sys\nfrom initkit.cli import run\nrun(['info'])\n"
        "print('loaded:', *sorted(m for m in ('psycopg', 'pymysql', 'redis') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "loaded:"
