"""wait-for's Kubernetes API targets against the real node, as a ServiceAccount.

initkit runs on the host with a kubeconfig holding a ServiceAccount token (made with
`kubectl create token`), granted exactly the verbs the README lists: get, list and watch
on jobs.batch, pods, endpointslices.discovery.k8s.io and the test's custom resource.
Each namespace is the test's own (k8swait-...). The apiserver is not restarted (other
users share the node): a TCP proxy on loopback in front of it cuts every stream instead,
which is what a client sees of a restart.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import KUBECONFIG, Kube
from tests.conftest import ROOT

API = ("10.244.0.1", 6443)
IMAGE = "initkit:dev"
GROUP = "k8swait.initkit.dev"
CRD_NAME = f"widgets.{GROUP}"
CR = f"cr:{GROUP}/v1/widgets/w1#condition=Ready"
NODE = "initkit-node"


def _namespace(kube: Kube) -> str:
    name = f"k8swait-{uuid.uuid4().hex[:8]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    kube.namespaces.append(name)
    kube.run("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s", timeout=70)
    return name


@pytest.fixture(scope="module")
def crd(cluster: None) -> Iterator[None]:
    kube = Kube()
    kube.apply(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": CRD_NAME},
            "spec": {
                "group": GROUP,
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }
                ],
            },
        }
    )
    kube.run("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", timeout=70)
    yield
    kube.run("delete", "crd", CRD_NAME, "--wait=false", "--ignore-not-found", check=False)


def _admin_ca() -> bytes:
    config = yaml.safe_load(KUBECONFIG.read_text())
    return base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])


def _service_account(kube: Kube, ns: str, name: str, *, granted: bool, more: tuple[dict[str, Any], ...] = ()) -> None:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
    ]
    if granted:
        docs += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": ns},
                "rules": [
                    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {"apiGroups": [GROUP], "resources": ["widgets"], "verbs": ["get", "list", "watch"]},
                    *more,
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
            },
        ]
    kube.apply(docs)


def _token(kube: Kube, ns: str, account: str, bound_secret: str | None = None) -> str:
    args = ["create", "token", account, "-n", ns, "--duration=10m"]
    if bound_secret:
        kube.run("create", "secret", "generic", bound_secret, "-n", ns)
        args += ["--bound-object-kind=Secret", f"--bound-object-name={bound_secret}"]
    return kube.run(*args).strip()


def _kubeconfig(tmp_path: Path, ns: str, token_file: Path, server: str = f"https://{API[0]}:{API[1]}") -> Path:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(_admin_ca())
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}],
                "users": [{"name": "u", "user": {"tokenFile": str(token_file)}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": ns}}],
                "current-context": "x",
            }
        )
    )
    return path


class Initkit:
    """`initkit wait-for` in the background, its stderr lines readable as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "initkit", "--debug", "wait-for", *args],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, text: str, count: int = 1, timeout: float = 30) -> None:
        """Until COUNT lines holding TEXT have come (counting those already read)."""
        end = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            try:
                line = self._queue.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {count}x {text!r} within {timeout}s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"initkit ended before {text!r}: {self.lines}")
            self.lines.append(line)

    def finish(self, timeout: float = 60) -> tuple[int, list[str]]:
        code = self.proc.wait(timeout)
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return code, [line for line in self.lines if "debug" not in line.split(":", 2)[-1][:8]]


@pytest.fixture
def ns(kube: Kube) -> str:
    return _namespace(kube)


@pytest.fixture
def waiter(kube: Kube, ns: str, tmp_path: Path) -> Path:
    """A kubeconfig of ServiceAccount `waiter`, granted get/list/watch on what the targets watch."""
    _service_account(kube, ns, "waiter", granted=True)
    token_file = tmp_path / "token"
    token_file.write_text(_token(kube, ns, "waiter"))
    return _kubeconfig(tmp_path, ns, token_file)


def _job(name: str, ns: str, args: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never", "args": args}],
                }
            },
        },
    }


def _sleeper(kind: str, name: str, ns: str) -> dict[str, Any]:
    labels = {"app": name}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never", "args": ["sleep", "1h"]}]},
    }
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
    api = "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _widget(ns: str, ready: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": ns},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


TARGETS = ["job:late", "pods:app=web?min=1", "endpoints:web", "daemonset:ds", CR, "gone:job:old"]


