"""CLI benchmarks, each against its baseline measured side by side in the same run.

    python3 bench/bench_cli.py [--runs 21] [--latency-runs 9]

Prints:
  1. median wall time of `initkit --version` and `initkit sleep 0` against
     `python3 -c pass` and `python3 -c 'import click'` (target: <= 1.25x click);
  2. peak RSS of wait-for tcp, wait-for dns, sleep, render and register
     (targets: <= 20 MiB for wait-for and sleep, <= 30 MiB for render and register);
  3. wait-for's detection latency (target becomes ready -> process exits) against the
     seed's `until nslookup NAME; do sleep 2; done` loop, with a real dnsmasq
     (target: median <= interval/2 + 100 ms, with the DNS queries per interval counted).
Needs dnsmasq-base, time (GNU time, for peak RSS) and busybox (for the seed's nslookup loop);
runs as root (port 53 on loopback).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import budgets  # noqa: E402
from tests.servers import DnsServer  # noqa: E402

PY = sys.executable
INITKIT = budgets.INITKIT
GNU_TIME = budgets.GNU_TIME


def wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
        verdict = "ok" if medians[name] <= 1.25 * click else "OVER"
        print(f"  target {name} <= 1.25x click: {medians[name] / click:.2f}x  {verdict}")


def memory(workdir: Path, dns: DnsServer) -> None:
    print("== peak RSS (GNU time %M, the largest of 3 runs; budgets from tests/budgets.py)")
    env = budgets.environment()
    baselines = [
        budgets.Case("python3 -c pass", [PY, "-c", "pass"], 0),
        budgets.Case("python3 -c 'import click'", [PY, "-c", "import click"], 0),
    ]
    with budgets.loopback_cases(workdir, dns) as cases:
        for case in [*baselines, *cases]:
            runs = []
            for _ in range(3):
                shutil.rmtree(workdir / "checkout", ignore_errors=True)
                runs.append(budgets.peak_rss_mib(case.argv, env)[:2])
            rss, code = max(runs)
            verdict = "ok" if rss <= case.budget_mib else "OVER"
            note = f"  budget {case.budget_mib:g} MiB: {verdict}" if case.budget_mib else ""
            print(f"  {case.name:28s} {rss:6.1f} MiB  exit {code}{note}")


def latency(dns: DnsServer, runs: int) -> None:
    print(f"== detection latency: record published -> waiter exits ({runs} runs each, ready 1-3 s after start)")
    busybox = shutil.which("busybox")
    seed = 'until busybox nslookup "$0" "$1" >/dev/null 2>&1; do sleep 2; done'
    # The moments of publication are spread evenly over 1-3 s after start (stratified, with
    # jitter), so every phase of a waiter's polling period is sampled alike: a fixed random
    # seed would hit the same few phases every time and bias the median.
    rng = random.Random()
    # label -> (argv for a name, polling interval in s, or None for the seed's loop)
    waiters = {
        "initkit wait-for (defaults)": (
            lambda name: [INITKIT, "wait-for", f"dns:{name}", "--dns-server", dns.server],
            1.0,
        ),
        "initkit wait-for --interval 500ms": (
            lambda name: [INITKIT, "wait-for", f"dns:{name}", "--dns-server", dns.server, "--interval", "500ms"],
            0.5,
        ),
    }
    if busybox:
        waiters["seed: until nslookup; sleep 2"] = (lambda name: ["sh", "-c", seed, name, dns.address], None)
    else:
        print("  (busybox not installed: the seed's loop is skipped)")
    results: dict[str, list[float]] = {name: [] for name in waiters}
    per_poll: dict[str, list[float]] = {name: [] for name in waiters}
    for i in range(runs):
        for label, (make, interval) in waiters.items():
            name = f"late-{i}-{abs(hash(label)) % 10000}.test"
            started = time.perf_counter()
            proc = subprocess.Popen(make(name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0 + 2.0 * (i + rng.random()) / runs)
            published = time.perf_counter()
            dns.add(name, "10.0.0.2")
            proc.wait(timeout=30)
            ended = time.perf_counter()
            results[label].append(ended - published)
            if interval:  # DNS queries for this name (any type, any search suffix) per check
                asked = sum(1 for line in dns.queries() if f" {name}" in line)
                checks = 1 + (ended - started) // interval  # one at start, then one per interval
                per_poll[label].append(asked / checks)
    base = statistics.median(results.get("seed: until nslookup; sleep 2", [float("nan")]))
    for label, values in results.items():
        med = statistics.median(values)
        interval = waiters[label][1]
        target = ""
        if interval:
            limit = interval / 2 + 0.1
            target = (
                f"  target median <= {limit:.2f} s: {'ok' if med <= limit else 'OVER'};"
                f" DNS queries per check: mean {statistics.mean(per_poll[label]):.2f}"
            )
        print(
            f"  {label:32s} median {med:5.2f} s  mean {statistics.mean(values):5.2f}"
            f"  min {min(values):5.2f}  max {max(values):5.2f}"
            f"  ({med / base:4.2f}x the seed's loop){target}"
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
