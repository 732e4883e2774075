#!/usr/bin/env python3
"""A CycloneDX 1.6 SBOM (JSON) of one initkit image for one platform.

Usage: python images/sbom.py --rootfs ROOTFS --name REF --platform linux/arm64
           [--digest sha256:...] [--labels LABELS.json] [--epoch N] -o OUT.json

ROOTFS is the image's file system: a tar (`docker export`, `podman export`) or a
directory (`buildah mount`). The
components are what the image itself declares, the way image scanners read it:
one `pkg:deb/debian/...` component per /var/lib/dpkg/status.d entry (name,
version, architecture, source package) and initkit from its dist-info
(`pkg:pypi/initkit`). The image's OCI labels (base image name and digest,
revision, ...) become metadata properties. The document is built, serialised
and validated against the CycloneDX schema by cyclonedx-python-lib; the
status.d stanzas are parsed by python-debian (images/requirements-release.txt).
Deterministic: serial number from the image digest, timestamp from --epoch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tarfile
import uuid
from email.parser import HeaderParser
from pathlib import Path

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from debian.deb822 import Deb822
from packageurl import PackageURL

STATUS_D = "var/lib/dpkg/status.d/"
DIST = "usr/lib/python3/dist-packages/"
DEBIAN_RELEASE = "debian-13"  # trixie: the suite the Dockerfile's base comes from


def read_rootfs(path: str) -> tuple[dict[str, Deb822], dict[str, str]]:
    """status.d stanzas by package, and initkit's METADATA headers, from a rootfs tar or directory."""
    stanzas: dict[str, Deb822] = {}
    meta: dict[str, str] = {}
    if Path(path).is_dir():
        root = Path(path)
        for f in sorted((root / STATUS_D).iterdir()):
            if f.is_file() and not f.name.endswith(".md5sums"):
                stanzas[f.name] = Deb822(f.read_text(encoding="utf-8"))
        for f in (root / DIST).glob("initkit-*.dist-info/METADATA"):
            meta = dict(HeaderParser().parsestr(f.read_text()).items())
        return check_found(path, stanzas, meta)
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    with stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        for m in tar:
            name = m.name.removeprefix("./").lstrip("/")
            if not m.isfile():
                continue
            if name.startswith(STATUS_D) and not name.endswith(".md5sums"):
                f = tar.extractfile(m)
                assert f is not None
                stanzas[name.removeprefix(STATUS_D)] = Deb822(f.read().decode("utf-8"))
            elif name.startswith(DIST + "initkit-") and name.endswith(".dist-info/METADATA"):
                f = tar.extractfile(m)
                assert f is not None
                meta = dict(HeaderParser().parsestr(f.read().decode()).items())
    return check_found(path, stanzas, meta)


def check_found(
    path: str, stanzas: dict[str, Deb822], meta: dict[str, str]
) -> tuple[dict[str, Deb822], dict[str, str]]:
    if not stanzas:
        raise SystemExit(f"sbom: {path} has no {STATUS_D} entries: not an initkit image?")
    if not meta:
        raise SystemExit(f"sbom: {path} has no initkit dist-info")
    return stanzas, meta


def deb_component(st: Deb822) -> Component:
    name, version, arch = st["Package"], st["Version"], st["Architecture"]
    qualifiers = {"arch": arch, "distro": DEBIAN_RELEASE}
    source = st.get("Source", "").split(" ")[0]
    if source and source != name:
        qualifiers["upstream"] = source
    purl = PackageURL(type="deb", namespace="debian", name=name, version=version, qualifiers=qualifiers)
    return Component(
        type=ComponentType.LIBRARY,
        name=name,
        version=version,
        purl=purl,
        bom_ref=purl.to_string(),
        publisher=st.get("Maintainer"),
        description=(st.get("Description") or "").split("\n")[0] or None,
        properties=[Property(name="debian:source", value=st.get("Source", name))],
    )


def build_bom(args: argparse.Namespace) -> Bom:
    stanzas, meta = read_rootfs(args.rootfs)
    labels: dict[str, str] = json.loads(Path(args.labels).read_text()) if args.labels else {}
    os_, arch = args.platform.split("/")[:2]
    repo, _, tag = args.name.rpartition(":") if ":" in args.name.rsplit("/", 1)[-1] else (args.name, "", "")
    image = Component(
        type=ComponentType.CONTAINER,
        name=repo,
        version=tag or None,
        bom_ref=f"{args.name}@{args.digest or args.platform}",
        purl=(
            PackageURL(
                type="oci",
                name=repo.rsplit("/", 1)[-1],
                version=args.digest,
                qualifiers={"arch": arch, "os": os_, "repository_url": repo, **({"tag": tag} if tag else {})},
            )
            if args.digest
            else None
        ),
        properties=[Property(name=k, value=v) for k, v in sorted(labels.items())]
        + [Property(name="oci:platform", value=args.platform)],
    )
    initkit = Component(
        type=ComponentType.APPLICATION,
        name="initkit",
        version=meta["Version"],
        purl=PackageURL(type="pypi", name="initkit", version=meta["Version"]),
        bom_ref=f"pkg:pypi/initkit@{meta['Version']}",
        description=meta.get("Summary"),
        licenses=[DisjunctiveLicense(id=meta["License"])] if meta.get("License") else None,
    )
    debs = [deb_component(stanzas[k]) for k in sorted(stanzas)]
    seed = f"{args.name}@{args.digest or ''}/{args.platform}"
    bom = Bom(
        serial_number=uuid.uuid5(uuid.NAMESPACE_URL, seed),
        metadata=BomMetaData(
            component=image,
            timestamp=dt.datetime.fromtimestamp(args.epoch, dt.UTC),
            properties=[Property(name="initkit:generator", value="images/sbom.py (cyclonedx-python-lib)")],
        ),
        components=[initkit, *debs],
    )
    bom.register_dependency(image, [initkit, *debs])
    return bom


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rootfs", required=True, help="the image's file system: a directory, or a tar ('-': stdin)")
    ap.add_argument("--name", required=True, help="image reference, e.g. registry.example.com/initkit:0.1.0")
    ap.add_argument("--platform", required=True, help="os/arch, e.g. linux/arm64")
    ap.add_argument("--digest", help="the platform image's manifest digest (sha256:...)")
    ap.add_argument("--labels", help="a JSON file with the image's labels")
    ap.add_argument("--epoch", type=int, default=0, help="SOURCE_DATE_EPOCH for the timestamp")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    text = JsonV1Dot6(build_bom(args)).output_as_string(indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error:
        raise SystemExit(f"sbom: the generated document is not valid CycloneDX 1.6: {error}")
    Path(args.output).write_text(text + "\n")
    n = len(json.loads(text).get("components", []))
    print(f"sbom: {args.output}: {n} components ({args.name} {args.platform})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
