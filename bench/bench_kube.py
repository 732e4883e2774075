"""wait-for's Kubernetes API targets against `kubectl wait`, side by side on the real node.

    python3 bench/bench_kube.py [--runs 15] [--startup-runs 9]

Needs the node (`make cluster`: .cluster/kubeconfig and .cluster/bin/kubectl), the image
initkit:dev in the node's containerd, and GNU time (apt-get install time). Everything runs
in a namespace of its own (k8swait-bench-...), deleted at the end. Both waiters use the
same kubeconfig: a ServiceAccount token granted get/list/watch on jobs and pods.

Prints:
  1. detection latency, from the API change to the waiter's line: a Job done (written by
     the job controller: initkit judges SuccessCriteriaMet, its verdict, which comes before
     Complete, the condition kubectl waits for; each is timed from its own condition) and a
     pod's Ready condition (written by the kubelet). The change's moment is when the
     bench's own watch (a plain http.client stream, one per resource, started before the
     runs) receives it; initkit's moment is its "is ready" line on stderr, kubectl's its
     "condition met" line on stdout. Each run has both waiters watching the same object.
     Target: initkit's median under 100 ms.
  2. start-up on an already-complete Job: wall time (to exit) and peak RSS (GNU time %M)
     of `initkit wait-for job:NAME` and `kubectl wait --for=condition=complete job/NAME`,
     one run of each interleaved per repetition, medians; initkit with a kubeconfig and, as
     in a pod, with the ServiceAccount's files (a tmpfs over /run in a mount namespace of its own:
     needs root and unshare), against `python3 -c pass` and `python3 -c 'import requests'`.
     initkit's pycs are written on the first run, as the image ships them compiled.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
GNU_TIME = "/usr/bin/time"
IMAGE = "initkit:dev"
INITKIT = [sys.executable, "-m", "initkit"]
# pycs written (the image ships them compiled): without, every run compiles initkit anew
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(ROOT)}


def kubectl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(KUBECONFIG), *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def apply(*docs: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def setup(workdir: Path) -> tuple[str, Path, dict[str, Any]]:
    """The bench's namespace, and a kubeconfig of its ServiceAccount `bench` (token file)."""
    ns = f"k8swait-bench-{uuid.uuid4().hex[:6]}"
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kubectl("wait", "--for=create", "serviceaccount/default", "-n", ns, "--timeout=60s")
    rule = {"verbs": ["get", "list", "watch"]}
    apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bench", "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "bench", "namespace": ns},
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], **rule},
                {"apiGroups": [""], "resources": ["pods"], **rule},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "bench", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench"},
            "subjects": [{"kind": "ServiceAccount", "name": "bench", "namespace": ns}],
        },
    )
    token = workdir / "token"
    token.write_text(kubectl("create", "token", "bench", "-n", ns, "--duration=1h").strip())
    admin = yaml.safe_load(KUBECONFIG.read_text())
    cluster = admin["clusters"][0]["cluster"]
    ca = workdir / "ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    config = workdir / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": cluster["server"], "certificate-authority": str(ca)}}],
                "users": [{"name": "u", "user": {"tokenFile": str(token)}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": ns}}],
                "current-context": "x",
            }
        )
    )
    return ns, config, {"server": cluster["server"], "ca": str(ca), "token": token.read_text()}


def _true(obj: dict[str, Any]) -> set[str]:
    """The object's conditions that are True."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {c.get("type") for c in conditions if c.get("status") == "True"}


class Observer:
    """The bench's own watch of PATH: when each (object, condition) first arrived True."""

    def __init__(self, api: dict[str, Any], path: str) -> None:
        self.seen: dict[tuple[str, str], float] = {}
        self.changed = threading.Condition()
        url = urllib.parse.urlsplit(api["server"])
        context = ssl.create_default_context(cafile=api["ca"])
        self.conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context)
        self.conn.request(
            "GET", f"{path}?watch=1&timeoutSeconds=3600", headers={"Authorization": f"Bearer {api['token']}"}
        )
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = b""
        while chunk := self.response.read1(65536):
            now = time.perf_counter()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                obj = json.loads(line)["object"]
                name = obj["metadata"]["name"]
                with self.changed:
                    for condition in _true(obj):
                        self.seen.setdefault((name, condition), now)
                    self.changed.notify_all()

    def when(self, name: str, conditions: tuple[str, ...], timeout: float = 120) -> float:
        """When the first of CONDITIONS of NAME arrived True."""
        with self.changed:
            if not self.changed.wait_for(lambda: any((name, c) in self.seen for c in conditions), timeout):
                sys.exit(f"the bench's watch never saw {name} {'/'.join(conditions)}")
            return min(self.seen[name, c] for c in conditions if (name, c) in self.seen)


