"""The chart README's git-clone beside a git-running sidecar: the step runs as the app's
user (owner, through tpl), so git run by that user in the checkout passes its ownership
check. The control: the default uid 65532's checkout is `dubious ownership` to uid 1001."""

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
from tests.gitservers import GitDaemon, served_repo

pytestmark = pytest.mark.helm

MOUNT = "/dags"


@pytest.fixture(scope="module")
def helm(helm_factory: Callable[[str], Helm]) -> Helm:
    return helm_factory("helm4")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    d = GitDaemon(served_repo(tmp_path, {"dag.py": "print('dag')\n"}, name="dags.git")).start()
    yield d
    d.stop()


@pytest.fixture
def volume() -> Iterator[Path]:
    requirement.root("setpriv to other uids")
    requirement.tool("setpriv", "apt-get install util-linux")
    base = Path(tempfile.mkdtemp(prefix="initkit-dags-"))
    base.chmod(0o777)  # an emptyDir: any uid writes
    yield base
    subprocess.run(["rm", "-rf", str(base)], check=False)


def as_uid(uid: int, gid: int, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    env["HOME"] = "/nonexistent"  # no global git config says safe.directory
    ids = ("--reuid", str(uid), "--regid", str(gid), "--clear-groups")
    return subprocess.run(
        ["setpriv", *ids, *argv], env=env, capture_output=True, text=True, timeout=60, check=False, cwd="/"
    )


def rendered_clone(helm: Helm, tmp_path: Path, repo: str) -> dict[str, Any]:
    (block,) = [b for b in yaml_blocks() if "kind: git-clone" in b and "owner:" in b]
    values = yaml.safe_load(block)
    values["initkit"]["steps"]["load-dags"]["repo"] = repo
    chart = _readme_chart(helm, tmp_path, _one("pod-template"))
    _, obj = _render(helm, chart, tmp_path, values)
    (clone,) = obj["spec"]["template"]["spec"]["initContainers"]
    return clone


def clone_and_git(clone: dict[str, Any], volume: Path, uid: int, gid: int) -> subprocess.CompletedProcess[str]:
    args = [a.replace(MOUNT, str(volume)) if a.startswith(MOUNT) else a for a in clone["args"]]
    done = as_uid(uid, gid, initkit_command(*args))
    assert done.returncode == 0, done.stderr
    return as_uid(1001, 1001, ["git", "-C", str(volume / "repo"), "status", "--short"])


def test_the_sidecar_runs_git_in_the_checkout(helm: Helm, tmp_path: Path, daemon: GitDaemon, volume: Path) -> None:
    clone = rendered_clone(helm, tmp_path, daemon.url("dags.git"))
    context = clone["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (1001, 1001), "owner through tpl"
    sidecar = clone_and_git(clone, volume, context["runAsUser"], context["runAsGroup"])
    assert sidecar.returncode == 0 and "dubious ownership" not in sidecar.stderr, sidecar.stderr
    assert (volume / "repo" / "dag.py").stat().st_uid == 1001


def test_control_the_default_user_s_checkout_is_dubious_to_the_app(
    helm: Helm, tmp_path: Path, daemon: GitDaemon, volume: Path
) -> None:
    clone = rendered_clone(helm, tmp_path, daemon.url("dags.git"))
    sidecar = clone_and_git(clone, volume, 65532, 65532)
    assert sidecar.returncode != 0 and "dubious ownership" in sidecar.stderr, sidecar.stderr
