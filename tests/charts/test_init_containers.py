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
SLIM = f"ghcr.io/initkit/initkit:{APP_VERSION}-slim"
FULL = f"ghcr.io/initkit/initkit:{APP_VERSION}"
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
    """Values whose steps are `steps`, in this order (keyed by their `name`, else step-N),
    with the example chart's default wait-for step switched off."""
    keyed: dict[str, Any] = {"wait-for-services": {"enabled": False}}
    for index, step in enumerate(steps):
        step = dict(step)
        name = step.pop("name", f"step-{index}")
        keyed[name] = {"order": 100 + index, **step}
    return write_values(tmp_path, {"initkit": {**initkit, "steps": keyed}})


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
    assert wait["image"] == SLIM, "steps that need no git run the slim image"
    assert wait["imagePullPolicy"] == "IfNotPresent"
    assert "env" not in wait, "wait-for reads no pod.*: no Downward API env (downwardAPI: auto)"
    assert wait["securityContext"] == HARDENED
    assert wait["resources"] == {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
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
    assert [c["name"] for c in containers] == ["wait-for-services", "register", "sleep", "git-clone", "render"]
    assert [c["args"][1] for c in containers] == ["wait-for", "register", "sleep", "git-clone", "render"]
    for container in containers:
        assert container["args"][0] == "--debug"
        downward = DOWNWARD_ENV if container["name"] in ("register", "render") else []
        assert container["env"] == [*downward, {"name": "TZ", "value": "UTC"}], "the Downward API only where read"
        assert container["securityContext"] == HARDENED
        assert container["imagePullPolicy"] == "Always"
        digest = "2" if container["name"] == "git-clone" else "3"
        assert container["image"] == f"registry.example.invalid/initkit/initkit@sha256:{'0' * 63}{digest}", (
            "global.imageRegistry applies; git-clone runs the full image (digest), the others the slim one (slimDigest)"
        )
    assert workload(docs)["imagePullSecrets"] == [{"name": "initkit-pull"}, {"name": "mirror-pull"}]
    assert workload(docs)["containers"][0]["image"] == (
        "registry.example.invalid/library/busybox@sha256:" + "0" * 63 + "1"
    )
    sleep = by_name(containers)["sleep"]
    assert sleep["args"] == ["--debug", "sleep", "1s"]


def test_register_args_and_secret_token_file(helm: Helm) -> None:
    docs = helm.template(CI / "register-values.yaml")
    register = by_name(init_containers(docs))["register"]
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
        {"name": "register-token", "mountPath": "/var/run/initkit/token", "readOnly": True},
        {"name": "register-ca", "mountPath": "/var/run/initkit/ca", "readOnly": True},
    ]
    volumes = by_name(workload(docs)["volumes"])
    assert volumes["register-token"] == {
        "name": "register-token",
        "secret": {
            "secretName": "myapp-register",
            "items": [{"key": "token", "path": "token"}],
            "defaultMode": SECRET_MODE,
        },
    }
    assert volumes["register-ca"]["configMap"] == {
        "name": "registry-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
        "defaultMode": SECRET_MODE,
    }


def test_git_clone_https_password_file(helm: Helm) -> None:
    docs = helm.template(CI / "git-clone-https-values.yaml")
    clone = by_name(init_containers(docs))["git-clone"]
    assert clone["image"] == FULL, "git-clone needs git: the full image"
    assert clone["args"] == [
        "git-clone",
        "https://git.example.invalid/myapp/site.git",
        "/workspace/site",
        "--ref",
        "v1.2.3",
        "--depth",
        "1",
        "--submodules=recursive",
        "--username",
        "deploy",
        "--password-file",
        "/var/run/initkit/password/password",
    ]
    assert clone["volumeMounts"] == [
        {"name": "workspace", "mountPath": "/workspace"},
        {"name": "git-clone-password", "mountPath": "/var/run/initkit/password", "readOnly": True},
    ]
    assert clone["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    assert by_name(workload(docs)["volumes"])["git-clone-password"]["secret"]["secretName"] == "myapp-git"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"depth": 0}, ["--depth", "0"]),  # full history: 0 must not be dropped as "unset"
        ({"submodules": "shallow"}, ["--submodules=shallow"]),
        ({"submodules": False}, ["--submodules=off"]),
        ({}, []),
    ],
)
def test_git_clone_depth_zero_and_submodule_modes(helm: Helm, tmp_path: Path, extra: dict, expected: list) -> None:
    step = {"kind": "git-clone", "order": 1, "repo": "https://git.example.invalid/r.git"}
    step["volume"] = {"name": "work", "mountPath": "/work"}
    values = {"initkit": {"steps": {"clone": {**step, **extra}}}}
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    clone = by_name(init_containers(helm.template(path)))["clone"]
    assert clone["args"][3:] == expected


