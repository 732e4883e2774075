"""Pod Security, checked by the real apiserver's admission (kubectl apply --dry-run=server).

Every step of the example chart (each ci/*-values.yaml, rendered as a bare Pod so `enforce`
applies, not only a warning) is admitted under `restricted`, except `permissions`, which runs
as root with CHOWN, FOWNER and DAC_OVERRIDE and is admitted under `baseline`, and `sysctl`
with `privileged: true` (vm.max_map_count is the node's, writable only by a privileged
container), which is admitted under `privileged` only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.charts.conftest import Helm, ci_values_files, helm_factory  # noqa: F401 (a fixture)
from tests.cluster.conftest import Kube, KubectlFailed

PERMISSIONS = next(p for p in ci_values_files() if p.name == "permissions-values.yaml")
SYSCTL = next(p for p in ci_values_files() if p.name == "sysctl-values.yaml")
RESTRICTED = [p for p in ci_values_files() if p not in (PERMISSIONS, SYSCTL)]
# A pod with API wait targets names the ServiceAccount the chart renders; a server dry run
# creates nothing, so the pod runs as `default` here (same token mount, same admission).
NO_RBAC = ("--set", "initkit.rbac.create=false", "--set", "initkit.rbac.serviceAccountName=default")


@pytest.fixture(scope="module")
def helm(helm_factory) -> Helm:  # noqa: F811
    return helm_factory("helm4")


def dry_run(kube: Kube, helm: Helm, values: Path, namespace: str) -> str:
    rendered = helm.run(
        "template", "myapp", helm.example, "--namespace", namespace, "--values", values, "--set", "kind=Pod", *NO_RBAC
    )
    return kube.run("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=rendered.stdout)


@pytest.mark.parametrize("values", RESTRICTED, ids=lambda p: p.name)
def test_step_admitted_under_restricted(kube: Kube, helm: Helm, values: Path) -> None:
    ns = kube.namespace("restricted")
    assert "pod/myapp-initkit-example created (server dry run)" in dry_run(kube, helm, values, ns)


def test_permissions_refused_under_restricted(kube: Kube, helm: Helm) -> None:
    """The control: the namespace's level is enforced, and permissions needs more than restricted."""
    ns = kube.namespace("restricted")
    with pytest.raises(KubectlFailed, match=r"violates PodSecurity \"restricted:latest\".*runAsNonRoot"):
        dry_run(kube, helm, PERMISSIONS, ns)


def test_permissions_ci_values_admitted_under_baseline(kube: Kube, helm: Helm) -> None:
    """The permissions step as ci/permissions-values.yaml writes it, with its default
    capabilities (CHOWN, FOWNER, DAC_OVERRIDE: all in baseline; never DAC_READ_SEARCH)."""
    ns = kube.namespace("baseline")
    assert "pod/myapp-initkit-example created (server dry run)" in dry_run(kube, helm, PERMISSIONS, ns)


def test_dac_read_search_is_refused_under_baseline(kube: Kube, helm: Helm, tmp_path: Path) -> None:
    """The control: baseline is enforced, and the capability the chart no longer adds is outside it."""
    values = yaml.safe_load(PERMISSIONS.read_text())
    values["initkit"]["steps"]["volume-permissions"]["extraCapabilities"] = ["DAC_READ_SEARCH"]
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    ns = kube.namespace("baseline")
    with pytest.raises(KubectlFailed, match=r"violates PodSecurity \"baseline:latest\".*DAC_READ_SEARCH"):
        dry_run(kube, helm, tmp_path / "values.yaml", ns)


def test_privileged_sysctl_refused_under_baseline(kube: Kube, helm: Helm) -> None:
    """The privilege ci/sysctl-values.yaml writes out is what baseline refuses."""
    ns = kube.namespace("baseline")
    with pytest.raises(KubectlFailed, match=r"violates PodSecurity \"baseline:latest\".*privileged"):
        dry_run(kube, helm, SYSCTL, ns)


def test_privileged_sysctl_admitted_under_privileged(kube: Kube, helm: Helm) -> None:
    ns = kube.namespace("privileged")
    assert "pod/myapp-initkit-example created (server dry run)" in dry_run(kube, helm, SYSCTL, ns)
