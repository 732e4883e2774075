"""`initkit copy` out of an image volume, with podman's `--mount type=image` standing in for
Kubernetes' `volumes[].image`: an app-like image built here FROM scratch (no shell, no base),
mounted read-only into initkit's image, its files copied into a volume (issue 17: 13)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import requirement
from tests.images import harness

pytestmark = pytest.mark.podman

APP_IMAGE = "localhost/initkit-test-app:copy"
CONTAINERFILE = "FROM scratch\nCOPY opt /opt\n"


class Podman:
    """podman with its own store in a temp dir (vfs: no overlay mounts to leave behind)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        conf = root / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = ["podman", "--root", str(root / "store"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]

    def __call__(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done


@pytest.fixture
def podman() -> Iterator[Podman]:
    requirement.tool("podman", "apt-get install podman")
    harness.require_engine((harness.IMAGE,))
    engine = Podman(Path(tempfile.mkdtemp(prefix="initkit-pm-")))  # short: podman's runroot is at most 50
    try:
        yield engine
    finally:
        engine("rm", "--all", "--force", check=False)
        engine("volume", "rm", "--all", "--force", check=False)
        shutil.rmtree(engine.root, ignore_errors=True)


def _app_image(podman: Podman, context: Path) -> None:
    """An app image's defaults: config with a 0600 file, a link inside, a link out, a log link."""
    app = context / "opt" / "app"
    (app / "conf").mkdir(parents=True)
    (app / "conf" / "app.conf").write_text("listen 8080\n")
    (app / "conf" / "secret.conf").write_text("k=v\n")
    (app / "conf" / "secret.conf").chmod(0o644)
    (app / "bin").mkdir()
    (app / "bin" / "run").write_text("#!/opt/app/bin/python\n")
    (app / "bin" / "run").chmod(0o755)
    (app / "bin" / "python").symlink_to("/usr/bin/python3")
    (app / "default.conf").symlink_to("conf/app.conf")
    (context / "Containerfile").write_text(CONTAINERFILE)
    podman("build", "--quiet", "--tag", APP_IMAGE, str(context))


def _copy(podman: Podman, *args: str, user: str) -> subprocess.CompletedProcess[str]:
    return podman(
        *("run", "--rm", "--network", "none", "--read-only", "--user", user, "--cap-drop", "ALL"),
        *("--security-opt", "no-new-privileges"),
        *(f"--cap-add={cap}" for cap in (["CHOWN", "FOWNER", "DAC_OVERRIDE"] if user.startswith("0") else [])),
        *("--mount", f"type=image,source={APP_IMAGE},destination=/src"),
        *("--mount", "type=volume,source=appdata,destination=/data"),
        harness.IMAGE,
        *("copy", "/src/opt/app", "/data/app", *args),
        check=False,
    )


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for entry in sorted(root.rglob("*")):
        st = entry.lstat()
        what = os.readlink(entry) if entry.is_symlink() else entry.read_bytes() if entry.is_file() else None
        out[str(entry.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what)
    return out


@pytest.mark.parametrize("user", ["1001:1001", "0:0"])
def test_copy_out_of_an_image_volume_into_a_volume_twice(podman, tmp_path, user):
    _app_image(podman, tmp_path / "context")
    podman("load", "--quiet", "--input", str(_saved(tmp_path)))
    podman("volume", "create", "appdata")
    owner = ["--owner", "1001:1001"] if user.startswith("0") else []  # as the app's user: no capability at all

    first = _copy(podman, *owner, user=user)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        "initkit copy: /data/app: 7 entries from 1 SRC, 5 written, 0 unchanged, 0 kept, 0 skipped"
    ]
    volume = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", "appdata").stdout.strip()) / "app"
    got = _tree(volume)
    assert got["conf/app.conf"] == (0o644, 1001, 1001, b"listen 8080\n")
    assert got["bin/run"][:3] == (0o755, 1001, 1001)
    assert got["bin/python"][3] == "/usr/bin/python3" and got["default.conf"][3] == "conf/app.conf"
    (volume / "conf" / "app.conf").write_text("listen 9090\n")  # the app changes its config

    again = _copy(podman, *owner, user=user)

    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [
        "initkit copy: warning: kept /data/app/conf/app.conf: changed since the last copy (--overwrite replaces it)",
        "initkit copy: /data/app: 7 entries from 1 SRC, 0 written, 4 unchanged, 1 kept, 0 skipped",
    ]
    assert (volume / "conf" / "app.conf").read_text() == "listen 9090\n"


def _saved(tmp_path: Path) -> Path:
    tar = tmp_path / "initkit.tar"
    harness.docker("save", "-o", str(tar), harness.IMAGE, timeout=300)
    return tar