def test_git_clone_ssh_key_and_known_hosts_readable_by_65532(helm: Helm) -> None:
    docs = helm.template(CI / "git-clone-ssh-values.yaml")
    clone = by_name(init_containers(docs))["git-clone"]
    assert clone["args"] == [
        "git-clone",
        "ssh://git@git.example.invalid/myapp/site.git",
        "/workspace/site",
        "--ssh-key-file",
        "/var/run/initkit/ssh-key/ssh-privatekey",
        "--known-hosts-file",
        "/var/run/initkit/known-hosts/known_hosts",
    ]
    volumes = by_name(workload(docs)["volumes"])
    key = volumes["git-clone-ssh-key"]["secret"]
    # Secret files are owned by root: mode 0444 lets uid 65532 read the key, and ssh
    # accepts it because the file is not owned by the user running ssh.
    assert key == {
        "secretName": "myapp-deploy-key",
        "items": [{"key": "ssh-privatekey", "path": "ssh-privatekey"}],
        "defaultMode": SECRET_MODE,
    }
    assert volumes["git-clone-known-hosts"]["secret"]["secretName"] == "myapp-deploy-key"


def test_render_template_from_the_charts_configmap(helm: Helm) -> None:
    docs = helm.template(CI / "render-values.yaml")
    render = by_name(init_containers(docs))["render"]
    assert render["image"] == SLIM
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
    template_cm = volumes["render-template"]["configMap"]["name"]
    assert template_cm == "myapp-initkit-example-config"
    assert "config.yaml.j2" in configmaps[template_cm]["data"]
    assert volumes["render-values-1"]["secret"]["secretName"] == "myapp-secret-values"


