"""Scannable images: every shipped file belongs to a Debian package the image lists, or to initkit.

The judge is dpkg's own file lists (/var/lib/dpkg/info/*.list, what `dpkg -S` reads) in the
builder stage the images were assembled in (initkit-builder:dev, tagged by images/build.py),
not the image's own claims: each file of the exported image must be named by a package's list
(or be the byte-compiled form of a listed .py, or a symlink to an owned file), or by initkit's
dist-info RECORD. The packages found that way must be exactly the image's
/var/lib/dpkg/status.d entries, with dpkg's versions, md5sums of the shipped bytes and a
copyright file, as distroless images carry them and as Trivy/Grype/syft read them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from functools import cache
from pathlib import PurePosixPath

import pytest

from tests.images import harness
from tests.images.harness import IMAGE, IMAGE_SLIM, docker, docker_bin

BUILDER = os.environ.get("INITKIT_BUILDER_IMAGE", "initkit-builder:dev")
DIST = "/usr/lib/python3/dist-packages"
STATUS_D = "/var/lib/dpkg/status.d/"
USRMERGE = {"/bin": "/usr/bin", "/sbin": "/usr/sbin", "/lib": "/usr/lib", "/lib64": "/usr/lib64"}
# written by ca-certificates' maintainer script (update-ca-certificates), so in no dpkg list
GENERATED = {"/etc/ssl/certs/ca-certificates.crt": "ca-certificates"}
SHARED = ""


@dataclass
class Tree:
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


def canonical(path: str) -> str:
    for alias, real in USRMERGE.items():
        if path == alias or path.startswith(alias + "/"):
            return real + path[len(alias) :]
    return path


def untar(data: bytes) -> Tree:
    tree = Tree()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            path = "/" + m.name.lstrip("./")
            if m.issym():
                tree.links[path] = m.linkname
            elif m.isfile():
                f = t.extractfile(m)
                assert f is not None
                tree.files[path] = f.read()
    return tree


@cache
def exported(image: str) -> Tree:
    """The image's own files: its layers from `docker save`, in order (no runtime-made files)."""
    data = subprocess.run([docker_bin(), "save", image], capture_output=True, check=True, timeout=300).stdout
    tree = Tree()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            f = t.extractfile(layer)
            assert f is not None
            part = untar(f.read())
            for path in part.files:  # a later layer's file replaces an earlier one's (no whiteouts here)
                tree.links.pop(path, None)
            for path in part.links:
                tree.files.pop(path, None)
            tree.files.update(part.files)
            tree.links.update(part.links)
    return tree


@cache
def dpkg_lists() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """From the builder: path -> package (dpkg's lists), package -> (version, architecture)."""
    harness.require_engine((BUILDER,))
    args = ["run", "--rm", "--network", "none", "--entrypoint", "tar", BUILDER, "-C", "/var/lib/dpkg/info", "-cf-", "."]
    tar = subprocess.run(
        [docker_bin(), *args],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    owners = dict(GENERATED)
    for path, data in untar(tar).files.items():
        if path.endswith(".list"):
            pkg = PurePosixPath(path).stem.split(":")[0]
            for line in data.decode().splitlines():
                # a path several packages list (a directory, /lib for /usr/lib) ships none of them
                owners[canonical(line)] = SHARED if owners.get(canonical(line), pkg) != pkg else pkg
    query = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "dpkg-query", BUILDER,
        "-W", "-f", "${Package} ${Version} ${Architecture}\\n",
    ).stdout  # fmt: skip
    versions = {name: (ver, arch) for name, ver, arch in (line.split() for line in query.splitlines())}
    return owners, versions


def record(tree: Tree) -> dict[str, str]:
    """initkit's dist-info RECORD: absolute path -> hash field."""
    (path,) = [p for p in tree.files if p.startswith(f"{DIST}/initkit-") and p.endswith(".dist-info/RECORD")]
    rows = {}
    for line in tree.files[path].decode().splitlines():
        rel, digest, _size = line.rsplit(",", 2)
        rows[os.path.normpath(os.path.join(DIST, rel))] = digest
    return rows


