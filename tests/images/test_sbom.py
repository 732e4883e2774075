"""images/sbom.py: a valid CycloneDX SBOM of an image lists its dpkg packages and initkit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import requirement
from tests.images.harness import IMAGE, IMAGE_SLIM, docker, docker_bin
from tests.images.test_packages import exported, status_entries

ROOT = Path(__file__).resolve().parents[2]


def check_sbom(doc: dict, status: dict[str, dict[str, str]], version: str, labels: dict[str, str]) -> None:
    """The SBOM names exactly the image's packages (name, version, arch) and initkit; shared by the release test."""
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    comps = {c["name"]: c for c in doc["components"]}
    debs = {n: c for n, c in comps.items() if c["purl"].startswith("pkg:deb/debian/")}
    assert set(debs) == set(status)
    for name, fields in status.items():
        purl = debs[name]["purl"]
        assert debs[name]["version"] == fields["Version"]
        assert f"arch={fields['Architecture']}" in purl and "distro=debian-13" in purl, purl
    assert comps["initkit"]["version"] == version and comps["initkit"]["purl"] == f"pkg:pypi/initkit@{version}"
    props = {p["name"]: p["value"] for p in doc["metadata"]["component"]["properties"]}
    for key in ("org.opencontainers.image.base.name", "org.opencontainers.image.base.digest"):
        assert props[key] == labels[key]
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert len(deps[doc["metadata"]["component"]["bom-ref"]]) == len(status) + 1


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
def test_sbom_of_a_local_image(engine, image, tmp_path):
    requirement.module("cyclonedx", "make test installs images/requirements-release.txt")
    cid = docker("create", image).stdout.strip()
    try:
        with (tmp_path / "rootfs.tar").open("wb") as f:
            subprocess.run([docker_bin(), "export", cid], stdout=f, check=True, timeout=300)
    finally:
        docker("rm", cid, check=False)
    cfg = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    (tmp_path / "labels.json").write_text(json.dumps(cfg["Labels"]))
    out = tmp_path / "sbom.json"
    cmd = [sys.executable, str(ROOT / "images" / "sbom.py"), "--rootfs", str(tmp_path / "rootfs.tar")]
    cmd += ["--name", image, "--platform", "linux/amd64", "--labels", str(tmp_path / "labels.json"), "-o", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    version = cfg["Labels"]["org.opencontainers.image.version"]
    check_sbom(json.loads(out.read_text()), status_entries(exported(image)), version, cfg["Labels"])
    # deterministic: the same image gives the same document
    again = tmp_path / "again.json"
    cmd[cmd.index(str(out))] = str(again)
    subprocess.run(cmd, capture_output=True, check=True, timeout=120)
    assert again.read_text() == out.read_text()
