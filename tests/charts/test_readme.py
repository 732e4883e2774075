"""The library chart's README tables are generated from the `## @param` comments of
values.yaml by readme-generator-for-helm (.ci/setup-helm.sh installs it): regenerating
them into a copy must change nothing."""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.charts.conftest import KUBE_VERSIONS, LIBRARY, Helm, find_tool, missing


def test_readme_parameters_are_generated_from_values(tmp_path: Path) -> None:
    generator = find_tool("INITKIT_README_GENERATOR", "readme-generator/node_modules/.bin/readme-generator")
    if generator is None:
        missing("readme-generator not found at .ci/bin/readme-generator")
    assert generator is not None
    readme = tmp_path / "README.md"
    shutil.copyfile(LIBRARY / "README.md", readme)
    result = subprocess.run(
        [str(generator), "--values", str(LIBRARY / "values.yaml"), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    want, have = readme.read_text(), (LIBRARY / "README.md").read_text()
    diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "README.md", "regenerated"))
    assert not diff, (
        "charts/initkit/README.md is stale; run .ci/bin/readme-generator/node_modules/.bin/readme-generator "
        f"--values charts/initkit/values.yaml --readme charts/initkit/README.md\n{diff}"
    )


def test_every_value_has_a_param_comment() -> None:
    """readme-generator checks this too; here the check does not need node."""

    def leaves(node: object, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node:
            return [key for k, v in node.items() for key in leaves(v, f"{prefix}{k}.")]
        return [prefix.rstrip(".")]

    text = (LIBRARY / "values.yaml").read_text()
    params = {line.split()[2] for line in text.splitlines() if line.startswith("## @param ")}
    undocumented = [
        key for key in leaves(yaml.safe_load(text)) if not any(key == p or key.startswith(f"{p}.") for p in params)
    ]
    assert undocumented == []


# ---- every YAML example of the chart README is rendered -------------------------------------------

README = LIBRARY / "README.md"
PLACEHOLDER = "          ...\n"  # the README's "your app container here"
APP_CONTAINER = "          image: registry.example.invalid/app:1\n"


def yaml_blocks() -> list[str]:
    """The README's ```yaml blocks, in order."""
    text = README.read_text()
    return [part.split("```", 1)[0] for part in text.split("```yaml\n")[1:]]


def _kind(block: str) -> str:
    if block.startswith("dependencies:"):
        return "chart"
    if "common.images.renderPullSecrets" in block:
        return "bitnami"
    if '(dict "values" .Values.setup' in block:
        return "two-configurations"
    if "{{- $initkit := dict" in block:
        return "pod-template"
    return "values"


def test_every_yaml_block_of_the_readme_is_one_the_tests_render() -> None:
    """A new block of an unknown shape fails here, so no example goes untested."""
    kinds = [_kind(block) for block in yaml_blocks()]
    assert kinds.count("pod-template") == 1 and kinds.count("bitnami") == 1, kinds
    assert kinds.count("chart") == 2 and kinds.count("two-configurations") == 1, kinds
    for block, kind in zip(yaml_blocks(), kinds, strict=True):
        if kind in ("chart", "values"):
            assert isinstance(yaml.safe_load(block), dict), block


def _readme_chart(helm: Helm, tmp_path: Path, template: str, aliases: tuple[str, ...] = ("",)) -> Path:
    """A consumer chart whose Deployment's pod spec is `template` (a README block)."""
    chart = tmp_path / "consumer"
    (chart / "templates").mkdir(parents=True)
    deps = [
        {"name": "initkit", "version": "0.1.0", "repository": f"file://{helm.library}", **({"alias": a} if a else {})}
        for a in aliases
    ]
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump(
            {"apiVersion": "v2", "name": "myapp", "version": "1.0.0", "appVersion": "1.2.3", "dependencies": deps}
        )
    )
    if aliases == ("",):
        (chart / "templates" / "initkit-rbac.yaml").write_text(RBAC_LINE + "\n")
    (chart / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
        + template.replace(PLACEHOLDER, APP_CONTAINER)
    )
    (chart / "templates" / "_common.tpl").write_text(COMMON_TPL)
    helm.run("dependency", "build", chart)
    return chart


