"""The example chart, `helm install`ed and `helm upgrade`d on the real node, every step kind that
runs without root (wait-for, fetch, register as a native sidecar, sleep, git-clone, render).

Then the pod restarts as a real pod restarts: its sandbox dies (the pause process is killed), the
kubelet makes a new one on the same emptyDirs and runs every init container again. The steps
re-run and change nothing: the app sees the same files with the same mtimes, and the sidecar
registers the same entry again.

The rendered config shows every Downward API value the chart wires (pod IP, name, namespace,
UID, node name) as the kubelet filled them in.

The servers run on the host, on the node's bridge, behind Services of the test's namespace.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.artifact_server import ArtifactServer
from tests.charts.conftest import Helm, helm_factory  # noqa: F401 (a fixture)
from tests.cluster.conftest import KUBECONFIG, NODE_IP, Kube
from tests.cluster.test_seed_pod import APP_IMAGE, import_into_node
from tests.gitservers import GitDaemon, served_repo
from tests.servers import Reply, ScriptedHttpServer

CTR = ["/var/cache/initkit-cluster/bin/containerd-v2.4.2/ctr", "-a", "/run/initkit-cluster/containerd.sock"]
SITE = {"index.html": "<h1>site v1</h1>\n"}
# The app prints what the steps made (with mtimes, to show a re-run rewrote nothing), then runs.
APP_SCRIPT = (
    "for f in /config/config.yaml /workspace/site/index.html /workspace/plugin/VERSION; do "
    'echo "== $f $(stat -c %Y "$f")"; cat "$f"; done; echo The app is running!; exec sleep 3600'
)


def plugin_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {"plugin-1.0/VERSION": b"plugin 1.0\n", "plugin-1.0/bin/run": b"#!/bin/true\n"}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def values(greeting: str, *, with_sleep: bool, archive_sha: str) -> dict[str, Any]:
    steps: dict[str, Any] = {
        "wait-for-services": {"targets": ["dns:myservice", "tcp:artifacts:80"], "timeout": "2m", "interval": "1s"},
        "fetch-plugin": {
            "kind": "fetch",
            "order": 15,
            "url": "http://artifacts/plugin-1.0.tar.gz",
            "volume": {"name": "workspace", "mountPath": "/workspace"},
            "dest": "/workspace/plugin",
            "sha256": archive_sha,
            "extract": True,
            "stripComponents": 1,
        },
        "register": {
            "enabled": True,
            "url": "http://registry/api/v1/instances",
            "json": {"pod": "{{ pod.name }}", "ip": "{{ pod.ip }}"},
            "sidecar": {
                "method": "DELETE",
                "url": 'http://registry/api/v1/instances/{{ "{{ pod.name }}" }}',
                "timeout": "10s",
                "heartbeat": "2s",
            },
        },
        "git-clone": {"enabled": True, "repo": "git://git/site.git"},
        "render": {"enabled": True, "set": {"greeting": greeting}},
    }
    if with_sleep:
        steps["sleep"] = {"kind": "sleep", "order": 25, "duration": "1s"}
    return {
        # every Downward API fact the chart wires, as the pod really sees it
        "configTemplate": (
            "greeting: {{ greeting }}\npodIP: {{ pod.ip }}\n"
            "facts: {{ pod.name }} {{ pod.namespace }} {{ pod.uid }} {{ node.name }}\n"
        ),
        "app": {
            "image": {
                "registry": "docker.io",
                "repository": "library/debian",
                "tag": "trixie-slim",
                "pullPolicy": "Never",
            },
            "command": ["sh", "-c", APP_SCRIPT],
        },
        "initkit": {
            "image": {"registry": "docker.io", "repository": "library/initkit", "tag": "dev", "pullPolicy": "Never"},
            "steps": steps,
        },
    }


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[ScriptedHttpServer, GitDaemon, ArtifactServer]]:
    registry = ScriptedHttpServer(host=NODE_IP)
    registry.default = Reply(201, '{"registered": true}')
    daemon = GitDaemon(served_repo(tmp_path, SITE), address=NODE_IP).start()
    artifacts = ArtifactServer(host=NODE_IP)
    yield registry, daemon, artifacts
    artifacts.stop()
    daemon.stop()
    registry.stop()


def the_pod(kube: Kube, ns: str) -> dict[str, Any]:
    pods = json.loads(kube.run("get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=myapp", "-o", "json"))
    live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, [p["metadata"]["name"] for p in pods["items"]]
    return live[0]


def app_view(logs: str) -> dict[str, tuple[str, str]]:
    """{path: (mtime, content)} from the app's start-up lines."""
    view: dict[str, tuple[str, str]] = {}
    for chunk in logs.split("== ")[1:]:
        head, _, body = chunk.partition("\n")
        path, mtime = head.split()
        view[path] = (mtime, body.split("The app is running!")[0])
    return view


