"""wait-for's API targets in a real pod: the in-cluster configuration, under Pod Security `restricted`.

The image initkit:dev runs with its pod's ServiceAccount: the token, CA and namespace files the
kubelet projects, and KUBERNETES_SERVICE_HOST/PORT. Granted get/list/watch on jobs by a Role, it
waits for a Job created once it is watching; without the Role it ends at once, exit 1, with
one line naming the verb, the resource and the namespace.
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest

from tests.cluster.conftest import KUBECONFIG, KUBECTL, Kube

IMAGE = "initkit:dev"
RESTRICTED = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _namespace(kube: Kube) -> str:
    name = f"k8swait-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    kube.namespaces.append(name)
    kube.run("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s", timeout=70)
    return name


def _pod_spec(args: list[str], account: str | None = None) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "args": args,
        "securityContext": {**CONTAINER_RESTRICTED, "readOnlyRootFilesystem": True},
    }
    spec = {"restartPolicy": "Never", "securityContext": RESTRICTED, "containers": [container]}
    return {**spec, "serviceAccountName": account} if account else spec


def _account(kube: Kube, ns: str, name: str, *, granted: bool) -> None:
    """ServiceAccount NAME; GRANTED: a Role with get, list and watch on jobs, bound to it."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
    ]
    if granted:
        rbac = "rbac.authorization.k8s.io"
        docs += [
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": ns},
                "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}],
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
            },
        ]
    kube.apply(docs)


def _waiter(kube: Kube, ns: str, account: str, target: str) -> None:
    """Pod `waiter`: `initkit wait-for TARGET` as ACCOUNT; refused unless admitted under restricted."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "waiter", "namespace": ns},
        "spec": _pod_spec(["--debug", "wait-for", target, "--timeout", "120s"], account),
    }
    kube.apply(pod)


def _kubectl(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args], stdout=subprocess.PIPE, text=True)


def _started(ns: str) -> str:
    """The waiter's phase once it is no longer Pending (its container ran), watched."""
    proc = _kubectl("get", "pod", "waiter", "-n", ns, "-w", "-o", 'jsonpath={.status.phase}{"\\n"}')
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() not in ("", "Pending"):
                return line.strip()
    finally:
        proc.kill()
        proc.wait()
    raise AssertionError("the watch of pod waiter ended while it was pending")


def _follow_until(ns: str, text: str) -> list[str]:
    """The waiter's log lines, followed as they come, up to the first holding TEXT."""
    proc = _kubectl("logs", "-f", "waiter", "-n", ns)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if text in line:
                return lines
    finally:
        proc.kill()
        proc.wait()
    raise AssertionError(f"the waiter ended before {text!r} (does initkit:dev predate the API targets?): {lines}")


def _ended(kube: Kube, ns: str, phase: str) -> tuple[int, list[str]]:
    kube.run("wait", "--for=jsonpath={.status.phase}=" + phase, "pod/waiter", "-n", ns, "--timeout=120s", timeout=130)
    pod = kube.get("pod", "waiter", ns)
    code = pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
    logs = kube.run("logs", "waiter", "-n", ns).splitlines()
    return code, [line for line in logs if not line.startswith("initkit wait-for: debug: ")]


@pytest.fixture
def ns(kube: Kube) -> str:
    return _namespace(kube)


def test_a_pod_waits_with_its_service_account_for_a_job_created_late(kube: Kube, ns: str) -> None:
    _account(kube, ns, "waiter", granted=True)
    _waiter(kube, ns, "waiter", "job:late")
    _started(ns)
    lines = _follow_until(ns, "kube: listed 0 jobs.batch")  # in-cluster: listed, found none, watching
    assert any("waiting for job:late" in line for line in lines), lines
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "late", "namespace": ns},
        "spec": {"backoffLimit": 0, "template": {"spec": _pod_spec(["sleep", "0"])}},
    }
    kube.apply(job)
    code, logs = _ended(kube, ns, "Succeeded")
    assert code == 0, logs
    assert any(line.startswith("initkit wait-for: job:late is ready after ") for line in logs), logs
    assert f"(job {ns}/late complete)" in "\n".join(logs)


def test_a_pod_without_the_role_ends_at_once_naming_verb_resource_and_namespace(kube: Kube, ns: str) -> None:
    _account(kube, ns, "waiter", granted=False)  # the same pod, without the Role
    _waiter(kube, ns, "waiter", "job:late")
    code, logs = _ended(kube, ns, "Failed")
    assert code == 1, logs
    errors = [line for line in logs if ": error: " in line]
    assert errors == [
        f"initkit wait-for: error: job:late: RBAC denied (HTTP 403): the ServiceAccount cannot list jobs.batch "
        f"in namespace {ns} (it needs get, list and watch on jobs.batch there)"
    ], logs
    assert logs[-1] == errors[0]
