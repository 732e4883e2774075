"""wait-for dns: against the seed's busybox loop on the real node, from a Service's creation to the app's start.

    python3 bench/bench_kube_dns.py [--runs 9]

Needs the node (`make cluster`: .cluster/kubeconfig and .cluster/bin/kubectl), initkit:dev-slim
in the node's containerd, and Docker with debian:trixie-slim (or the Debian mirror). Builds once
(cached by tag) a busybox image from Debian's busybox-static on scratch and imports it into the
node's containerd, as tests/cluster/test_seed_pod.py does with its app image.

Each run, in a namespace of its own (dnsbench-..., Pod Security `restricted`, deleted at the
end), three pods wait for a Service that does not exist yet:
  initkit   init container initkit:dev-slim `wait-for dns:svc-a --interval 1s` (the defaults);
  busybox   init container `until nslookup svc-b.NS.svc.cluster.local; do sleep 2; done`;
  seed      init container `until nslookup svc-c; do sleep 2; done`, the seed's loop as written
            (examples/myapp.yaml);
each followed by an app container (busybox `sleep 3600`). Once the init containers run, and
after a random 2-4 s so that no loop's phase is favoured, one `kubectl apply` creates svc-a,
svc-b and svc-c together (what `kubectl create service clusterip NAME --tcp=80:8080` makes).
The seed's loop never ends with this busybox (1.37) on a kubelet's resolv.conf (ndots:5, three
search domains): nslookup asks every search suffix, prints the Service's address, and exits 1
because the other suffixes are NXDOMAIN. So the timed baseline is the same loop on the Service's
full name, and the bench reports, per run, whether the seed's own loop ended within SEED_GRACE s.
Timed from the apply's return, per pod:
  init exit   the init container's task exit, from containerd's events (`ctr events`: ns stamps);
  app start   the app container's task start, the same way;
  startedAt   the kubelet's state.running.startedAt (the API keeps whole seconds only);
  seen        when the bench's pod watch first sees the app container running (ms resolution,
              includes the kubelet's status update and the watch's delivery, the same for both).
The pods run in turn, never one run of one kind alone: both wait in the same run, for the same
CoreDNS (no cache plugin here, so the answer changes as soon as CoreDNS's informer has the Service).
Memory: each init container's cgroup (v1) memory.max_usage_in_bytes and memory.stat rss, read
just before the Services are created (the loops have run a few rounds by then); the page cache
its cgroup was charged for is in the first, not in the second.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
CTR = ["/var/cache/initkit-cluster/bin/containerd-v2.4.2/ctr", "-a", "/run/initkit-cluster/containerd.sock"]
INITKIT_IMAGE = "initkit:dev-slim"
BUSYBOX_IMAGE = "initkit-bench-busybox:debian-static"
MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")
# Debian's busybox-static, alone on scratch, with its applets linked so `sh`, `nslookup` and
# `sleep` resolve as in the seed's busybox image
DOCKERFILE = """\
FROM debian:trixie-slim AS debian
RUN apt-get update && apt-get install -y --no-install-recommends busybox-static \\
    && dpkg-query -W -f '${Version}' busybox-static > /busybox-version
FROM scratch
COPY --from=debian /bin/busybox /bin/busybox
COPY --from=debian /busybox-version /busybox-version
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENTRYPOINT ["/bin/busybox"]
"""
HARDENED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
KINDS = ("initkit", "busybox")  # timed; "seed" is only checked for ending at all
SEED_GRACE = 12.0  # six of the seed loop's rounds


def kubectl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(KUBECONFIG), *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(*docs: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def busybox_image() -> str:
    """Build the busybox image once (cached by tag), import it into the node; its Debian version."""
    have = subprocess.run(["docker", "image", "inspect", BUSYBOX_IMAGE], capture_output=True)
    if have.returncode != 0:
        with tempfile.TemporaryDirectory(prefix="dnsbench-") as context:
            Path(context, "Dockerfile").write_text(DOCKERFILE)
            build = ["docker", "build", "--network", "host", "-t", BUSYBOX_IMAGE, context]
            result = subprocess.run(build, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"docker build of {BUSYBOX_IMAGE}: {result.stderr.strip()[-300:]}")
    listed = subprocess.run([*CTR, "-n", "k8s.io", "images", "ls", "-q"], capture_output=True, text=True, check=True)
    if f"docker.io/library/{BUSYBOX_IMAGE}" not in listed.stdout.split():
        save = subprocess.Popen(["docker", "save", BUSYBOX_IMAGE], stdout=subprocess.PIPE)
        subprocess.run([*CTR, "-n", "k8s.io", "images", "import", "-"], stdin=save.stdout, check=True)
        if save.wait() != 0:
            sys.exit(f"docker save {BUSYBOX_IMAGE} failed")
    version = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/cat", BUSYBOX_IMAGE, "/busybox-version"],
        capture_output=True,
        text=True,
    )
    return version.stdout.strip() or "?"


def namespace() -> str:
    """A fresh namespace under Pod Security `restricted`, once its ServiceAccount exists."""
    name = f"dnsbench-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    # pods created before the namespace's default ServiceAccount exists are refused
    kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    return name


def pod(kind: str, ns: str) -> dict[str, Any]:
    """The pod of KIND: its init container waits for its own Service, then the app sleeps."""
    if kind == "initkit":
        init = {"image": INITKIT_IMAGE, "args": ["wait-for", "dns:svc-a", "--interval", "1s"]}
    else:
        name = f"svc-b.{ns}.svc.cluster.local" if kind == "busybox" else "svc-c"
        init = {"image": BUSYBOX_IMAGE, "command": ["sh", "-c", f"until nslookup {name}; do sleep 2; done"]}
    app = {"image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}
    common = {"imagePullPolicy": "Never", "securityContext": HARDENED}
    spec = {
        "terminationGracePeriodSeconds": 0,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [{"name": "wait", **init, **common}],
        "containers": [{"name": "app", **app, **common}],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": kind, "namespace": ns}, "spec": spec}


def _service(name: str, ns: str) -> dict[str, Any]:
    """What `kubectl create service clusterip NAME --tcp=80:8080` makes."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": name},
            "ports": [{"name": "80-8080", "port": 80, "targetPort": 8080}],
        },
    }