def kill_sandbox(pod: dict[str, Any]) -> None:
    """What a node does to a pod when its sandbox dies: kill the pod's pause process."""
    uid = pod["metadata"]["uid"]
    listed = subprocess.run(
        [*CTR, "-n", "k8s.io", "containers", "ls", "-q"], capture_output=True, text=True, check=True
    )
    for cid in listed.stdout.split():
        info = subprocess.run(
            [*CTR, "-n", "k8s.io", "containers", "info", cid], capture_output=True, text=True, check=True
        )
        labels = json.loads(info.stdout).get("Labels", {})
        if labels.get("io.kubernetes.pod.uid") == uid and labels.get("io.cri-containerd.kind") == "sandbox":
            subprocess.run([*CTR, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", cid], check=True)
            return
    raise AssertionError(f"no sandbox for pod {uid}")


def test_example_chart_install_upgrade_restart(
    kube: Kube,
    helm_factory,  # noqa: F811
    servers: tuple[ScriptedHttpServer, GitDaemon, ArtifactServer],
    tmp_path: Path,
) -> None:
    registry, daemon, artifacts = servers
    import_into_node(APP_IMAGE)
    archive = plugin_archive()
    artifacts.add("/plugin-1.0.tar.gz", archive)
    sha = hashlib.sha256(archive).hexdigest()
    helm: Helm = helm_factory("helm4")
    ns = kube.namespace("restricted")
    kube.host_service(ns, "registry", 80, registry.port)
    kube.host_service(ns, "git", 9418, daemon.port)
    kube.host_service(ns, "artifacts", 80, artifacts.port)
    kube.run("create", "service", "clusterip", "myservice", "--tcp=80:8080", "-n", ns)
    kube.run("create", "secret", "generic", "myapp-register", "--from-literal=token=reg-token", "-n", ns)

    def helm_apply(verb: str, vals: dict[str, Any]) -> None:
        path = tmp_path / f"{verb}.yaml"
        path.write_text(yaml.safe_dump(vals))
        helm.run(
            verb, "myapp", helm.example, "-n", ns, "--kubeconfig", KUBECONFIG, "-f", path, "--wait", "--timeout", "3m"
        )

    # install: every step runs, in order, and the app sees what they made
    helm_apply("install", values("hello", with_sleep=True, archive_sha=sha))
    first = the_pod(kube, ns)
    names = [c["name"] for c in first["spec"]["initContainers"]]
    assert names == ["wait-for-services", "fetch-plugin", "register", "sleep", "git-clone", "render"], names
    sidecar = next(c for c in first["spec"]["initContainers"] if c["name"] == "register")
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar
    pod_ip = first["status"]["podIP"]
    seen = app_view(kube.run("logs", first["metadata"]["name"], "-c", "myapp", "-n", ns))
    assert f"greeting: hello\npodIP: {pod_ip}" in seen["/config/config.yaml"][1]
    meta = first["metadata"]
    facts = f"facts: {meta['name']} {ns} {meta['uid']} {first['spec']['nodeName']}\n"
    assert facts in seen["/config/config.yaml"][1]
    assert seen["/workspace/site/index.html"][1] == SITE["index.html"]
    assert seen["/workspace/plugin/VERSION"][1] == "plugin 1.0\n"
    name = first["metadata"]["name"]
    posts = [r for r in registry.seen if r.method == "POST"]
    assert posts and json.loads(posts[0].body) == {"pod": name, "ip": pod_ip}
    assert posts[0].headers.get("Authorization") == "Bearer reg-token"

    # a pod restart (the sandbox dies): every step runs again on the same volumes and changes nothing
    kill_sandbox(first)
    kube.wait(f"pod/{name}", "jsonpath={.status.containerStatuses[0].restartCount}=1", ns, timeout=120)
    kube.wait(f"pod/{name}", "condition=Ready", ns, timeout=120)
    again = app_view(kube.run("logs", name, "-c", "myapp", "-n", ns))
    for path in ("/workspace/site/index.html", "/workspace/plugin/VERSION"):
        assert again[path] == seen[path], f"the re-run after a restart rewrote {path}"
    # a new sandbox is a new network namespace: the pod's IP changed, and render followed it
    new_ip = kube.get("pod", name, ns)["status"]["podIP"]
    assert f"podIP: {new_ip}" in again["/config/config.yaml"][1]
    if new_ip == pod_ip:
        assert again["/config/config.yaml"] == seen["/config/config.yaml"]
    git_log = kube.run("logs", name, "-c", "git-clone", "-n", ns)
    assert "already" in git_log or "up to date" in git_log, git_log
    assert artifacts.gets("/plugin-1.0.tar.gz") == 1  # the re-run fetched nothing

    # upgrade: a value changed (greeting), a step removed (sleep); a new pod rolls out with them
    helm_apply("upgrade", values("hi again", with_sleep=False, archive_sha=sha))
    second = the_pod(kube, ns)
    assert second["metadata"]["name"] != name
    assert "sleep" not in [c["name"] for c in second["spec"]["initContainers"]]
    seen = app_view(kube.run("logs", second["metadata"]["name"], "-c", "myapp", "-n", ns))
    assert "greeting: hi again" in seen["/config/config.yaml"][1]

    # the old pod's sidecar deregistered it when the rollout deleted the pod, within its grace period
    kube.run("wait", f"pod/{name}", "--for=delete", "-n", ns, "--timeout=60s", timeout=70)
    deletes = [r for r in registry.seen if r.method == "DELETE"]
    assert any(r.path == f"/api/v1/instances/{name}" for r in deletes), [(r.method, r.path) for r in registry.seen]
