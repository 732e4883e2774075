"""What the library renders into the example's pod: order, args, env, securityContext,
resources, mounts, volumes, image references and secret handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import EXAMPLE, LIBRARY, Helm, HelmFailed, workload

pytestmark = pytest.mark.helm

CI = EXAMPLE / "ci"
APP_VERSION = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())["appVersion"]
DOWNWARD_ENV = [
    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
]
HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
SECRET_MODE = 0o444


def write_values(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def steps_values(tmp_path: Path, *steps: dict[str, Any], **initkit: Any) -> Path:
    return write_values(tmp_path, {"initkit": {**initkit, "steps": list(steps)}})


def init_containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return workload(docs)["initContainers"]


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_defaults_wait_for_myservice_and_mydb(helm: Helm) -> None:
    docs = helm.template()
    spec = workload(docs)
    (wait,) = spec["initContainers"]
    assert wait["name"] == "wait-for-services"
    assert wait["command"] == ["initkit"]
    assert wait["args"] == ["wait-for", "dns:myservice", "dns:mydb", "--timeout", "5m", "--interval", "2s"]
    assert wait["image"] == f"ghcr.io/initkit/initkit:{APP_VERSION}"
    assert wait["imagePullPolicy"] == "IfNotPresent"
    assert wait["env"] == DOWNWARD_ENV
    assert wait["securityContext"] == HARDENED
    assert wait["resources"] == {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
    assert "volumeMounts" not in wait
    (app,) = spec["containers"]
    assert app["name"] == "myapp"
    assert app["securityContext"] == HARDENED
    assert {m["name"]: m["mountPath"] for m in app["volumeMounts"]} == {
        "workspace": "/workspace",
        "config": "/config",
    }
    assert {v["name"] for v in spec["volumes"]} == {"workspace", "config"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_all_steps_in_the_order_given(helm: Helm) -> None:
    docs = helm.template(CI / "all-steps-values.yaml")
    (pod,) = [d for d in docs if d["kind"] == "Pod"]
    assert pod["spec"]["restartPolicy"] == "OnFailure"
    containers = init_containers(docs)
    assert [c["name"] for c in containers] == [
        "initkit-wait-for",
        "initkit-register",
        "initkit-sleep",
        "initkit-git-clone",
        "initkit-render",
    ]
    assert [c["args"][1] for c in containers] == ["wait-for", "register", "sleep", "git-clone", "render"]
    for container in containers:
        assert container["args"][0] == "--debug"
        assert container["env"][:5] == DOWNWARD_ENV
        assert container["env"][5:] == [{"name": "TZ", "value": "UTC"}]
        assert container["securityContext"] == HARDENED
        assert container["imagePullPolicy"] == "Always"
        assert container["image"] == ("registry.example.invalid/initkit/initkit@sha256:" + "0" * 63 + "2"), (
            "global.imageRegistry and image.digest apply"
        )
    assert workload(docs)["containers"][0]["image"] == (
        "registry.example.invalid/library/busybox@sha256:" + "0" * 63 + "1"
    )
    sleep = by_name(containers)["initkit-sleep"]
    assert sleep["args"] == ["--debug", "sleep", "1s"]


def test_register_args_and_secret_token_file(helm: Helm) -> None:
    docs = helm.template(CI / "register-values.yaml")
    register = by_name(init_containers(docs))["initkit-register"]
    assert register["args"] == [
        "register",
        "https://registry.example.invalid/api/v1/instances",
        "--method",
        "PUT",
        "--json",
        json.dumps({"ip": "{{ pod.ip }}", "pod": "{{ pod.name }}"}, separators=(",", ":")),
        "--header",
        "X-Registered-By: initkit",
        "--token-file",
        "/var/run/initkit/token/token",
        "--ca-file",
        "/var/run/initkit/ca/ca.crt",
        "--attempts",
        "5",
        "--timeout",
        "90s",
    ]
    assert register["volumeMounts"] == [
        {"name": "initkit-register-token", "mountPath": "/var/run/initkit/token", "readOnly": True},
        {"name": "initkit-register-ca", "mountPath": "/var/run/initkit/ca", "readOnly": True},
    ]
    volumes = by_name(workload(docs)["volumes"])
    assert volumes["initkit-register-token"] == {
        "name": "initkit-register-token",
        "secret": {
            "secretName": "myapp-register",
            "items": [{"key": "token", "path": "token"}],
            "defaultMode": SECRET_MODE,
        },
    }
    assert volumes["initkit-register-ca"]["configMap"] == {
        "name": "registry-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
        "defaultMode": SECRET_MODE,
    }


def test_git_clone_https_password_file(helm: Helm) -> None:
    docs = helm.template(CI / "git-clone-https-values.yaml")
    clone = by_name(init_containers(docs))["initkit-git-clone"]
    assert clone["args"] == [
        "git-clone",
        "https://git.example.invalid/myapp/site.git",
        "/workspace/site",
        "--ref",
        "v1.2.3",
        "--depth",
        "1",
        "--submodules",
        "--username",
        "deploy",
        "--password-file",
        "/var/run/initkit/password/password",
    ]
    assert clone["volumeMounts"] == [
        {"name": "workspace", "mountPath": "/workspace"},
        {"name": "initkit-git-clone-password", "mountPath": "/var/run/initkit/password", "readOnly": True},
    ]
    assert clone["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    assert by_name(workload(docs)["volumes"])["initkit-git-clone-password"]["secret"]["secretName"] == "myapp-git"


def test_git_clone_ssh_key_and_known_hosts_readable_by_65532(helm: Helm) -> None:
    docs = helm.template(CI / "git-clone-ssh-values.yaml")
    clone = by_name(init_containers(docs))["initkit-git-clone"]
    assert clone["args"] == [
        "git-clone",
        "ssh://git@git.example.invalid/myapp/site.git",
        "/workspace",
        "--ssh-key-file",
        "/var/run/initkit/ssh-key/ssh-privatekey",
        "--known-hosts-file",
        "/var/run/initkit/known-hosts/known_hosts",
    ]
    volumes = by_name(workload(docs)["volumes"])
    key = volumes["initkit-git-clone-ssh-key"]["secret"]
    # Secret files are owned by root: mode 0444 lets uid 65532 read the key, and ssh
    # accepts it because the file is not owned by the user running ssh.
    assert key == {
        "secretName": "myapp-deploy-key",
        "items": [{"key": "ssh-privatekey", "path": "ssh-privatekey"}],
        "defaultMode": SECRET_MODE,
    }
    assert volumes["initkit-git-clone-known-hosts"]["secret"]["secretName"] == "myapp-deploy-key"


def test_render_template_from_the_charts_configmap(helm: Helm) -> None:
    docs = helm.template(CI / "render-values.yaml")
    render = by_name(init_containers(docs))["initkit-render"]
    assert render["args"] == [
        "render",
        "/var/run/initkit/template/config.yaml.j2",
        "/config/config.yaml",
        "--values",
        "/var/run/initkit/values-0/values.yaml",
        "--values",
        "/var/run/initkit/values-1/secrets.yaml",
        "--set",
        "greeting=hello",
        "--set",
        "replicas=3",
        "--mode",
        "0440",
    ]
    assert [m["mountPath"] for m in render["volumeMounts"]] == [
        "/config",
        "/var/run/initkit/template",
        "/var/run/initkit/values-0",
        "/var/run/initkit/values-1",
    ]
    volumes = by_name(workload(docs)["volumes"])
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    template_cm = volumes["initkit-render-template"]["configMap"]["name"]
    assert template_cm == "myapp-initkit-example-config"
    assert "config.yaml.j2" in configmaps[template_cm]["data"]
    assert volumes["initkit-render-values-1"]["secret"]["secretName"] == "myapp-secret-values"


def test_no_secret_is_rendered(helm: Helm) -> None:
    for values in sorted(CI.glob("*-values.yaml")):
        docs = helm.template(values)
        assert not [d for d in docs if d["kind"] == "Secret"], values.name
        for container in init_containers(docs):
            for env in container["env"]:
                assert "value" not in env or env["name"] == "TZ", (values.name, env)


SECRET_LITERAL = "s3cr3t-literal-value"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"kind": "register", "url": "http://r.invalid", "token": SECRET_LITERAL},
            "token must be a reference {secret: NAME, key: KEY}, never a literal value",
        ),
        (
            {
                "kind": "git-clone",
                "repo": "https://g.invalid/r.git",
                "username": "u",
                "password": {"configMap": "plain", "key": "password"},
                "volume": {"name": "workspace", "mountPath": "/workspace"},
            },
            "password must come from a Secret",
        ),
        (
            {
                "kind": "git-clone",
                "repo": "ssh://git@g.invalid/r.git",
                "sshKey": SECRET_LITERAL,
                "volume": {"name": "workspace", "mountPath": "/workspace"},
            },
            "ssh-key must be a reference",
        ),
    ],
    ids=["register-token", "git-password-configmap", "git-ssh-key"],
)
def test_secret_literals_are_refused_even_without_schema(
    helm: Helm, tmp_path: Path, step: dict[str, Any], message: str
) -> None:
    values = steps_values(tmp_path, step)
    with pytest.raises(HelmFailed) as failed:
        helm.template(values)
    assert "values don't meet the specifications of the schema" in failed.value.stderr
    with pytest.raises(HelmFailed) as failed:
        helm.template(values, extra=("--skip-schema-validation",))
    assert message in failed.value.stderr
    assert SECRET_LITERAL not in failed.value.stderr


def test_step_overrides_and_disabled_steps(helm: Helm, tmp_path: Path) -> None:
    values = steps_values(
        tmp_path,
        {"kind": "sleep", "duration": 1},
        {"kind": "register", "url": "http://r.invalid", "enabled": False},
        {
            "kind": "sleep",
            "duration": "1m30s",
            "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": False},
            "resources": {},
            "env": [{"name": "EXTRA", "value": "1"}],
            "extraArgs": ["--extra"],
        },
        {"kind": "wait-for", "name": "wait-db", "targets": ["tcp:mydb:5432", "file:/ready"]},
        logFormat="json",
        quiet=True,
    )
    containers = init_containers(helm.template(values))
    assert [c["name"] for c in containers] == ["initkit-sleep", "initkit-sleep-2", "wait-db"]
    first, second, wait = containers
    assert first["args"] == ["--log-format", "json", "--quiet", "sleep", "1s"]
    assert second["args"] == ["--log-format", "json", "--quiet", "sleep", "1m30s", "--extra"]
    assert second["securityContext"] == {**HARDENED, "runAsUser": 1000, "readOnlyRootFilesystem": False}
    assert "resources" not in second
    assert second["env"] == [*DOWNWARD_ENV, {"name": "EXTRA", "value": "1"}]
    assert wait["args"][3:] == ["wait-for", "tcp:mydb:5432", "file:/ready"]


@pytest.mark.parametrize(
    ("image", "global_registry", "expected"),
    [
        ({}, None, f"ghcr.io/initkit/initkit:{APP_VERSION}"),
        ({"registry": "", "repository": "initkit", "tag": "dev"}, None, "initkit:dev"),
        ({"tag": "1.2.3"}, "mirror.invalid:5000", "mirror.invalid:5000/initkit/initkit:1.2.3"),
        ({"digest": "sha256:" + "a" * 64}, None, "ghcr.io/initkit/initkit@sha256:" + "a" * 64),
    ],
    ids=["default-appVersion", "local-dev", "global-registry", "digest"],
)
def test_image_reference(
    helm: Helm, tmp_path: Path, image: dict[str, str], global_registry: str | None, expected: str
) -> None:
    values: dict[str, Any] = {"initkit": {"image": image}}
    if global_registry:
        values["global"] = {"imageRegistry": global_registry}
    (container,) = init_containers(helm.template(write_values(tmp_path, values)))
    assert container["image"] == expected


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [
                {"kind": "sleep", "name": "same", "duration": 1},
                {"kind": "sleep", "name": "same", "duration": 2},
            ],
            'container name "same" is already used',
        ),
        (
            [
                {
                    "kind": "render",
                    "template": {"configMap": "t", "key": "t.j2"},
                    "volume": {"name": "config", "mountPath": "/config"},
                    "dest": "/etc/app.conf",
                }
            ],
            'dest "/etc/app.conf" must be /config or below it',
        ),
    ],
    ids=["duplicate-name", "dest-outside-volume"],
)
def test_template_errors_are_clear(helm: Helm, tmp_path: Path, steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(HelmFailed) as failed:
        helm.template(steps_values(tmp_path, *steps))
    assert message in failed.value.stderr
