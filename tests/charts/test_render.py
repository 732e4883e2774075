"""helm template of the example chart (defaults and every ci/*-values.yaml), each
manifest validated strictly against the Kubernetes 1.30 and 1.37 schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest

from tests.charts.conftest import KUBE_VERSIONS, Helm, HelmFailed, ci_values_files, workload

pytestmark = pytest.mark.helm

CASES = [None, *ci_values_files()]


def case_id(values: Path | None) -> str:
    return "defaults" if values is None else values.name


# ci values that need a newer Kubernetes than the chart's 1.25: copy's image volume
# (`volumes[].image`) is in the API from 1.31 (on by default since 1.35).
NEWER = {"copy-values.yaml": "1.31.0"}


def older(version: str, than: str) -> bool:
    return tuple(map(int, version.split("."))) < tuple(map(int, than.split(".")))


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_rendered_manifests_are_valid_kubernetes(helm: Helm, values: Path | None) -> None:
    """Rendered for each Kubernetes version (--kube-version), and valid there; a values file
    that needs a newer one fails to render below it, naming the version, instead."""
    for version in KUBE_VERSIONS:
        args = [values] if values else []
        needs = NEWER.get(values.name if values else "")
        if needs and older(version, needs):
            with pytest.raises(HelmFailed) as failed:
                helm.template(*args, extra=("--kube-version", version))
            assert f"needs Kubernetes {needs[:-2]} or newer" in failed.value.stderr, failed.value.stderr
            continue
        docs = helm.template(*args, extra=("--kube-version", version))
        assert {d["kind"] for d in docs} >= {"ConfigMap"}
        assert workload(docs)["initContainers"], "no init containers rendered"
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = f"{doc['kind']}/{doc['metadata']['name']} against Kubernetes {version}"
                pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


def test_ci_values_cover_every_step_kind(helm: Helm) -> None:
    every = {"wait-for", "register", "sleep", "git-clone", "render", "permissions", "fetch", "copy", "sysctl", "certs"}
    kinds = set()
    for values in ci_values_files():
        for container in workload(helm.template(values))["initContainers"]:
            kinds.add(next(arg for arg in container["args"] if arg in every))
    assert kinds == every


@pytest.mark.parametrize("version", ["1.24.0", "1.20.0"])
def test_kube_version_below_1_25_fails(helm: Helm, version: str) -> None:
    """The example's Chart.yaml kubeVersion, and the library's own check for charts that lack one."""
    result = helm.run("template", "myapp", helm.example, "--kube-version", version, check=False)
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "Kubernetes 1.25" in result.stderr, result.stderr


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_helm3_and_helm4_render_the_same(helm_factory: Callable[[str], Helm], values: Path | None) -> None:
    args = [values] if values else []
    assert helm_factory("helm3").template_text(*args) == helm_factory("helm4").template_text(*args)