def test_no_secret_is_rendered(helm: Helm) -> None:
    for values in sorted(CI.glob("*-values.yaml")):
        docs = helm.template(values)
        assert not [d for d in docs if d["kind"] == "Secret"], values.name
        for container in init_containers(docs):
            for env in container.get("env", []):
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
        {"kind": "sleep", "name": "initkit-sleep", "duration": 1},
        {"kind": "register", "url": "http://r.invalid", "enabled": False},
        {
            "kind": "sleep",
            "name": "initkit-sleep-2",
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
    assert [c["name"] for c in containers] == ["initkit-sleep", "initkit-sleep-2", "wait-db"], "by order"
    first, second, wait = containers
    assert first["args"] == ["--log-format", "json", "--quiet", "sleep", "1s"]
    assert second["args"] == ["--log-format", "json", "--quiet", "sleep", "1m30s", "--extra"]
    assert second["securityContext"] == {**HARDENED, "runAsUser": 1000, "readOnlyRootFilesystem": False}
    assert "resources" not in second
    assert second["env"] == [{"name": "EXTRA", "value": "1"}]
    assert wait["args"][3:] == ["wait-for", "tcp:mydb:5432", "file:/ready"]


GIT_CLONE = {
    "kind": "git-clone",
    "order": 50,
    "repo": "https://g.invalid/r.git",
    "volume": {"name": "workspace", "mountPath": "/workspace"},
}


@pytest.mark.parametrize(
    ("image", "step_image", "global_registry", "expected"),
    [
        ({}, {}, None, (SLIM, FULL)),
        ({"registry": "", "repository": "initkit", "tag": "dev"}, {}, None, ("initkit:dev-slim", "initkit:dev")),
        (
            {"tag": "1.2.3"},
            {},
            "mirror.invalid:5000",
            ("mirror.invalid:5000/initkit/initkit:1.2.3-slim", "mirror.invalid:5000/initkit/initkit:1.2.3"),
        ),
        ({"tag": "0.1.0-slim"}, {"tag": "0.1.0"}, None, ("ghcr.io/initkit/initkit:0.1.0-slim", FULL)),
        ({"slim": False}, {}, None, (FULL, FULL)),
        ({}, {"slim": False}, None, (FULL, FULL)),
        ({}, {"repository": "mirror/initkit", "tag": "edge"}, None, ("ghcr.io/mirror/initkit:edge", FULL)),
        (
            {"digest": "sha256:" + "a" * 64},
            {},
            None,
            ("ghcr.io/initkit/initkit@sha256:" + "a" * 64, "ghcr.io/initkit/initkit@sha256:" + "a" * 64),
        ),
        (
            {"digest": "sha256:" + "a" * 64, "slimDigest": "sha256:" + "b" * 64},
            {},
            None,
            ("ghcr.io/initkit/initkit@sha256:" + "b" * 64, "ghcr.io/initkit/initkit@sha256:" + "a" * 64),
        ),
    ],
    ids=[
        "default-appVersion",
        "local-dev",
        "global-registry",
        "slim-tag-given",
        "slim-off",
        "slim-off-for-one-step",
        "step-own-image",
        "digest-pins-full-image",
        "slim-digest",
    ],
)
def test_image_per_step(
    helm: Helm,
    tmp_path: Path,
    image: dict[str, Any],
    step_image: dict[str, Any],
    global_registry: str | None,
    expected: tuple[str, str],
) -> None:
    """wait-for (slim unless told) and git-clone (always the full image, it needs git)."""
    steps = {"wait-for-services": {"image": step_image}, "clone": {**GIT_CLONE, "image": {}}}
    if "tag" in step_image and "repository" not in step_image:
        steps = {"wait-for-services": {}, "clone": {**GIT_CLONE, "image": step_image}}
    values: dict[str, Any] = {"initkit": {"image": image, "steps": steps}}
    if global_registry:
        values["global"] = {"imageRegistry": global_registry}
    wait, clone = init_containers(helm.template(write_values(tmp_path, values)))
    assert (wait["image"], clone["image"]) == expected


def test_git_clone_refuses_the_slim_image(helm: Helm, tmp_path: Path) -> None:
    values = {"initkit": {"steps": {"clone": {**GIT_CLONE, "image": {"tag": "0.1.0-slim"}}}}}
    with pytest.raises(HelmFailed) as failed:
        helm.template(write_values(tmp_path, values))
    assert 'step "clone" (git-clone) needs the full image (with git), but its tag "0.1.0-slim"' in failed.value.stderr


@pytest.mark.parametrize(
    ("pull_secrets", "global_secrets", "expected"),
    [
        ([], [], None),
        (["initkit-pull"], [], ["initkit-pull"]),
        ([], [{"name": "mirror"}], ["mirror"]),
        (["a", {"name": "b"}], ["b", "{{ .Release.Name }}-pull"], ["a", "b", "myapp-pull"]),
    ],
    ids=["none", "image", "global", "both-deduplicated-tpl"],
)
def test_image_pull_secrets(
    helm: Helm, tmp_path: Path, pull_secrets: list[Any], global_secrets: list[Any], expected: list[str] | None
) -> None:
    values = {"global": {"imagePullSecrets": global_secrets}, "initkit": {"image": {"pullSecrets": pull_secrets}}}
    spec = workload(helm.template(write_values(tmp_path, values)))
    assert spec.get("imagePullSecrets") == (None if expected is None else [{"name": n} for n in expected])


def test_steps_are_addressable_with_set(helm: Helm) -> None:
    """A map keyed by step name: --set changes one step without restating the others."""
    containers = init_containers(
        helm.template(
            set_values=(
                "initkit.steps.render.enabled=true",
                "initkit.steps.render.order=5",
                "initkit.steps.wait-for-services.timeout=30s",
            )
        )
    )
    assert [c["name"] for c in containers] == ["render", "wait-for-services"]
    assert containers[1]["args"][-4:] == ["--timeout", "30s", "--interval", "2s"]
    docs = helm.template(set_values=("initkit.steps.wait-for-services.enabled=false",))
    assert "initContainers" not in workload(docs)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            {
                "first": {"kind": "sleep", "order": 1, "duration": 1},
                "second": {"kind": "sleep", "order": 1, "duration": 2},
            },
            "steps.first and steps.second both have order 1",
        ),
        ({"nap": {"kind": "sleep", "duration": 1}}, "steps.nap.order is required"),
        (
            {
                "render-etc": {
                    "kind": "render",
                    "order": 1,
                    "template": {"configMap": "t", "key": "t.j2"},
                    "volume": {"name": "config", "mountPath": "/config"},
                    "dest": "/etc/app.conf",
                }
            },
            'dest "/etc/app.conf" must be /config or below it',
        ),
    ],
    ids=["duplicate-order", "missing-order", "dest-outside-volume"],
)
def test_template_errors_are_clear(helm: Helm, tmp_path: Path, steps: dict[str, Any], message: str) -> None:
    values = write_values(tmp_path, {"initkit": {"steps": {"wait-for-services": {"enabled": False}, **steps}}})
    with pytest.raises(HelmFailed) as failed:
        helm.template(values, extra=("--skip-schema-validation",))
    assert message in failed.value.stderr


