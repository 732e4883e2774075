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

from tests.charts.conftest import Helm, ci_values_files, find_tool, missing, workload

pytestmark = pytest.mark.helm


def load_skips() -> dict[str, tuple[str, list[str] | None]]:
    """check id -> (reason, the ci files whose manifests it is accepted in; None: all)."""
    skips = {}
    for check_id, entry in yaml.safe_load((Path(__file__).parent / "checkov-skips.yaml").read_text()).items():
        if isinstance(entry, dict):
            assert set(entry) == {"reason", "only"}, f"{check_id}: keys are reason and only"
            skips[check_id] = (entry["reason"], list(entry["only"]))
        else:
            skips[check_id] = (entry, None)
    return skips


SKIPS = load_skips()
# The capabilities the permissions step adds, the one root container the library renders.
PERMISSIONS_CAPABILITIES = {"CHOWN", "FOWNER", "DAC_READ_SEARCH", "DAC_OVERRIDE"}
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


def skipped(check: dict[str, Any]) -> bool:
    """The finding is one checkov-skips.yaml accepts, in the file it came from."""
    if check["check_id"] not in SKIPS:
        return False
    only = SKIPS[check["check_id"]][1]
    return only is None or Path(check["file_path"]).name in only


def test_every_finding_has_a_reason(findings: dict[str, Any]) -> None:
    unexplained = sorted(
        {
            f"{c['check_id']} {c['check_name']} ({c['resource']} in {Path(c['file_path']).name})"
            for c in findings["failed"]
            if not skipped(c)
        }
    )
    assert unexplained == [], "fix these, or add each with a one-line reason to checkov-skips.yaml"


def test_every_skip_still_fires(findings: dict[str, Any]) -> None:
    assert sorted(set(SKIPS) - {c["check_id"] for c in findings["failed"] if skipped(c)}) == []
    assert all(isinstance(reason, str) and len(reason) > 20 for reason, _ in SKIPS.values())
    ci_files = {values.name for values in ci_values_files()}
    for check_id, (_, only) in SKIPS.items():
        assert only is None or (only and set(only) <= ci_files), f"{check_id}: only names no ci file"


def test_added_capabilities_only_in_permissions_steps(helm_factory: Callable[[str], Helm]) -> None:
    """CKV_K8S_25 (added capabilities) is accepted where a permissions step runs: checkov
    names only the workload, so this checks that its container is that step's and adds
    nothing but what the step needs, and that no other container adds any."""
    helm = helm_factory("helm4")
    seen = set()
    for values in [None, *ci_values_files()]:
        spec = workload(helm.template(*([values] if values else [])))
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            added = set(container.get("securityContext", {}).get("capabilities", {}).get("add", []))
            if not added:
                continue
            where = f"{container['name']} in {values.name if values else 'defaults'}"
            assert "permissions" in container["args"], f"{where} adds {sorted(added)} but is no permissions step"
            assert {"CHOWN", "FOWNER"} <= added <= PERMISSIONS_CAPABILITIES, where
            seen.add(values.name if values else "defaults")
    assert sorted(seen) == SKIPS["CKV_K8S_25"][1]


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
