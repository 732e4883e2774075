"""Fixtures for the Helm chart tests: both helm binaries, hermetic chart copies.

The helm binaries come from `.ci/setup-helm.sh` (`.ci/bin/helm3`, `.ci/bin/helm4`;
`INITKIT_HELM3` / `INITKIT_HELM4` override the paths). Without them the tests skip
locally, and fail when CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import conftest

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
LIBRARY = CHARTS / "initkit"
EXAMPLE = CHARTS / "initkit-example"
HELMS = {"helm3": "v3.19.", "helm4": "v4.1."}
KUBE_VERSIONS = ("1.30.0", "1.37.0")


class HelmFailed(Exception):
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"helm {result.args[1:]} exited {result.returncode}:\n{result.stderr}")
        self.result = result
        self.stderr = result.stderr


@dataclass
class Helm:
    """One helm binary with its own cache/config/data homes and a copy of the charts."""

    name: str
    binary: Path
    home: Path
    charts: Path = field(init=False)

    def __post_init__(self) -> None:
        self.charts = self.home / "charts"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        env.update(
            HOME=str(self.home),
            HELM_CACHE_HOME=str(self.home / "cache"),
            HELM_CONFIG_HOME=str(self.home / "config"),
            HELM_DATA_HOME=str(self.home / "data"),
        )
        return env

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise HelmFailed(result)
        return result

    @property
    def example(self) -> Path:
        return self.charts / "initkit-example"

    @property
    def library(self) -> Path:
        return self.charts / "initkit"

    def template_text(
        self,
        *values_files: str | Path,
        chart: Path | None = None,
        set_values: tuple[str, ...] = (),
        extra: tuple[str, ...] = (),
    ) -> str:
        args: list[str | Path] = ["template", "myapp", chart or self.example, "--namespace", "demo"]
        for values in values_files:
            args += ["--values", values]
        for item in set_values:
            args += ["--set", item]
        return self.run(*args, *extra).stdout

    def template(self, *values_files: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
        text = self.template_text(*values_files, **kwargs)
        return [doc for doc in yaml.safe_load_all(text) if doc]


def find_helm(name: str) -> Path | None:
    override = os.environ.get(f"INITKIT_{name.upper()}")
    path = Path(override) if override else ROOT / ".ci" / "bin" / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def find_tool(env: str, relative: str) -> Path | None:
    """A tool .ci/setup-helm.sh installs under .ci/bin (the env variable overrides the path)."""
    override = os.environ.get(env)
    path = Path(override) if override else ROOT / ".ci" / "bin" / relative
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing(reason: str, fix: str = "run .ci/setup-helm.sh") -> None:
    conftest.missing(reason, fix)


def copy_charts(dest: Path) -> None:
    """Copy the charts without any vendored dependency, so each run vendors the current library."""
    for chart in (LIBRARY, EXAMPLE):
        shutil.copytree(chart, dest / chart.name, ignore=shutil.ignore_patterns("*.tgz", "__pycache__"))


@pytest.fixture(scope="session")
def helm_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Helm]:
    """helm_factory("helm3") -> that helm, with the example chart's dependency built offline."""
    made: dict[str, Helm] = {}

    def get(name: str) -> Helm:
        if name not in made:
            binary = find_helm(name)
            if binary is None:
                missing(f"{name} binary not found at .ci/bin/{name}")
            assert binary is not None
            helm = Helm(name, binary, tmp_path_factory.mktemp(name))
            version = helm.run("version", "--template", "{{.Version}}").stdout.strip()
            assert version.startswith(HELMS[name]), f"{binary} is {version}, expected {HELMS[name]}x"
            copy_charts(helm.charts)
            helm.run("dependency", "build", helm.example)
            made[name] = helm
        return made[name]

    return get


@pytest.fixture(scope="session", params=sorted(HELMS))
def helm(request: pytest.FixtureRequest, helm_factory: Callable[[str], Helm]) -> Helm:
    """Each helm (v3.19, v4.1) in turn."""
    return helm_factory(request.param)


def ci_values_files() -> list[Path]:
    return sorted((EXAMPLE / "ci").glob("*-values.yaml"))


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod spec of the example's Deployment or Pod."""
    (obj,) = [d for d in docs if d["kind"] in ("Deployment", "Pod")]
    return obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
