"""`initkit fetch --extract` against `wget -O- URL | tar xz -C DIR`, side by side in one run.

    python3 bench/bench_fetch.py [--mib 64] [--files 2000] [--runs 5]

A real HTTP server on loopback serves one .tar.gz (--files files, --mib MiB of
incompressible data in all). Each run, alternating: busybox's `wget -O- | tar xz`
(and curl's, when curl is installed) into a fresh directory, then `initkit fetch
--extract` (download, SHA-256, safe extraction, rename) into a fresh DEST, then
initkit's re-run on the now current DEST (no network). Prints the median wall
time and peak RSS (GNU time's %M, of the whole pipeline for the one-liners) of each,
and initkit's ratio to busybox's one-liner.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import os
import shutil
import socketserver
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME = "/usr/bin/time"


def make_archive(mib: int, files: int) -> bytes:
    buf = io.BytesIO()
    size = mib * 1024 * 1024 // files
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for i in range(files):
            data = os.urandom(size // 2) + bytes(size - size // 2)  # half random, half zeros: some gzip work
            info = tarfile.TarInfo(f"plugin-1.0/d{i // 100:03}/f{i:05}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def serve(payload: bytes) -> tuple[socketserver.TCPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self) -> None:  # no getfqdn(): no PTR query off the machine
            socketserver.TCPServer.server_bind(self)

    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/plugin-1.0.tar.gz"


def measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of argv (a shell pipeline counts its largest process)."""
    with tempfile.NamedTemporaryFile("r") as out:
        started = time.perf_counter()
        subprocess.run([TIME, "-f", "%M", "-o", out.name, *argv], check=True, cwd=ROOT, env=env)
        elapsed = time.perf_counter() - started
        return elapsed, int(out.read().split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    payload = make_archive(args.mib, args.files)
    digest = hashlib.sha256(payload).hexdigest()
    httpd, url = serve(payload)
    env = {**os.environ, "NO_PROXY": "*", "no_proxy": "*"}
    one_liners = {"busybox wget -O- | tar xz": 'busybox wget -q -O- "$1" | tar xz -C "$2"'}
    if shutil.which("curl"):
        one_liners["curl -sf | tar xz"] = 'curl -sf "$1" | tar xz -C "$2"'
    initkit = [sys.executable, "-m", "initkit", "--quiet", "fetch", url]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in [*one_liners, "initkit fetch", "re-run"]}
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as work:
        for run in range(args.runs):
            for name, script in one_liners.items():
                target = Path(work) / f"sh-{run}-{len(results[name])}"
                target.mkdir()
                results[name].append(measured(["sh", "-c", script, "sh", url, str(target)], env))
                shutil.rmtree(target)
            dest = Path(work) / f"ik-{run}"
            cmd = [*initkit, str(dest), "--sha256", digest, "--extract"]
            results["initkit fetch"].append(measured(cmd, env))
            results["re-run"].append(measured(cmd, env))
            shutil.rmtree(dest)
    httpd.shutdown()
    base = statistics.median(t for t, _ in results["busybox wget -O- | tar xz"])
    print(f"archive: {len(payload) / 2**20:.1f} MiB .tar.gz, {args.files} files; median of {args.runs} runs")
    print(f"{'command':<28} {'wall':>9} {'ratio':>7} {'peak RSS':>10}")
    for name, values in results.items():
        wall = statistics.median(t for t, _ in values)
        rss = statistics.median(m for _, m in values)
        print(f"{name:<28} {wall * 1000:7.0f}ms {wall / base:6.2f}x {rss:7.1f}MiB")


if __name__ == "__main__":
    main()
