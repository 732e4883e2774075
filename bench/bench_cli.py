"""CLI benchmarks, each against its baseline measured side by side in the same run.

    python3 bench/bench_cli.py [--runs 21] [--latency-runs 9]

Prints:
  1. median wall time of `initkit --version` and `initkit sleep 0` against
     `python3 -c pass` and `python3 -c 'import click'` (target: <= 1.3x click);
  2. peak RSS of wait-for tcp, wait-for dns, sleep, render and register
     (targets: <= 20 MiB for wait-for and sleep, <= 30 MiB for render and register);
  3. wait-for's detection latency (target becomes ready -> process exits) against the
     seed's `until nslookup NAME; do sleep 2; done` loop, with a real dnsmasq
     (target: median <= 0.5 s at default settings).
Needs dnsmasq-base, time (GNU time, for peak RSS) and busybox (for the seed's nslookup loop);
runs as root (port 53 on loopback).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import DnsServer, ScriptedHttpServer  # noqa: E402

PY = sys.executable
INITKIT = shutil.which("initkit", path=os.path.dirname(PY)) or shutil.which("initkit")
GNU_TIME = "/usr/bin/time"  # Debian package `time`


def wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_rss_mib(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Peak RSS through GNU time: a child forked from this (large) process would
    count this process's pages up to its exec, so a small parent must fork it."""
    proc = subprocess.run(
        [GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
    )
    kib = int(proc.stderr.strip().splitlines()[-1].split()[-1])
    return kib / 1024, proc.returncode


def startup(runs: int) -> None:
    print(f"== start-up: median wall time of {runs} runs (one interleaved run of each)")
    cases = {
        "python3 -c pass": [PY, "-c", "pass"],
        "python3 -c 'import click'": [PY, "-c", "import click"],
        "initkit --version": [INITKIT, "--version"],
        "initkit sleep 0": [INITKIT, "sleep", "0"],
    }
    for argv in cases.values():  # warm the page cache
        wall(argv, 2)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            samples[name].append(wall(argv, 1))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare, click = medians["python3 -c pass"], medians["python3 -c 'import click'"]
    for name, value in medians.items():
        print(f"  {name:28s} {value * 1000:7.1f} ms   {value / bare:4.2f}x bare   {value / click:4.2f}x click")
    for name in ("initkit --version", "initkit sleep 0"):
        verdict = "ok" if medians[name] <= 1.3 * click else "OVER"
        print(f"  target {name} <= 1.3x click: {medians[name] / click:.2f}x  {verdict}")


def memory(workdir: Path, dns: DnsServer) -> None:
    print("== peak RSS (GNU time %M, the largest of 3 runs)")
    tcp = socket.create_server(("127.0.0.1", 0))
    api = ScriptedHttpServer()
    dns.add("bench.test", "10.0.0.1")
    template = workdir / "app.conf.j2"
    template.write_text("listen {{ pod.ip }}:{{ port }}\n{% for k, v in db.items() %}{{ k }}={{ v }}\n{% endfor %}")
    values = workdir / "values.yaml"
    values.write_text("port: 8080\ndb:\n  host: mydb\n  replicas: 3\n")
    env = {**os.environ, "POD_IP": "10.1.2.3", "POD_NAME": "bench", "POD_NAMESPACE": "default", "NO_PROXY": "*"}
    cases = [
        ("python3 -c pass", [PY, "-c", "pass"], None),
        ("python3 -c 'import click'", [PY, "-c", "import click"], None),
        ("initkit sleep 0", [INITKIT, "sleep", "0"], 20),
        ("initkit wait-for tcp", [INITKIT, "wait-for", f"tcp:127.0.0.1:{tcp.getsockname()[1]}"], 20),
        ("initkit wait-for dns", [INITKIT, "wait-for", "dns:bench.test", "--dns-server", dns.server], 20),
        ("initkit render", [INITKIT, "render", str(template), str(workdir / "out.conf"), "--values", str(values)], 30),
        ("initkit register", [INITKIT, "register", api.url("/register"), "--data", "ip={{ pod.ip }}"], 30),
    ]
    for name, argv, budget in cases:
        rss, code = max(peak_rss_mib(argv, env) for _ in range(3))
        note = "" if budget is None else f"  budget {budget} MiB: {'ok' if rss <= budget else 'OVER'}"
        print(f"  {name:28s} {rss:6.1f} MiB  exit {code}{note}")
    tcp.close()
    api.stop()


def latency(dns: DnsServer, runs: int) -> None:
    print(f"== detection latency: record published -> waiter exits ({runs} runs each, ready 1-3 s after start)")
    busybox = shutil.which("busybox")
    seed = 'until busybox nslookup "$0" "$1" >/dev/null 2>&1; do sleep 2; done'
    # The moments of publication are spread evenly over 1-3 s after start (stratified, with
    # jitter), so every phase of a waiter's polling period is sampled alike: a fixed random
    # seed would hit the same few phases every time and bias the median.
    rng = random.Random()
    waiters = {
        "initkit wait-for (defaults)": lambda name: [INITKIT, "wait-for", f"dns:{name}", "--dns-server", dns.server],
        "initkit wait-for --interval 500ms": lambda name: [
            *[INITKIT, "wait-for", f"dns:{name}", "--dns-server", dns.server, "--interval", "500ms"]
        ],
    }
    if busybox:
        waiters["seed: until nslookup; sleep 2"] = lambda name: ["sh", "-c", seed, name, dns.address]
    else:
        print("  (busybox not installed: the seed's loop is skipped)")
    results: dict[str, list[float]] = {name: [] for name in waiters}
    for i in range(runs):
        for label, make in waiters.items():
            name = f"late-{i}-{abs(hash(label)) % 10000}.test"
            proc = subprocess.Popen(make(name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0 + 2.0 * (i + rng.random()) / runs)
            published = time.perf_counter()
            dns.add(name, "10.0.0.2")
            proc.wait(timeout=30)
            results[label].append(time.perf_counter() - published)
    base = statistics.median(results.get("seed: until nslookup; sleep 2", [float("nan")]))
    for label, values in results.items():
        med = statistics.median(values)
        print(
            f"  {label:32s} median {med:5.2f} s  mean {statistics.mean(values):5.2f}"
            f"  min {min(values):5.2f}  max {max(values):5.2f}"
            f"  ({med / base:4.2f}x the seed's loop)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--latency-runs", type=int, default=15)
    args = parser.parse_args()
    if not INITKIT:
        sys.exit("initkit is not installed: pip install -e .")
    if not os.path.exists(GNU_TIME):
        sys.exit("GNU time is not installed: apt-get install time")
    print(f"initkit at {INITKIT}; {sys.version.split()[0]}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="initkit-bench-") as tmp:
        workdir = Path(tmp)
        dns = DnsServer(workdir / "dns")
        try:
            startup(args.runs)
            memory(workdir, dns)
            latency(dns, args.latency_runs)
        finally:
            dns.stop()


if __name__ == "__main__":
    main()
