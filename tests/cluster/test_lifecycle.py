"""make cluster / make cluster-down themselves: idempotent, clean, and recovering after SIGKILL.

These restart the session's node (each leaves one up and Ready for the tests after them).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.cluster.conftest import DOWN, UP, Kube
from tests.conftest import wait_until

CACHE_BIN = "/var/cache/initkit-cluster/bin/"
OUR_DIRS = ("/var/lib/initkit-cluster/", "/run/initkit-cluster/")


def node_pids() -> list[int]:
    """Every process running one of the node's binaries (the pieces and containerd's shims)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "exe").startswith(CACHE_BIN):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def pod_pids() -> list[int]:
    """Processes in the kubelet's pod cgroups: the containers."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and ":/kubepods" in (proc / "cgroup").read_text():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def our_mounts() -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(OUR_DIRS)]


def kube_chains() -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith(":KUBE-")]


def script(path: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def running_pod(kube: Kube) -> str:
    ns = kube.namespace("baseline")
    kube.run(
        "run", "sleeper", "-n", ns, "--image", "initkit:dev-slim", "--image-pull-policy", "Never", "--", "sleep", "1h"
    )
    kube.wait("pod/sleeper", "condition=Ready", ns, timeout=60)
    assert pod_pids()
    return ns


def test_make_cluster_twice_is_a_no_op(kube: Kube) -> None:
    pids = sorted(node_pids())
    assert "the node is up already" in script(UP).stderr
    assert sorted(node_pids()) == pids


def test_an_up_node_runs_the_images_docker_has_now(kube: Kube) -> None:
    """After `make images`, `make cluster` on an up node imports the rebuilt images: a pod runs
    Docker's initkit:dev (up.sh once exited before importing, and the tests ran a stale one)."""
    script(UP)
    ns = kube.namespace("baseline")
    for image in ("initkit:dev", "initkit:dev-slim"):
        name = image.replace(":", "-")
        kube.run("run", name, "-n", ns, "--image", image, "--image-pull-policy", "Never", "--", "sleep", "1h")
        kube.wait(f"pod/{name}", "condition=Ready", ns, timeout=60)
        running = kube.get("pod", name, ns)["status"]["containerStatuses"][0]["imageID"]
        docker_id = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert running == docker_id, (image, running, docker_id)


def test_cluster_down_leaves_nothing_and_a_second_make_cluster_works(kube: Kube) -> None:
    running_pod(kube)
    assert our_mounts() and kube_chains() and Path("/sys/class/net/cni0").exists()
    script(DOWN)
    assert node_pids() == []
    assert pod_pids() == []
    assert our_mounts() == []
    assert kube_chains() == []
    assert not Path("/sys/class/net/cni0").exists()
    assert "Ready in" in script(UP).stderr
    running_pod(kube)


def test_make_cluster_recovers_after_everything_was_sigkilled(kube: Kube) -> None:
    running_pod(kube)
    for pid in node_pids():
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not node_pids(), 10, "the node's processes to die")
    # what a killed node leaves: its pods' processes, mounts, chains, the bridge
    stale = pod_pids()
    assert stale and our_mounts() and kube_chains() and Path("/sys/class/net/cni0").exists()
    assert "Ready in" in script(UP).stderr
    assert not set(stale) & set(pod_pids())
    running_pod(kube)