def owner(path: str, tree: Tree, owners: dict[str, str], seen: int = 0) -> str | None:
    if canonical(path) in owners:
        return owners[canonical(path)]
    p = PurePosixPath(path)
    if p.suffix == ".pyc":  # compiled from a package's .py (the .py itself may not be shipped)
        stem = p.name.split(".")[0]
        src = p.parent.parent / f"{stem}.py" if p.parent.name == "__pycache__" else p.with_suffix(".py")
        return owners.get(canonical(str(src)))
    if path in tree.links and seen < 8:
        return owner(os.path.normpath(os.path.join(str(p.parent), tree.links[path])), tree, owners, seen + 1)
    return None


def status_entries(tree: Tree) -> dict[str, dict[str, str]]:
    out = {}
    for path, data in tree.files.items():
        if path.startswith(STATUS_D) and not path.endswith(".md5sums"):
            out[path.removeprefix(STATUS_D)] = dict(HeaderParser().parsestr(data.decode()).items())
    return out


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
def test_every_file_belongs_to_a_listed_package_or_initkit(engine, image):
    tree = exported(image)
    owners, versions = dpkg_lists()
    initkit_files = record(tree)
    by_package: dict[str, list[str]] = {}
    unowned = []
    for path in sorted([*tree.files, *tree.links]):
        if path.startswith(STATUS_D) or path in initkit_files:
            continue
        pkg = owner(path, tree, owners)
        if pkg is None:
            unowned.append(path)
        elif pkg != SHARED:
            by_package.setdefault(pkg, []).append(path)
    assert not unowned, f"{len(unowned)} shipped files no package or initkit owns: {unowned[:20]}"

    entries = status_entries(tree)
    assert set(entries) == set(by_package), "status.d entries differ from the packages whose files ship"
    for name, fields in entries.items():
        assert fields["Package"] == name
        assert (fields["Version"], fields["Architecture"]) == versions[name], name
        assert "Status" not in fields  # the stanza describes the package, not the builder's install
        assert f"/usr/share/doc/{name}/copyright" in tree.files or f"/usr/share/doc/{name}" in tree.links, name
    # the file lists scanners read name every file shipped verbatim, with its md5
    for name, paths in by_package.items():
        listed = dict(
            reversed(line.split("  ", 1)) for line in tree.files[f"{STATUS_D}{name}.md5sums"].decode().splitlines()
        )
        for path in paths:
            if path in tree.files and canonical(path) in owners:
                assert listed.get(path.lstrip("/")) == hashlib.md5(tree.files[path]).hexdigest(), path
    # python3 and the libraries the README names are among them
    expected = {"python3.13-minimal", "libpython3.13-stdlib", "python3-click", "python3-requests", "libssl3t64"}
    expected |= {"base-files"}  # /etc/os-release: scanners match the packages to Debian's advisories by it
    assert "ID=debian" in tree.files["/usr/lib/os-release"].decode()
    expected |= {"python3-git", "git", "openssh-client"} if image == IMAGE else set()
    assert expected <= set(entries)
    if image == IMAGE_SLIM:
        assert not {"git", "python3-git", "openssh-client"} & set(entries)


@pytest.mark.parametrize("image", [IMAGE, IMAGE_SLIM])
def test_initkit_dist_info(engine, image):
    tree = exported(image)
    version = docker("run", "--rm", "--network", "none", image, "--version").stdout.split()[-1]
    meta_path = f"{DIST}/initkit-{version}.dist-info/METADATA"
    meta = HeaderParser().parsestr(tree.files[meta_path].decode())
    assert (meta["Name"], meta["Version"], meta["License"]) == ("initkit", version, "Apache-2.0")
    rows = record(tree)
    assert {"/usr/bin/initkit", f"{DIST}/initkit/cli.py", "/etc/passwd"} <= set(rows)
    for path, digest in rows.items():
        if digest:
            algo, value = digest.split("=", 1)
            raw = hashlib.new(algo, tree.files[path]).digest()
            assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == value, path
    # every initkit source shipped is in the RECORD
    assert {p for p in tree.files if p.startswith(f"{DIST}/initkit/")} <= set(rows)
