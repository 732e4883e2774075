"""Image metadata and contents: user, entrypoint, labels, no shell, slim has no git."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile

import pytest

from tests.images.harness import IMAGE, IMAGE_SLIM, docker, docker_bin

LABELS = ("source", "version", "revision", "created", "licenses", "title", "description", "base.name", "base.digest")


def inspect(image: str) -> dict:
    return json.loads(docker("image", "inspect", image).stdout)[0]


def paths(image: str) -> set[str]:
    cid = docker("create", image).stdout.strip()
    try:
        tar = subprocess.run([docker_bin(), "export", cid], capture_output=True, check=True).stdout
    finally:
        docker("rm", cid, check=False)
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return {"/" + m.name.lstrip("./") for m in t.getmembers()}


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
def test_config(engine, image):
    cfg = inspect(image)["Config"]
    assert cfg["User"] == "65532:65532"
    assert cfg["Entrypoint"] == ["/usr/bin/initkit"]
    assert cfg["Cmd"] == ["--help"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    labels = cfg["Labels"]
    for key in LABELS:
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.title"] == ("initkit-slim" if image == IMAGE_SLIM else "initkit")
    version = docker("run", "--rm", "--network", "none", image, "--version").stdout
    assert labels["org.opencontainers.image.version"] in version
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", labels["org.opencontainers.image.created"])
    # traceable to its base: the digest (or, for a local stand-in, the ID) of the image it was built FROM
    assert labels["org.opencontainers.image.base.name"] == "debian:trixie-slim"
    base = inspect(labels["org.opencontainers.image.base.name"])
    digests = [base["Id"], *(d.split("@")[1] for d in base["RepoDigests"])]
    assert labels["org.opencontainers.image.base.digest"] in digests


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
@pytest.mark.parametrize("shell", ["sh", "/bin/sh", "bash", "perl", "apt-get"])
def test_no_shell(engine, image, shell):
    p = docker("run", "--rm", "--network", "none", "--entrypoint", shell, image, "-c", "true", check=False)
    assert p.returncode in (126, 127), p


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
def test_contents(engine, image):
    files = paths(image)
    assert "/usr/bin/initkit" in files and "/etc/ssl/certs/ca-certificates.crt" in files
    passwd = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/usr/bin/python3",
        image,
        "-c",
        "import pwd, grp; print(pwd.getpwuid(65532).pw_name, grp.getgrgid(65532).gr_name)",
    ).stdout
    assert passwd.split() == ["nonroot", "nonroot"]
    for banned in (
        "/bin/sh",
        "/usr/bin/dash",
        "/usr/bin/bash",
        "/usr/bin/perl",
        "/usr/bin/apt",
        "/usr/bin/dpkg",
        "/usr/lib/python3.13/test",
        "/usr/lib/python3.13/idlelib",
        "/usr/lib/python3.13/tkinter",
        "/usr/lib/python3.13/ensurepip",
    ):
        assert banned not in files, banned
    if image == IMAGE:
        for need in (
            "/usr/bin/git",
            "/usr/lib/git-core/git-remote-https",
            "/usr/lib/git-core/git-remote-http",
            "/usr/bin/ssh",
        ):
            assert need in files, need


def test_slim_has_no_git(engine):
    files = paths(IMAGE_SLIM)
    # initkit's own package initkit/git/ is Python that runs no git; git itself, ssh and curl are absent
    assert not [f for f in files if re.search(r"(?<!/initkit)/git(-core)?(/|$)|/ssh$|/libcurl", f)]
    args = ("run", "--rm", "--read-only", "--network", "none", IMAGE_SLIM, "git-clone", "git://x/r", "/d")
    p = docker(*args, check=False)
    assert p.returncode == 2 and "use the initkit image" in p.stderr
    p = docker("run", "--rm", "--network", "none", "--entrypoint", "git", IMAGE_SLIM, "--version", check=False)
    assert p.returncode in (126, 127)


def test_full_git_runs_as_nonroot(engine):
    out = docker(
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--entrypoint",
        "/usr/bin/git",
        IMAGE,
        "version",
        "--build-options",
    ).stdout
    assert "git version" in out
    out = docker(
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--entrypoint",
        "/usr/bin/ssh",
        IMAGE,
        "-V",
        check=False,
    )
    assert "OpenSSH" in out.stderr
