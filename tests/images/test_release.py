"""`make release` end to end, against a local OCI registry (Debian's docker-registry on 127.0.0.1).

One release (images/release.py, both images for linux/amd64 and linux/arm64, both charts, the
sdist and wheel) per test session, then for each tag: the OCI image index lists both platforms
(`skopeo inspect --raw`); each platform image pulled by digest into Docker and run, arm64 under
qemu-user-static (binfmt_misc); the same structure checks and smoke commands on both; the SBOMs
match the pulled images; `helm pull oci://...` works and a chart made by `helm create` uses it,
following the README's "Publishing" section word for word. Needs `make setup` (setup-release.sh).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import conftest
from tests.conftest import requirement
from tests.images import harness
from tests.images.harness import docker
from tests.images.test_packages import exported, status_entries
from tests.images.test_sbom import check_sbom

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "images" / "images.toml").read_text())
IMAGES = [{**CONFIG["defaults"], **i} for i in CONFIG["image"]]
PLATFORMS = CONFIG["publish"]["platforms"]
ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
# the release must leave room for the rest of `make test` in CI's 90 minutes
RELEASE_BUDGET_S = 50 * 60

pytestmark = pytest.mark.release


def load_build():
    spec = importlib.util.spec_from_file_location("initkit_images_build_t", ROOT / "images" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def helm() -> str:
    for name in ("helm3", "helm4"):
        if (ROOT / ".ci" / "bin" / name).exists():
            return str(ROOT / ".ci" / "bin" / name)
    pytest.fail("no helm at .ci/bin (run .ci/setup-helm.sh)")


def need_tools() -> None:
    missing = [t for t in ("buildah", "skopeo", "docker-registry") if not shutil.which(t)]
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        missing.append("qemu-aarch64 in binfmt_misc")
    if missing:
        conftest.missing(f"release tools missing: {missing}", "run .ci/setup-release.sh")
    requirement.module("cyclonedx", "make test installs images/requirements-release.txt")


@dataclass
class Release:
    registry: str  # 127.0.0.1:PORT/team
    out: Path
    report: dict
    seconds: float

    def ref(self, img: dict, digest: str) -> str:
        return f"{self.registry}/{img['repository']}@{digest}"


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    harness.require_engine()
    need_tools()
    tmp = tmp_path_factory.mktemp("release")
    port = harness.free_port("127.0.0.1")
    (tmp / "registry.yml").write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(tmp / "registry")}},
                "http": {"addr": f"127.0.0.1:{port}"},
            }
        )
    )
    log = (tmp / "registry.log").open("w")
    server = subprocess.Popen(["docker-registry", "serve", str(tmp / "registry.yml")], stdout=log, stderr=log)
    pulled: list[str] = []
    try:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        for _ in range(100):  # until the registry answers its API root
            try:
                with direct.open(f"http://127.0.0.1:{port}/v2/", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        registry = f"127.0.0.1:{port}/team"
        out = tmp / "out"
        t0 = time.monotonic()
        # what `make release REGISTRY=...` runs after setup-release.sh
        p = subprocess.run(
            [sys.executable, str(ROOT / "images" / "release.py"), "--registry", registry, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=RELEASE_BUDGET_S,
        )
        seconds = time.monotonic() - t0
        (tmp / "release.log").write_text(p.stdout + p.stderr)
        assert p.returncode == 0, f"release failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        print(f"\nrelease: {seconds:.0f}s wall time (log {tmp / 'release.log'})")
        report = json.loads((out / "release.json").read_text())
        rel = Release(registry, out, report, seconds)
        rel.stdout = p.stdout  # type: ignore[attr-defined]
        rel.pulled = pulled  # type: ignore[attr-defined]
        yield rel
    finally:
        for ref in pulled:
            docker("rmi", ref, check=False)
        server.terminate()
        server.wait(timeout=10)
        log.close()


def pull(release: Release, img: dict, platform: str) -> str:
    digest = release.report["images"][img["name"]]["platforms"][platform]["digest"]
    ref = release.ref(img, digest)
    if docker("image", "inspect", ref, check=False).returncode != 0:
        docker("pull", ref, timeout=600)
        release.pulled.append(ref)  # type: ignore[attr-defined]
    return ref


def test_release_prints_every_digest_in_time(release: Release):
    out = release.stdout  # type: ignore[attr-defined]
    for img in IMAGES:
        info = release.report["images"][img["name"]]
        assert info["index_digest"] in out
        for p in info["platforms"].values():
            assert p["digest"] in out
    for chart in release.report["charts"].values():
        assert chart["digest"] in out
    assert release.seconds < RELEASE_BUDGET_S


@pytest.mark.parametrize("img", IMAGES, ids=lambda i: i["name"])
def test_each_tag_is_one_oci_index_with_both_platforms(release: Release, img):
    tag = f"{release.registry}/{img['repository']}:{release.report['version']}{img.get('tag_suffix', '')}"
    raw = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{tag}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
    assert set(platforms) == set(PLATFORMS)
    info = release.report["images"][img["name"]]
    assert {p: v["digest"] for p, v in info["platforms"].items()} == platforms
    for p in info["platforms"].values():
        assert p["compressed_bytes"] <= img["budget_mb"] * 1_000_000


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("img", IMAGES, ids=lambda i: i["name"])
def test_platform_image_pulled_by_digest_runs(release: Release, img, platform):
    ref = pull(release, img, platform)
    info = json.loads(docker("image", "inspect", ref).stdout)[0]
    assert f"{info['Os']}/{info['Architecture']}" == platform
    cfg = info["Config"]
    assert cfg["User"] == "65532:65532" and cfg["Entrypoint"] == ["/usr/bin/initkit"]
    labels = cfg["Labels"]
    assert labels["org.opencontainers.image.title"] == img["name"]
    assert labels["org.opencontainers.image.version"] == release.report["version"]
    assert labels["org.opencontainers.image.base.name"] == "debian:trixie-slim"
    assert labels["org.opencontainers.image.base.digest"].startswith("sha256:")
    # really that platform's code: the interpreter reports the machine it runs as
    machine = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/python3", ref,
        "-c", "import platform; print(platform.machine())",
        timeout=300,
    ).stdout.strip()  # fmt: skip
    assert machine == ARCH[platform]
    # the smoke checks `make images` runs (no shell, user, commands, libraries), on this platform
    failures = load_build().smoke(img, ref, release.report["version"])
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("img", IMAGES, ids=lambda i: i["name"])
def test_sbom_per_image_and_platform(release: Release, img, platform):
    info = release.report["images"][img["name"]]["platforms"][platform]
    doc = json.loads((release.out / info["sbom"]).read_text())
    ref = pull(release, img, platform)
    labels = json.loads(docker("image", "inspect", ref).stdout)[0]["Config"]["Labels"]
    status = status_entries(exported(ref))
    assert {f["Architecture"] for f in status.values()} <= {platform.split("/")[1], "all"}
    check_sbom(doc, status, release.report["version"], labels)
    assert info["digest"] in doc["metadata"]["component"]["purl"]


def test_charts_pull_and_pin_the_released_image(release: Release, tmp_path):
    ver = release.report["version"]
    full = release.report["images"][CONFIG["publish"]["chart_image"]]
    host, _, path = release.registry.partition("/")
    for chart in ("initkit", "initkit-example"):
        ref = f"oci://{release.registry}/{CONFIG['publish']['charts']}/{chart}"
        p = subprocess.run(
            [helm(), "pull", ref, "--version", ver, "--plain-http", "-d", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, p.stderr
        assert release.report["charts"][chart]["digest"] in p.stdout + p.stderr
        with tarfile.open(tmp_path / f"{chart}-{ver}.tgz") as t:
            values = yaml.safe_load(t.extractfile(f"{chart}/values.yaml").read())  # type: ignore[union-attr]
        image = values["image"] if chart == "initkit" else values["initkit"]["image"]
        assert image["registry"] == host and image["repository"] == f"{path}/initkit"
        assert image["digest"] == full["index_digest"]


def readme_block(start: str) -> str:
    """The fenced block of the top README that begins with `start`."""
    text = (ROOT / "README.md").read_text()
    begin = text.index(start)
    return text[begin : text.index("```", begin)]


def test_consumer_chart_follows_the_readme(release: Release, tmp_path):
    """helm create, the README's Helm section word for word (the published dependency, the pod
    template's two includes, the steps), helm dependency build from the registry: the released
    chart renders with every step's image pinned by digest, slim where no git is needed."""
    published = f"oci://{CONFIG['publish']['registry']}/{CONFIG['publish']['charts']}"
    local = f"oci://{release.registry}/{CONFIG['publish']['charts']}"
    dependency = readme_block("dependencies:\n  - name: initkit\n")
    assert published in dependency and "version: ~" in dependency
    run = dict(capture_output=True, text=True, timeout=180, cwd=tmp_path)

    def helm_ok(*args: str) -> str:
        p = subprocess.run([helm(), *args], **run)
        assert p.returncode == 0, f"helm {args}: {p.stderr}"
        return p.stdout

    helm_ok("create", "myapp")
    chart = tmp_path / "myapp"
    with (chart / "Chart.yaml").open("a") as f:
        f.write(dependency.replace(published, local))
    helm_ok("dependency", "build", "myapp", "--plain-http")  # plain HTTP: the test's loopback registry
    pod = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n"
    pod += "    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n"
    (chart / "templates" / "deployment.yaml").write_text(pod + readme_block('      {{- $initkit := dict "values"'))
    (chart / "values.yaml").write_text(readme_block("initkit:\n  steps:\n"))
    for extra in (chart / "templates").iterdir():  # the scaffold's other templates read its own values
        if extra.name not in ("deployment.yaml", "_helpers.tpl"):
            shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
    rendered = [d for d in yaml.safe_load_all(helm_ok("template", "myapp", "myapp")) if d]
    (dep,) = [d for d in rendered if d["kind"] == "Deployment"]
    inits = dep["spec"]["template"]["spec"]["initContainers"]
    slim = release.report["images"][f"{CONFIG['publish']['chart_image']}-slim"]
    assert [c["image"] for c in inits] == [f"{release.registry}/initkit@{slim['index_digest']}"] * 2
    assert os.path.exists(chart / "charts" / f"initkit-{release.report['version']}.tgz")


def test_python_sdist_and_wheel(release: Release):
    names = set(release.report["python"])
    ver = release.report["version"]
    assert names == {f"initkit-{ver}.tar.gz", f"initkit-{ver}-py3-none-any.whl"}
    for name in names:
        assert (release.out / "python" / name).is_file()


def test_release_leaves_the_machine_s_podman_working(release: Release):
    """The release's image indexes are pushed, then removed from the local store: left there, they
    outlive the platform images they name, and `podman images -a` fails for everyone."""
    listed = subprocess.run(["podman", "images", "-a"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for img in IMAGES:
        name = f"localhost/initkit-release/{img['name']}-index:{release.report['version']}"
        inspect = subprocess.run(["buildah", "manifest", "inspect", name], capture_output=True, timeout=60)
        assert inspect.returncode != 0, f"{name} left in the local store"
