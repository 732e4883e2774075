"""The chart README's permissions example keeps a real PostgreSQL starting as uid 1001.

The example is rendered by helm; its containers' arguments run (the volume's mountPath
mapped onto a fresh directory) as root with only the step's capabilities (setpriv's
bounding set: CHOWN, FOWNER, DAC_OVERRIDE); then Debian's PostgreSQL binaries, as uid
1001, initialise the data directory and start; a second permissions run (a pod restart:
PGDATA is now 0700 and 1001's) passes and PostgreSQL starts again. The control: the
README's old `mode: g+rwX` makes PGDATA 0770 and PostgreSQL refuses to start.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import Helm
from tests.charts.test_readme import _one, _readme_chart, _render, yaml_blocks
from tests.conftest import initkit_command, requirement

pytestmark = pytest.mark.helm

PG_BIN = Path("/usr/lib/postgresql/15/bin")
APP = 1001
MOUNT = "/bitnami/postgresql"
LOGS = "/opt/app/logs"  # the example's second path, with its own mode
CAPS = ("--bounding-set", "-all,+chown,+fowner,+dac_override")  # the chart step's, nothing more
AS_APP = ("--reuid", str(APP), "--regid", str(APP), "--clear-groups")


@pytest.fixture(scope="module")
def helm(helm_factory: Callable[[str], Helm]) -> Helm:
    return helm_factory("helm4")


@pytest.fixture
def volume() -> Iterator[Path]:
    """A new volume: root-owned 0755, in a world-searchable directory uid 1001 can reach."""
    requirement.root("chown and setpriv")
    requirement.tool("setpriv", "apt-get install util-linux")
    requirement.path(str(PG_BIN / "postgres"), "apt-get install postgresql-15")
    base = Path(tempfile.mkdtemp(prefix="initkit-pg-"))
    base.chmod(0o755)
    root = base / "postgresql"
    root.mkdir(mode=0o755)
    yield root
    subprocess.run(["rm", "-rf", str(base)], check=False)


def readme_permissions_args(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> list[list[str]]:
    chart = _readme_chart(helm, tmp_path, _one("pod-template"))
    _, obj = _render(helm, chart, tmp_path, values)
    return [c["args"] for c in obj["spec"]["template"]["spec"]["initContainers"]]


def postgres_example() -> dict[str, Any]:
    (block,) = [b for b in yaml_blocks() if "PGDATA stays 0700" in b]
    return yaml.safe_load(block)


def run(*prefix: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    command = ["setpriv", *prefix, *argv] if prefix else argv
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False, cwd="/")


def permissions(args: list[str], volume: Path) -> None:
    logs = volume.parent / "logs"
    logs.mkdir(exist_ok=True)
    mapped = [a.replace(MOUNT, str(volume)).replace(LOGS, str(logs)) for a in args]
    done = run(*CAPS, argv=initkit_command(*mapped))
    assert done.returncode == 0, done.stderr


def as_app(volume: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """argv as uid 1001, which PostgreSQL must find in /etc/passwd (an image has that entry):
    a private mount namespace binds a passwd file with it over /etc/passwd, the host's own untouched."""
    passwd = volume.parent / "passwd"
    if not passwd.exists():
        passwd.write_text(Path("/etc/passwd").read_text() + f"app:x:{APP}:{APP}:app:/nonexistent:/bin/false\n")
    script = 'mount --bind "$0" /etc/passwd && exec setpriv "$@"'
    return run(argv=["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(passwd), *AS_APP, *argv])


def start_and_stop_postgres(volume: Path) -> subprocess.CompletedProcess[str]:
    data, sockets = volume / "data", volume / "run"
    sockets.mkdir(exist_ok=True)
    os.chown(sockets, APP, APP)
    options = f"-c listen_addresses='' -k {sockets}"
    started = as_app(
        volume,
        [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(sockets / "log"), "-w", "-t", "60", "-o", options, "start"],
    )
    log = sockets / "log"
    started.stdout += log.read_text() if log.exists() else ""  # the server's own messages
    if started.returncode == 0:
        stopped = as_app(volume, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"])
        assert stopped.returncode == 0, stopped.stderr
    return started


def initdb(volume: Path) -> None:
    done = as_app(volume, [str(PG_BIN / "initdb"), "-D", str(volume / "data"), "-U", "postgres"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_example_keeps_postgres_starting_first_run_and_after_a_restart(
    helm: Helm, tmp_path: Path, volume: Path
) -> None:
    values = postgres_example()
    (fix_data,) = readme_permissions_args(helm, tmp_path, values)
    assert fix_data == ["permissions", MOUNT, "--owner", "1001:1001", "--path", LOGS, "-", "u+rwX,g+rwX"], (
        "one container; the owner only on PGDATA: it keeps PostgreSQL's mode"
    )
    permissions(fix_data, volume)  # first run: a fresh, root-owned volume
    assert (volume.stat().st_uid, volume.stat().st_gid) == (APP, APP)
    initdb(volume)
    first = start_and_stop_postgres(volume)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (volume / "data").stat().st_mode & 0o777 == 0o700
    permissions(fix_data, volume)  # a restart: PGDATA is 0700 and 1001's; DAC_OVERRIDE walks it
    assert (volume / "data").stat().st_mode & 0o777 == 0o700
    again = start_and_stop_postgres(volume)
    assert again.returncode == 0, again.stdout + again.stderr


def test_control_the_old_group_mode_stops_postgres(helm: Helm, tmp_path: Path, volume: Path) -> None:
    """What the README used to show (mode: g+rwX over the volume) after initdb: PGDATA 0770, refused."""
    values = postgres_example()
    step = values["initkit"]["steps"]["volume-permissions"]
    step["paths"], step["mode"] = [MOUNT], "g+rwX"
    (fix,) = readme_permissions_args(helm, tmp_path, values)
    permissions(fix, volume)
    initdb(volume)
    permissions(fix, volume)
    assert (volume / "data").stat().st_mode & 0o777 == 0o770
    refused = start_and_stop_postgres(volume)
    assert refused.returncode != 0
    assert "invalid permissions" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