# common.images.renderPullSecrets as Bitnami's common chart behaves (written here from that
# behaviour): each image's pullSecrets, then global.imagePullSecrets, names through tpl,
# without duplicates, under one imagePullSecrets key; nothing when empty.
COMMON_TPL = """\
{{- define "common.images.renderPullSecrets" -}}
{{- $names := list -}}
{{- $all := list -}}
{{- range .images }}{{ $all = concat $all (.pullSecrets | default list) }}{{ end -}}
{{- $all = concat $all ((.context.Values.global | default dict).imagePullSecrets | default list) -}}
{{- range $all -}}
{{- $name := . -}}
{{- if kindIs "map" . }}{{ $name = .name | default "" }}{{ end -}}
{{- $name = tpl $name $.context -}}
{{- if and $name (not (has $name $names)) }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- if $names }}
imagePullSecrets:
{{- range $names }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
"""


# The README's templates/initkit-rbac.yaml, written inline in "Add it to your chart".
RBAC_LINE = re.search(r"`(\{\{- include \"initkit.rbac\" [^`]+)`", README.read_text()).group(1)


def _versions(obj: dict[str, Any]) -> list[str]:
    """KUBE_VERSIONS, but 1.30 for a pod with an image volume (copy's from.image: 1.31+)."""
    volumes = obj["spec"]["template"]["spec"].get("volumes") or []
    if any("image" in v for v in volumes):
        return [v for v in KUBE_VERSIONS if tuple(map(int, v.split(".")[:2])) >= (1, 31)]
    return list(KUBE_VERSIONS)