def test_every_target_appearing_late_is_seen(kube: Kube, ns: str, waiter: Path, crd: None) -> None:
    kube.apply(_job("old", ns, ["sleep", "1h"]))
    run = Initkit(*TARGETS, "--kubeconfig", str(waiter), "--timeout", "120s", env={"NODE_NAME": NODE})
    run.wait_for_line("; watching", count=len(TARGETS))  # every target listed before anything exists
    kube.apply(
        [
            _job("late", ns, ["sleep", "0"]),
            _sleeper("Deployment", "web", ns),
            _sleeper("DaemonSet", "ds", ns),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
            _widget(ns, "False"),
        ]
    )
    kube.run("delete", "job", "old", "-n", ns, "--wait=false")
    run.wait_for_line("condition Ready is False")  # the custom resource was seen, not ready yet
    kube.apply(_widget(ns, "True"))
    code, lines = run.finish(timeout=120)
    assert code == 0, lines
    for target in TARGETS:
        assert any(line.startswith(f"initkit wait-for: {target} is ready") for line in lines), (target, lines)


def test_targets_that_never_appear_end_at_the_deadline_naming_each(
    kube: Kube, ns: str, waiter: Path, crd: None
) -> None:
    started = time.monotonic()
    run = Initkit(*TARGETS[:-1], "--kubeconfig", str(waiter), "--timeout", "3s", env={"NODE_NAME": NODE})
    code, lines = run.finish()
    elapsed = time.monotonic() - started
    assert code == 1, lines
    assert elapsed < 8, elapsed
    last = lines[-1]
    assert last.startswith("initkit wait-for: error: timed out after 3s; not ready: job:late (job ")
    for reason in (
        f"job {ns}/late does not exist",
        f"0 of 0 pods ready ({ns}/app=web, min 1)",
        f"service {ns}/web has 0 ready addresses",
        f"the pod of daemonset {ns}/ds on node {NODE} does not exist",
        f"widgets.{GROUP} {ns}/w1 does not exist",
    ):
        assert reason in last, (reason, last)


def test_a_job_that_fails_is_exit_1_at_once(kube: Kube, ns: str, waiter: Path) -> None:
    run = Initkit("job:bad", "--kubeconfig", str(waiter), "--timeout", "120s")
    run.wait_for_line("; watching")
    started = time.monotonic()
    kube.apply(_job("bad", ns, ["sleep", "not-a-duration"]))
    code, lines = run.finish(timeout=120)
    assert code == 1, lines
    assert time.monotonic() - started < 60
    assert lines[-1].startswith(f"initkit wait-for: error: job:bad: job {ns}/bad failed: BackoffLimitExceeded"), lines


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("#### Waiting on the Kubernetes API")
    return text[start : text.index("\n### ", start)]


def _readme_example() -> list[str]:
    """The targets of the section's command, as a shell would split them."""
    section = _readme_section()
    block = section.split("```\n", 2)[1]
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[:2] == ["initkit", "wait-for"], argv
    return argv[2:]


CERTS = "certificates.cert-manager.io"


@pytest.fixture(scope="module")
def certificates(cluster: None) -> Iterator[None]:
    """cert-manager's Certificate kind (its CRD only, no controller), unless the node has it already."""
    kube = Kube()
    if kube.run("get", "crd", CERTS, "--ignore-not-found", "-o", "name").strip():
        yield
        return
    kube.apply(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": CERTS},
            "spec": {
                "group": "cert-manager.io",
                "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate"},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }
                ],
            },
        }
    )
    kube.run("wait", "--for=condition=Established", f"crd/{CERTS}", "--timeout=60s", timeout=70)
    yield
    kube.run("delete", "crd", CERTS, "--wait=false", "--ignore-not-found", check=False)


def test_the_readme_example_runs_as_written(kube: Kube, ns: str, tmp_path: Path, certificates: None) -> None:
    targets = _readme_example()
    certs = {"apiGroups": ["cert-manager.io"], "resources": ["certificates"], "verbs": ["get", "list", "watch"]}
    _service_account(kube, ns, "waiter", granted=True, more=(certs,))
    token_file = tmp_path / "token"
    token_file.write_text(_token(kube, ns, "waiter"))
    config = _kubeconfig(tmp_path, ns, token_file)
    kube.apply(_job("old-migrate", ns, ["sleep", "1h"]))
    run = Initkit(*targets, "--kubeconfig", str(config), "--timeout", "150s", env={"NODE_NAME": NODE})
    run.wait_for_line("; watching", count=len(targets))
    web = _sleeper("Deployment", "web", ns)
    web["spec"]["replicas"] = 2
    kube.apply(
        [
            _job("migrate", ns, ["sleep", "0"]),
            web,
            _sleeper("DaemonSet", "node-agent", ns),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "mydb", "namespace": ns},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 5432, "targetPort": 5432}]},
            },
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": {"name": "web-tls", "namespace": ns},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
        ]
    )
    kube.run("delete", "job", "old-migrate", "-n", ns, "--wait=false")
    code, lines = run.finish(timeout=150)
    assert code == 0, lines
    for target in targets:
        assert any(line.startswith(f"initkit wait-for: {target} is ready") for line in lines), (target, lines)


