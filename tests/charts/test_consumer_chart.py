"""A user's own chart, made with `helm create` and edited as the README says: the initkit
dependency (with or without an alias, once or twice), one include each for the init
containers, the volumes and the pull secrets next to the scaffold's own, validated
against Kubernetes 1.30 and 1.37 with each helm."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.charts.conftest import KUBE_VERSIONS, ROOT, Helm, HelmFailed

pytestmark = pytest.mark.helm

# The scaffold's blocks and what the README tells the user to write instead.
SCAFFOLD_PULL_SECRETS = """\
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
"""
SCAFFOLD_CONTAINERS = "      containers:\n"
SCAFFOLD_VOLUMES = """\
      {{- with .Values.volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
"""


def edited_deployment(text: str, blocks: list[str]) -> str:
    """The scaffold's deployment.yaml with one include per initkit values block (e.g. .Values.initkit)."""

    def includes(template: str) -> str:
        return "".join(
            f'        {{{{- include "{template}" (dict "values" {block} "context" $) | nindent 8 }}}}\n'
            for block in blocks
        )

    for old in (SCAFFOLD_PULL_SECRETS, SCAFFOLD_CONTAINERS, SCAFFOLD_VOLUMES):
        assert text.count(old) == 1, f"helm create's scaffold changed: {old!r}"
    text = text.replace(
        SCAFFOLD_PULL_SECRETS,
        "      imagePullSecrets:\n"
        "        {{- with .Values.imagePullSecrets }}\n"
        "        {{- toYaml . | nindent 8 }}\n"
        "        {{- end }}\n" + includes("initkit.imagePullSecrets"),
    )
    text = text.replace(
        SCAFFOLD_CONTAINERS, "      initContainers:\n" + includes("initkit.initContainers") + SCAFFOLD_CONTAINERS
    )
    return text.replace(
        SCAFFOLD_VOLUMES,
        "      volumes:\n"
        "        {{- with .Values.volumes }}\n"
        "        {{- toYaml . | nindent 8 }}\n"
        "        {{- end }}\n" + includes("initkit.volumes"),
    )


def helm_create(helm: Helm, tmp_path: Path, aliases: list[str | None]) -> Path:
    """`helm create myapp`, the initkit dependency once per alias (None: no alias), the scaffold edited."""
    helm.run("create", tmp_path / "myapp")
    chart = tmp_path / "myapp"
    deps = []
    for alias in aliases:
        dep = {"name": "initkit", "version": "0.1.0", "repository": f"file://{helm.library}"}
        if alias:
            dep["alias"] = alias
        deps.append(dep)
    with (chart / "Chart.yaml").open("a") as f:
        f.write(yaml.safe_dump({"dependencies": deps}))
    deployment = chart / "templates" / "deployment.yaml"
    blocks = [f".Values.{alias or 'initkit'}" for alias in aliases]
    deployment.write_text(edited_deployment(deployment.read_text(), blocks))
    helm.run("dependency", "build", chart)
    return chart


def render(helm: Helm, chart: Path, tmp_path: Path, values: dict[str, Any], *extra: str) -> str:
    path = tmp_path / "user-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm.template_text(path, chart=chart, extra=extra)


def deployment_of(text: str) -> tuple[str, dict[str, Any]]:
    """The Deployment's text (to count keys the YAML parser would merge) and its object."""
    (doc,) = [d for d in text.split("\n---\n") if "\nkind: Deployment\n" in d]
    obj = yaml.safe_load(doc)
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)
    return doc, obj


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


SCAFFOLD_VOLUME = {"name": "foo", "secret": {"secretName": "mysecret", "optional": False}}
WAIT = {"kind": "wait-for", "order": 10, "targets": ["tcp:{{ .Release.Name }}-postgresql:5432"], "timeout": "2m"}
REGISTER = {
    "kind": "register",
    "order": 20,
    "url": 'http://{{ .Release.Name }}-registry/pods/{{ "{{ pod.name }}" }}',
    "json": {"ip": "{{ pod.ip }}"},
    "token": {"secret": "{{ .Release.Name }}-register", "key": "token"},
}
CLONE = {
    "kind": "git-clone",
    "order": 30,
    "repo": "https://git.example.invalid/{{ .Release.Namespace }}/site.git",
    "ref": "{{ .Chart.AppVersion }}",
    "username": "bot",
    "password": {"secret": "git-credentials", "key": "password"},
    "volume": {"name": "site", "mountPath": "/site"},
}


@pytest.mark.parametrize("alias", [None, "setup"], ids=["no-alias", "alias"])
def test_helm_create_chart_has_one_volumes_list_with_both(helm: Helm, tmp_path: Path, alias: str | None) -> None:
    chart = helm_create(helm, tmp_path, [alias])
    block = alias or "initkit"
    values = {
        "volumes": [SCAFFOLD_VOLUME],
        block: {"volumes": [{"name": "site", "emptyDir": {}}], "steps": {"wait": WAIT, "register": REGISTER}},
    }
    text, deployment = deployment_of(render(helm, chart, tmp_path, values))
    assert len(re.findall(r"^      volumes:$", text, re.M)) == 1, "one volumes: key"
    assert len(re.findall(r"^      initContainers:$", text, re.M)) == 1
    spec = pod_spec(deployment)
    assert [v["name"] for v in spec["volumes"]] == ["foo", "site", "register-token"], "the app's, then initkit's"
    assert spec["volumes"][2]["secret"]["secretName"] == "myapp-register", "ref names go through tpl"
    wait, register = spec["initContainers"]
    assert wait["name"] == "wait" and register["name"] == "register"
    assert wait["args"][:2] == ["wait-for", "tcp:myapp-postgresql:5432"], "targets go through tpl"
    assert wait["image"].endswith(":0.1.0-slim")
    assert register["args"][:2] == ["register", "http://myapp-registry/pods/{{ pod.name }}"], (
        "url through tpl; initkit's runtime Jinja written escaped reaches the CLI as Jinja"
    )
    assert register["args"][3] == '{"ip":"{{ pod.ip }}"}', "json is initkit's runtime Jinja, passed as written"
    assert all(c["securityContext"]["runAsUser"] == 65532 for c in spec["initContainers"])


def test_unescaped_runtime_jinja_in_a_templated_field_fails_at_render(helm: Helm, tmp_path: Path) -> None:
    """Only escaped ({{ "{{ pod.name }}" }}) does initkit's Jinja survive tpl: unescaped, Helm refuses it."""
    chart = helm_create(helm, tmp_path, [None])
    register = {**REGISTER, "url": "http://registry/pods/{{ pod.name }}"}
    with pytest.raises(HelmFailed) as failed:
        render(helm, chart, tmp_path, {"initkit": {"steps": {"register": register}}})
    assert 'function "pod" not defined' in failed.value.stderr


def test_the_edited_scaffold_lints_strict(helm: Helm, tmp_path: Path) -> None:
    chart = helm_create(helm, tmp_path, ["setup"])
    values = tmp_path / "lint-values.yaml"
    values.write_text(yaml.safe_dump({"volumes": [SCAFFOLD_VOLUME], "setup": {"steps": {"register": REGISTER}}}))
    result = helm.run("lint", "--strict", chart, "--values", values)
    assert "0 chart(s) failed" in result.stdout


def test_two_initkit_configurations_in_one_chart(helm: Helm, tmp_path: Path) -> None:
    chart = helm_create(helm, tmp_path, ["setup", "fetch"])
    values = {
        "volumes": [SCAFFOLD_VOLUME],
        "setup": {"steps": {"wait": WAIT}},
        "fetch": {
            "image": {"registry": "mirror.invalid", "tag": "0.2.0"},
            "volumes": [{"name": "site", "emptyDir": {}}],
            "steps": {"clone": CLONE},
        },
    }
    text, deployment = deployment_of(render(helm, chart, tmp_path, values))
    assert len(re.findall(r"^      volumes:$", text, re.M)) == 1
    spec = pod_spec(deployment)
    wait, clone = spec["initContainers"]
    assert (wait["name"], clone["name"]) == ("wait", "clone")
    assert wait["image"] == "ghcr.io/initkit/initkit:0.1.0-slim"
    assert clone["image"] == "mirror.invalid/initkit/initkit:0.2.0", "each configuration has its own image"
    assert clone["args"][:5] == [
        "git-clone",
        "https://git.example.invalid/demo/site.git",
        "/site",
        "--ref",
        "1.16.0",
    ], "repo and ref go through tpl (the parent chart's appVersion)"
    assert [v["name"] for v in spec["volumes"]] == ["foo", "site", "clone-password"]


def test_private_registry_with_pull_secrets(helm: Helm, tmp_path: Path) -> None:
    chart = helm_create(helm, tmp_path, [None])
    values = {
        "imagePullSecrets": [{"name": "app-pull"}],
        "global": {"imageRegistry": "registry.corp.invalid", "imagePullSecrets": ["corp-pull"]},
        "initkit": {"image": {"pullSecrets": ["initkit-pull"]}, "steps": {"wait": WAIT}},
    }
    _, deployment = deployment_of(render(helm, chart, tmp_path, values))
    spec = pod_spec(deployment)
    assert spec["imagePullSecrets"] == [{"name": "app-pull"}, {"name": "initkit-pull"}, {"name": "corp-pull"}]
    assert spec["initContainers"][0]["image"] == "registry.corp.invalid/initkit/initkit:0.1.0-slim"


@pytest.mark.parametrize(
    ("mode", "api_versions", "adapted"),
    [
        (None, ("security.openshift.io/v1",), True),
        ("auto", (), False),
        ("force", (), True),
        ("disabled", ("security.openshift.io/v1",), False),
    ],
    ids=["auto-on-openshift", "auto-elsewhere", "force", "disabled"],
)
def test_openshift_drops_the_fixed_uid(
    helm: Helm, tmp_path: Path, mode: str | None, api_versions: tuple[str, ...], adapted: bool
) -> None:
    chart = helm_create(helm, tmp_path, [None])
    values: dict[str, Any] = {"initkit": {"steps": {"wait": WAIT}}}
    if mode:
        values["global"] = {"compatibility": {"openshift": {"adaptSecurityContext": mode}}}
    extra = [arg for version in api_versions for arg in ("--api-versions", version)]
    _, deployment = deployment_of(render(helm, chart, tmp_path, values, *extra))
    (wait,) = pod_spec(deployment)["initContainers"]
    context = wait["securityContext"]
    assert ("runAsUser" in context, "runAsGroup" in context) == (not adapted, not adapted)
    assert context["runAsNonRoot"] is True and context["capabilities"] == {"drop": ["ALL"]}


def test_the_example_chart_adapts_its_pod_to_openshift(helm: Helm) -> None:
    docs = helm.template(extra=("--api-versions", "security.openshift.io/v1"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    spec = pod_spec(deployment)
    for context in (
        spec["securityContext"],
        spec["containers"][0]["securityContext"],
        spec["initContainers"][0]["securityContext"],
    ):
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(context), context
        assert context["runAsNonRoot"] is True


def test_library_defaults_apply_without_a_values_block(helm: Helm, tmp_path: Path) -> None:
    chart = helm_create(helm, tmp_path, [None])
    _, deployment = deployment_of(render(helm, chart, tmp_path, {}))
    spec = pod_spec(deployment)
    assert not spec.get("initContainers") and not spec.get("volumes") and not spec.get("imagePullSecrets")


@pytest.mark.parametrize(
    ("include", "message"),
    [
        (
            'include "initkit.initContainers" .',
            'the initkit templates take (dict "values" .Values.initkit "context" $)',
        ),
        (
            'include "initkit.initContainers" (dict "values" .Values.initkt "context" $)',
            "no initkit configuration found",
        ),
        (
            'include "initkit.volumes" (dict "values" .Values.image "context" $)',
            '"values" is not an initkit configuration',
        ),
    ],
    ids=["root-context", "wrong-alias", "not-initkit-values"],
)
def test_a_wrong_call_fails_clearly(helm: Helm, tmp_path: Path, include: str, message: str) -> None:
    chart = helm_create(helm, tmp_path, [None])
    (chart / "templates" / "wrong.yaml").write_text(f"{{{{- {include} }}}}\n")
    with pytest.raises(HelmFailed) as failed:
        render(helm, chart, tmp_path, {"initkit": {"steps": {"wait": WAIT}}})
    assert message in failed.value.stderr


def test_kube_version_is_checked_for_charts_without_one(helm: Helm, tmp_path: Path) -> None:
    chart = helm_create(helm, tmp_path, [None])
    values = {"initkit": {"steps": {"wait": WAIT}}}
    with pytest.raises(HelmFailed) as failed:
        render(helm, chart, tmp_path, values, "--kube-version", "1.24.0")
    assert "initkit: needs Kubernetes 1.25 or newer" in failed.value.stderr
    assert render(helm, chart, tmp_path, values, "--kube-version", "1.25.0")


def readme_block(readme: str, start: str) -> str:
    """The fenced block of README.md that begins with `start`."""
    begin = readme.index(start)
    return readme[begin : readme.index("```", begin)]


def readme_chart(helm: Helm, tmp_path: Path, readme: str) -> Path:
    """A `helm create` chart whose pod template is the top README's, word for word."""
    chart = helm_create(helm, tmp_path, [None])
    (chart / "templates" / "deployment.yaml").write_text(
        textwrap.dedent("""\
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ .Release.Name }}-web
            spec:
              selector:
                matchLabels: {app: web}
              template:
                metadata:
                  labels: {app: web}
                spec:
            """)
        + readme_block(readme, "      {{- $initkit := dict")
    )
    return chart


def test_the_readme_example_renders(helm: Helm, tmp_path: Path) -> None:
    """The top README's Helm section, word for word: its pod template and values."""
    readme = (ROOT / "README.md").read_text()
    values = yaml.safe_load(readme_block(readme, "initkit:\n  steps:\n"))
    chart = readme_chart(helm, tmp_path, readme)
    text, obj = deployment_of(render(helm, chart, tmp_path, {**values, "volumes": [SCAFFOLD_VOLUME]}))
    spec = pod_spec(obj)
    assert [c["name"] for c in spec["initContainers"]] == ["wait-for-db", "register"]
    assert len(re.findall(r"^      volumes:$", text, re.M)) == 1
    assert [v["name"] for v in spec["volumes"]] == ["foo", "register-token"]
    wait, register = spec["initContainers"]
    assert wait["args"][1] == "tcp:myapp-postgresql:5432"
    assert register["args"][1] == "https://registry.example.com/instances"


def test_the_readme_permissions_example_renders(helm: Helm, tmp_path: Path) -> None:
    """The top README's permissions step: first, root with Pod Security baseline's CHOWN, FOWNER and DAC_OVERRIDE."""
    readme = (ROOT / "README.md").read_text()
    values = yaml.safe_load(readme_block(readme, "initkit:\n  volumes:\n    - name: data\n"))
    _, obj = deployment_of(render(helm, readme_chart(helm, tmp_path, readme), tmp_path, values))  # validated
    spec = pod_spec(obj)
    (fix,) = spec["initContainers"]
    assert fix["name"] == "volume-permissions"
    assert fix["args"] == ["permissions", "/data", "--owner", "1001:1001", "--mode", "g+rwX"]
    assert fix["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert fix["securityContext"]["runAsUser"] == 0
    assert fix["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_OVERRIDE"]}
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "myapp-data"}}]
