"""harness.PodmanSandbox for the chart test, made robust against what broke it on a fresh
machine (podman nested in Docker):

* a subnet no podman network or host route uses yet, so a network left behind by an
  earlier (or a concurrent) run cannot make `network create` fail;
* `wait_for_bridge()`: the bridge and its gateway address appear only once the first
  pod's infra container starts, which may take longer than any fixed sleep;
* `load_image()` copies the docker engine's image again when podman holds an older build
  under the same name;
* netavark whatever podman's default backend: with CNI an --internal network's bridge
  gets no gateway address and pod names do not resolve (podman keeps CNI as its default
  while CNI networks or containers exist, e.g. left by an earlier run);
* teardown that first kills a `kube play` still waiting (it holds the pod's lock, so
  any `pod rm` would wait for it), then removes, each step on its own, what this sandbox
  created (its pods by name, `kube down`, its network), all while the namespace holder
  still lives (podman's netns files exist only in its mount namespace: once it is gone,
  nothing can remove those pods), then the holder and dnsmasq. A step that fails or
  times out does not skip the rest; and never `pod rm -a`, which would remove other
  tests' pods too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import subprocess
from pathlib import Path

import yaml

from tests.images import harness

SUBNETS = [f"10.89.{third}.0/24" for third in range(100, 250)]


NETAVARK = ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark")


def netavark_installed() -> bool:
    return any(Path(path).is_file() for path in NETAVARK)


def used_subnets() -> set[ipaddress.IPv4Network]:
    """Subnets of podman's networks (CNI's and netavark's) and of the host's IPv4 routes."""
    used: set[ipaddress.IPv4Network] = set()
    for backend in ("cni", "netavark"):
        podman = ["podman", "--network-backend", backend, "network"]
        listed = subprocess.run([*podman, "ls", "--format", "{{.Name}}"], capture_output=True, text=True)
        names = listed.stdout.split()
        if not names:
            continue
        inspected = subprocess.run([*podman, "inspect", *names], capture_output=True, text=True)
        with contextlib.suppress(json.JSONDecodeError):
            for network in json.loads(inspected.stdout or "[]"):
                for subnet in network.get("subnets") or []:
                    with contextlib.suppress(ValueError, KeyError):
                        used.add(ipaddress.ip_network(subnet["subnet"], strict=False))
    routes = subprocess.run(["ip", "-o", "-4", "route"], capture_output=True, text=True).stdout
    for line in routes.splitlines():
        with contextlib.suppress(ValueError, IndexError):
            used.add(ipaddress.ip_network(line.split()[0], strict=False))
    return used


def free_subnet() -> str:
    used = used_subnets()
    candidates = [s for s in SUBNETS if not any(ipaddress.ip_network(s).overlaps(u) for u in used if u.prefixlen)]
    assert candidates, "no free 10.89.x.0/24 subnet for the podman network"
    return random.choice(candidates)


class PodmanSandbox(harness.PodmanSandbox):
    """A PodmanSandbox on a free subnet that cleans up after itself even when a step fails."""

    ATTEMPTS = 5

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, subnet=free_subnet())
        self.playing: list[subprocess.Popen[str]] = []

    def __enter__(self) -> PodmanSandbox:
        for attempt in range(self.ATTEMPTS):
            try:
                super().__enter__()
                return self
            except AssertionError as exc:
                self.__exit__(None, None, None)
                # another run took the subnet between our look and our create: pick again
                if "already used" not in str(exc) or attempt == self.ATTEMPTS - 1:
                    raise
                self.subnet = free_subnet()
                self.gateway = self.gateway_of(self.subnet)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        raise AssertionError("unreachable")

    def podman(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        return super().podman("--network-backend", "netavark", *args, check=check, timeout=timeout)

    def play(self, yaml_path: Path, timeout: float = 180) -> subprocess.CompletedProcess:
        """`podman kube play --network NET YAML`, as a process teardown can kill."""
        assert self.holder is not None
        self.played.append(yaml_path)
        args = ["nsenter", "-t", str(self.holder.pid), "-m", "podman", "--network-backend", "netavark"]
        args += ["kube", "play", "--network", self.net, str(yaml_path)]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        self.playing.append(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        finally:
            self.playing.remove(process)
        self.pin_bridge_mac()
        return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)

    def played_docs(self) -> list[dict]:
        docs: list[dict] = []
        for path in self.played:
            with contextlib.suppress(OSError, yaml.YAMLError):
                docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        return docs

    def pod_names(self) -> list[str]:
        return [doc["metadata"]["name"] for doc in self.played_docs() if doc["kind"] == "Pod"]

    def volume_names(self) -> list[str]:
        """The volumes podman 4.3 may keep after `kube down`: one per ConfigMap and per emptyDir."""
        names = [doc["metadata"]["name"] for doc in self.played_docs() if doc["kind"] == "ConfigMap"]
        for doc in self.played_docs():
            if doc["kind"] == "Pod":
                names += [v["name"] for v in doc["spec"].get("volumes") or [] if "emptyDir" in v]
        return names

    def wait_for_bridge(self, timeout: float = 60) -> None:
        """Until the network's gateway address is on a host interface (its bridge is up)."""

        def up() -> bool:
            out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
            return f" {self.gateway}/" in out

        harness.wait_until(up, timeout=timeout, interval=0.2, what=f"the bridge of {self.net} ({self.gateway})")

    def __exit__(self, *exc: object) -> None:
        steps: list[tuple[str, list[str], float]] = []
        if self.holder is not None and self.holder.poll() is None:
            steps += [(f"pod rm {name}", ["pod", "rm", "-f", "-t", "0", name], 60) for name in self.pod_names()]
            steps += [(f"kube down {path.name}", ["kube", "down", str(path)], 60) for path in reversed(self.played)]
            steps += [(f"volume rm {name}", ["volume", "rm", "-f", name], 60) for name in self.volume_names()]
            steps += [(f"network rm {self.net}", ["network", "rm", "-f", self.net], 60)]
        problems = []
        for process in list(self.playing):
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        for what, args, timeout in steps:
            try:
                self.podman(*args, check=False, timeout=timeout)
            except (subprocess.SubprocessError, OSError) as error:
                problems.append(f"{what}: {error}")
        if self.holder is not None:
            self.holder.terminate()
            try:
                self.holder.wait(5)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait(5)
            self.holder = None
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        if problems and not any(exc):
            raise AssertionError("podman sandbox teardown: " + "; ".join(problems))
