"""values.schema.json of both charts: malformed values fail with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import ROOT, Helm, HelmFailed

pytestmark = pytest.mark.helm

SCHEMA_ERROR = "values don't meet the specifications of the schema(s) in the following chart(s):"
KINDS = "'wait-for', 'register', 'sleep', 'git-clone', 'render', 'permissions', 'fetch', 'copy', 'sysctl', 'certs'"
VOLUME = {"name": "workspace", "mountPath": "/workspace"}


def wait(**extra: Any) -> dict[str, Any]:
    return {"kind": "wait-for", "order": 1, "targets": ["dns:myservice"], **extra}


def permissions(**extra: Any) -> dict[str, Any]:
    step = {"kind": "permissions", "order": 1, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    return {"steps": {"p": {**step, **extra}}}


def fetch(**extra: Any) -> dict[str, Any]:
    step = {"kind": "fetch", "order": 1, "url": "https://a.invalid/p.tgz", "volume": VOLUME, "dest": "/workspace/p"}
    return {"steps": {"f": {**step, "sha256": "ab" * 32, **extra}}}


def register(**extra: Any) -> dict[str, Any]:
    return {"steps": {"r": {"kind": "register", "order": 1, "url": "http://r.invalid/nodes", **extra}}}


# Each case: the initkit values block (its steps keyed by name) and the message expected.
INITKIT_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "target-not-a-string": (
        {"steps": {"w": {"kind": "wait-for", "order": 1, "targets": ["dns:myservice", 5432]}}},
        "at '/steps/w/targets/1': got number, want string",
    ),
    "target-not-a-list": (
        {"steps": {"w": {"kind": "wait-for", "order": 1, "targets": "dns:myservice"}}},
        "at '/steps/w/targets': got string, want array",
    ),
    "unknown-step-kind": (
        {"steps": {"f": {"kind": "frobnicate", "order": 1}}},
        f"at '/steps/f/kind': value must be one of {KINDS}",
    ),
    "missing-step-kind": (
        {"steps": {"w": {"order": 1, "targets": ["dns:a"]}}},
        "at '/steps/w': missing property 'kind'",
    ),
    "missing-order": (
        {"steps": {"w": {"kind": "wait-for", "targets": ["dns:a"]}}},
        "at '/steps/w': missing property 'order'",
    ),
    "steps-as-a-list": ({"steps": [wait()]}, "at '/steps': got array, want object"),
    "step-name-not-a-container-name": (
        {"steps": {"Wait_DB": wait()}},
        "'Wait_DB' does not match pattern",
    ),
    "negative-timeout-seconds": ({"steps": {"w": wait(timeout=-5)}}, "at '/steps/w/timeout': minimum: got -5, want 0"),
    "negative-timeout-string": (
        {"steps": {"w": wait(timeout="-5s")}},
        "at '/steps/w/timeout': '-5s' does not match pattern",
    ),
    "negative-sleep": (
        {"steps": {"nap": {"kind": "sleep", "order": 2, "duration": -1}}},
        "at '/steps/nap/duration': minimum: got -1, want 0",
    ),
    "unknown-step-option": (
        {"steps": {"w": wait(retries=3)}},
        "at '/steps/w': additional properties 'retries' not allowed",
    ),
    "literal-token": (
        {"steps": {"r": {"kind": "register", "order": 1, "url": "http://r.invalid", "token": "hunter2"}}},
        "at '/steps/r/token': got string, want object",
    ),
    "ssh-key-without-known-hosts": (
        {
            "steps": {
                "clone": {
                    "kind": "git-clone",
                    "order": 1,
                    "repo": "ssh://git@g.invalid/r.git",
                    "volume": VOLUME,
                    "sshKey": {"secret": "k", "key": "ssh-privatekey"},
                }
            }
        },
        "at '/steps/clone': properties 'knownHosts' required, if 'sshKey' exists",
    ),
    "render-without-dest": (
        {"steps": {"r": {"kind": "render", "order": 1, "template": {"configMap": "t", "key": "t"}, "volume": VOLUME}}},
        "at '/steps/r': missing property 'dest'",
    ),
    # Typos at every level: the Kubernetes definitions are closed too.
    "security-context-typo": (
        {"securityContext": {"runAsNonroot": True}},
        "at '/securityContext': additional properties 'runAsNonroot' not allowed",
    ),
    "step-security-context-typo": (
        {"steps": {"w": wait(securityContext={"capabilities": {"dorp": ["ALL"]}})}},
        "at '/steps/w/securityContext/capabilities': additional properties 'dorp' not allowed",
    ),
    "resources-typo": (
        {"resources": {"limit": {"cpu": 1}}},
        "at '/resources': additional properties 'limit' not allowed",
    ),
    "resource-name-typo": ({"resources": {"limits": {"memroy": "1Gi"}}}, "invalid propertyName 'memroy'"),
    "bad-quantity": (
        {"resources": {"limits": {"memory": "1 GB"}}},
        "at '/resources/limits/memory': '1 GB' does not match",
    ),
    "env-typo": (
        {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optinal": True}}}]},
        "at '/env/0/valueFrom/secretKeyRef': additional properties 'optinal' not allowed",
    ),
    "step-env-typo": (
        {"steps": {"w": wait(env=[{"name": "A", "vaule": "1"}])}},
        "at '/steps/w/env/0': additional properties 'vaule' not allowed",
    ),
    "volume-mount-typo": (
        {"steps": {"w": wait(volumeMounts=[{"name": "v", "mountPath": "/v", "readonly": True}])}},
        "at '/steps/w/volumeMounts/0': additional properties 'readonly' not allowed",
    ),
    "volume-typo": (
        {"volumes": [{"name": "v", "emtpyDir": {}}]},
        "at '/volumes/0': additional properties 'emtpyDir' not allowed",
    ),
    "tag-as-a-number": ({"image": {"tag": 1.10}}, "at '/image/tag': got number, want string"),
    "step-tag-as-a-number": (
        {"steps": {"w": wait(image={"tag": 1.1})}},
        "at '/steps/w/image/tag': got number, want string",
    ),
    "image-typo": ({"image": {"pullSecret": ["x"]}}, "at '/image': additional properties 'pullSecret' not allowed"),
    "file-mode-decimal-440": ({"fileMode": 440}, "at '/fileMode': value must be one of 256, 288, 292, 384, 416, 420"),
    "file-mode-writable-by-others": ({"fileMode": 0o666}, "at '/fileMode': value must be one of"),
    "permissions-owner-name": (
        permissions(owner="mysql:mysql"),
        "at '/steps/p/owner': 'mysql:mysql' does not match pattern",
    ),
    "permissions-owner-colon-only": (permissions(owner="1001:"), "at '/steps/p/owner': '1001:' does not match"),
    "permissions-owner-negative": (permissions(owner=-1), "at '/steps/p/owner': minimum: got -1, want 0"),
    "permissions-owner-and-uid": (permissions(owner="1001:1001", uid=1001), "at '/steps/p': 'not' failed"),
    "permissions-gid-too-large": (
        permissions(gid=2**32 - 1),
        "at '/steps/p/gid': maximum: got 4.294967295",
    ),
    "permissions-mode-as-a-number": (permissions(mode=0o750), "at '/steps/p/mode': got number, want string"),
    "permissions-mode-setuid": (permissions(mode="u+s"), "at '/steps/p/mode': 'u+s' does not match pattern"),
    "permissions-mode-sticky-octal": (permissions(mode="1777"), "at '/steps/p/mode': '1777' does not match"),
    "permissions-mode-not-chmod": (permissions(mode="rwxr-x---"), "at '/steps/p/mode': 'rwxr-x---' does not match"),
    "permissions-capability-not-allowed": (
        permissions(owner="1001", extraCapabilities=["SYS_ADMIN"]),
        "at '/steps/p/extraCapabilities/0': value must be one of 'DAC_READ_SEARCH', 'DAC_OVERRIDE'",
    ),
    "permissions-capability-twice": (
        permissions(owner="1001", extraCapabilities=["DAC_OVERRIDE", "DAC_OVERRIDE"]),
        "at '/steps/p/extraCapabilities': items at 0 and 1 are equal",
    ),
    "permissions-nothing-to-do": (permissions(), "at '/steps/p': 'anyOf' failed"),
    "permissions-without-mounts": (
        {"steps": {"p": {"kind": "permissions", "order": 1, "owner": "1001"}}},
        "at '/steps/p': missing property 'volumeMounts'",
    ),
    "permissions-relative-path": (
        permissions(owner="1001", paths=["data"]),
        "at '/steps/p/paths/0': 'data' does not match pattern",
    ),
    "fetch-without-sha256": (
        {"steps": {"f": {k: v for k, v in fetch()["steps"]["f"].items() if k != "sha256"}}},
        "at '/steps/f': missing property 'sha256'",
    ),
    "fetch-short-sha256": (fetch(sha256="abc"), "at '/steps/f/sha256': 'abc' does not match pattern"),
    "fetch-sha256-not-hex": (fetch(sha256="g" * 64), "at '/steps/f/sha256': '" + "g" * 64 + "' does not match"),
    "fetch-without-dest": (
        {"steps": {"f": {k: v for k, v in fetch()["steps"]["f"].items() if k != "dest"}}},
        "at '/steps/f': missing property 'dest'",
    ),
    "fetch-relative-dest": (fetch(dest="plugins"), "at '/steps/f/dest': 'plugins' does not match pattern"),
    "fetch-url-not-http": (fetch(url="ftp://a.invalid/p"), "at '/steps/f/url': 'ftp://a.invalid/p' does not match"),
    "fetch-strip-negative": (
        fetch(extract=True, stripComponents=-1),
        "at '/steps/f/stripComponents': minimum: got -1, want 0",
    ),
    "fetch-strip-without-extract": (fetch(stripComponents=1), "at '/steps/f': missing property 'extract'"),
    "fetch-strip-extract-false": (
        fetch(extract=False, stripComponents=1),
        "at '/steps/f/extract': value must be true",
    ),
    "fetch-mode-with-extract": (fetch(extract=True, mode="0755"), "at '/steps/f': 'not' failed"),
    "fetch-mode-as-a-number": (fetch(mode=0o755), "at '/steps/f/mode': got number, want string"),
    "fetch-literal-token": (fetch(token="hunter2"), "at '/steps/f/token': got string, want object"),
    "fetch-typo": (fetch(sha="x"), "at '/steps/f': additional properties 'sha' not allowed"),
    "sidecar-method-unknown": (
        register(sidecar={"method": "REMOVE"}),
        "at '/steps/r/sidecar/method': value must be one of 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'",
    ),
    "sidecar-typo": (
        register(sidecar={"method": "DELETE", "deregisterUrl": "http://r.invalid"}),
        "at '/steps/r/sidecar': additional properties 'deregisterUrl' not allowed",
    ),
    "sidecar-empty": (register(sidecar={}), "at '/steps/r/sidecar': 'anyOf' failed"),
    "sidecar-data-and-json": (
        register(sidecar={"method": "POST", "data": "a=b", "json": {"a": "b"}}),
        "at '/steps/r/sidecar': 'not' failed",
    ),
    "sidecar-url-without-method": (
        register(sidecar={"heartbeat": "30s", "url": "http://r.invalid/x"}),
        "at '/steps/r/sidecar': properties 'method' required, if 'url' exists",
    ),
    "sidecar-negative-timeout": (
        register(sidecar={"method": "DELETE", "timeout": -1}),
        "at '/steps/r/sidecar/timeout': minimum: got -1, want 0",
    ),
    "sidecar-not-a-map": (register(sidecar=True), "at '/steps/r/sidecar': got boolean, want object"),
    "sysctl-text-value": (
        {"steps": {"s": {"kind": "sysctl", "order": 1, "settings": {"kernel.core_pattern": "|/bin/sh"}}}},
        "at '/steps/s/settings/kernel.core_pattern'",
    ),
    "sysctl-no-settings": (
        {"steps": {"s": {"kind": "sysctl", "order": 1, "privileged": True}}},
        "at '/steps/s': missing property 'settings'",
    ),
    "copy-two-sources": (
        {"steps": {"c": {"kind": "copy", "order": 1, "volume": VOLUME, "from": {"configMap": "a", "secret": "b"}}}},
        "at '/steps/c/from': 'oneOf' failed",
    ),
    "copy-owner-name": (
        {"steps": {"c": {"kind": "copy", "order": 1, "volume": VOLUME, "from": {"volume": "v"}, "owner": "app"}}},
        "at '/steps/c/owner'",
    ),
    "render-template-and-merge": (
        {
            "steps": {
                "r": {
                    "kind": "render",
                    "order": 1,
                    "volume": VOLUME,
                    "dest": "/workspace/a",
                    "template": {"configMap": "t", "key": "t"},
                    "merge": [{"configMap": "m", "key": "m"}],
                }
            }
        },
        "at '/steps/r': 'oneOf' failed",
    ),
    "certs-ca-and-ca-dir": (
        {"steps": {"c": {"kind": "certs", "order": 1, "volume": VOLUME, "ca": {"secret": "ca"}, "caDir": "/w"}}},
        "at '/steps/c': 'not' failed",
    ),
    "certs-literal-password": (
        {"steps": {"c": {"kind": "certs", "order": 1, "volume": VOLUME, "pkcs12": {"name": "k", "password": "pw"}}}},
        "at '/steps/c/pkcs12/password'",
    ),
    "secret-file-without-path": (
        {"steps": {"w": wait(secretFiles=[{"secret": "db", "key": "pw"}])}},
        "at '/steps/w/secretFiles/0': missing property 'path'",
    ),
    "unknown-target-scheme": (
        {"steps": {"w": wait(targets=["ftp://a/b"])}},
        "at '/steps/w/targets/0'",
    ),
    "rbac-typo": ({"rbac": {"serviceAccount": "x"}}, "at '/rbac': additional properties 'serviceAccount' not allowed"),
    "openshift-mode": (
        {"global": {"compatibility": {"openshift": {"adaptSecurityContext": "yes"}}}},
        "at '/global/compatibility/openshift/adaptSecurityContext': value must be one of 'auto', 'force', 'disabled'",
    ),
}


def run_invalid(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "invalid-values.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmFailed) as failed:
        helm.template(path)
    return failed.value.stderr


@pytest.mark.parametrize("case", sorted(INITKIT_CASES))
def test_invalid_initkit_values_fail_clearly(helm: Helm, tmp_path: Path, case: str) -> None:
    initkit, message = INITKIT_CASES[case]
    values: dict[str, Any] = {"initkit": initkit}
    if "global" in initkit:
        values = {"global": initkit["global"]}
    stderr = run_invalid(helm, tmp_path, values)
    assert SCHEMA_ERROR in stderr
    assert "\ninitkit:\n" in stderr, "the message names the chart whose schema failed"
    assert message in stderr, stderr


@pytest.mark.parametrize(
    "initkit",
    [
        {"fileMode": 0o440},
        {"fileMode": 420},  # 0644 as Kubernetes examples write it
        {"image": {"tag": "1.10"}},
        {"resources": {"limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": 1, "hugepages-2Mi": "4Mi"}}},
        {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]},
        permissions(owner="1001:1001", mode="u+rwX,g+rwX,o-rwx", extraCapabilities=["DAC_READ_SEARCH"]),
        permissions(owner=":1001", mode="a=rX,g=u"),
        permissions(owner=0, mode="0750"),
        permissions(uid=1001, gid=0, mode="750"),
        permissions(gid=1001),
        permissions(mode="go-w", extraCapabilities=["DAC_OVERRIDE"]),
        fetch(extract=True, stripComponents=0, headers=["X-A: b"], attempts=2, timeout="1m"),
        fetch(sha256="AB" * 32, mode="0755", token={"secret": "t", "key": "token"}),
        register(
            sidecar={
                "method": "DELETE",
                "url": "http://r.invalid/{{ .Release.Name }}",
                "timeout": 10,
                "heartbeat": "30s",
            }
        ),
        register(sidecar={"heartbeat": 30}),
        register(sidecar={"method": "POST", "json": {"pod": "{{ pod.name }}"}}),
    ],
    ids=[
        "mode-0440",
        "mode-420",
        "tag-string",
        "resources",
        "env-fieldref",
        "permissions-owner-mode",
        "permissions-group-only",
        "permissions-owner-number-octal",
        "permissions-uid-gid",
        "permissions-gid-only",
        "permissions-mode-only",
        "fetch-extract",
        "fetch-file",
        "sidecar-delete",
        "sidecar-heartbeat-only",
        "sidecar-json",
    ],
)
def test_valid_values_pass(helm: Helm, tmp_path: Path, initkit: dict[str, Any]) -> None:
    path = tmp_path / "valid-values.yaml"
    path.write_text(yaml.safe_dump({"initkit": initkit}))
    assert helm.template(path)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "StatefulSet"}, "at '/kind': value must be one of 'Deployment', 'Pod'"),
        ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 0"),
        ({"app": {"command": "sleep 1"}}, "at '/app/command': got string, want array"),
        ({"initkit": {"logFormat": "xml"}}, "at '/logFormat': value must be one of '', 'text', 'json'"),
        ({"initkit": {"image": {"digest": "latest"}}}, "at '/image/digest': 'latest' does not match pattern"),
        ({"typo": 1}, "additional properties 'typo' not allowed"),
    ],
    ids=["workload-kind", "replicas", "app-command", "log-format", "digest", "unknown-key"],
)
def test_invalid_example_values_fail_clearly(helm: Helm, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    stderr = run_invalid(helm, tmp_path, values)
    assert SCHEMA_ERROR in stderr
    assert message in stderr, stderr


def test_values_schema_is_generated() -> None:
    """charts/initkit/values.schema.json is charts/values_schema.py's output."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("values_schema", ROOT / "charts" / "values_schema.py")
    assert spec and spec.loader
    values_schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(values_schema)
    from tests.charts.conftest import LIBRARY

    assert (LIBRARY / "values.schema.json").read_text() == values_schema.render(), (
        "regenerate: make docs (python3 charts/values_schema.py > charts/initkit/values.schema.json)"
    )