# The permissions step's securityContext: root, with only the capabilities chown and chmod need.
ROOT_CHOWN = {
    **HARDENED,
    "runAsNonRoot": False,
    "runAsUser": 0,
    "runAsGroup": 0,
    "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_OVERRIDE"]},
}
DATA = {"name": "data", "mountPath": "/data"}


def permissions_step(**extra: Any) -> dict[str, Any]:
    return {"kind": "permissions", "name": "fix", "volumeMounts": [DATA], **extra}


def test_permissions_replaces_bitnamis_volume_permissions(helm: Helm) -> None:
    docs = helm.template(CI / "permissions-values.yaml")
    containers = init_containers(docs)
    assert [c["name"] for c in containers] == ["volume-permissions", "wait-for-services"], "order 0: first"
    fix = containers[0]
    assert fix["args"] == ["permissions", "/data", "/logs", "--owner", "1001:1001", "--mode", "g+rwX"]
    assert fix["image"] == SLIM
    assert fix["securityContext"] == ROOT_CHOWN, "Pod Security baseline's capabilities only"
    assert fix["volumeMounts"] == [{"name": "data", "mountPath": "/data"}, {"name": "logs", "mountPath": "/logs"}]
    assert "env" not in fix
    assert containers[1]["securityContext"] == HARDENED, "the other steps stay non-root"
    assert by_name(workload(docs)["volumes"])["data"]["persistentVolumeClaim"] == {"claimName": "myapp-data"}


def test_permissions_is_off_in_the_example_defaults(helm: Helm) -> None:
    assert [c["name"] for c in init_containers(helm.template())] == ["wait-for-services"]
    (fix, _) = init_containers(helm.template(set_values=("initkit.steps.volume-permissions.enabled=true",)))
    assert fix["args"] == ["permissions", "/workspace", "--owner", "65532:65532", "--mode", "u+rwX,g+rwX"]


