"""Real-engine harness for the image tests (reusable: the chart tests import it too).

Everything here drives the docker / podman CLIs as subprocesses and keeps all
name resolution on the machine (the project's NETWORK RULE):

* `DockerNet`  - a user-defined Docker network plus a dnsmasq listening on its
  gateway; every container started through it gets `--dns <gateway>`, so
  Docker's embedded DNS forwards unknown names to that dnsmasq, which answers
  only from its own hosts file (`net.dns.add(name, ip)`) and never forwards.
* `DockerPod`  - a Kubernetes-like pod on Docker: a pause container on the
  network, then init containers run one after another with
  `--network container:<pause>` and a shared named volume (mode 1777, like an
  emptyDir), then app containers.
* `PodmanSandbox` - `podman kube play` in one private mount namespace whose
  /etc/resolv.conf names a dnsmasq the sandbox started, on an `--internal`
  podman network, with the fixes Debian's podman 4.3 / netavark 1.4 need
  (ulimits, restartPolicy, bridge MAC pinning). Use it as a context manager:

      with PodmanSandbox(tmp_path) as pm:
          pm.load_image("initkit:dev")                 # docker save | podman load
          rc, out = pm.play(Path("pod.yaml"))          # podman kube play
          events = pm.container_events()               # order and exit codes
          pm.logs("myapp-pod-myapp-container")

Helpers: `docker()`, `docker_bin()`, `require_engine()` (fails under CI=true,
skips otherwise when the engine is missing), `free_port(host)`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from tests.servers import DnsServer

IMAGE = os.environ.get("INITKIT_IMAGE", "initkit:dev")
IMAGE_SLIM = os.environ.get("INITKIT_IMAGE_SLIM", "initkit:dev-slim")
BASE_IMAGE = os.environ.get("INITKIT_TEST_BASE_IMAGE", "debian:trixie-slim")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def docker_bin() -> str | None:
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")


def docker(*args: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run the docker CLI; returns the CompletedProcess (text mode)."""
    exe = docker_bin()
    assert exe, "no docker client"
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def require_engine(images: tuple[str, ...] = (IMAGE, IMAGE_SLIM, BASE_IMAGE)) -> None:
    """Fail (CI) or skip (elsewhere) unless a docker engine with `images` answers."""
    problem = None
    if not docker_bin():
        problem = "no docker client"
    elif docker("info", check=False, timeout=30).returncode != 0:
        problem = "docker engine not answering (run .ci/setup-docker.sh)"
    else:
        missing = [i for i in images if docker("image", "inspect", i, check=False).returncode != 0]
        if missing:
            problem = f"images missing: {missing} (run make images)"
    if problem:
        missing(problem, "run .ci/setup-docker.sh and make images")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float = 10, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class DockerNet:
    """A user-defined Docker network with its own dnsmasq on the gateway."""

    def __init__(self, workdir: Path, prefix: str = "ik"):
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        docker("network", "create", self.name)
        info = json.loads(docker("network", "inspect", self.name).stdout)[0]
        cfg = info["IPAM"]["Config"][0]
        self.subnet, self.gateway = cfg["Subnet"], cfg["Gateway"]
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.dns = DnsServer(workdir / f"dns-{self.name}", address=self.gateway)

    def run(self, *args: str, name: str | None = None, detach: bool = True, **kw) -> subprocess.CompletedProcess:
        """`docker run` on this network with --dns set to our dnsmasq. args: options, image, command."""
        name = name or f"{self.name}-{uuid.uuid4().hex[:6]}"
        self.containers.append(name)
        opts = ["run", "--name", name, "--network", self.name, "--dns", self.gateway]
        if detach:
            opts.append("-d")
        return docker(*opts, *args, **kw)

    def volume(self, mode: str = "1777") -> str:
        """A named volume whose root has `mode` (like an emptyDir)."""
        vol = f"{self.name}-vol-{uuid.uuid4().hex[:6]}"
        docker("volume", "create", vol)
        self.volumes.append(vol)
        docker("run", "--rm", "--network", "none", "-v", f"{vol}:/v", BASE_IMAGE, "chmod", mode, "/v")
        return vol

    def ip_of(self, container: str) -> str:
        out = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container).stdout
        return json.loads(out)[self.name]["IPAddress"]

    def close(self) -> None:
        for c in reversed(self.containers):
            docker("rm", "-f", "-v", c, check=False)
        for v in self.volumes:
            docker("volume", "rm", "-f", v, check=False)
        self.dns.stop()
        docker("network", "rm", self.name, check=False)