class Waiter:
    """A waiter process; `at` is when the first line holding MARK came on its STREAM."""

    def __init__(self, argv: list[str], stream: str, mark: str) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        self.at: float | None = None
        self.watching: float | None = None
        self.lines: list[str] = []
        self.mark = mark
        pipe = self.proc.stderr if stream == "stderr" else self.proc.stdout
        other = self.proc.stdout if stream == "stderr" else self.proc.stderr
        threading.Thread(target=self._read, args=(pipe, True), daemon=True).start()
        threading.Thread(target=self._read, args=(other, False), daemon=True).start()

    def _read(self, pipe: Any, marked: bool) -> None:
        for line in pipe:
            now = time.perf_counter()
            self.lines.append(line.rstrip())
            if marked and self.at is None and self.mark in line:
                self.at = now
            if "; watching" in line and self.watching is None:
                self.watching = now

    def finish(self) -> float:
        code = self.proc.wait(timeout=120)
        if code != 0 or self.at is None:
            sys.exit(f"waiter {self.proc.args} exited {code}: {self.lines[-5:]}")
        return self.at


def _job(name: str, ns: str, seconds: int) -> dict[str, Any]:
    pod = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never", "args": ["sleep", f"{seconds}s"]}],
    }
    spec = {"backoffLimit": 0, "template": {"spec": pod}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _pod(name: str, ns: str, seconds: int) -> dict[str, Any]:
    def container(name: str, args: list[str]) -> dict[str, Any]:
        return {"name": name, "image": IMAGE, "imagePullPolicy": "Never", "args": args}

    spec = {
        "terminationGracePeriodSeconds": 0,
        "initContainers": [container("late", ["sleep", f"{seconds}s"])],  # Ready comes after the waiters watch
        "containers": [container("main", ["sleep", "1h"])],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": spec,
    }


def latency(ns: str, config: Path, api: dict[str, Any], runs: int) -> None:
    print(
        f"== detection latency: the API change -> the waiter's line ({runs} runs of each event, both waiters each run)"
    )
    jobs = Observer(api, f"/apis/batch/v1/namespaces/{ns}/jobs")
    pods = Observer(api, f"/api/v1/namespaces/{ns}/pods")
    kc = [KUBECTL, "--kubeconfig", str(config), "-n", ns, "wait", "--timeout=120s"]
    # label: (observer, manifest, initkit's argv and the conditions it judges, kubectl's argv and its condition)
    # initkit takes a Job as done at SuccessCriteriaMet (the controller's verdict, written before the
    # pods' finalizers are cleared and Complete is added); kubectl waits for Complete itself.
    events: dict[str, tuple[Observer, Any, Any, tuple[str, ...], Any, tuple[str, ...]]] = {
        "Job done": (
            jobs,
            lambda name: _job(name, ns, 4),
            lambda name: [*INITKIT, "--debug", "wait-for", f"job:{name}", "--kubeconfig", str(config)],
            ("SuccessCriteriaMet", "Complete"),
            lambda name: [*kc, "--for=condition=complete", f"job/{name}"],
            ("Complete",),
        ),
        "pod Ready": (
            pods,
            lambda name: _pod(name, ns, 4),
            lambda name: [*INITKIT, "--debug", "wait-for", f"pods:app={name}", "--kubeconfig", str(config)],
            ("Ready",),
            lambda name: [*kc, "--for=condition=Ready", "pod", "-l", f"app={name}"],
            ("Ready",),
        ),
    }
    for label, (observer, manifest, initkit, mine_on, kubectl_wait, theirs_on) in events.items():
        mine: list[float] = []
        theirs: list[float] = []
        ahead: list[float] = []
        late = 0
        for i in range(runs):
            name = f"{label.split()[0].lower()}-{i}"
            apply(manifest(name))
            a = Waiter(initkit(name), "stderr", " is ready after ")
            b = Waiter(kubectl_wait(name), "stdout", "condition met")
            seen_a, seen_b = a.finish(), b.finish()
            mine.append(seen_a - observer.when(name, mine_on))
            theirs.append(seen_b - observer.when(name, theirs_on))
            ahead.append(seen_b - seen_a)
            late += a.watching is None or a.watching > observer.when(name, mine_on)
        print(
            f"  {label} (initkit on {'/'.join(mine_on)}, kubectl on {'/'.join(theirs_on)}; "
            f"initkit watching before the change in {runs - late} of {runs} runs):"
        )
        for who, values in (("initkit wait-for", mine), ("kubectl wait", theirs)):
            med = statistics.median(values)
            verdict = f"  target < 100 ms: {'ok' if med < 0.1 else 'OVER'}" if who.startswith("initkit") else ""
            print(
                f"    {who:18s} median {med * 1000:6.1f} ms  min {min(values) * 1000:6.1f}"
                f"  max {max(values) * 1000:6.1f}{verdict}"
            )
        print(f"    initkit's line before kubectl's by: median {statistics.median(ahead) * 1000:6.1f} ms")
        kubectl("delete", "jobs,pods", "--all", "-n", ns, "--wait=false")


def _timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds to exit, peak RSS MiB) of one run, which must succeed."""
    started = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-f", "%M", *argv], capture_output=True, text=True, env=ENV, timeout=60)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{argv} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024


def _in_cluster(workdir: Path, api: dict[str, Any], ns: str) -> list[str]:
    """`initkit wait-for job:done` configured as in a pod: the ServiceAccount's files at their
    place (a tmpfs over /run in a mount namespace of its own) and KUBERNETES_SERVICE_HOST/PORT."""
    files = workdir / "serviceaccount"
    files.mkdir(exist_ok=True)
    (files / "token").write_text(api["token"])
    (files / "namespace").write_text(ns)
    (files / "ca.crt").write_bytes(Path(api["ca"]).read_bytes())
    url = urllib.parse.urlsplit(api["server"])
    mount = (
        'mount -t tmpfs tmpfs /run && mkdir -p "$1" && cp "$0"/* "$1" && shift && '
        'exec env KUBERNETES_SERVICE_HOST="$1" KUBERNETES_SERVICE_PORT="$2" "${@:3}"'
    )
    where = "/run/secrets/kubernetes.io/serviceaccount"
    return ["unshare", "-m", "bash", "-c", mount, str(files), where, url.hostname or "", str(url.port or 443)]


def startup(workdir: Path, ns: str, config: Path, api: dict[str, Any], runs: int) -> None:
    print(f"== start-up on an already-complete Job: wall time and peak RSS, medians of {runs} interleaved runs")
    apply(_job("done", ns, 0))
    kubectl("wait", "-n", ns, "--for=condition=complete", "job/done", "--timeout=120s")
    cases = {
        "initkit wait-for job:done": [*INITKIT, "wait-for", "job:done", "--kubeconfig", str(config)],
        "  the same, in-cluster files": [*_in_cluster(workdir, api, ns), *INITKIT, "wait-for", "job:done"],
        "kubectl wait job/done": [
            KUBECTL,
            *("--kubeconfig", str(config), "-n", ns, "wait", "--for=condition=complete", "job/done"),
        ],
        "python3 -c pass": [sys.executable, "-c", "pass"],
        "python3 -c 'import requests'": [sys.executable, "-c", "import requests"],
    }
    for argv in cases.values():  # warm the page cache, write initkit's pycs
        _timed(argv)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            samples[name].append(_timed(argv))
    bare = statistics.median(w for w, _ in samples["python3 -c pass"])
    for name, values in samples.items():
        walls = [w for w, _ in values]
        rss = [r for _, r in values]
        median = statistics.median(walls)
        print(
            f"  {name:30s} wall median {median * 1000:6.0f} ms (min {min(walls) * 1000:4.0f},"
            f" {median / bare:4.1f}x python3 -c pass)   peak RSS median {statistics.median(rss):5.1f} MiB"
        )
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--startup-runs", type=int, default=9)
    parser.add_argument("--only", choices=("latency", "startup"), help="run one part only")
    args = parser.parse_args()
    if not KUBECONFIG.exists():
        sys.exit("no node: run `make cluster` first")
    if not os.path.exists(GNU_TIME):
        sys.exit("GNU time is not installed: apt-get install time")
    version = json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"]
    print(f"Kubernetes {version}; {sys.version.split()[0]}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="initkit-bench-") as tmp:
        ns, config, api = setup(Path(tmp))
        try:
            if args.only != "startup":
                latency(ns, config, api, args.runs)
            if args.only != "latency":
                startup(Path(tmp), ns, config, api, args.startup_runs)
        finally:
            kubectl("delete", "namespace", ns, "--wait=false")


if __name__ == "__main__":
    main()
