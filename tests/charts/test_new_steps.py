"""The chart's copy, sysctl and certs steps, render's merge/edit, wait-for's secretFiles and
the RBAC of its Kubernetes API targets, and permissions' per-path owner and mode in one
container: what each renders, and the clear line when the values cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.charts.conftest import EXAMPLE, KUBE_VERSIONS, Helm, HelmFailed, workload
from tests.charts.test_init_containers import (
    DATA,
    DOWNWARD_ENV,
    FULL,
    HARDENED,
    ROOT_CHOWN,
    SLIM,
    by_name,
    init_containers,
    permissions_step,
    steps_values,
)

pytestmark = pytest.mark.helm

CI = EXAMPLE / "ci"
WORKSPACE = {"name": "workspace", "mountPath": "/workspace"}
SRC = "/var/run/initkit/copy-src"


def fails(helm: Helm, values: Path, message: str, *extra: str) -> None:
    """Without the schema too (a parent chart may skip it): one clear line, nothing rendered."""
    with pytest.raises(HelmFailed) as failed:
        helm.template(values, extra=("--skip-schema-validation", *extra))
    assert message in failed.value.stderr, failed.value.stderr


# ---- copy -------------------------------------------------------------------------------------


def copy_step(**extra: Any) -> dict[str, Any]:
    return {"kind": "copy", "name": "defaults", "volume": WORKSPACE, **extra}


def test_copy_from_the_apps_image_volume_as_the_apps_user(helm: Helm, tmp_path: Path) -> None:
    step = copy_step(
        **{
            "from": {"image": {"reference": "registry.example.invalid/app:{{ .Release.Name }}"}, "path": "/opt/app"},
            "dest": "/workspace/app",
            "owner": "1001:1001",
            "mode": "g+rwX",
            "overwrite": True,
        }
    )
    docs = helm.template(steps_values(tmp_path, step))
    (copy,) = init_containers(docs)
    assert copy["args"] == ["copy", f"{SRC}/opt/app", "/workspace/app", "--overwrite", "--mode", "g+rwX"]
    assert copy["image"] == SLIM
    assert copy["securityContext"] == {**HARDENED, "runAsUser": 1001, "runAsGroup": 1001}, "no capability"
    assert copy["volumeMounts"] == [
        {"name": "defaults-src", "mountPath": SRC, "readOnly": True},
        {"name": "workspace", "mountPath": "/workspace"},
    ]
    assert "env" not in copy
    volume = by_name(workload(docs)["volumes"])["defaults-src"]
    assert volume == {"name": "defaults-src", "image": {"reference": "registry.example.invalid/app:myapp"}}


@pytest.mark.parametrize(
    ("source", "volume", "src"),
    [
        ({"configMap": "{{ .Release.Name }}-conf"}, {"configMap": {"name": "myapp-conf", "defaultMode": 0o444}}, ".."),
        ({"secret": "conf", "path": "/app.conf"}, {"secret": {"secretName": "conf", "defaultMode": 0o444}}, ".."),
        ({"volume": "shared"}, None, ""),
    ],
    ids=["configmap", "secret-one-key", "volume"],
)
def test_copy_from_a_configmap_secret_or_volume(
    helm: Helm, tmp_path: Path, source: dict[str, Any], volume: dict[str, Any] | None, src: str
) -> None:
    """A ConfigMap or Secret is copied from the kubelet's ..data directory: its files, not
    the per-key links into it; another pod volume is mounted read-only."""
    docs = helm.template(steps_values(tmp_path, copy_step(**{"from": source})))
    (copy,) = init_containers(docs)
    path = source.get("path", "")
    if volume is None:
        assert copy["args"][1:3] == [SRC, "/workspace"]
        assert copy["volumeMounts"][0] == {"name": "shared", "mountPath": SRC, "readOnly": True}
        assert "defaults-src" not in by_name(workload(docs)["volumes"])
    else:
        assert copy["args"][1:3] == [f"{SRC}/..data{path}", "/workspace"]
        assert by_name(workload(docs)["volumes"])["defaults-src"] == {"name": "defaults-src", **volume}


def test_copy_image_volume_needs_kubernetes_1_31(helm: Helm, tmp_path: Path) -> None:
    values = steps_values(tmp_path, copy_step(**{"from": {"image": {"reference": "app:1"}}}))
    fails(
        helm,
        values,
        "from.image is a Kubernetes image volume, which needs Kubernetes 1.31 or newer",
        "--kube-version",
        "1.30.0",
    )
    (copy,) = init_containers(helm.template(values, extra=("--kube-version", "1.31.0")))
    assert copy["name"] == "defaults"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({}, "from needs exactly one of image, configMap, secret or volume (got 0)"),
        (
            {"from": {"configMap": "a", "secret": "b"}},
            "from needs exactly one of image, configMap, secret or volume (got 2)",
        ),
        ({"from": {"volume": "workspace"}}, 'from.volume "workspace" is the volume it writes into'),
        ({"from": {"configMap": "a", "path": "/../etc"}}, 'from.path "/../etc" must be absolute'),
        ({"from": {"configMap": "a"}, "owner": "0"}, "uid 0 is root; a copy step never runs as root"),
        ({"from": {"configMap": "a"}, "dest": "/etc"}, 'dest "/etc" must be /workspace or below it'),
        ({"from": {"image": {}}}, "from.image.reference is required"),
    ],
    ids=["no-source", "two-sources", "same-volume", "dotdot", "root", "dest-outside", "no-reference"],
)
def test_copy_template_errors(helm: Helm, tmp_path: Path, step: dict[str, Any], message: str) -> None:
    fails(helm, steps_values(tmp_path, copy_step(**step)), message)


# ---- sysctl -----------------------------------------------------------------------------------

PRIVILEGED = {
    "runAsNonRoot": False,
    "runAsUser": 0,
    "runAsGroup": 0,
    "privileged": True,
    "allowPrivilegeEscalation": True,
    "readOnlyRootFilesystem": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_sysctl_ci_values_raise_vm_max_map_count_privileged(helm: Helm) -> None:
    containers = init_containers(helm.template(CI / "sysctl-values.yaml"))
    sysctl = by_name(containers)["sysctl"]
    assert sysctl["args"] == ["sysctl", "fs.file-max=1048576", "vm.max_map_count=262144"], "whole numbers, sorted"
    assert sysctl["securityContext"] == PRIVILEGED
    assert sysctl["image"] == SLIM
    assert by_name(containers)["wait-for-services"]["securityContext"] == HARDENED


def test_sysctl_namespaced_keys_need_no_privilege(helm: Helm, tmp_path: Path) -> None:
    step = {
        "kind": "sysctl",
        "settings": {
            "net.core.somaxconn": 1024,
            "net/ipv4/ip_local_port_range": "1024 65000",
            "kernel.shmmax": "{{ 68719476736 }}",
            "kernel.sem": "250 32000 100 128",
        },
        "exact": True,
    }
    (sysctl,) = init_containers(helm.template(steps_values(tmp_path, step)))
    assert sysctl["args"] == [
        "sysctl",
        "kernel.sem=250 32000 100 128",
        "kernel.shmmax=68719476736",
        "net.core.somaxconn=1024",
        "net/ipv4/ip_local_port_range=1024 65000",
        "--exact",
    ]
    assert sysctl["securityContext"] == HARDENED


@pytest.mark.parametrize(
    "key",
    [
        "vm.max_map_count",
        "fs.file-max",
        "kernel.pid_max",
        "net.netfilter.nf_conntrack_max",
        "net/netfilter/nf_conntrack_expect_max",
        "kernel.semx",
    ],
)
def test_sysctl_node_wide_key_without_privileged_fails(helm: Helm, tmp_path: Path, key: str) -> None:
    """The privilege is never a silent default: a key that is not namespaced needs privileged: true."""
    values = steps_values(tmp_path, {"kind": "sysctl", "name": "tune", "settings": {key: 1}})
    fails(
        helm,
        values,
        f'step "tune" (sysctl): {key} is not namespaced (it is the node\'s): only a privileged '
        "container may set it; set privileged: true on the step",
    )


def test_sysctl_privileged_refused_under_openshift_unless_allowed(helm: Helm, tmp_path: Path) -> None:
    step = {"kind": "sysctl", "name": "tune", "privileged": True, "settings": {"vm.max_map_count": 262144}}
    values = yaml.safe_load(steps_values(tmp_path, step).read_text())
    values["global"] = {"compatibility": {"openshift": {"adaptSecurityContext": "force"}}}
    path = tmp_path / "openshift.yaml"
    path.write_text(yaml.safe_dump(values))
    fails(helm, path, "runs privileged, as root, which OpenShift's restricted SCC refuses")
    values["initkit"]["steps"]["tune"]["openshiftAllowRoot"] = True
    path.write_text(yaml.safe_dump(values))
    (tune,) = init_containers(helm.template(path))
    assert tune["securityContext"]["privileged"] is True


# ---- certs ------------------------------------------------------------------------------------


def test_certs_ci_values(helm: Helm) -> None:
    docs = helm.template(CI / "certs-values.yaml")
    certs = by_name(init_containers(docs))["certs"]
    assert certs["image"] == FULL, "certs needs cryptography: the full image"
    assert certs["env"] == DOWNWARD_ENV, "the pod's IP and name go into the certificate"
    assert certs["securityContext"] == HARDENED
    assert certs["args"] == [
        "certs", "/tls",
        "--ca-cert", "/var/run/initkit/ca-cert/tls.crt", "--ca-key", "/var/run/initkit/ca-key/tls.key",
        "--service", "myapp-headless", "--renew-before", "30d", "--dns-name", "myapp.demo.svc",
        "--pkcs12", "keystore.p12", "--pkcs12-password-file", "/var/run/initkit/pkcs12-password/password",
        "--truststore", "truststore.jks", "--truststore-password-file", "/var/run/initkit/truststore-password/password",
    ]  # fmt: skip
    volumes = by_name(workload(docs)["volumes"])
    assert volumes["certs-ca-key"]["secret"] == {
        "secretName": "myapp-ca",
        "items": [{"key": "tls.key", "path": "tls.key"}],
        "defaultMode": 0o444,
    }
    assert volumes["certs-pkcs12-password"]["secret"]["secretName"] == "myapp-keystore"
    assert {"name": "certs-ca-key", "mountPath": "/var/run/initkit/ca-key", "readOnly": True} in certs["volumeMounts"]


def test_certs_created_ca_kept_in_the_volume_as_the_apps_user(helm: Helm, tmp_path: Path) -> None:
    step = {
        "kind": "certs",
        "volume": {"name": "tls", "mountPath": "/tls", "subPath": "pod"},
        "dest": "/tls/pod",
        "caDir": "/tls/ca",
        "ipAddresses": ["10.0.0.1"],
        "keyType": "ecdsa-p256",
        "days": 90,
        "pod": False,
        "owner": "1001",
        "keystore": {"name": "keystore.jks", "password": {"secret": "ks", "key": "pw"}},
        "truststore": {"name": "truststore.jks"},
    }
    (certs,) = init_containers(helm.template(steps_values(tmp_path, step)))
    assert certs["args"] == [
        "certs", "/tls/pod", "--ca-dir", "/tls/ca", "--days", "90", "--key-type", "ecdsa-p256", "--no-pod",
        "--ip-address", "10.0.0.1", "--keystore", "keystore.jks", "--keystore-password-file",
        "/var/run/initkit/keystore-password/pw", "--truststore", "truststore.jks",
    ]  # fmt: skip
    assert certs["securityContext"] == {**HARDENED, "runAsUser": 1001}


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"ca": {"secret": "ca"}, "caDir": "/tls/ca"}, "caDir keeps a CA the step creates"),
        ({"caDir": "/etc"}, 'caDir "/etc" must be /tls or below it'),
        ({"pkcs12": {"name": "k.p12"}}, "pkcs12.password is required"),
        ({"pkcs12": {"name": "../k.p12", "password": {"secret": "s", "key": "k"}}}, "must be a file name in dest"),
        ({"keystore": {"name": "k.jks", "password": "hunter2"}}, "keystore-password must be a reference"),
        ({"ca": {"certKey": "tls.crt"}}, "ca.secret is required"),
        ({"image": {"tag": "0.1.0-slim"}}, 'needs the full image (with cryptography), but its tag "0.1.0-slim"'),
    ],
    ids=["ca-and-ca-dir", "ca-dir-outside", "no-password", "store-path", "literal-password", "no-ca-secret", "slim"],
)
def test_certs_template_errors(helm: Helm, tmp_path: Path, step: dict[str, Any], message: str) -> None:
    step = {"kind": "certs", "volume": {"name": "tls", "mountPath": "/tls"}, **step}
    fails(helm, steps_values(tmp_path, step), message)


# ---- render: merge and edit ---------------------------------------------------------------------


def test_render_merge_and_edit_ci_values(helm: Helm) -> None:
    docs = helm.template(CI / "render-merge-values.yaml")
    containers = by_name(init_containers(docs))
    merge, edit = containers["merge-config"], containers["edit-ini"]
    assert merge["args"] == [
        "render", "--merge", "/var/run/initkit/merge-0/app.yaml", "--merge", "/var/run/initkit/merge-1/app.yaml",
        "--to", "/config/app.yaml", "--set", "replicas=3",
    ]  # fmt: skip
    assert edit["args"] == [
        "render", "--edit", "/config/airflow.cfg", "--set", "core.executor=LocalExecutor",
        "--set-file", "database.sql_alchemy_conn=/var/run/initkit/set-file-0/uri",
    ]  # fmt: skip
    assert "env" not in merge and "env" not in edit, "no Jinja in merge or edit: no Downward API env"
    volumes = by_name(workload(docs)["volumes"])
    assert volumes["merge-config-merge-1"]["configMap"]["name"] == "myapp-override"
    assert volumes["edit-ini-set-file-0"]["secret"]["secretName"] == "myapp-db"


def test_render_edit_to_another_file(helm: Helm, tmp_path: Path) -> None:
    step = {
        "kind": "render",
        "edit": "/config/app.properties",
        "dest": "/config/out/app.properties",
        "format": "properties",
        "set": {"server.port": 8080},
        "volume": {"name": "config", "mountPath": "/config"},
    }
    (edit,) = init_containers(helm.template(steps_values(tmp_path, step)))
    assert edit["args"] == [
        "render",
        "--edit",
        "/config/app.properties",
        "--to",
        "/config/out/app.properties",
        "--format",
        "properties",
        "--set",
        "server.port=8080",
    ]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"dest": "/config/a"}, "give exactly one of template (render), merge (files to deep-merge) or edit"),
        (
            {"edit": "/config/a.ini", "merge": [{"configMap": "a", "key": "a"}], "dest": "/config/a"},
            "got merge, edit",
        ),
        ({"edit": "/etc/a.ini", "set": {"a.b": 1}}, 'edit "/etc/a.ini" must be a file below /config'),
        ({"edit": "/config/a.ini"}, "edit changes the keys of set or setFile; give one"),
        ({"merge": [{"configMap": "a", "key": "a"}]}, "dest is required"),
        (
            {"edit": "/config/a.ini", "setFile": {"a.b": {"configMap": "c", "key": "k"}}},
            "set-file-0 must come from a Secret",
        ),
    ],
    ids=["none", "two", "edit-outside", "edit-nothing", "merge-no-dest", "set-file-configmap"],
)
def test_render_form_errors(helm: Helm, tmp_path: Path, step: dict[str, Any], message: str) -> None:
    step = {"kind": "render", "volume": {"name": "config", "mountPath": "/config"}, **step}
    fails(helm, steps_values(tmp_path, step), message)


# ---- wait-for: secretFiles and the RBAC of API targets ------------------------------------------


def rbac_docs(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole")
    return {(d["kind"], d["metadata"].get("namespace", "")): d for d in docs if d["kind"] in kinds}


def rules(doc: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    return {(g, r, tuple(rule["verbs"])) for rule in doc["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


GLW = ("get", "list", "watch")


def test_api_targets_get_exactly_their_rbac(helm: Helm) -> None:
    docs = helm.template(CI / "wait-for-api-values.yaml")
    spec = workload(docs)
    assert spec["serviceAccountName"] == "myapp-initkit"
    assert spec["automountServiceAccountToken"] is True, "the token only because an API target reads it"
    found = rbac_docs(docs)
    assert set(found) == {
        ("ServiceAccount", "demo"),
        ("Role", "demo"),
        ("RoleBinding", "demo"),
        ("ClusterRole", ""),
        ("RoleBinding", "monitoring"),
    }
    assert rules(found["Role", "demo"]) == {
        ("batch", "jobs", GLW),  # job: and gone:job:
        ("discovery.k8s.io", "endpointslices", GLW),  # endpoints:
        ("", "pods", GLW),  # daemonset:
        ("cert-manager.io", "certificates", GLW),  # cr:
    }
    assert rules(found["ClusterRole", ""]) == {("", "pods", GLW)}, "pods:monitoring/...: that namespace's only"
    other = found["RoleBinding", "monitoring"]
    assert other["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": found["ClusterRole", ""]["metadata"]["name"],
    }
    assert other["subjects"] == [{"kind": "ServiceAccount", "name": "myapp-initkit", "namespace": "demo"}]
    assert found["RoleBinding", "demo"]["roleRef"]["kind"] == "Role"
    wait = by_name(spec["initContainers"])["wait-api"]
    assert wait["env"] == DOWNWARD_ENV, "daemonset: needs NODE_NAME"
    for doc in found.values():
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_no_api_target_no_rbac_and_no_token(helm: Helm) -> None:
    docs = helm.template()
    assert rbac_docs(docs) == {}
    spec = workload(docs)
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        (["pods:app.kubernetes.io/name=web"], {"": {("", "pods", GLW)}}),
        (["pods:demo/app=web"], {"": {("", "pods", GLW)}}),
        (["gone:endpoints:other/mydb"], {"other": {("discovery.k8s.io", "endpointslices", GLW)}}),
        (["cr:example.com/v1/widgets/ns2/w#condition=Ready"], {"ns2": {("example.com", "widgets", GLW)}}),
        (["tcp:db:5432", "dns:x", "http://a/b", "postgres://db/app"], {}),
    ],
    ids=["label-key-with-slash", "own-namespace", "gone-other-namespace", "cr-namespace", "no-api-target"],
)
def test_api_rules_per_target(helm: Helm, tmp_path: Path, targets: list[str], expected: dict[str, Any]) -> None:
    docs = helm.template(steps_values(tmp_path, {"kind": "wait-for", "targets": targets}))
    found = rbac_docs(docs)
    have: dict[str, Any] = {}
    for (kind, _ns), doc in found.items():
        if kind == "Role":
            have[""] = rules(doc)
        elif kind == "ClusterRole":
            (binding,) = [d for (k, n), d in found.items() if k == "RoleBinding" and n != "demo"]
            have[binding["metadata"]["namespace"]] = rules(doc)
    assert have == expected


def test_rbac_create_false_uses_your_service_account(helm: Helm, tmp_path: Path) -> None:
    values = steps_values(
        tmp_path,
        {"kind": "wait-for", "targets": ["job:migrate"]},
        rbac={"create": False, "serviceAccountName": "{{ .Release.Name }}-waiter"},
    )
    docs = helm.template(values)
    assert rbac_docs(docs) == {}
    spec = workload(docs)
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("myapp-waiter", True)


def test_secret_files_are_mounted_read_only_at_their_path(helm: Helm) -> None:
    docs = helm.template(CI / "wait-for-api-values.yaml")
    wait = by_name(init_containers(docs))["wait-db"]
    assert wait["args"] == ["wait-for", "postgres://app@mydb:5432/app?password_file=/var/run/secrets/db/password"]
    assert wait["volumeMounts"] == [
        {
            "name": "wait-db-secret-0",
            "mountPath": "/var/run/secrets/db/password",
            "subPath": "password",
            "readOnly": True,
        }
    ]
    assert by_name(workload(docs)["volumes"])["wait-db-secret-0"]["secret"] == {
        "secretName": "myapp-db",
        "items": [{"key": "password", "path": "password"}],
        "defaultMode": 0o444,
    }
    assert "password" not in yaml.safe_dump([d for d in docs if d["kind"] == "Secret"]), "no Secret rendered"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"secret": "db", "key": "pw"}, "secretFiles[0]: path is required"),
        ({"secret": "db", "key": "pw", "path": "relative"}, 'path "relative" must be an absolute file path'),
        ({"secret": "db", "key": "pw", "path": "/a/../b"}, 'path "/a/../b" must be an absolute file path'),
        ({"configMap": "db", "key": "pw", "path": "/a"}, "secret-0 must come from a Secret"),
    ],
    ids=["no-path", "relative", "dotdot", "configmap"],
)
def test_secret_files_errors(helm: Helm, tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    fails(helm, steps_values(tmp_path, {"kind": "wait-for", "targets": ["tcp:a:1"], "secretFiles": [entry]}), message)


# ---- permissions: {path, owner, mode} in one container ------------------------------------------


def test_permissions_paths_with_their_own_owner_and_mode_run_in_one_container(helm: Helm, tmp_path: Path) -> None:
    step = permissions_step(
        volumeMounts=[DATA, {"name": "shm", "mountPath": "/dev/shm"}],
        owner="1001:1001",
        paths=[
            "/data",
            {"path": "/data/pgdata", "mode": "u=rwX,go="},
            {"path": "/dev/shm", "owner": 0, "mode": "a+rwX"},
            {"path": "/data/{{ .Release.Name }}", "owner": "{{ 1002 }}"},
        ],
    )
    (fix,) = init_containers(helm.template(steps_values(tmp_path, step)))
    assert fix["name"] == "fix"
    assert fix["args"] == [
        "permissions", "/data", "--owner", "1001:1001",
        "--path", "/data/pgdata", "-", "u=rwX,go=",
        "--path", "/dev/shm", "0", "a+rwX",
        "--path", "/data/myapp", "1002", "-",
    ]  # fmt: skip
    assert fix["securityContext"] == ROOT_CHOWN


def test_permissions_paths_alone_need_no_step_owner(helm: Helm, tmp_path: Path) -> None:
    step = permissions_step(paths=[{"path": "/data", "owner": "1001", "mode": "0700"}])
    (fix,) = init_containers(helm.template(steps_values(tmp_path, step)))
    assert fix["args"] == ["permissions", "--path", "/data", "1001", "0700"]
    fails(helm, steps_values(tmp_path, permissions_step(paths=[{"path": "/data"}])), 'nothing to do for path "/data"')
    fails(
        helm,
        steps_values(tmp_path, permissions_step(paths=[{"path": "/data", "mode": 448}])),
        "mode must be a string",
    )
