"""The example chart's rendered Pod, played by `podman kube play` with the locally built
initkit image: its init containers (permissions as root with CHOWN and FOWNER only,
wait-for, sleep, git-clone from a git daemon on the podman network's gateway, render) run
in order and the app starts and sees what they wrote.

Needs the helm binaries (.ci/setup-helm.sh), a Docker engine holding initkit:dev
(`make images`; the harness copies it into podman) and podman. Under CI=true a missing
piece fails the test; locally it skips.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import Helm, missing
from tests.charts.podman_sandbox import PodmanSandbox, netavark_installed
from tests.gitservers import GitDaemon, free_port, served_repo
from tests.images import harness

pytestmark = [pytest.mark.helm, pytest.mark.podman]

IMAGE = harness.IMAGE  # initkit:dev unless INITKIT_IMAGE says otherwise
IMAGE_SLIM = harness.IMAGE_SLIM  # initkit:dev-slim: the chart's default for steps that need no git
REPOSITORY, TAG = IMAGE.rsplit(":", 1)
# Names of this run's pods: unique, so that pods another run left behind (or runs at the
# same time) cannot collide with them in podman's host-wide store.
RUN = uuid.uuid4().hex[:6]
APP = f"myapp-{RUN}"
SERVICES = (f"myservice-{RUN}", f"mydb-{RUN}")
# podman 4.3 plays an emptyDir as a named volume of the same name, kept after the pod:
# this run's own names, removed by the sandbox's teardown.
WORKSPACE, CONFIG = f"workspace-{RUN}", f"config-{RUN}"

# Podman 4.3 resolves only some Downward API fieldRefs (metadata.name, metadata.uid):
# the others get the values Kubernetes would give this pod; POD_IP is left out so that
# initkit falls back to the pod's hostname, as it does outside Kubernetes.
PODMAN_ENV = {"POD_NAMESPACE": "demo", "NODE_NAME": "podman"}


def values(repo: str) -> dict[str, Any]:
    local = {"registry": "", "repository": REPOSITORY, "tag": TAG, "pullPolicy": "Never"}
    return {
        "fullnameOverride": APP,
        "kind": "Pod",
        "restartPolicy": "OnFailure",  # podman 4.3 restarts init containers under Always
        "app": {
            "image": local,
            "volumeMounts": [
                {"name": WORKSPACE, "mountPath": "/workspace", "readOnly": True},
                {"name": CONFIG, "mountPath": "/config", "readOnly": True},
            ],
            # the app starts once its inputs exist and prints the rendered config
            "command": [
                "/usr/bin/initkit",
                "wait-for",
                "--timeout",
                "5s",
                "file:/config/config.yaml",
                "file:/workspace/site/index.html",
                "--",
                "/usr/bin/initkit",
                "render",
                "/config/config.yaml",
            ],
        },
        "initkit": {
            "image": local,
            "volumes": [
                {"name": WORKSPACE, "emptyDir": {}},
                {"name": CONFIG, "emptyDir": {"medium": "Memory"}},
            ],
            # The example's steps, switched on and changed by key (maps merge).
            "steps": {
                # root with CHOWN and FOWNER only, first: the volume git-clone (65532, its owner) writes
                "volume-permissions": {
                    "enabled": True,
                    "volumeMounts": [{"name": WORKSPACE, "mountPath": "/workspace"}],
                    "owner": "65532:1001",
                    "mode": "u+rwX,g+rwX,o-rwx",
                },
                "wait-for-services": {
                    "targets": [f"dns:{name}" for name in SERVICES],
                    "timeout": "90s",
                    "interval": "200ms",
                },
                "sleep": {"kind": "sleep", "order": 15, "duration": "500ms"},
                "git-clone": {
                    "enabled": True,
                    "repo": repo,
                    "depth": 1,
                    "volume": {"name": WORKSPACE, "mountPath": "/workspace"},
                },
                "render": {
                    "enabled": True,
                    "set": {"greeting": "{{ .Release.Name }}-from-podman"},
                    "volume": {"name": CONFIG, "mountPath": "/config"},
                },
            },
        },
    }


def adapt_for_podman(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for doc in docs:
        if doc["kind"] == "Pod":
            for container in doc["spec"]["initContainers"]:
                env = [e for e in container.get("env", []) if e["name"] != "POD_IP"]
                container["env"] = [
                    {"name": e["name"], "value": PODMAN_ENV[e["name"]]} if e["name"] in PODMAN_ENV else e for e in env
                ]
    return docs


def service_pod(name: str) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, "imagePullPolicy": "Never", "args": ["sleep", "10m"]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


@pytest.fixture
def podman_ready() -> None:
    if shutil.which("podman") is None:
        missing("podman not installed", fix="run .ci/setup.sh")
    harness.require_engine((IMAGE, IMAGE_SLIM))
    # The sandbox runs podman with netavark (see podman_sandbox): CNI gives an --internal
    # network's bridge no gateway address and resolves no pod names.
    if not netavark_installed():
        missing("netavark is not installed", fix="apt-get install netavark aardvark-dns")


def test_example_pod_runs_its_init_containers_then_the_app(
    helm_factory: Callable[[str], Helm], tmp_path: Path, podman_ready: None, allow_network: Callable[[str], None]
) -> None:
    helm = helm_factory("helm4")  # helm3 renders the same (test_render)
    served = served_repo(tmp_path, {"index.html": "<h1>site from git</h1>\n"})
    port = free_port()
    services_yaml = tmp_path / "services.yaml"
    services_yaml.write_text(yaml.safe_dump_all([service_pod(name) for name in SERVICES]))

    # Everything this test creates (network, pods, containers, dnsmasq) is removed on the
    # way out, whatever fails first (podman_sandbox).
    with PodmanSandbox(tmp_path) as pm:
        values_file = tmp_path / "podman-values.yaml"
        # By address: aardvark-dns does not forward names it does not own on an --internal network.
        values_file.write_text(yaml.safe_dump(values(f"git://{pm.gateway}:{port}/site.git")))
        app_yaml = tmp_path / "app.yaml"
        app_yaml.write_text(yaml.safe_dump_all(adapt_for_podman(helm.template(values_file))))
        pm.load_image(IMAGE)
        pm.load_image(IMAGE_SLIM)
        # Play the app first: its wait-for init container must hold it until the
        # services exist, which are played once the app's pod has brought the bridge up.
        played: dict[str, subprocess.CompletedProcess] = {}
        app = threading.Thread(target=lambda: played.setdefault("app", pm.play(app_yaml, timeout=240)), daemon=True)
        app.start()
        pm.wait_for_bridge(timeout=90)
        assert app.is_alive(), f"the pod did not wait for its services: {played.get('app')}"
        # The app's pod has created the network's bridge: serve git on its gateway.
        allow_network(pm.subnet)
        daemon = GitDaemon(served, port=port, address=pm.gateway).start()
        try:
            services = pm.play(services_yaml, timeout=120)
            assert services.returncode == 0, services.stderr
            app.join(timeout=250)
        finally:
            daemon.stop()
        assert not app.is_alive(), "kube play of the app did not return"
        result = played["app"]
        failed = re.search(r"init container ([0-9a-f]{12,}) exited", result.stderr)
        assert result.returncode == 0, (
            f"an init container failed:\n{result.stderr}\n{pm.logs(failed.group(1)) if failed else ''}"
        )

        app_container = f"{APP}-myapp"
        harness.wait_until(lambda: pm.state(app_container) == "exited", timeout=30, what="app exits")
        events = pm.container_events()
        started = [e["Name"] for e in events if e["Status"] == "start" and e["Name"].startswith(APP)]
        assert started == [
            f"{APP}-volume-permissions",
            f"{APP}-wait-for-services",
            f"{APP}-sleep",
            f"{APP}-git-clone",
            f"{APP}-render",
            app_container,
        ]
        died = [e["Name"] for e in events if e["Status"] == "died" and e["Name"].startswith(APP)]
        assert died == started, "each init container finished before the next started"
        # The permissions step (removed once it succeeded, with its log) left the volume
        # as asked: group 1001, group-writable, no access for others (podman gives a new
        # volume to the user of the first container that mounts it, mode 0755).
        data = pm.podman("volume", "inspect", "--format", "{{.Mountpoint}}", WORKSPACE).stdout.strip()
        top = os.stat(data)
        assert (top.st_uid, top.st_gid, stat.S_IMODE(top.st_mode)) == (65532, 1001, 0o770)
        exit_code = pm.podman("inspect", "-f", "{{.State.ExitCode}}", app_container).stdout.strip()
        log = pm.logs(app_container)
        assert exit_code == "0", log
        assert f"rendered by initkit for {APP} in demo" in log
        assert "greeting: myapp-from-podman" in log, "the set value went through tpl"
