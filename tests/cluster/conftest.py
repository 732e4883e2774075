"""The real single-node Kubernetes (`make cluster`) for the tests that need a kubelet.

The `cluster` fixture starts the node once per session with `.ci/cluster/up.sh` (a cold build
of the binaries happens there the first time: about half an hour on 2 cores) and stops it at
the end with `.ci/cluster/down.sh`, unless the node was up before the session
(`make cluster` by hand), which it leaves up. Tests get a `Kube`: kubectl with the admin
kubeconfig, and fresh namespaces labelled with a Pod Security level.

Pods reach the host only on the node's bridge (10.244.0.1): servers a test starts for its pods
listen there, behind a selector-less Service and an EndpointSlice of the test's own, so
nothing leaves the machine (CoreDNS answers cluster.local only and forwards nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, requirement

UP = ROOT / ".ci" / "cluster" / "up.sh"
DOWN = ROOT / ".ci" / "cluster" / "down.sh"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = ROOT / ".cluster" / "bin" / "kubectl"
HELM = ROOT / ".cluster" / "bin" / "helm"
NODE_IP = "10.244.0.1"  # the host on the pod bridge: what pods can reach
POD_NETWORK = "10.244.0.0/24"
K8S_VERSION = "v1.37.2"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


class KubectlFailed(AssertionError):
    pass


@dataclass
class Kube:
    """kubectl against the node with the admin kubeconfig."""

    kubeconfig: Path = KUBECONFIG
    namespaces: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(
            [str(KUBECTL), *args], input=stdin, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise KubectlFailed(f"kubectl {' '.join(args)} -> {result.returncode}: {result.stderr.strip()}")
        return result.stdout if check else result.stdout + result.stderr

    def apply(self, manifest: str | list[dict[str, Any]] | dict[str, Any], *args: str) -> str:
        if not isinstance(manifest, str):
            docs = manifest if isinstance(manifest, list) else [manifest]
            manifest = yaml.safe_dump_all(docs)
        return self.run("apply", "-f", "-", *args, stdin=manifest)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any]:
        return json.loads(self.run("get", kind, name, "-n", namespace, "-o", "json"))

    def wait(self, what: str, condition: str, namespace: str, timeout: int = 120) -> None:
        self.run("wait", what, f"--for={condition}", "-n", namespace, f"--timeout={timeout}s", timeout=timeout + 10)

    def namespace(self, enforce: str = "restricted") -> str:
        """A fresh namespace whose Pod Security `enforce` level is ENFORCE, once its ServiceAccount exists."""
        name = f"ik-{uuid.uuid4().hex[:8]}"
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": enforce,
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            }
        )
        self.namespaces.append(name)
        # pods created before the namespace's default ServiceAccount exists are refused
        self.run("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s", timeout=70)
        return name

    def host_service(self, namespace: str, name: str, port: int, target_port: int) -> None:
        """A Service NAME:PORT whose one endpoint is NODE_IP:TARGET_PORT, a server on the host."""
        self.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {"ports": [{"name": "main", "port": port, "targetPort": target_port}]},
                },
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{name}-host",
                        "namespace": namespace,
                        "labels": {"kubernetes.io/service-name": name},
                    },
                    "addressType": "IPv4",
                    "ports": [{"name": "main", "port": target_port, "protocol": "TCP"}],
                    "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
                },
            ]
        )

    def cleanup(self) -> None:
        for name in self.namespaces:
            self.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        self.namespaces.clear()


def _node_is_up() -> bool:
    if not (KUBECTL.exists() and KUBECONFIG.exists()):
        return False
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz", "--request-timeout=5s"],
        capture_output=True,
        timeout=30,
    )
    return result.returncode == 0


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("cluster")]
    return lines[-1] if lines else (result.stderr.strip().splitlines() or ["no output"])[-1]


@pytest.fixture(scope="session")
def cluster() -> Iterator[None]:
    """The node, started once per session (and stopped at its end if this session started it)."""
    requirement.root("a Kubernetes node: bridges, iptables, mounts")
    requirement.tool("docker", "run .ci/setup-docker.sh (the images are imported from Docker)")
    requirement.tool("go", "install Go 1.26 (the node is built from Go modules)")
    requirement.path("/usr/lib/cni/bridge", "apt-get install containernetworking-plugins (bash .ci/setup.sh)")
    was_up = _node_is_up()
    result = subprocess.run(["bash", str(UP)], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        pytest.fail(f"make cluster failed: {_one_line(result)}", pytrace=False)
    yield
    if not was_up and not os.environ.get("INITKIT_CLUSTER_KEEP"):
        down = subprocess.run(["bash", str(DOWN)], capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, f"make cluster-down failed: {_one_line(down)}"


@pytest.fixture
def kube(cluster: None, allow_network: Any) -> Iterator[Kube]:
    allow_network(POD_NETWORK)
    k = Kube()
    yield k
    k.cleanup()
