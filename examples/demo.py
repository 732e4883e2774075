"""The seed's pod, end to end, on this machine: `make demo` (or python3 examples/demo.py).

It starts local servers itself, all on 127.0.0.1: a DNS server where `myservice`
and `mydb` appear only after a while, a registry that answers 201 and then 409,
and a `git daemon` with a small repository. Then it runs the init containers'
jobs with initkit, one after another, as the kubelet would:

    initkit wait-for dns:myservice dns:mydb      (until nslookup ...; do sleep 2; done)
    initkit register http://.../register ...     (curl -X POST ... -d instance=...&ip=...)
    initkit git-clone git://.../app.git WORK/app (git clone into a shared volume)
    initkit render app.conf.j2 WORK/app.conf     (a config filled in with POD_IP)

and then again, as after a pod restart: everything succeeds and nothing changes.
Needs Python 3.11+, initkit installed, and git.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INITKIT = shutil.which("initkit", path=os.path.dirname(sys.executable)) or shutil.which("initkit") or "initkit"
POD = {"POD_NAME": "myapp-pod", "POD_NAMESPACE": "default", "POD_IP": "10.244.0.17", "POD_UID": "3f6b1c2e-demo"}


class DemoDns(threading.Thread):
    """Answers A queries for the names in `records` (NXDOMAIN otherwise), on UDP."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.records: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def run(self) -> None:
        while True:
            query, client = self.sock.recvfrom(512)
            labels, offset = [], 12
            while query[offset]:
                labels.append(query[offset + 1 : offset + 1 + query[offset]].decode().lower())
                offset += 1 + query[offset]
            qtype = struct.unpack("!H", query[offset + 1 : offset + 3])[0]
            question = query[12 : offset + 5]
            address = self.records.get(".".join(labels))
            answer = b""
            if address and qtype == 1:
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 4) + socket.inet_aton(address)
            rcode = 0 if address else 3  # NXDOMAIN
            flags = 0x8180 | rcode
            header = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0)
            self.sock.sendto(header + question + answer, client)


class Registry(http.server.BaseHTTPRequestHandler):
    seen: set[str] = set()  # noqa: RUF012 - demo state

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        key = self.headers.get("Idempotency-Key", "")
        status = 409 if key in Registry.seen else 201
        Registry.seen.add(key)
        print(f"    registry <- POST {self.path} {body!r} Idempotency-Key={key[:8]}... -> {status}")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:  # skip HTTPServer's getfqdn() lookup
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def git_repo(root: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "GIT_AUTHOR_NAME": "demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
           "GIT_COMMITTER_NAME": "demo", "GIT_COMMITTER_EMAIL": "demo@example.invalid"}  # fmt: skip
    work = root / "src"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True, env=env)
    (work / "index.html").write_text("<h1>myapp</h1>\n")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "-m", "site"], check=True, env=env)
    served = root / "served"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "app.git")], check=True, env=env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={served}", "--listen=127.0.0.1",
         f"--port={port}", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return daemon, f"git://127.0.0.1:{port}/app.git"


def step(title: str, *args: str) -> None:
    print(f"\n$ initkit {' '.join(args)}    # {title}", flush=True)
    result = subprocess.run([INITKIT, *args], env={**os.environ, **POD}, text=True, stderr=subprocess.PIPE)
    for line in result.stderr.splitlines():
        print(f"    {line}")
    if result.returncode != 0:
        sys.exit(f"demo: `initkit {args[0]}` exited {result.returncode}")


def main() -> None:
    if not shutil.which("git"):
        sys.exit("demo: git is not installed")
    with tempfile.TemporaryDirectory(prefix="initkit-demo-") as tmp:
        root = Path(tmp)
        work = root / "volume"  # the pod's shared emptyDir
        work.mkdir()
        dns = DemoDns()
        dns.start()
        registry = QuietServer(("127.0.0.1", 0), Registry)
        threading.Thread(target=registry.serve_forever, daemon=True).start()
        daemon, repo = git_repo(root)
        template = root / "app.conf.j2"
        template.write_text(
            "# generated by initkit render\nlisten {{ pod.ip }}:{{ port }}\n"
            "instance {{ pod.namespace }}/{{ pod.name }}\nupstream {{ upstream }}\n"
        )
        # The services come up late, as in the seed: myservice after 1.5 s, mydb after 3 s.
        threading.Timer(1.5, dns.records.__setitem__, ("myservice", "10.96.0.10")).start()
        threading.Timer(3.0, dns.records.__setitem__, ("mydb", "10.96.0.11")).start()
        registry_url = f"http://127.0.0.1:{registry.server_address[1]}/register"
        try:
            for run in ("first start", "pod restart: every init container runs again"):
                print(f"\n=== {run}")
                step("init-myservice + init-mydb", "wait-for", "dns:myservice", "dns:mydb",
                     "--dns-server", f"127.0.0.1:{dns.port}", "--timeout", "30s")  # fmt: skip
                step("register", "register", registry_url, "--data", "instance={{ pod.name }}&ip={{ pod.ip }}")
                step("git-clone", "git-clone", repo, str(work / "app"))
                step("render", "render", str(template), str(work / "app.conf"), "--set", "port=8080",
                     "--set", "upstream=mydb:5432")  # fmt: skip
                print("\n    the app container sees:")
                for line in (work / "app.conf").read_text().splitlines():
                    print(f"      app.conf | {line}")
                print(f"      app/index.html | {(work / 'app' / 'index.html').read_text().strip()}")
        finally:
            daemon.terminate()
            registry.shutdown()
    print("\ndemo: done: every step succeeded twice, and the second run changed nothing.")


if __name__ == "__main__":
    main()
