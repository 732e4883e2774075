"""The seed's pod (examples/myapp.yaml) on a real kubelet, under Pod Security `restricted`.

The YAML is the repository's, with only what a machine without a registry needs changed: the
images are the local initkit:dev ones (imagePullPolicy Never), the app's busybox is the
Debian base the images are built from, the 60 s delay is 1 s, and git.example.com is a git
daemon on the host behind a Service. The Services the pod waits for are created while its first
init container waits; the registry and the git daemon run on the host (on the node's bridge).
"""

from __future__ import annotations

import copy
import itertools
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import NODE_IP, Kube
from tests.conftest import ROOT
from tests.gitservers import GitDaemon, served_repo
from tests.servers import Reply, ScriptedHttpServer

MYAPP = ROOT / "examples" / "myapp.yaml"
APP_IMAGE = "debian:trixie-slim"
TEMPLATE = "ip={{ pod.ip }}\nname={{ pod.name }}\nnamespace={{ pod.namespace }}\nnode={{ node.name }}\n"
SITE = {"index.html": "<h1>hello from the site</h1>\n"}


def import_into_node(image: str) -> None:
    """An image from Docker into the node's containerd (no registry): the app's base."""
    ctr = ["/var/cache/initkit-cluster/bin/containerd-v2.4.2/ctr", "-a", "/run/initkit-cluster/containerd.sock"]
    have = subprocess.run([*ctr, "-n", "k8s.io", "images", "ls", "-q"], capture_output=True, text=True, check=True)
    if f"docker.io/library/{image}" in have.stdout.split():
        return
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    subprocess.run([*ctr, "-n", "k8s.io", "images", "import", "-"], stdin=save.stdout, check=True, capture_output=True)
    assert save.wait() == 0


def seed_pod(git_url: str) -> dict[str, Any]:
    pod = yaml.safe_load(MYAPP.read_text())
    hardened = copy.deepcopy(pod["spec"]["initContainers"][0]["securityContext"])
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        container["imagePullPolicy"] = "Never"
        container["image"] = container["image"].replace("initkit:0.1.0", "initkit:dev")
        if container["name"] == "delay":
            container["args"] = ["sleep", "1s"]
        if container["name"] == "git-clone":
            container["args"][1] = git_url
    app = pod["spec"]["containers"][0]
    app["image"] = APP_IMAGE
    # restricted asks every container for this; the seed's app container (busybox) has none
    app.setdefault("securityContext", hardened)
    app["command"] = ["sh", "-c", "cat /work/app.conf; ls /work/site; echo The app is running! && sleep 3600"]
    return pod


def container_states(kube: Kube, namespace: str) -> dict[str, Any]:
    pod = kube.get("pod", "myapp-pod", namespace)
    return {s["name"]: s["state"] for s in pod["status"].get("initContainerStatuses", [])}


@pytest.fixture
def registry() -> Any:
    server = ScriptedHttpServer(host=NODE_IP)
    server.default = Reply(201, '{"registered": true}')
    yield server
    server.stop()


@pytest.fixture
def git_daemon(tmp_path: Path) -> Any:
    daemon = GitDaemon(served_repo(tmp_path, SITE), address=NODE_IP).start()
    yield daemon
    daemon.stop()


def test_seed_pod_under_restricted(kube: Kube, registry: ScriptedHttpServer, git_daemon: GitDaemon) -> None:
    import_into_node(APP_IMAGE)
    ns = kube.namespace("restricted")
    kube.run("create", "secret", "generic", "initkit-token", "--from-literal=token=s3cret-token", "-n", ns)
    kube.run("create", "configmap", "myapp-templates", f"--from-literal=app.conf.j2={TEMPLATE}", "-n", ns)
    kube.host_service(ns, "git", 9418, git_daemon.port)
    kube.apply(seed_pod(f"git://git.{ns}.svc.cluster.local/site.git"), "-n", ns)

    # the Services appear only while init-myservice is already waiting for them
    kube.wait("pod/myapp-pod", "jsonpath={.status.initContainerStatuses[0].started}=true", ns, timeout=60)
    assert "running" in container_states(kube, ns)["init-myservice"]
    kube.host_service(ns, "management", 80, registry.port)
    kube.run("create", "service", "clusterip", "myservice", "--tcp=80:8080", "-n", ns)
    kube.run("create", "service", "clusterip", "mydb", "--tcp=5432:5432", "-n", ns)

    kube.wait("pod/myapp-pod", "condition=Ready", ns, timeout=120)
    pod = kube.get("pod", "myapp-pod", ns)
    pod_ip = pod["status"]["podIP"]

    # the init containers ran in order, each to exit 0, each after the one before it
    statuses = pod["status"]["initContainerStatuses"]
    assert [s["name"] for s in statuses] == ["init-myservice", "register", "delay", "git-clone", "render"]
    assert all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses), statuses
    for before, after in itertools.pairwise(statuses):
        assert before["state"]["terminated"]["finishedAt"] <= after["state"]["terminated"]["startedAt"]
    assert {s["image"] for s in statuses} == {"docker.io/library/initkit:dev", "docker.io/library/initkit:dev-slim"}

    # what the registry received: the pod's real name and IP, the token from the Secret
    posts = [s for s in registry.seen if s.method == "POST"]
    assert len(posts) == 1, registry.seen
    assert posts[0].path == "/register"
    assert posts[0].body == f"instance=myapp-pod&ip={pod_ip}"
    assert posts[0].headers.get("Authorization") == "Bearer s3cret-token"

    # what the app sees: the config rendered with status.podIP, the cloned site
    logs = kube.run("logs", "myapp-pod", "-c", "myapp-container", "-n", ns)
    assert f"ip={pod_ip}\nname=myapp-pod\nnamespace={ns}\nnode=initkit-node\n" in logs
    assert "index.html" in logs.split("node=initkit-node\n", 1)[1]
    assert "The app is running!" in logs