@pytest.mark.parametrize(
    ("target", "verb_resource"),
    [
        ("job:x", "list jobs.batch"),
        ("pods:app=x", "list pods"),
        ("endpoints:x", "list endpointslices.discovery.k8s.io"),
        ("daemonset:x", "list pods"),
        (CR, f"list widgets.{GROUP}"),
    ],
)
def test_rbac_denied_is_one_line_naming_verb_resource_and_namespace(
    kube: Kube, ns: str, tmp_path: Path, crd: None, target: str, verb_resource: str
) -> None:
    _service_account(kube, ns, "nobody", granted=False)
    token_file = tmp_path / "token"
    token = _token(kube, ns, "nobody")
    token_file.write_text(token)
    run = Initkit(
        target, "--kubeconfig", str(_kubeconfig(tmp_path, ns, token_file)), "--timeout", "30s", env={"NODE_NAME": NODE}
    )
    code, lines = run.finish()
    assert code == 1
    assert lines[-1] == (
        f"initkit wait-for: error: {target}: RBAC denied (HTTP 403): the ServiceAccount cannot {verb_resource} "
        f"in namespace {ns} (it needs get, list and watch on {verb_resource.split()[1]} there)"
    )
    assert token not in "\n".join(run.lines)
    if target == "job:x":  # the README's example line is this one, in namespace "app"
        shown = lines[-1].removeprefix("initkit wait-for: error: ").replace(f" {ns} ", " app ")
        assert f"`{shown}`" in _readme_section(), shown


class CuttingProxy:
    """TCP on 127.0.0.1 to the apiserver; `cut()` closes every connection, as a restart would."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(API)
            with self._lock:
                self.connections += 1
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def stop(self) -> None:
        self.listener.close()
        self.cut()


def test_a_stream_cut_mid_watch_is_resumed(kube: Kube, ns: str, waiter: Path, tmp_path: Path) -> None:
    proxy = CuttingProxy()
    try:
        config = _kubeconfig(tmp_path, ns, tmp_path / "token", server=f"https://127.0.0.1:{proxy.port}")
        run = Initkit("job:late", "--kubeconfig", str(config), "--timeout", "60s")
        run.wait_for_line("watch=1")  # the watch's answer head came (urllib3's debug line)
        proxy.cut()  # the apiserver "restarts": the watch breaks
        run.wait_for_line("kube: the watch of jobs.batch")  # broke (backoff) or ended (resume)
        kube.apply(_job("late", ns, ["sleep", "0"]))
        code, lines = run.finish(timeout=60)
        assert code == 0, lines
        assert proxy.connections >= 2
    finally:
        proxy.stop()


def test_a_rotated_token_file_is_read_again_at_each_reconnect(kube: Kube, ns: str, tmp_path: Path) -> None:
    _service_account(kube, ns, "waiter", granted=True)
    token_file = tmp_path / "token"
    token_file.write_text(_token(kube, ns, "waiter", bound_secret="first"))
    config = _kubeconfig(tmp_path, ns, token_file)
    run = Initkit("job:late", "--kubeconfig", str(config), "--watch-timeout", "1s", "--timeout", "90s")
    run.wait_for_line("; watching")
    token_file.write_text(_token(kube, ns, "waiter", bound_secret="second"))  # as the kubelet rewrites it
    kube.run("delete", "secret", "first", "-n", ns)  # the first token is now refused
    seen = sum("resuming from resourceVersion" in line for line in run.lines)
    run.wait_for_line("resuming from resourceVersion", count=seen + 2)  # reconnected since, with the new token
    kube.apply(_job("late", ns, ["sleep", "0"]))
    code, lines = run.finish(timeout=90)
    assert code == 0, lines
    assert not any("401" in line for line in run.lines), run.lines