class PodWatch:
    """`kubectl get pods --watch` in NS: per pod, the last status and when the app was first seen running."""

    def __init__(self, ns: str) -> None:
        argv = [KUBECTL, "--kubeconfig", str(KUBECONFIG), "get", "pods", "-n", ns, "--watch", "-o", "json"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.status: dict[str, dict[str, Any]] = {}
        self.app_seen: dict[str, float] = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        decoder = json.JSONDecoder()
        pending = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # pretty-printed objects, one after another
            now = time.time()
            pending += line
            if line.rstrip() != "}":
                continue
            try:
                obj, _ = decoder.raw_decode(pending.strip())
            except ValueError:
                continue
            pending = ""
            name = obj["metadata"]["name"]
            with self.changed:
                self.status[name] = obj.get("status") or {}
                if "running" in _state(self.status[name], "containerStatuses"):
                    self.app_seen.setdefault(name, now)
                self.changed.notify_all()

    def wait(self, what: str, check: Any, timeout: float = 120) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: check(self.status), timeout):
                sys.exit(f"timed out waiting for {what}: {json.dumps(self.status)[:400]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class TaskEvents:
    """`ctr events` on the node's containerd: when each container's task started and exited (ns stamps)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([*CTR, "-n", "k8s.io", "events"], stdout=subprocess.PIPE, text=True)
        self.at: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # 2026-12-03 18:53:28.053442001 +0000 UTC k8s.io /tasks/exit {...}
            fields = line.split(" ", 6)
            if len(fields) < 7 or fields[5] not in ("/tasks/start", "/tasks/exit"):
                continue
            day, clock, _, _, _, topic, rest = fields
            seconds, _, fraction = clock.partition(".")
            moment = datetime.datetime.fromisoformat(f"{day}T{seconds}.{fraction[:6]:0<6}+00:00").timestamp()
            with self.lock:
                self.at.setdefault((topic, json.loads(rest)["container_id"]), moment)

    def when(self, topic: str, container_id: str) -> float | None:
        with self.lock:
            return self.at.get((topic, container_id.split("//")[-1]))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _state(status: dict[str, Any], key: str) -> dict[str, Any]:
    statuses = status.get(key) or []
    return statuses[0].get("state") or {} if statuses else {}


def _memory(uid: str, status: dict[str, Any]) -> tuple[float, float] | None:
    """(max_usage, rss) MiB of pod UID's running init container's memory cgroup, if this host shows it."""
    container = ((status.get("initContainerStatuses") or [{}])[0].get("containerID") or "").split("//")[-1]
    found = list(MEMORY_CGROUP.glob(f"kubepods/*/pod{uid}/{container}")) if container else []
    if not found:
        return None
    peak = int((found[0] / "memory.max_usage_in_bytes").read_text())
    stat = dict(line.split() for line in (found[0] / "memory.stat").read_text().splitlines())
    return peak / 2**20, int(stat["rss"]) / 2**20


def _stamp(value: str) -> float:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _running(kinds: tuple[str, ...], key: str) -> Any:
    return lambda status: all("running" in _state(status.get(k, {}), key) for k in kinds)


def one_run(
    results: dict[str, dict[str, list[float]]], memory: dict[str, list[tuple[float, float]]], tasks: TaskEvents
) -> str:
    """One run of the three pods; what became of the seed's loop, in words."""
    ns = namespace()
    watch = PodWatch(ns)
    try:
        uids = {}
        kinds = (*KINDS, "seed")
        for kind in random.sample(kinds, len(kinds)):  # no pod always first
            apply(pod(kind, ns))
        for kind in KINDS:
            uids[kind] = json.loads(kubectl("get", "pod", kind, "-n", ns, "-o", "json"))["metadata"]["uid"]
        watch.wait("the init containers running", _running(kinds, "initContainerStatuses"))
        time.sleep(random.uniform(2, 4))  # a random phase against both loops' intervals
        with watch.changed:
            for kind in KINDS:
                if (mem := _memory(uids[kind], watch.status[kind])) is not None:
                    memory[kind].append(mem)
        apply(*(_service(name, ns) for name in ("svc-a", "svc-b", "svc-c")))
        created = time.time()
        watch.wait("both apps running", _running(KINDS, "containerStatuses"))
        for kind in KINDS:
            status = watch.status[kind]
            results[kind]["startedAt"].append(
                _stamp(_state(status, "containerStatuses")["running"]["startedAt"]) - created
            )
            # the init container's end: tells the wait's share from the kubelet's (whole seconds too)
            finished = _state(status, "initContainerStatuses")["terminated"]["finishedAt"]
            results[kind]["finishedAt"].append(_stamp(finished) - created)
            init_id = status["initContainerStatuses"][0]["containerID"]
            app_id = status["containerStatuses"][0]["containerID"]
            exited, started = tasks.when("/tasks/exit", init_id), tasks.when("/tasks/start", app_id)
            if exited is None or started is None:
                sys.exit(f"containerd's events lack {kind}'s init exit or app start")
            results[kind]["init exit"].append(exited - created)
            results[kind]["app start"].append(started - created)
            results[kind]["seen"].append(watch.app_seen[kind] - created)
        with watch.changed:
            watch.changed.wait_for(lambda: "seed" in watch.app_seen, max(0.0, created + SEED_GRACE - time.time()))
        if "seed" in watch.app_seen:
            return f"seed's loop ended after {watch.app_seen['seed'] - created:.2f} s"
        logs = kubectl("logs", "seed", "-c", "wait", "-n", ns)
        answered = f"Name:\tsvc-c.{ns}.svc.cluster.local" in logs
        printed = " (its nslookup printed the address)" if answered else ""
        return f"seed's loop still waiting after {SEED_GRACE:.0f} s{printed}"
    finally:
        watch.stop()
        kubectl("delete", "namespace", ns, "--wait=false")


def report(results: dict[str, dict[str, list[float]]], memory: dict[str, list[tuple[float, float]]]) -> None:
    labels = {"initkit": "initkit wait-for dns (1 s)", "busybox": "busybox loop, full name (2 s)"}
    for measure, note in (
        ("init exit", "the init container's exit (containerd's event)"),
        ("app start", "the app's start (containerd's event)"),
        ("seen", "the bench's watch sees the app running"),
        ("startedAt", "the app's startedAt, whole seconds"),
    ):
        print(f"  Service created -> {note}:")
        for kind in KINDS:
            v = results[kind][measure]
            print(
                f"    {labels[kind]:30s} median {statistics.median(v):6.2f} s  mean {statistics.mean(v):6.2f}"
                f"  min {min(v):6.2f}  max {max(v):6.2f}"
            )
        mine, theirs = statistics.median(results["initkit"][measure]), statistics.median(results["busybox"][measure])
        ratio = f"{theirs / mine:.1f}x" if mine > 0 else "n/a"
        print(f"    busybox / initkit, medians: {ratio}  (initkit sooner by {theirs - mine:+.2f} s)")
    if all(memory.values()):
        print(
            "  init container's memory cgroup while waiting (largest over the runs): max_usage (with page cache), rss"
        )
        for kind in KINDS:
            peak = max(m for m, _ in memory[kind])
            rss = max(r for _, r in memory[kind])
            print(f"    {labels[kind]:30s} {peak:6.1f} MiB  rss {rss:5.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    if not KUBECONFIG.exists():
        sys.exit("no node: run `make cluster` first")
    if shutil.which("docker") is None:
        sys.exit("docker is needed to build the busybox image")
    version = json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    debian_busybox = busybox_image()
    print(
        f"Kubernetes {version}; busybox-static {debian_busybox} (Debian); {os.cpu_count()} cores;"
        f" load {os.getloadavg()[0]:.1f}"
    )
    print(f"== a Service's creation -> the app's start, {args.runs} runs, the three pods in each run")
    results: dict[str, dict[str, list[float]]] = {
        kind: {"init exit": [], "app start": [], "seen": [], "startedAt": [], "finishedAt": []} for kind in KINDS
    }
    memory: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    seed_ended = 0
    tasks = TaskEvents()
    for i in range(args.runs):
        seed = one_run(results, memory, tasks)
        seed_ended += "ended" in seed
        mine, theirs = (f"{results[k]['seen'][-1]:5.2f} s (init exit {results[k]['init exit'][-1]:.2f})" for k in KINDS)
        print(f"  run {i + 1}: initkit {mine}, busybox {theirs}; {seed}  (load {os.getloadavg()[0]:.1f})", flush=True)
    tasks.stop()
    report(results, memory)
    print(f"  the seed's own loop (`nslookup svc-c`) ended in {seed_ended} of {args.runs} runs")
    print(f"  (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