@pytest.mark.parametrize(
    ("step", "args"),
    [
        ({"owner": "1001:1001"}, ["/data", "--owner", "1001:1001"]),
        ({"owner": ":1001", "mode": "0750"}, ["/data", "--owner", ":1001", "--mode", "0750"]),
        ({"owner": 0}, ["/data", "--owner", "0"]),
        ({"uid": 1001, "gid": 1001}, ["/data", "--owner", "1001:1001"]),
        ({"uid": 0}, ["/data", "--owner", "0"]),
        ({"gid": 4294967294}, ["/data", "--owner", ":4294967294"]),
        ({"mode": "g+rwX"}, ["/data", "--mode", "g+rwX"]),
        (
            {
                "volumeMounts": [
                    DATA,
                    {"name": "logs", "mountPath": "/logs/"},
                    {"name": "cfg", "mountPath": "/cfg", "readOnly": True},
                ],
                "owner": "1",
            },
            ["/data", "/logs/", "--owner", "1"],
        ),
        (
            {"paths": ["/data/{{ .Release.Name }}", "/data/shared"], "mode": "o-rwx"},
            ["/data/myapp", "/data/shared", "--mode", "o-rwx"],
        ),
    ],
    ids=[
        "owner",
        "group-only-octal",
        "owner-number",
        "uid-gid",
        "uid-0",
        "gid-only",
        "mode-only",
        "default-paths-skip-read-only",
        "paths-tpl",
    ],
)
def test_permissions_args(helm: Helm, tmp_path: Path, step: dict[str, Any], args: list[str]) -> None:
    (fix,) = init_containers(helm.template(steps_values(tmp_path, permissions_step(**step))))
    assert fix["args"] == ["permissions", *args]
    assert fix["securityContext"] == ROOT_CHOWN


def test_permissions_security_context_keys(helm: Helm, tmp_path: Path) -> None:
    """extraCapabilities adds to CHOWN and FOWNER; the configuration's seccomp stays; the
    step's own securityContext keys still go on top."""
    values = steps_values(
        tmp_path,
        permissions_step(owner="1001", extraCapabilities=["DAC_OVERRIDE"]),
        permissions_step(name="fix-2", owner="1001", securityContext={"runAsGroup": 1001}),
        securityContext={**HARDENED, "seccompProfile": {"type": "Localhost", "localhostProfile": "initkit.json"}},
    )
    first, second = init_containers(helm.template(values))
    localhost = {"type": "Localhost", "localhostProfile": "initkit.json"}
    assert first["securityContext"] == {**ROOT_CHOWN, "seccompProfile": localhost}, "DAC_OVERRIDE once"
    assert second["securityContext"] == {**ROOT_CHOWN, "seccompProfile": localhost, "runAsGroup": 1001}


OPENSHIFT_REFUSED = (
    'step "fix" (permissions) runs as root with CAP_CHOWN, CAP_FOWNER and CAP_DAC_OVERRIDE, which OpenShift\'s '
    "restricted SCC refuses"
)


@pytest.mark.parametrize(
    ("mode", "api_versions"),
    [("force", ()), ("auto", ("--api-versions", "security.openshift.io/v1"))],
    ids=["force", "auto-on-openshift"],
)
def test_permissions_under_openshift(helm: Helm, tmp_path: Path, mode: str, api_versions: tuple[str, ...]) -> None:
    """The restricted SCC would refuse the pod: rendering fails naming the step and the way
    out, unless the step says its service account may run it (then uid 0 is kept)."""
    openshift = {"global": {"compatibility": {"openshift": {"adaptSecurityContext": mode}}}}
    values = yaml.safe_load(steps_values(tmp_path, permissions_step(owner="1001")).read_text())
    with pytest.raises(HelmFailed) as failed:
        helm.template(write_values(tmp_path, {**values, **openshift}), extra=api_versions)
    assert OPENSHIFT_REFUSED in failed.value.stderr
    assert "set openshiftAllowRoot: true on the step, or set enabled: false" in failed.value.stderr
    values["initkit"]["steps"]["fix"]["openshiftAllowRoot"] = True
    values["initkit"]["steps"]["nap"] = {"kind": "sleep", "order": 200, "duration": 1}
    fix, nap = init_containers(helm.template(write_values(tmp_path, {**values, **openshift}), extra=api_versions))
    assert fix["securityContext"] == ROOT_CHOWN
    assert "runAsUser" not in nap["securityContext"], "the other steps are still adapted"


