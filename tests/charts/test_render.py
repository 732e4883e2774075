"""helm template of the example chart (defaults and every ci/*-values.yaml), each
manifest validated strictly against the Kubernetes 1.30 and 1.37 schemas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest

from tests.charts.conftest import KUBE_VERSIONS, Helm, ci_values_files, workload

pytestmark = pytest.mark.helm

CASES = [None, *ci_values_files()]


def case_id(values: Path | None) -> str:
    return "defaults" if values is None else values.name


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_rendered_manifests_are_valid_kubernetes(helm: Helm, values: Path | None) -> None:
    docs = helm.template(*([values] if values else []))
    assert {d["kind"] for d in docs} >= {"ConfigMap"}
    assert workload(docs)["initContainers"], "no init containers rendered"
    for doc in docs:
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = f"{doc['kind']}/{doc['metadata']['name']} against Kubernetes {version}"
                pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


def test_ci_values_cover_every_step_kind() -> None:
    import yaml

    kinds = set()
    for values in ci_values_files():
        for step in yaml.safe_load(values.read_text())["initkit"]["steps"]:
            if step.get("enabled", True):
                kinds.add(step["kind"])
    assert kinds == {"wait-for", "register", "sleep", "git-clone", "render"}


@pytest.mark.parametrize("values", CASES, ids=case_id)
def test_helm3_and_helm4_render_the_same(helm_factory: Callable[[str], Helm], values: Path | None) -> None:
    args = [values] if values else []
    assert helm_factory("helm3").template_text(*args) == helm_factory("helm4").template_text(*args)
