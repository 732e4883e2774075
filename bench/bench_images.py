#!/usr/bin/env python3
"""Image benchmark: sizes, largest paths, and `docker run --rm IMAGE --version` start time.

Usage: python3 bench/bench_images.py [--runs 7] [--top 12] [--release dist/release/release.json] [IMAGE...]
With --release (what `make release` wrote; default: that file when it exists), it first
prints the compressed size of each image for each platform as pushed (the sum of the
registry manifest's gzip layers and config), from `skopeo inspect --raw` of each index.
(default images: initkit:dev initkit:dev-slim). Start time is the median wall
time of `docker run --rm --network none IMAGE --version`, measured interleaved
with `docker run --rm --network none debian:trixie-slim true` in the same run;
the ratio is IMAGE / baseline. Stdlib only.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from pathlib import Path

BASELINE = "debian:trixie-slim"
DEFAULT_RELEASE = Path(__file__).resolve().parent.parent / "dist" / "release" / "release.json"


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


def per_platform(report_path: Path) -> None:
    """Compressed size of each pushed image for each platform, from the registry's manifests."""
    report = json.loads(report_path.read_text())
    print(f"== pushed by make release {report['version']} to {report['registry']} (gzip layers + config):")
    for name, info in report["images"].items():
        ref = info["reference"]
        host = ref.split("/", 1)[0].rsplit(":", 1)[0]
        tls = ["--tls-verify=false"] if host in ("localhost",) or host.startswith("127.") else []
        raw = subprocess.run(["skopeo", "inspect", *tls, "--raw", f"docker://{ref}"], capture_output=True, check=True)
        for m in json.loads(raw.stdout)["manifests"]:
            repo = ref.rsplit(":", 1)[0]
            manifest = json.loads(
                subprocess.run(
                    ["skopeo", "inspect", *tls, "--raw", f"docker://{repo}@{m['digest']}"],
                    capture_output=True,
                    check=True,
                ).stdout
            )
            size = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
            platform = f"{m['platform']['os']}/{m['platform']['architecture']}"
            print(f"   {name:<14} {platform:<12} {size / 1e6:6.2f} MB  {m['digest'][:19]}")


def run_time(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([docker(), "run", "--rm", "--network", "none", *args], capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", default=["initkit:dev", "initkit:dev-slim"])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--release", type=Path, default=DEFAULT_RELEASE, help="a release.json from make release")
    args = ap.parse_args()

    if args.release and args.release.exists():
        per_platform(args.release)

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
