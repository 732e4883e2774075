"""A chart in Bitnami's style (tests/charts/consumers/bitnami-style) on the real node: its five
init containers are initkit steps given by values alone, against the real things.

- volume-permissions (permissions, as root with CHOWN/FOWNER/DAC_OVERRIDE): owner templated from
  `primary.*`, PGDATA 0700 by a per-path mode; a real PostgreSQL 17 then starts as uid 1001;
- wait-for-backend (wait-for): a backend that answers 503 three times, then 200;
- load-dags (git-clone as the app's user) beside a git-sync sidecar running `git status` and
  `git pull` as uid 1001 (no `dubious ownership`);
- model (fetch with sha256) from a model server that first answers 503;
- copy-defaults (copy) out of the app's image, mounted as an image volume.

Then the pod restarts as a node restarts it (its sandbox killed): every step runs again on the
same emptyDir and changes nothing (same mtimes, no new download, no new copy, no chown), and
PostgreSQL starts again on the data directory it made.

The app image (PostgreSQL, git, default files) is built from images/bitnami-style-app with
Docker, tagged by the hash of its sources (a rerun reuses it), and imported into the node.
The namespace enforces Pod Security `baseline`: the permissions step runs as root, like the
volumePermissions container it replaces; every other container meets `restricted`.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.artifact_server import ArtifactServer
from tests.charts.conftest import Helm, helm_factory  # noqa: F401 (a fixture)
from tests.charts.test_bitnami_style import chart
from tests.cluster.conftest import KUBECONFIG, NODE_IP, Kube
from tests.cluster.test_chart_install import kill_sandbox
from tests.cluster.test_seed_pod import import_into_node
from tests.gitservers import GitDaemon, served_repo
from tests.servers import Reply, ScriptedHttpServer

APP_SOURCES = Path(__file__).parent / "images" / "bitnami-style-app"
DAGS = {"dag.py": "print('a dag')\n"}
MODEL = bytes(range(256)) * 64  # 16 KiB of "weights"
POD = "myapp-bitnami-style-0"
STEPS = ["volume-permissions", "wait-for-backend", "load-dags", "model", "copy-defaults"]


def app_image() -> str:
    """The app image, built once per content of its sources (the tag is their hash)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in APP_SOURCES.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(APP_SOURCES)).encode() + b"\0" + path.read_bytes())
    image = f"initkit-test-bitnami-app:{digest.hexdigest()[:12]}"
    have = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    if have.returncode != 0:
        built = subprocess.run(
            ["docker", "build", "--network", "host", "-t", image, str(APP_SOURCES)],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return image


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[ScriptedHttpServer, GitDaemon, ArtifactServer]]:
    backend = ScriptedHttpServer(host=NODE_IP)
    backend.script = [Reply(503, "starting")] * 3
    backend.default = Reply(200, "ok")
    daemon = GitDaemon(served_repo(tmp_path, DAGS, name="dags.git"), address=NODE_IP).start()
    models = ArtifactServer(host=NODE_IP)
    models.add("/resnet/saved_model.pb", MODEL, statuses=[503])  # flaky: the first answer is a 503
    yield backend, daemon, models
    models.stop()
    daemon.stop()
    backend.stop()


def report(kube: Kube, ns: str) -> dict[str, str]:
    """{path: "mtime mode owner hash"} the app printed before starting PostgreSQL."""
    logs = kube.run("logs", POD, "-c", "postgresql", "-n", ns)
    return dict(re.findall(r"^== (\S+) (.+)$", logs, re.MULTILINE))


def step_log(kube: Kube, ns: str, step: str) -> str:
    return kube.run("logs", POD, "-c", step, "-n", ns)


