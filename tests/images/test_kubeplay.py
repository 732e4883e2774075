"""The seed's myapp.yaml, initkit in place of busybox, played by podman `kube play`.

Init containers run in order, the app starts only after them, and a failing
init container keeps the app from starting. Services are separate pods on the
same (internal) podman network, resolved by aardvark-dns; nothing leaves the
machine (see harness.PodmanSandbox).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.podman_sandbox import PodmanSandbox
from tests.conftest import requirement
from tests.images.harness import BASE_IMAGE, IMAGE

pytestmark = pytest.mark.podman

SERVICE_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: OnFailure
  containers:
    - name: server
      image: {base}
      command: ["sleep", "infinity"]
"""

MYAPP = """\
apiVersion: v1
kind: Pod
metadata:
  name: myapp-pod
  labels:
    app.kubernetes.io/name: MyApp
spec:
  restartPolicy: OnFailure
  initContainers:
    - name: init-myservice
      image: {image}
      args: ["wait-for", "dns:myservice", "--timeout", "{timeout}", "--interval", "200ms"]
      env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
    - name: init-mydb
      image: {image}
      args: ["wait-for", "dns:mydb", "--timeout", "{timeout}", "--interval", "200ms"]
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        readOnlyRootFilesystem: true
  containers:
    - name: myapp-container
      image: {base}
      command: ["sh", "-c", "echo The app is running! && sleep 3600"]
"""


def need_podman() -> None:
    requirement.tool("podman", "run .ci/setup-docker.sh")
    requirement.tool("nsenter", "apt-get install util-linux")


def events_for(pm: PodmanSandbox, pod_prefix: str) -> list[tuple[str, str, str]]:
    out = []
    for e in pm.container_events():
        name = e.get("Name", "")
        if name.startswith(pod_prefix):
            out.append((e.get("Status", ""), name, str(e.get("ContainerExitCode") or 0)))  # code omitted when 0
    return out


@pytest.fixture
def pm(engine, tmp_path: Path):
    need_podman()
    with PodmanSandbox(tmp_path) as sandbox:
        sandbox.load_image(IMAGE)
        sandbox.load_image(BASE_IMAGE)
        yield sandbox


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_myapp_pod_init_containers_in_order(pm: PodmanSandbox, tmp_path: Path):
    for svc in ("myservice", "mydb"):
        r = pm.play(write(tmp_path, f"{svc}.yaml", SERVICE_POD.format(name=svc, base=BASE_IMAGE)))
        assert r.returncode == 0, r.stderr
    r = pm.play(write(tmp_path, "myapp.yaml", MYAPP.format(image=IMAGE, base=BASE_IMAGE, timeout="60s")))
    assert r.returncode == 0, r.stdout + r.stderr
    ev = events_for(pm, "myapp-pod-")
    order = [name for status, name, _ in ev if status == "died"]
    assert order[:2] == ["myapp-pod-init-myservice", "myapp-pod-init-mydb"], ev
    assert all(code == "0" for status, name, code in ev if status == "died" and "init-" in name), ev
    starts = [name for status, name, _ in ev if status == "start"]
    assert starts.index("myapp-pod-myapp-container") > starts.index("myapp-pod-init-mydb"), ev
    assert pm.state("myapp-pod-myapp-container") == "running"
    assert "The app is running!" in pm.logs("myapp-pod-myapp-container")


def test_failing_init_container_keeps_app_from_starting(pm: PodmanSandbox, tmp_path: Path):
    # no myservice pod: init-myservice times out and exits 1
    r = pm.play(write(tmp_path, "myapp.yaml", MYAPP.format(image=IMAGE, base=BASE_IMAGE, timeout="2s")))
    assert r.returncode != 0
    assert "exited with code 1" in (r.stdout + r.stderr)
    ev = events_for(pm, "myapp-pod-")
    assert not [e for e in ev if e[0] == "start" and e[1] == "myapp-pod-myapp-container"], ev
    assert not [e for e in ev if e[0] == "start" and e[1] == "myapp-pod-init-mydb"], ev
    assert pm.state("myapp-pod-myapp-container") in ("created", "configured", "")
