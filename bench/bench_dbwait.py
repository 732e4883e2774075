"""wait-for's database targets against the tools init containers run today, side by side in one run.

    python3 bench/bench_dbwait.py [--runs 21]

Against a PostgreSQL and a Redis that are ready (real servers from Debian's packages, on
loopback), prints for each waiter the median wall and CPU time of RUNS interleaved runs
(start-up included: a ready server is the common case, and one check is all it takes) and its
peak RSS (GNU time %M, the largest of 3 runs); times from wait4 (CPU time is the figure a
loaded machine does not inflate):
  initkit wait-for tcp:..., postgres://... (pg_isready's check), postgres://...?password_file=...
  (a login and SELECT 1), redis://... (PING), against `pg_isready`, `redis-cli ping` and the loops
  charts run (`until pg_isready ...; do sleep 2; done` in sh, which ends at once on a ready server).
initkit runs as `python3 -m initkit` from this checkout (PYTHONPATH), so the figures are this
tree's. Needs postgresql, redis-server (redis-tools) and time; runs as root (PostgreSQL's own user).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import budgets  # noqa: E402
from tests.dbservers import PG_BIN, Postgres, Redis  # noqa: E402

PY = sys.executable


def environment() -> dict[str, str]:
    return {**budgets.environment(), "PYTHONPATH": str(ROOT)}


def cases(pg: Postgres, redis: Redis, password_file: Path) -> dict[str, list[str]]:
    initkit = [PY, "-m", "initkit", "wait-for"]
    pg_isready = [shutil.which("pg_isready") or f"{PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(pg.port)]
    redis_cli = [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "ping"]
    login = f"postgres://app@127.0.0.1:{pg.port}/appdb?password_file={password_file}"
    return {
        "initkit wait-for tcp:": [*initkit, f"tcp:127.0.0.1:{pg.port}"],
        "initkit wait-for postgres://": [*initkit, f"postgres://127.0.0.1:{pg.port}"],
        "initkit wait-for postgres:// (login)": [*initkit, login],
        "initkit wait-for redis://": [*initkit, f"redis://127.0.0.1:{redis.port}"],
        "pg_isready": pg_isready,
        "sh: until pg_isready; sleep 2": ["sh", "-c", 'until "$@"; do sleep 2; done', "sh", *pg_isready],
        "redis-cli ping": redis_cli,
        "sh: until redis-cli ping; sleep 2": [
            "sh",
            "-c",
            'until [ "$("$@")" = PONG ]; do sleep 2; done',
            "sh",
            *redis_cli,
        ],
    }


@dataclass
class Sample:
    wall: float  # s
    cpu: float  # s, user + system, the process and what it waited for
    rss: float  # MiB, peak (GNU time's: wait4's would count the forked parent's pages before exec)


def once(argv: list[str], env: dict[str, str]) -> Sample:
    """One run, its figures from wait4: CPU time is what a loaded machine cannot inflate."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{argv} failed ({proc.returncode})")
    return Sample(took, usage.ru_utime + usage.ru_stime, 0.0)


def measure(named: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, Sample]:
    for argv in named.values():  # warm the page cache
        once(argv, env)
    samples: dict[str, list[Sample]] = {name: [] for name in named}
    for _ in range(runs):  # interleaved: a noisy neighbour hits every waiter alike
        for name, argv in named.items():
            samples[name].append(once(argv, env))
    return {
        name: Sample(
            statistics.median(s.wall for s in values),
            statistics.median(s.cpu for s in values),
            max(budgets.peak_rss_mib(named[name], env)[0] for _ in range(3)),
        )
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    print(f"initkit from {ROOT}; {sys.version.split()[0]}; {os.cpu_count()} cores")
    if not os.path.exists(budgets.GNU_TIME):
        sys.exit("GNU time is not installed: apt-get install time")
    env = environment()
    with tempfile.TemporaryDirectory(prefix="initkit-bench-db-") as tmp:
        pg = Postgres()
        redis = None
        try:
            pg.start()
            redis = Redis(Path(tmp) / "redis")
            password_file = Path(tmp) / "pw"
            password_file.write_text(pg.password + "\n")
            named = cases(pg, redis, password_file)
            figures = measure(named, args.runs, env)
            print(f"== a ready server, {args.runs} interleaved runs: median wall and CPU time, peak RSS")
            print(f"   load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall time counts the waits)")
            tcp = figures["initkit wait-for tcp:"]
            for name, f in figures.items():
                print(
                    f"  {name:38s} wall {f.wall * 1000:7.1f} ms  CPU {f.cpu * 1000:6.1f} ms"
                    f" ({f.cpu / tcp.cpu:4.2f}x tcp:)  RSS {f.rss:5.1f} MiB"
                )
        finally:
            if redis:
                redis.stop()
            pg.stop()
            pg.remove()


if __name__ == "__main__":
    main()
