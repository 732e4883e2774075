"""The Bitnami-style test chart (tests/charts/consumers/bitnami-style), rendered by each helm:
its five init containers come from values alone, follow the chart's own values through tpl,
share the chart's one `imagePullSecrets:` key, and stay within Pod Security (restricted;
baseline for the permissions step only). tests/cluster/test_bitnami_style.py runs it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.charts.conftest import ROOT, Helm

pytestmark = pytest.mark.helm

CHART = ROOT / "tests" / "charts" / "consumers" / "bitnami-style"
SHA = "ab" * 32
STEPS = ["volume-permissions", "wait-for-backend", "load-dags", "model", "copy-defaults"]
BASELINE_CAPS = {"CHOWN", "FOWNER", "DAC_OVERRIDE"}  # of the ones a permissions step may want


def chart(helm: Helm) -> Path:
    """The chart beside the library in helm's copy, its file:// dependency pointed there, built offline."""
    dest = helm.charts / CHART.name
    if not dest.exists():
        shutil.copytree(CHART, dest, ignore=shutil.ignore_patterns("*.tgz", "charts", "Chart.lock"))
        meta = dest / "Chart.yaml"
        meta.write_text(meta.read_text().replace("file://../../../../charts/initkit", "file://../initkit"))
        helm.run("dependency", "build", dest)
    return dest


def pod_spec(helm: Helm, *set_values: str) -> dict[str, Any]:
    docs = helm.template(chart=chart(helm), set_values=(f"model.sha256={SHA}", *set_values))
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    for version in ("1.37.0",):
        kubernetes_validate.validate(sts, version, strict=True)
    return sts["spec"]["template"]["spec"]


def by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in spec["initContainers"]}


def test_the_templates_hold_no_step_code() -> None:
    """Goal 0: initkit appears in the templates as its two documented includes and its image
    block in the chart's own pull-secret helper, nothing per step."""
    lines = [
        line.strip()
        for path in (CHART / "templates").glob("*")
        for line in path.read_text().splitlines()
        if "initkit" in line
    ]
    assert lines == [
        '{{- include "bstyle.images.renderPullSecrets" (dict "images" (list .Values.image .Values.initkit.image) '
        '"context" $) | nindent 6 }}',
        '{{- include "initkit.initContainers" (dict "values" .Values.initkit "context" $) | nindent 8 }}',
        '{{- include "initkit.volumes" (dict "values" .Values.initkit "context" $) | nindent 8 }}',
    ], lines


def test_steps_follow_the_charts_values(helm: Helm) -> None:
    spec = pod_spec(helm, "primary.containerSecurityContext.runAsUser=2000", "primary.podSecurityContext.fsGroup=3000")
    steps = by_name(spec)
    assert list(steps) == STEPS
    assert steps["volume-permissions"]["args"] == [
        "permissions",
        "/bitnami/postgresql",
        "--owner",
        "2000:3000",
        "--path",
        "/bitnami/postgresql/data",
        "-",
        "u=rwX,go=",
        "--mkdir",
    ]
    assert steps["volume-permissions"]["volumeMounts"] == [
        {"name": "data", "mountPath": "/bitnami/postgresql", "subPath": "postgresql"}
    ]
    assert steps["wait-for-backend"]["args"][:2] == ["wait-for", "http://backend/health"]
    clone = steps["load-dags"]
    assert clone["args"] == ["git-clone", "git://git/dags.git", "/dags/repo"]
    assert (clone["securityContext"]["runAsUser"], clone["securityContext"]["runAsGroup"]) == (2000, 3000)
    assert clone["volumeMounts"] == [{"name": "data", "mountPath": "/dags", "subPath": "dags"}]
    assert steps["model"]["args"][:4] == [
        "fetch",
        "http://models/resnet/saved_model.pb",
        "/models/resnet/saved_model.pb",
        "--sha256",
    ]
    assert steps["model"]["args"][4] == SHA
    copy = steps["copy-defaults"]
    assert copy["args"][1:3] == ["/var/run/initkit/copy-src/opt/app/defaults", "/opt/app/conf"]
    assert (copy["securityContext"]["runAsUser"], copy["securityContext"]["runAsGroup"]) == (2000, 3000)
    (src,) = [v for v in spec["volumes"] if v["name"] == "copy-defaults-src"]
    # the reference is the chart's own image helper, called from a value
    app = spec["containers"][0]["image"]
    assert src["image"] == {"reference": app, "pullPolicy": "IfNotPresent"}


def test_a_model_checksum_must_be_given(helm: Helm) -> None:
    result = helm.run("template", "myapp", chart(helm), check=False)
    assert result.returncode != 0
    assert 'step "model" (fetch): sha256 is required' in result.stderr, result.stderr


def test_pull_secrets_merge_into_one_key(helm: Helm) -> None:
    text = helm.template_text(
        chart=chart(helm),
        set_values=(
            f"model.sha256={SHA}",
            "image.pullSecrets={app-pull,shared}",
            "initkit.image.pullSecrets={initkit-pull}",
            "global.imagePullSecrets={shared}",
        ),
    )
    assert text.count("imagePullSecrets:") == 1
    spec = pod_spec(
        helm,
        "image.pullSecrets={app-pull,shared}",
        "initkit.image.pullSecrets={initkit-pull}",
        "global.imagePullSecrets={shared}",
    )
    assert spec["imagePullSecrets"] == [{"name": "shared"}, {"name": "app-pull"}, {"name": "initkit-pull"}]


def restricted(container: dict[str, Any], pod: dict[str, Any]) -> bool:
    sc = container.get("securityContext", {})
    seccomp = (sc.get("seccompProfile") or pod.get("securityContext", {}).get("seccompProfile") or {}).get("type")
    return (
        sc.get("runAsNonRoot") is True
        and sc.get("runAsUser", 1) != 0
        and sc.get("allowPrivilegeEscalation") is False
        and sc.get("capabilities", {}).get("drop") == ["ALL"]
        and not sc.get("capabilities", {}).get("add")
        and seccomp == "RuntimeDefault"
    )


def test_pod_security(helm: Helm) -> None:
    spec = pod_spec(helm)
    for container in spec["initContainers"] + spec["containers"]:
        if container["name"].startswith("volume-permissions"):
            sc = container["securityContext"]
            assert set(sc["capabilities"]["add"]) <= BASELINE_CAPS and sc["capabilities"]["drop"] == ["ALL"]
            assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
        else:
            assert restricted(container, spec), container["name"]
    without = pod_spec(helm, "volumePermissions.enabled=false")
    assert not [c for c in without["initContainers"] if c["name"].startswith("volume-permissions")]
    assert all(restricted(c, without) for c in without["initContainers"] + without["containers"])
    assert not re.search(r"DAC_READ_SEARCH", str(spec))