def test_permissions_outside_openshift_needs_no_allowance(helm: Helm, tmp_path: Path) -> None:
    values = yaml.safe_load(steps_values(tmp_path, permissions_step(owner="1001")).read_text())
    values["global"] = {"compatibility": {"openshift": {"adaptSecurityContext": "disabled"}}}
    extra = ("--api-versions", "security.openshift.io/v1")
    (fix,) = init_containers(helm.template(write_values(tmp_path, values), extra=extra))
    assert fix["securityContext"] == ROOT_CHOWN


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"volumeMounts": [], "owner": "1"}, 'step "fix" (permissions): volumeMounts is required'),
        ({"paths": ["/etc"], "owner": "1"}, 'path "/etc" must be the mountPath of one of its writable volumeMounts'),
        ({"paths": ["/database"], "owner": "1"}, 'path "/database" must be the mountPath'),
        ({"paths": ["/data/../etc"], "owner": "1"}, 'path "/data/../etc" has a . or .. component'),
        (
            {"volumeMounts": [{**DATA, "readOnly": True}], "paths": ["/data"], "owner": "1"},
            'path "/data" must be the mountPath of one of its writable volumeMounts',
        ),
        (
            {"volumeMounts": [{**DATA, "readOnly": True}], "owner": "1"},
            "no path to fix: its volumeMounts are all readOnly",
        ),
        ({"owner": "1:1", "uid": 1}, "set owner or uid/gid, not both"),
        ({}, "nothing to do: set owner (or uid/gid), mode, or both"),
        (
            {"mode": 0o750},
            'mode must be a string: quote an octal mode (mode: "0750"), YAML reads 0750 as the number 488',
        ),
        (
            {"owner": "1", "extraCapabilities": ["SYS_ADMIN"]},
            "extraCapabilities: SYS_ADMIN is not one it may add; use DAC_READ_SEARCH or DAC_OVERRIDE",
        ),
    ],
    ids=[
        "no-mounts",
        "path-outside",
        "path-prefix-of-no-mount",
        "path-dot-dot",
        "read-only-mount",
        "all-read-only",
        "owner-and-uid",
        "nothing-to-do",
        "mode-number",
        "capability",
    ],
)
def test_permissions_template_errors(helm: Helm, tmp_path: Path, step: dict[str, Any], message: str) -> None:
    """Without the schema too (a parent chart may skip it): clear messages, nothing rendered."""
    values = steps_values(tmp_path, permissions_step(**step))
    with pytest.raises(HelmFailed) as failed:
        helm.template(values, extra=("--skip-schema-validation",))
    assert message in failed.value.stderr, failed.value.stderr


# fetch: a verified download (optionally extracted) into a pod volume, on the slim image.
SHA = "3b1c0c1e0c0d6c6c2f4e3a6d4f0b0a5e9c3d2b1a0f9e8d7c6b5a4f3e2d1c0b9a"
WORKSPACE = {"name": "workspace", "mountPath": "/workspace"}


def fetch_step(**extra: Any) -> dict[str, Any]:
    step = {"kind": "fetch", "name": "get", "url": "https://a.invalid/p.tgz", "volume": WORKSPACE}
    return {**step, "dest": "/workspace/p", "sha256": SHA, **extra}


def test_fetch_replaces_wget_pipe_tar(helm: Helm) -> None:
    containers = by_name(init_containers(helm.template(CI / "fetch-values.yaml")))
    assert list(containers) == ["wait-for-services", "fetch-plugin", "fetch-tool"]
    plugin, tool = containers["fetch-plugin"], containers["fetch-tool"]
    assert plugin["args"] == [
        "fetch",
        "https://artifacts.example.invalid/plugin-1.4.2.tar.gz",
        "/workspace/plugin",
        "--sha256",
        SHA,
        "--extract",
        "--strip-components",
        "1",
        "--header",
        "X-Fetched-By: initkit",
        "--token-file",
        "/var/run/initkit/token/token",
        "--attempts",
        "3",
        "--timeout",
        "5m",
    ]
    assert plugin["volumeMounts"] == [
        {"name": "workspace", "mountPath": "/workspace"},
        {"name": "fetch-plugin-token", "mountPath": "/var/run/initkit/token", "readOnly": True},
    ], "the volume writable, the token read-only"
    assert tool["args"] == [
        "fetch",
        "https://artifacts.example.invalid/myapp/tool-linux-amd64",
        "/workspace/tool",
        "--sha256",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "--mode",
        "0755",
    ], "url through tpl"
    for container in (plugin, tool):
        assert container["image"] == SLIM, "fetch is pure Python: the slim image"
        assert container["securityContext"] == HARDENED
        assert "restartPolicy" not in container
    volumes = by_name(workload(helm.template(CI / "fetch-values.yaml"))["volumes"])
    assert volumes["fetch-plugin-token"]["secret"]["secretName"] == "artifacts-token"