def test_bitnami_style_chart_with_values_alone_runs_twice(
    kube: Kube,
    helm_factory,  # noqa: F811
    servers: tuple[ScriptedHttpServer, GitDaemon, ArtifactServer],
    tmp_path: Path,
) -> None:
    backend, daemon, models = servers
    image = app_image()
    import_into_node(image)
    repository, tag = image.split(":")
    helm: Helm = helm_factory("helm4")
    ns = kube.namespace("baseline")
    kube.host_service(ns, "backend", 80, backend.port)
    kube.host_service(ns, "git", 9418, daemon.port)
    kube.host_service(ns, "models", 80, models.port)
    # only what this machine differs in: local images, and the model's checksum
    values: dict[str, Any] = {
        "image": {"repository": f"library/{repository}", "tag": tag, "pullPolicy": "Never"},
        "model": {"sha256": hashlib.sha256(MODEL).hexdigest()},
        "initkit": {
            "image": {"registry": "docker.io", "repository": "library/initkit", "tag": "dev", "pullPolicy": "Never"}
        },
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    helm.run("install", "myapp", chart(helm), "-n", ns, "--kubeconfig", KUBECONFIG, "-f", path)
    kube.wait(f"pod/{POD}", "create", ns, timeout=60)
    kube.wait(f"pod/{POD}", "condition=Ready", ns, timeout=240)

    # first run: PostgreSQL (uid 1001) started on the volume the step prepared
    pod = kube.get("pod", POD, ns)
    assert [c["name"] for c in pod["spec"]["initContainers"]] == STEPS
    first = report(kube, ns)
    mode, uid = first["pgdata"].split()
    assert (mode[-3:], uid) == ("700", "1001"), first  # 2700 on an fsGroup volume: setgid kept
    assert first["/models/resnet/saved_model.pb"].split()[1:] == [
        "644",
        "65532",
        hashlib.sha256(MODEL).hexdigest()[:16],
    ]
    assert first["/opt/app/conf/app.conf"].split()[1:3] == ["640", "1001"]  # the image's mode, the app's owner
    assert first["/opt/app/conf/bin/start"].split()[1] == "755"
    assert first["link"] == "app.conf"  # the symlink, kept as a symlink
    assert len(backend.seen) == 4  # 503, 503, 503, then 200
    assert models.gets("/resnet/saved_model.pb") == 2  # the 503, then the download
    sync = step_log(kube, ns, "git-sync")
    assert "SYNC-OK" in sync and "dubious" not in sync, sync

    # a pod restart: every step again on the same emptyDir, changing nothing
    kill_sandbox(pod)
    kube.wait(f"pod/{POD}", "jsonpath={.status.containerStatuses[0].restartCount}=1", ns, timeout=180)
    kube.wait(f"pod/{POD}", "condition=Ready", ns, timeout=180)
    again = report(kube, ns)
    # initdb made PGDATA 0700 (it drops the setgid bit fsGroup gave the new directory); the steps kept it
    assert again.pop("pgdata") == "700 1001"
    first.pop("pgdata")
    assert again == first, "the second run changed what the app sees"
    assert len(backend.seen) == 5  # one 200
    assert models.gets("/resnet/saved_model.pb") == 2  # no download: the file already matches
    fixed = re.findall(r"(\d+) changed", step_log(kube, ns, "volume-permissions"))
    assert fixed == ["0", "0"], step_log(kube, ns, "volume-permissions")  # the volume, then PGDATA
    clone = step_log(kube, ns, "load-dags")
    assert "already" in clone or "up to date" in clone, clone
    assert "nothing to fetch" in step_log(kube, ns, "model")
    assert re.search(r"\b0 written\b", step_log(kube, ns, "copy-defaults")), step_log(kube, ns, "copy-defaults")
    sync = step_log(kube, ns, "git-sync")
    assert "SYNC-OK" in sync and "dubious" not in sync, sync
    statuses = json.loads(kube.run("get", "pod", POD, "-n", ns, "-o", "json"))["status"]["initContainerStatuses"]
    assert all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses), statuses


def test_pod_security_admits_the_chart(kube: Kube, helm_factory) -> None:  # noqa: F811
    """The API server's own Pod Security admission on the rendered pod: `baseline` with the
    permissions step (root, CHOWN/FOWNER/DAC_OVERRIDE), `restricted` without it."""
    helm: Helm = helm_factory("helm4")

    def pod(*set_values: str) -> dict[str, Any]:
        docs = helm.template(chart=chart(helm), set_values=("model.sha256=" + "ab" * 32, *set_values))
        (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe"},
            "spec": sts["spec"]["template"]["spec"],
        }

    baseline, restricted = kube.namespace("baseline"), kube.namespace("restricted")
    kube.apply(pod(), "-n", baseline, "--dry-run=server")
    kube.apply(pod("volumePermissions.enabled=false"), "-n", restricted, "--dry-run=server")
    refused = kube.run(
        "apply", "-f", "-", "-n", restricted, "--dry-run=server", stdin=yaml.safe_dump(pod()), check=False
    )
    assert 'violates PodSecurity "restricted' in refused, refused
    assert "volume-permissions" in refused and "load-dags" not in refused, refused
