"""The seed's pod on Docker, as the kubelet runs it, then a restart that changes nothing.

pause container on a user-defined network -> init containers one after another in
its network namespace, sharing a 1777 volume: wait-for (services appear late),
register (real HTTP server), git-clone (real git daemon), render (the pod's IP)
-> app container sees the results -> every init container again: all succeed,
same files, same mtimes, same Idempotency-Key.
"""

from __future__ import annotations

import json
import re
import socketserver
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import wait_until
from tests.gitservers import wait_for_port
from tests.images.harness import BASE_IMAGE, DockerNet, DockerPod, free_port


class Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args) -> None:
        pass


class Server(ThreadingHTTPServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(): a PTR query to the host's
        # resolver, off the machine. Skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


@pytest.fixture
def http_server(net: DockerNet):
    Recorder.requests = []
    srv = Server((net.gateway, 0), Recorder)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    net.dns.add("registry", net.gateway)
    yield srv.server_address[1], Recorder.requests
    srv.shutdown()


@pytest.fixture
def git_daemon(net: DockerNet, tmp_path: Path):
    srv = tmp_path / "git"
    work = tmp_path / "src"
    srv.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # fmt: skip
    run = lambda *a, cwd=None: subprocess.run(a, check=True, cwd=cwd, env=env, capture_output=True)  # noqa: E731
    run("git", "init", "-q", "-b", "main", str(work))
    (work / "README").write_text("hello from git\n")
    run("git", "add", "README", cwd=work)
    run("git", "commit", "-q", "-m", "first", cwd=work)
    run("git", "clone", "-q", "--bare", str(work), str(srv / "app.git"))
    port = free_port(net.gateway)
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", f"--base-path={srv}", "--export-all",
         f"--listen={net.gateway}", f"--port={port}", str(srv)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    net.dns.add("gitserver", net.gateway)
    wait_for_port(port, proc, host=net.gateway)
    yield f"git://gitserver:{port}/app.git"
    proc.terminate()
    proc.wait(5)


def asked(net: DockerNet, name: str) -> int:
    """How many times the pod's DNS server was asked for NAME (any of its search-list forms)."""
    form = re.compile(rf"query\[\w+\] {re.escape(name)}[. ]")  # dnsmasq: "query[A] NAME[.search] from IP"
    return sum(bool(form.search(line)) for line in net.dns.queries())


def asked_until(net: DockerNet, waiter: subprocess.Popen, name: str, times: int) -> None:
    """Until NAME was asked TIMES times, the waiter still running all along (not ready without it)."""
    wait_until(lambda: asked(net, name) >= times or waiter.poll() is not None, 30, f"{times} queries for {name}")
    assert waiter.poll() is None, f"wait-for ended before {name} existed: {waiter.communicate()}"


def test_seed_pod_on_docker(net: DockerNet, http_server, git_daemon, tmp_path: Path):
    port, requests = http_server
    templates = tmp_path / "templates"
    templates.mkdir()
    templates.chmod(0o755)
    (templates / "app.conf.j2").write_text("listen {{ pod.ip }}:8080\nname {{ pod.name }}\n")
    (templates / "app.conf.j2").chmod(0o644)
    tpl = ("-v", f"{templates}:/templates:ro")
    pod = DockerPod(net)

    def init_containers(first_run: bool) -> dict[str, float]:
        took = {}
        t0 = time.monotonic()
        waiter = pod.start_init("wait-for", "dns:myservice", "dns:mydb", "--timeout", "60s", "--interval", "200ms")
        if first_run:
            # It really waits: several checks of each name come and go unanswered first.
            asked_until(net, waiter, "myservice", 3)
            net.run("--network-alias", "myservice", BASE_IMAGE, "sleep", "infinity")
            asked_until(net, waiter, "mydb", asked(net, "mydb") + 2)
            net.run("--network-alias", "mydb", BASE_IMAGE, "sleep", "infinity")
        _out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
        took["wait-for"] = time.monotonic() - t0
        steps = {
            "register": (
                "register", f"http://registry:{port}/register", "--attempts", "3", "--timeout", "30s",
                "--json", '{"pod": "{{ pod.name }}", "ip": "{{ pod.ip }}"}',
            ),
            "git-clone": ("git-clone", git_daemon, "/work/app"),
            "render": ("render", "/templates/app.conf.j2", "/work/app.conf"),
        }  # fmt: skip
        for name, args in steps.items():
            t0 = time.monotonic()
            p = pod.run_init(*args, extra=tpl if name == "render" else ())
            assert p.returncode == 0, f"{name}: {p.stderr}"
            took[name] = time.monotonic() - t0
        return took

    first = init_containers(first_run=True)

    app = pod.run_app("bash", "-c", "cat /work/app.conf && cat /work/app/README && hostname")
    assert app.returncode == 0, app.stderr
    assert f"listen {pod.ip}:8080" in app.stdout
    assert "name myapp-pod" in app.stdout and "hello from git" in app.stdout
    assert len(requests) == 1
    body = json.loads(requests[0]["body"])
    assert body == {"pod": "myapp-pod", "ip": pod.ip}
    key = {k.lower(): v for k, v in requests[0]["headers"].items()}.get("idempotency-key")
    assert key

    before = pod.snapshot()  # inodes and mtimes in ns: any rewrite shows, however soon
    second = init_containers(first_run=False)
    after = pod.snapshot()
    assert after == before, "a restart changed the volume"
    assert len(requests) == 2
    key2 = {k.lower(): v for k, v in requests[1]["headers"].items()}.get("idempotency-key")
    assert key2 == key
    assert json.loads(requests[1]["body"]) == body
    print("init container times (s):", {k: round(v, 2) for k, v in first.items()},
          {k: round(v, 2) for k, v in second.items()})  # fmt: skip
