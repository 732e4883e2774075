"""Runtime behaviour of the images: read-only root for every command, SIGTERM as PID 1."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_for_handler
from tests.images.harness import BASE_IMAGE, IMAGE, IMAGE_SLIM, docker

OFFLINE = [
    ["--version"],
    ["--help"],
    ["info"],
    ["sleep", "0.2"],
    ["wait-for", "file:/etc/passwd", "--timeout", "5s"],
    ["render", "/in/t.j2"],
    ["render", "/in/t.j2", "/out/t.txt", "--set", "x=1"],
]


@pytest.fixture
def volumes(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir(mode=0o755)
    src.chmod(0o755)
    (src / "t.j2").write_text("ip={{ pod.ip }} x={{ x | default('none') }}\n")
    (src / "t.j2").chmod(0o644)
    vol = f"ik-ro-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", vol)
    docker("run", "--rm", "--network", "none", "-v", f"{vol}:/v", BASE_IMAGE, "chmod", "1777", "/v")
    yield ["-v", f"{src}:/in:ro", "-v", f"{vol}:/out"]
    docker("volume", "rm", "-f", vol, check=False)


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
@pytest.mark.parametrize("args", OFFLINE, ids=lambda a: " ".join(a))
def test_read_only_offline(engine, volumes, image, args):
    p = docker(
        "run", "--rm", "--read-only", "--network", "none", "-e", "POD_IP=10.1.2.3",
        "-e", "HOME=/nonexistent", *volumes, image, *args, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    if args[0] == "render" and len(args) == 2:
        assert "ip=10.1.2.3" in p.stdout


def test_read_only_bad_usage_exit_2(engine):
    p = docker("run", "--rm", "--read-only", "--network", "none", IMAGE, "sleep", "soon", check=False)
    assert p.returncode == 2, p


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
def test_sigterm_during_wait_for_stops_at_once(engine, image):
    name = f"ik-term-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--name", name, "--read-only", "--network", "none", image,
        "wait-for", "file:/nonexistent", "--timeout", "5m", "--interval", "100ms",
    )  # fmt: skip
    try:
        pid = int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
        wait_for_handler(pid, signal.SIGTERM)  # the CLI is up and handles SIGTERM
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
        t0 = time.monotonic()
        docker("kill", "-s", "TERM", name)
        rc = int(docker("wait", name, timeout=30).stdout.strip())
        elapsed = time.monotonic() - t0
        assert rc == 143, docker("logs", name).stderr
        assert elapsed < 1.0, f"took {elapsed:.2f}s to stop"
    finally:
        docker("rm", "-f", name, check=False)


def test_no_writes_outside_destination(engine, volumes):
    """With a read-only root the only writable place is the destination volume."""
    p = docker(
        "run", "--rm", "--read-only", "--network", "none", "-e", "POD_IP=10.1.2.3", *volumes, IMAGE,
        "render", "/in/t.j2", "/out/again.txt", "--set", "x=2",
    )  # fmt: skip
    assert p.returncode == 0
    out = docker("run", "--rm", "--network", "none", volumes[2], volumes[3], BASE_IMAGE, "ls", "-a", "/out").stdout
    assert set(out.split()) <= {".", "..", "again.txt", "t.txt"}