class DockerPod:
    """A pod on Docker: pause container, init containers in its netns, shared volume."""

    def __init__(self, net: DockerNet, name: str = "myapp-pod", volume_mount: str = "/work"):
        self.net, self.name = net, name
        self.volume = net.volume("1777")
        self.mount = volume_mount
        self.uid = str(uuid.uuid4())
        self.pause = f"{net.name}-{name}-pause"
        net.run("--hostname", name, BASE_IMAGE, "sleep", "infinity", name=self.pause)
        self.ip = net.ip_of(self.pause)

    def env(self) -> list[str]:
        facts = {
            "POD_IP": self.ip,
            "POD_NAME": self.name,
            "POD_NAMESPACE": "default",
            "POD_UID": self.uid,
            "NODE_NAME": "docker-node",
        }
        return [x for k, v in facts.items() for x in ("-e", f"{k}={v}")]

    def container_args(self, *extra: str, read_only: bool = True) -> list[str]:
        args = ["--network", f"container:{self.pause}", "-v", f"{self.volume}:{self.mount}", *self.env()]
        if read_only:
            args.append("--read-only")
        return [*args, *extra]

    def run_init(self, *args: str, image: str = IMAGE, extra: tuple[str, ...] = (), timeout: float = 120):
        """Run one init container to completion (foreground); returns CompletedProcess."""
        name = f"{self.net.name}-init-{uuid.uuid4().hex[:6]}"
        self.net.containers.append(name)
        return docker("run", "--name", name, *self.container_args(*extra), image, *args, check=False, timeout=timeout)

    def start_init(self, *args: str, image: str = IMAGE, extra: tuple[str, ...] = ()) -> subprocess.Popen:
        """Start an init container in the background (attached); returns the Popen."""
        name = f"{self.net.name}-init-{uuid.uuid4().hex[:6]}"
        self.net.containers.append(name)
        cmd = [docker_bin(), "run", "--name", name, *self.container_args(*extra), image, *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run_app(self, *command: str, image: str = BASE_IMAGE) -> subprocess.CompletedProcess:
        return docker("run", "--rm", *self.container_args(read_only=False), image, *command, check=False)

    def snapshot(self) -> str:
        """Every path in the volume with type, mode, size, inode, mtime (ns) and content hash."""
        script = (
            f"cd {self.mount} && find . -printf '%y %m %s %i %T@ %p\\n' | sort -k6 && "
            "find . -type f -print0 | sort -z | xargs -0 -r sha256sum"
        )
        return docker(
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{self.volume}:{self.mount}:ro",
            BASE_IMAGE,
            "bash",
            "-c",
            script,
        ).stdout


class PodmanSandbox:
    """podman `kube play` in a private mount namespace with its own DNS (see module doc)."""

    BRIDGE_MAC = "02:42:ac:1e:00:01"
    SUBNET = "10.89.77.0/24"

    def __init__(self, workdir: Path, subnet: str = SUBNET):
        self.dir = workdir / f"podman-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir(parents=True)
        self.net = f"ikpm-{uuid.uuid4().hex[:6]}"
        self.subnet = subnet
        self.gateway = self.gateway_of(subnet)
        self.dnsmasq_addr = f"127.0.{uuid.uuid4().int % 200 + 20}.1"
        self.holder: subprocess.Popen | None = None
        self.dns: DnsServer | None = None
        self.played: list[Path] = []

    @staticmethod
    def gateway_of(subnet: str = SUBNET) -> str:
        """The address podman gives the bridge of a network on `subnet` (its first host)."""
        return f"{subnet.rsplit('.', 1)[0]}.1"

    # -- lifecycle
    def __enter__(self) -> PodmanSandbox:
        self.started = time.time()
        self.dns = DnsServer(self.dir / "dns", address=self.dnsmasq_addr)
        resolv = self.dir / "resolv.conf"
        resolv.write_text(f"nameserver {self.dnsmasq_addr}\n")
        conf = self.dir / "containers.conf"
        conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
            f'dns_servers = ["{self.gateway}"]\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        # a long-lived holder in its own mount namespace, with our resolv.conf bound in
        self.holder = subprocess.Popen(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount --bind {resolv} /etc/resolv.conf && exec sleep infinity",
            ]
        )
        wait_until(lambda: self._bound(), timeout=10, what="podman holder namespace")
        self.podman("network", "create", "--internal", "--subnet", self.subnet, self.net)
        return self

    def _bound(self) -> bool:
        assert self.holder is not None
        try:
            text = Path(f"/proc/{self.holder.pid}/root/etc/resolv.conf").read_text()
        except OSError:
            return False
        mounts = Path(f"/proc/{self.holder.pid}/mountinfo").read_text()
        return self.dnsmasq_addr in text and "/etc/resolv.conf" in mounts

    def __exit__(self, *exc) -> None:
        for y in reversed(self.played):
            self.podman("kube", "down", str(y), check=False, timeout=60)
        self.podman("pod", "rm", "-f", "-a", check=False, timeout=60)
        self.podman("volume", "prune", "-f", check=False)
        self.podman("network", "rm", "-f", self.net, check=False)
        if self.holder:
            self.holder.terminate()
            self.holder.wait(5)
        if self.dns:
            self.dns.stop()

    # -- commands
    def podman(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        """Run podman inside the sandbox's mount namespace."""
        assert self.holder is not None
        cmd = ["nsenter", "-t", str(self.holder.pid), "-m", "podman", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def load_image(self, image: str) -> None:
        """The docker engine's image in podman's store under the same name. Copied again when
        podman holds another build under that name (an earlier run's, without a newer
        subcommand); the older one is only untagged, so anything still using it keeps running."""
        have = self.podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
        want = docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        if have.returncode == 0 and have.stdout.strip() == want.removeprefix("sha256:"):
            return
        tar = self.dir / "image.tar"
        docker("save", "-o", str(tar), image, timeout=300)
        self.podman("load", "-i", str(tar), timeout=300)
        tar.unlink()
        if "/" not in image.split(":")[0]:
            # podman load names docker-saved images localhost/NAME or docker.io/library/NAME
            self.podman("tag", f"docker.io/library/{image}", image, check=False)

    def pin_bridge_mac(self) -> None:
        """netavark 1.4 lets the bridge take its ports' lowest MAC: pin it (netavark #833)."""
        info = json.loads(self.podman("network", "inspect", self.net).stdout)[0]
        bridge = info.get("network_interface")
        if bridge and Path(f"/sys/class/net/{bridge}").exists():
            subprocess.run(["ip", "link", "set", bridge, "address", self.BRIDGE_MAC], check=False)

    def play(self, yaml_path: Path, timeout: float = 180) -> subprocess.CompletedProcess:
        """`podman kube play --network NET YAML` (returns when init containers are done)."""
        self.played.append(yaml_path)
        p = self.podman("kube", "play", "--network", self.net, str(yaml_path), check=False, timeout=timeout)
        self.pin_bridge_mac()
        return p

    def container_events(self, since: str | None = None) -> list[dict]:
        """podman's container events since the sandbox started (or `since`).

        Init containers are removed once they succeed, so order and exit codes
        come from here; ContainerExitCode is omitted from an event when it is 0.
        """
        since = since or str(int(self.started))
        p = self.podman("events", "--stream=false", "--since", since, "--filter", "type=container", "--format", "json")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def logs(self, container: str) -> str:
        p = self.podman("logs", container, check=False)
        return p.stdout + p.stderr

    def state(self, container: str) -> str:
        return self.podman("inspect", "-f", "{{.State.Status}}", container, check=False).stdout.strip()


@contextlib.contextmanager
def docker_net(workdir: Path):
    net = DockerNet(workdir)
    try:
        yield net
    finally:
        net.close()