def test_fetch_ca_and_tpl_dest(helm: Helm, tmp_path: Path) -> None:
    step = fetch_step(dest="/workspace/{{ .Release.Name }}", ca={"configMap": "ca", "key": "ca.pem"}, timeout=30)
    (get,) = init_containers(helm.template(steps_values(tmp_path, step)))
    assert get["args"] == [
        "fetch",
        "https://a.invalid/p.tgz",
        "/workspace/myapp",
        "--sha256",
        SHA,
        "--ca-file",
        "/var/run/initkit/ca/ca.pem",
        "--timeout",
        "30s",
    ]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"dest": "/workspace"}, 'dest "/workspace" is the volume\'s mountPath; give a path below it'),
        ({"dest": "/workspace/"}, "is the volume's mountPath"),
        ({"dest": "/plugins/p"}, 'dest "/plugins/p" must be /workspace or below it'),
        ({"dest": None}, "dest is required"),
        ({"volume": None}, "volume.name is required"),
        ({"sha256": None}, "sha256 is required"),
        ({"sha256": "abc"}, "sha256 must be 64 hex digits"),
        ({"url": None}, "url is required"),
        ({"stripComponents": 1}, "stripComponents needs extract: true"),
        ({"extract": True, "mode": "0755"}, "mode is the mode of a downloaded file"),
        ({"mode": 0o755}, "mode must be a string"),
        ({"token": "hunter2"}, "token must be a reference {secret: NAME, key: KEY}, never a literal value"),
    ],
    ids=[
        "dest-is-mount",
        "dest-is-mount-slash",
        "dest-outside",
        "no-dest",
        "no-volume",
        "no-sha256",
        "short-sha256",
        "no-url",
        "strip-without-extract",
        "mode-with-extract",
        "mode-number",
        "literal-token",
    ],
)
def test_fetch_template_errors(helm: Helm, tmp_path: Path, step: dict[str, Any], message: str) -> None:
    """Without the schema too (a parent chart may skip it): clear messages, nothing rendered."""
    values = steps_values(tmp_path, {k: v for k, v in fetch_step(**step).items() if v is not None})
    with pytest.raises(HelmFailed) as failed:
        helm.template(values, extra=("--skip-schema-validation",))
    assert 'step "get" (fetch)' in failed.value.stderr
    assert message in failed.value.stderr, failed.value.stderr


# register as a native sidecar: restartPolicy Always, the deregister request's options.
def register_step(**extra: Any) -> dict[str, Any]:
    return {"kind": "register", "name": "reg", "url": "http://r.invalid/nodes", **extra}


def test_register_sidecar_deregisters_with_delete(helm: Helm) -> None:
    containers = by_name(init_containers(helm.template(CI / "register-sidecar-values.yaml")))
    assert list(containers) == ["wait-for-services", "register"], "after the wait, as a plain register"
    register = containers["register"]
    assert register["restartPolicy"] == "Always", "a Kubernetes 1.29+ native sidecar"
    assert "restartPolicy" not in containers["wait-for-services"]
    assert register["args"] == [
        "register",
        "http://registry.example.invalid/api/v1/instances",
        "--json",
        '{"ip":"{{ pod.ip }}","pod":"{{ pod.name }}"}',
        "--token-file",
        "/var/run/initkit/token/token",
        "--attempts",
        "10",
        "--timeout",
        "2m",
        "--deregister-method",
        "DELETE",
        "--deregister-url",
        "http://registry.example.invalid/api/v1/instances/{{ pod.name }}",
        "--deregister-timeout",
        "10s",
        "--heartbeat",
        "1m",
    ], "the deregister URL through tpl, its runtime Jinja unescaped"
    assert register["image"] == SLIM
    assert register["securityContext"] == HARDENED
    assert register["volumeMounts"] == [
        {"name": "register-token", "mountPath": "/var/run/initkit/token", "readOnly": True}
    ]


