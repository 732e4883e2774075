"""A checkov policy scan of the example chart's rendered manifests (defaults and every
ci/*-values.yaml): every finding is one of tests/charts/checkov-skips.yaml (each with its
reason), every skip there still fires, and the hardening checks pass. checkov comes from
.ci/setup-helm.sh (its own venv: it pins packaging<24, which pytest cannot use)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import Helm, ci_values_files, find_tool, missing

pytestmark = pytest.mark.helm

SKIPS: dict[str, str] = yaml.safe_load((Path(__file__).parent / "checkov-skips.yaml").read_text())
# The container hardening the library promises: no privilege escalation, read-only root,
# non-root high uid, no capabilities (and no NET_RAW), seccomp, CPU and memory limits.
HARDENING = ["CKV_K8S_11", "CKV_K8S_13", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_31"]
HARDENING += ["CKV_K8S_37", "CKV_K8S_40"]


def scan(directory: Path) -> list[dict[str, Any]]:
    checkov = find_tool("INITKIT_CHECKOV", "checkov")
    if checkov is None:
        missing("checkov not found at .ci/bin/checkov")
    assert checkov is not None
    result = subprocess.run(
        [str(checkov), "--directory", str(directory), "--framework", "kubernetes", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: findings, judged below
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def render_all(helm: Helm, directory: Path, *set_values: str) -> None:
    for values in [None, *ci_values_files()]:
        name = values.name if values else "defaults.yaml"
        (directory / name).write_text(helm.template_text(*([values] if values else []), set_values=set_values))


@pytest.fixture(scope="module")
def findings(helm_factory: Callable[[str], Helm], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("checkov")
    render_all(helm_factory("helm4"), directory)  # helm3 renders the same (test_render)
    results = [report["results"] for report in scan(directory)]
    return {
        "failed": [check for r in results for check in r["failed_checks"]],
        "passed": [check for r in results for check in r["passed_checks"]],
    }


def test_every_finding_has_a_reason(findings: dict[str, Any]) -> None:
    unexplained = sorted(
        {
            f"{c['check_id']} {c['check_name']} ({c['resource']})"
            for c in findings["failed"]
            if c["check_id"] not in SKIPS
        }
    )
    assert unexplained == [], "fix these, or add each with a one-line reason to checkov-skips.yaml"


def test_every_skip_still_fires(findings: dict[str, Any]) -> None:
    assert sorted(set(SKIPS) - {c["check_id"] for c in findings["failed"]}) == []
    assert all(isinstance(reason, str) and len(reason) > 20 for reason in SKIPS.values())


def test_the_workloads_pass_the_hardening_checks(findings: dict[str, Any]) -> None:
    workloads = {c["resource"] for c in findings["passed"] if c["resource"].split(".")[0] in ("Deployment", "Pod")}
    assert len(workloads) >= 2, "the scan saw the Deployment and the Pod"
    for check_id in HARDENING:
        passed = {c["resource"] for c in findings["passed"] if c["check_id"] == check_id}
        assert passed >= workloads, f"{check_id} did not pass for {sorted(workloads - passed)}"


def test_the_scan_sees_the_init_containers(helm_factory: Callable[[str], Helm], tmp_path: Path) -> None:
    """A weakened init container (privilege escalation allowed) is a finding."""
    (tmp_path / "weak.yaml").write_text(
        helm_factory("helm4").template_text(set_values=("initkit.securityContext.allowPrivilegeEscalation=true",))
    )
    failed = {c["check_id"] for r in scan(tmp_path) for c in r["results"]["failed_checks"]}
    assert "CKV_K8S_20" in failed
