#!/usr/bin/env python3
"""Image benchmark: sizes, largest paths, and `docker run --rm IMAGE --version` start time.

Usage: python3 bench/bench_images.py [--runs 7] [--top 12] [IMAGE...]
(default images: initkit:dev initkit:dev-slim). Start time is the median wall
time of `docker run --rm --network none IMAGE --version`, measured interleaved
with `docker run --rm --network none debian:trixie-slim true` in the same run;
the ratio is IMAGE / baseline. Stdlib only.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from pathlib import Path

BASELINE = "debian:trixie-slim"


def docker() -> str:
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


def compressed(image: str) -> int:
    raw = subprocess.run([docker(), "save", image], capture_output=True, check=True).stdout
    return len(gzip.compress(raw, compresslevel=6, mtime=0))


def largest_paths(image: str, top: int, depth: int = 4) -> tuple[int, list[tuple[int, str]]]:
    cid = subprocess.run([docker(), "create", image], capture_output=True, text=True, check=True).stdout.strip()
    try:
        data = subprocess.run([docker(), "export", cid], capture_output=True, check=True).stdout
    finally:
        subprocess.run([docker(), "rm", cid], capture_output=True)
    sizes: dict[str, int] = defaultdict(int)
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            total += m.size
            parts = m.name.lstrip("./").split("/")
            key = "/" + "/".join(parts[:depth]) + ("/..." if len(parts) > depth else "")
            sizes[key] += m.size
    return total, sorted(((s, p) for p, s in sizes.items()), reverse=True)[:top]


def run_time(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([docker(), "run", "--rm", "--network", "none", *args], capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", default=["initkit:dev", "initkit:dev-slim"])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()

    for image in args.images:
        gz = compressed(image)
        total, top = largest_paths(image, args.top)
        print(f"== {image}: {gz / 1e6:.2f} MB compressed (docker save | gzip -6), {total / 1e6:.2f} MB files")
        for size, path in top:
            print(f"   {size / 1e6:7.2f} MB  {path}")

    run_time([BASELINE, "true"])  # warm caches
    for image in args.images:
        run_time([image, "--version"])
        ours, base = [], []
        for _ in range(args.runs):  # interleaved: same conditions for both
            ours.append(run_time([image, "--version"]))
            base.append(run_time([BASELINE, "true"]))
        m_ours, m_base = statistics.median(ours), statistics.median(base)
        print(
            f"start: {image} --version median {m_ours * 1000:.0f} ms vs {BASELINE} true "
            f"{m_base * 1000:.0f} ms: ratio {m_ours / m_base:.2f} ({args.runs} runs each)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