@pytest.mark.parametrize(
    ("sidecar", "args"),
    [
        ({"method": "DELETE"}, ["--deregister-method", "DELETE"]),
        ({"heartbeat": 30}, ["--heartbeat", "30s"]),
        (
            {"method": "POST", "url": "http://r.invalid/deregister", "data": "instance={{ pod.name }}", "timeout": 5},
            [
                "--deregister-method",
                "POST",
                "--deregister-url",
                "http://r.invalid/deregister",
                "--deregister-data",
                "instance={{ pod.name }}",
                "--deregister-timeout",
                "5s",
            ],
        ),
        (
            {"method": "PUT", "json": {"state": "gone", "pod": "{{ pod.name }}"}},
            ["--deregister-method", "PUT", "--deregister-json", '{"pod":"{{ pod.name }}","state":"gone"}'],
        ),
    ],
    ids=["delete", "heartbeat-only", "post-form", "put-json"],
)
def test_register_sidecar_args(helm: Helm, tmp_path: Path, sidecar: dict[str, Any], args: list[str]) -> None:
    (reg,) = init_containers(helm.template(steps_values(tmp_path, register_step(sidecar=sidecar))))
    assert reg["args"] == ["register", "http://r.invalid/nodes", *args]
    assert reg["restartPolicy"] == "Always"


def test_register_without_sidecar_is_a_plain_init_container(helm: Helm, tmp_path: Path) -> None:
    (reg,) = init_containers(helm.template(steps_values(tmp_path, register_step())))
    assert reg["args"] == ["register", "http://r.invalid/nodes"]
    assert "restartPolicy" not in reg


@pytest.mark.parametrize("version", ["1.29.0", "1.30.0", "1.37.0"])
def test_register_sidecar_on_kubernetes_1_29_and_newer(helm: Helm, tmp_path: Path, version: str) -> None:
    values = steps_values(tmp_path, register_step(sidecar={"method": "DELETE"}))
    (reg,) = init_containers(helm.template(values, extra=("--kube-version", version)))
    assert reg["restartPolicy"] == "Always"


@pytest.mark.parametrize(
    ("sidecar", "extra", "message"),
    [
        (
            {"method": "DELETE"},
            ("--kube-version", "1.28.9"),
            "sidecar needs Kubernetes 1.29 or newer (a native sidecar: an init container with restartPolicy: Always), "
            "the target is v1.28.9",
        ),
        ({"method": "DELETE"}, ("--kube-version", "1.25.0"), "sidecar needs Kubernetes 1.29 or newer"),
        ({}, (), "sidecar needs a method"),
        ("DELETE", (), "sidecar must be a map"),
        ({"method": "DELETE", "data": "a=b", "json": "{}"}, (), "sidecar: set either data or json, not both"),
        ({"heartbeat": 30, "url": "http://r.invalid/x"}, (), "set sidecar.method too"),
    ],
    ids=["kube-1.28", "kube-1.25", "empty", "not-a-map", "data-and-json", "url-without-method"],
)
def test_register_sidecar_template_errors(
    helm: Helm, tmp_path: Path, sidecar: Any, extra: tuple[str, ...], message: str
) -> None:
    values = steps_values(tmp_path, register_step(sidecar=sidecar))
    with pytest.raises(HelmFailed) as failed:
        helm.template(values, extra=("--skip-schema-validation", *extra))
    assert 'step "reg" (register): ' in failed.value.stderr
    assert message in failed.value.stderr, failed.value.stderr