def _render_all(helm: Helm, chart: Path, tmp_path: Path, values: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    text = helm.template_text(path, chart=chart)
    return text, [d for d in yaml.safe_load_all(text) if d]


def _render(helm: Helm, chart: Path, tmp_path: Path, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text, _ = _render_all(helm, chart, tmp_path, values)
    (doc,) = [d for d in text.split("\n---\n") if "\nkind: Deployment\n" in d]
    obj = yaml.safe_load(doc)
    for version in _versions(obj):
        kubernetes_validate.validate(obj, version, strict=True)
    return doc, obj


def _one(kind: str) -> str:
    (block,) = [b for b in yaml_blocks() if _kind(b) == kind]
    return block


@pytest.mark.helm
@pytest.mark.parametrize("index", [i for i, b in enumerate(yaml_blocks()) if _kind(b) == "values"])
def test_each_values_example_renders_into_the_readmes_pod_template(helm: Helm, tmp_path: Path, index: int) -> None:
    values = yaml.safe_load(yaml_blocks()[index])
    chart = _readme_chart(helm, tmp_path, _one("pod-template"))
    text, obj = _render(helm, chart, tmp_path, values)
    spec = obj["spec"]["template"]["spec"]
    assert spec["initContainers"], "each example renders at least one init container"
    assert len(re.findall(r"^      imagePullSecrets:", text, re.M)) <= 1
    for container in spec["initContainers"]:
        assert "{{" not in yaml.safe_dump(container["securityContext"]), "templates rendered"


@pytest.mark.helm
def test_the_pod_template_merges_pull_secrets_under_one_key(helm: Helm, tmp_path: Path) -> None:
    chart = _readme_chart(helm, tmp_path, _one("pod-template"))
    values = {
        "imagePullSecrets": [{"name": "app-pull"}],
        "global": {"imagePullSecrets": ["corp-pull"]},
        "initkit": {"image": {"pullSecrets": ["initkit-pull", "app-pull"]}, "steps": {}},
    }
    text, obj = _render(helm, chart, tmp_path, values)
    assert len(re.findall(r"^      imagePullSecrets:", text, re.M)) == 1, "one key"
    assert obj["spec"]["template"]["spec"]["imagePullSecrets"] == [
        {"name": "app-pull"},
        {"name": "initkit-pull"},
        {"name": "corp-pull"},
    ], "the consumer's first, then initkit's, without duplicates"
    _, empty = _render(helm, chart, tmp_path, {"initkit": {"steps": {}}})
    assert "imagePullSecrets" not in empty["spec"]["template"]["spec"]


@pytest.mark.helm
def test_the_bitnami_pull_secrets_line_gives_one_key_with_both(helm: Helm, tmp_path: Path) -> None:
    pod = _one("pod-template").replace(
        '      {{- include "initkit.renderImagePullSecrets" (merge (dict "secrets" .Values.imagePullSecrets) $initkit)'
        " | nindent 6 }}\n",
        _one("bitnami"),
    )
    assert "common.images.renderPullSecrets" in pod
    chart = _readme_chart(helm, tmp_path, pod)
    values = {
        "image": {"pullSecrets": ["{{ .Release.Name }}-app-pull"]},
        "initkit": {
            "image": {"pullSecrets": ["initkit-pull"]},
            "steps": {"nap": {"kind": "sleep", "order": 1, "duration": 1}},
        },
    }
    text, obj = _render(helm, chart, tmp_path, values)
    assert len(re.findall(r"^      imagePullSecrets:", text, re.M)) == 1
    assert obj["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "myapp-app-pull"}, {"name": "initkit-pull"}]


@pytest.mark.helm
def test_the_chart_yaml_and_two_configuration_examples_render(helm: Helm, tmp_path: Path) -> None:
    single, double = [yaml.safe_load(b)["dependencies"] for b in yaml_blocks() if _kind(b) == "chart"]
    assert single[0]["name"] == "initkit" and [d["alias"] for d in double] == ["setup", "fetch"]
    pod = _one("pod-template")
    start = pod.index("      initContainers:\n")
    end = pod.index("      containers:\n")
    pod = pod[:start] + _one("two-configurations") + pod[end:]
    pod = pod.replace('dict "values" .Values.initkit', 'dict "values" .Values.setup')
    chart = _readme_chart(helm, tmp_path, pod, aliases=("setup", "fetch"))
    nap = {"kind": "sleep", "order": 1, "duration": 1}
    values = {"setup": {"steps": {"nap": nap}}, "fetch": {"steps": {"nap-2": nap}}}
    _, obj = _render(helm, chart, tmp_path, values)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["initContainers"]] == ["nap", "nap-2"]


@pytest.mark.helm
def test_the_readmes_api_wait_example_gets_its_rbac(helm: Helm, tmp_path: Path) -> None:
    """The wait-for example with API targets, in the README's pod template and rbac file:
    the ServiceAccount, a Role on jobs and endpointslices, a ClusterRole on pods bound in
    monitoring only; the pod mounts the token. An example without API targets: none."""
    (block,) = [b for b in yaml_blocks() if "secretFiles" in b]
    chart = _readme_chart(helm, tmp_path, _one("pod-template"))
    _, docs = _render_all(helm, chart, tmp_path, yaml.safe_load(block))
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in docs}
    assert kinds == {
        ("Deployment", None),
        ("ServiceAccount", "demo"),
        ("Role", "demo"),
        ("RoleBinding", "demo"),
        ("ClusterRole", None),
        ("RoleBinding", "monitoring"),
    }
    (role,) = [d for d in docs if d["kind"] == "Role"]
    assert sorted((r["apiGroups"][0], r["resources"][0]) for r in role["rules"]) == [
        ("batch", "jobs"),
        ("discovery.k8s.io", "endpointslices"),
    ]
    (cluster,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert cluster["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("myapp-initkit", True)
    _, docs = _render_all(
        helm, chart, tmp_path, {"initkit": {"steps": {"nap": {"kind": "sleep", "order": 1, "duration": 1}}}}
    )
    assert [d["kind"] for d in docs] == ["Deployment"]
    assert docs[0]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
