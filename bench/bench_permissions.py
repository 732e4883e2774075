"""`initkit permissions` against `chown -R` + `chmod -R` on a 100,000-file tree, side by side in one run.

    python3 bench/bench_permissions.py [--files 100000] [--runs 3] [--dir DIR]

Bitnami's volumePermissions one-liner and initkit, each on the same tree, alternating:
  1. a first run: a fresh volume's tree (root's files, 0644 and 0755) becomes 1001:1001, g+rwX;
  2. a re-run where nothing needs to change (every pod restart).
Prints the median wall time of each, initkit's ratio to the one-liner, and how many inodes
each rewrote: the share of a random sample of entries whose ctime moved, times the tree's size.
The tree lives on a fresh tmpfs (syscall cost only); --dir DIR puts it on DIR's file system
instead, where each rewritten inode is also a journal write. Runs as root.
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
OWNER = "1001:1001"
MODE = "g+rwX"
BASELINE = ["sh", "-c", f'chown -R {OWNER} "$1" && chmod -R {MODE} "$1"', "sh"]
INITKIT = [sys.executable, "-m", "initkit", "--quiet", "permissions", "--owner", OWNER, "--mode", MODE]
FILES_PER_DIR = 1000
SAMPLE = 2000


def make_tree(root: Path, files: int) -> list[Path]:
    entries = [root]
    for d in range(max(1, files // FILES_PER_DIR)):
        sub = root / f"d{d:04}"
        sub.mkdir(mode=0o755)
        entries.append(sub)
        for f in range(min(FILES_PER_DIR, files - d * FILES_PER_DIR)):
            path = sub / f"f{f:04}"
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            entries.append(path)
    return entries


def reset(root: Path) -> None:
    """Back to a fresh volume's state, with the tools themselves (not measured)."""
    subprocess.run(["chown", "-R", "0:0", str(root)], check=True)
    subprocess.run(["chmod", "-R", "u=rwX,go=rX", str(root)], check=True)


def ctimes(sample: list[Path]) -> list[int]:
    return [os.lstat(p).st_ctime_ns for p in sample]


def timed(argv: list[str], sample: list[Path]) -> tuple[float, float]:
    """Wall time, and the share of sampled inodes whose ctime moved."""
    time.sleep(0.05)  # past the file system's timestamp granularity, so a rewrite shows
    before = ctimes(sample)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - started
    moved = sum(a != b for a, b in zip(before, ctimes(sample), strict=True))
    return elapsed, moved / len(sample)


def state(sample: list[Path]) -> list[tuple[int, int, int]]:
    return [(st.st_uid, st.st_gid, st.st_mode) for st in map(os.lstat, sample)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", help="make the tree under DIR instead of on a fresh tmpfs")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_permissions: run as root (chown, and a tmpfs mount)")

    base = Path(tempfile.mkdtemp(prefix="bench-permissions-", dir=args.dir))
    mounted = args.dir is None
    if mounted:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(base)], check=True)
    try:
        tree = base / "data"
        tree.mkdir()
        entries = make_tree(tree, args.files)
        findmnt = ["findmnt", "-no", "FSTYPE", "-T", str(tree)]
        fs = subprocess.run(findmnt, capture_output=True, text=True, check=False).stdout.strip()
        sample = random.Random(7).sample(entries, min(SAMPLE, len(entries)))
        results: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {"first": [], "rerun": []} for name in ("baseline", "initkit")
        }
        finals = {}
        for _ in range(args.runs):
            for name, argv in (("baseline", [*BASELINE, str(tree)]), ("initkit", [*INITKIT, str(tree)])):
                reset(tree)
                results[name]["first"].append(timed(argv, sample))
                results[name]["rerun"].append(timed(argv, sample))
                finals[name] = state(sample)
        assert finals["baseline"] == finals["initkit"], "the two left different owners or modes"
    finally:
        if mounted:
            subprocess.run(["umount", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)

    total = len(entries)
    print(f"tree: {total:,} entries ({args.files:,} files) on {fs}; median of {args.runs} runs")
    print(f"{'':22}{'chown -R + chmod -R':>30}{'initkit permissions':>30}{'ratio':>8}")
    for phase, label in (("first", "first run"), ("rerun", "re-run, nothing to do")):
        cells = []
        medians = []
        for name in ("baseline", "initkit"):
            wall = statistics.median(t for t, _ in results[name][phase])
            share = statistics.median(s for _, s in results[name][phase])
            medians.append(wall)
            cells.append(f"{wall:.2f} s, ~{round(share * total):,} inodes")
        print(f"{label:22}{cells[0]:>30}{cells[1]:>30}{medians[1] / medians[0]:>7.2f}x")


if __name__ == "__main__":
    main()
