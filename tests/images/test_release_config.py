"""One place names where initkit publishes (images/images.toml [publish]); the charts agree with it.

No engine needed: these read the repository's files, and render the release's pinned copy of
the charts with helm (offline).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"


def load_release():
    spec = importlib.util.spec_from_file_location("initkit_release", ROOT / "images" / "release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def published() -> tuple[str, str]:
    """(registry host, repository path) of the image the charts run, from images.toml."""
    data = tomllib.loads((ROOT / "images" / "images.toml").read_text())
    pub = data["publish"]
    (img,) = [{**data["defaults"], **i} for i in data["image"] if i["name"] == pub["chart_image"]]
    host, _, path = f"{pub['registry']}/{img['repository']}".partition("/")
    return host, path


def initkit_version() -> str:
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", (ROOT / "initkit" / "__init__.py").read_text(), re.M)
    assert m
    return m.group(1)


def helm() -> str:
    for name in ("helm3", "helm4"):
        if (ROOT / ".ci" / "bin" / name).exists():
            return str(ROOT / ".ci" / "bin" / name)
    found = shutil.which("helm")
    if not found:
        pytest.fail("no helm: run .ci/setup-helm.sh")
    return found


@pytest.mark.parametrize(("chart", "path"), [("initkit", ["image"]), ("initkit-example", ["initkit", "image"])])
def test_chart_default_image_is_the_published_one(chart, path):
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    for key in path:
        values = values[key]
    host, repository = published()
    assert (values["registry"], values["repository"]) == (host, repository)
    # no tag: the library chart's appVersion, which is the initkit version the release pushes
    assert values.get("tag") in ("", None) and values.get("digest") in ("", None)
    lib = yaml.safe_load((CHARTS / "initkit" / "Chart.yaml").read_text())
    assert str(lib["appVersion"]) == initkit_version() == str(lib["version"])


def test_released_chart_pins_the_pushed_digest(tmp_path):
    """The release's copy of the charts: REGISTRY's image by the index digest, in every container."""
    release = load_release()
    work = tmp_path / "charts"
    shutil.copytree(CHARTS, work, ignore=shutil.ignore_patterns("*.tgz", "charts"))
    digest, slim = "sha256:" + "ab" * 32, "sha256:" + "cd" * 32
    host, repository = "127.0.0.1:5999", "team/initkit"
    release.pin_image_values(work / "initkit" / "values.yaml", host, repository, digest, ["image"], slim)
    example = work / "initkit-example" / "values.yaml"
    release.pin_image_values(example, host, repository, digest, ["initkit", "image"], slim)
    release.set_chart_version(work / "initkit" / "Chart.yaml", "9.8.7")
    release.set_chart_version(work / "initkit-example" / "Chart.yaml", "9.8.7", dependency_version=True)
    (work / "initkit-example" / "Chart.lock").unlink(missing_ok=True)
    # comments survive (the packaged values.yaml still documents each key)
    assert "## @param image.digest" in (work / "initkit" / "values.yaml").read_text()
    run = dict(capture_output=True, text=True, timeout=120)
    p = subprocess.run([helm(), "dependency", "update", str(work / "initkit-example")], **run)
    assert p.returncode == 0, p.stderr
    with_clone = ["--set", "initkit.steps.git-clone.enabled=true"]  # a step that runs the full image
    p = subprocess.run([helm(), "template", "myapp", str(work / "initkit-example"), *with_clone], **run)
    assert p.returncode == 0, p.stderr
    images = set(re.findall(r"image:\s*\"?([^\s\"]+)", p.stdout))
    initkit_images = {i for i in images if "initkit" in i}
    # git-clone runs the full image, every other step the slim one: both pinned
    assert initkit_images == {f"{host}/{repository}@{digest}", f"{host}/{repository}@{slim}"}
    chart = yaml.safe_load((work / "initkit" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("9.8.7", "9.8.7")


def test_pinning_refuses_a_values_file_without_the_image_block(tmp_path):
    release = load_release()
    values = tmp_path / "values.yaml"
    values.write_text("image:\n  registry: a\n  repository: b\n")  # no tag, no digest keys to pin
    with pytest.raises(SystemExit, match="to pin"):
        release.pin_image_values(values, "h", "r", "sha256:" + "0" * 64, ["image"])


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def workflow_runs(name: str) -> list[str]:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return [step["run"] for job in wf["jobs"].values() for step in job["steps"] if "run" in step]


def test_ci_workflow_is_the_repositorys_entry_point():
    assert any(".ci/run" in run for run in workflow_runs("ci.yml"))
    assert "exec make test" in (ROOT / ".ci" / "run").read_text()
    assert {"test", "setup", "images", "release"} <= make_targets()


def test_release_workflow_runs_make_release_to_the_published_registry():
    runs = "\n".join(workflow_runs("release.yml"))
    assert re.search(r"^\s*(sudo )?make release\s*$", runs, re.M)  # no REGISTRY: images.toml's
    assert "--check-tag" in runs
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["tags"] == ["v*"]
    assert wf["jobs"]["pypi"]["permissions"] == {"id-token": "write"}  # trusted publishing, no token


@pytest.mark.parametrize(
    ("tag", "owner", "rc"),
    [(f"v{initkit_version()}", "initkit", 0), ("v99.0.0", "initkit", 1), (f"v{initkit_version()}", "someone", 1)],
)
def test_check_tag(tag, owner, rc):
    # the system python3, before any venv exists (release.yml runs it right after setup)
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    p = subprocess.run(
        [python, str(ROOT / "images" / "release.py"), "--check-tag", tag, "--owner", owner],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == rc, p.stderr
