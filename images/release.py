#!/usr/bin/env python3
"""Release initkit: multi-platform images, both charts and the Python packages, pushed, with digests.

Usage: make release REGISTRY=registry.example.com/team [VERSION=0.1.0]
   or: .venv/bin/python images/release.py [--registry R] [--version V] [--out DIR] ...

REGISTRY defaults to images/images.toml's [publish] registry (where the project
publishes); VERSION to initkit/__init__.py's. Steps, each printed with its result:

1. images: for every image in images.toml and every platform ([publish] platforms,
   linux/amd64 and linux/arm64) `buildah build --platform P` of the one Dockerfile,
   FROM that platform's debian:trixie-slim stand-in (${RELEASE_BASE}-<arch>, made once
   by .ci/setup-release.sh; arm64 runs under qemu-user-static); then one OCI image
   index per tag (`buildah manifest`), pushed to REGISTRY/<repository>:<VERSION><suffix>;
2. a CycloneDX SBOM per image and platform (images/sbom.py) and the compressed size
   of each, checked against the budgets in images.toml;
3. charts: a copy of charts/ whose image values name REGISTRY and pin the pushed
   index digest of the initkit image, `helm package`d at VERSION and
   `helm push`ed to oci://REGISTRY/<charts>;
4. Python: sdist and wheel (`python -m build`), `twine check`;
5. OUT/release.json (default dist/release/) lists every reference and digest.

Registries on 127.0.0.0/8 or localhost are spoken to over plain HTTP (a test
registry); any other needs credentials in buildah's and helm's usual places
(`buildah login`, `helm registry login`; release.yml does that with its token).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path


def _load_build_module():
    """images/build.py (tags, build arguments, budgets), by path: `build` is also PyPI's build."""
    spec = importlib.util.spec_from_file_location("initkit_images_build", Path(__file__).with_name("build.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


images_build = _load_build_module()

ROOT = images_build.ROOT
CONFIG = images_build.CONFIG
RELEASE_BASE = os.environ.get("RELEASE_BASE", "localhost/initkit-base:trixie-slim")
BASE_NAME = os.environ.get("BASE_IMAGE", "debian:trixie-slim")
LOCAL = "localhost/initkit-release"  # where per-platform images wait in buildah's store


def log(msg: str) -> None:
    print(f"release: {msg}", flush=True)


def run(*cmd: str, capture: bool = False, both: bool = False, **kw) -> str:
    """Run cmd; with capture its stdout is returned (with both, stdout + stderr: helm says digests there)."""
    log("$ " + " ".join(cmd))
    p = subprocess.run(cmd, text=True, capture_output=capture or both, **kw)
    if p.returncode != 0:
        tail = f"\n{p.stdout or ''}{p.stderr or ''}" if capture or both else ""
        raise SystemExit(f"release: `{' '.join(cmd[:3])} ...` exited {p.returncode}{tail}")
    return (p.stdout + p.stderr) if both else p.stdout if capture else ""


def publish_config() -> dict:
    data = tomllib.loads(CONFIG.read_text())
    return data["publish"]


def is_loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host == "localhost" or host.startswith("127.")


def split_registry(registry: str) -> tuple[str, str]:
    """'host[:port]/path' -> ('host[:port]', 'path') (path may be empty)."""
    host, _, path = registry.strip("/").partition("/")
    return host, path


def helm_bin() -> str:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    for cand in (ROOT / ".ci" / "bin" / "helm3", ROOT / ".ci" / "bin" / "helm4"):
        if cand.exists():
            return str(cand)
    found = shutil.which("helm")
    if not found:
        raise SystemExit("release: no helm (run .ci/setup-helm.sh)")
    return found


# --- images -----------------------------------------------------------------------------------


def local_name(img: dict, ver: str, platform: str) -> str:
    return f"{LOCAL}/{img['name']}:{ver}-{platform.replace('/', '-')}"


def build_platform(img: dict, ver: str, platform: str) -> str:
    arch = platform.split("/")[1]
    base = f"{RELEASE_BASE}-{arch}"
    base_id = run("buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", base, capture=True).strip()
    # docker format: OCI configs cannot carry the Dockerfile's SHELL (the push converts to OCI)
    cmd = ["buildah", "build", "--layers", "--format", "docker", "--platform", platform]
    cmd += ["-f", str(ROOT / img["dockerfile"])]
    cmd += ["--target", img["target"], "--build-arg", f"BASE_IMAGE={base}"]
    args = images_build.build_args(img, ver, BASE_NAME, f"sha256:{base_id}")
    for key, value in args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    name = local_name(img, ver, platform)
    t0 = time.monotonic()
    run(*cmd, "-t", name, str(ROOT))
    log(f"built {name} in {time.monotonic() - t0:.0f}s")
    return name


def push_index(img: dict, ver: str, platforms: list[str], registry: str, out: Path) -> dict:
    """One OCI image index over the platform images, pushed; returns its digests and sizes."""
    ref = f"{registry}/{img['repository']}:{ver}{img.get('tag_suffix', '')}"
    listname = f"{LOCAL}/{img['name']}-index:{ver}"
    if subprocess.run(["buildah", "manifest", "inspect", listname], capture_output=True).returncode == 0:
        run("buildah", "manifest", "rm", listname, capture=True)
    run("buildah", "manifest", "create", listname, capture=True)
    for platform in platforms:
        image = f"containers-storage:{local_name(img, ver, platform)}"
        run("buildah", "manifest", "add", listname, image, capture=True)
    tls = ["--tls-verify=false"] if is_loopback(registry) else []
    digestfile = out / f"{img['name']}.index-digest"
    try:
        run("buildah", "manifest", "push", *tls, "--all", "--format", "oci", "--digestfile", str(digestfile), listname,
            f"docker://{ref}")  # fmt: skip
    finally:
        # The index lives only to be pushed. Left in the store, it outlives the platform images it
        # names (the next release rebuilds them under the same tags), and then every
        # `podman images -a` on the machine fails reading its missing instance.
        run("buildah", "manifest", "rm", listname, capture=True)
    index_digest = digestfile.read_text().strip()
    digestfile.unlink()
    index = json.loads(run("skopeo", "inspect", *tls, "--raw", f"docker://{ref}", capture=True))
    result = {"reference": ref, "index_digest": index_digest, "media_type": index.get("mediaType"), "platforms": {}}
    for m in index["manifests"]:
        platform = f"{m['platform']['os']}/{m['platform']['architecture']}"
        repo = ref.rsplit(":", 1)[0]
        manifest = json.loads(run("skopeo", "inspect", *tls, "--raw", f"docker://{repo}@{m['digest']}", capture=True))
        size = sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
        result["platforms"][platform] = {"digest": m["digest"], "compressed_bytes": size}
    return result


def write_sbom(img: dict, ver: str, platform: str, ref: str, digest: str, out: Path) -> Path:
    name = local_name(img, ver, platform)
    info = json.loads(run("buildah", "inspect", "--type", "image", name, capture=True))
    labels = info.get("OCIv1", {}).get("config", {}).get("Labels") or {}
    ctr = run("buildah", "from", "--pull-never", "--platform", platform, name, capture=True).strip().splitlines()[-1]
    try:
        mnt = run("buildah", "mount", ctr, capture=True).strip()
        labels_file = out / f".labels-{img['name']}-{platform.replace('/', '-')}.json"
        labels_file.write_text(json.dumps(labels))
        dest = out / f"sbom-{img['name']}-{ver}-{platform.replace('/', '-')}.cdx.json"
        epoch = str(images_build.source_date_epoch())
        run(sys.executable, str(ROOT / "images" / "sbom.py"), "--rootfs", mnt, "--name", ref, "--platform", platform,
            "--digest", digest, "--labels", str(labels_file), "--epoch", epoch, "-o", str(dest))  # fmt: skip
        labels_file.unlink()
        return dest
    finally:
        subprocess.run(["buildah", "umount", ctr], capture_output=True)
        subprocess.run(["buildah", "rm", ctr], capture_output=True)


# --- charts ---------------------------------------------------------------------------------


def pin_image_values(
    values: Path, registry_host: str, repository: str, digest: str, key_path: list[str], slim_digest: str | None = None
) -> None:
    """Set image.registry/repository/digest (and empty tag) in a values.yaml, keeping its comments;
    with slim_digest also image.slimDigest, so the steps that run the slim image are pinned too.

    key_path is where the image block sits (['image'] in the library chart,
    ['initkit', 'image'] in a chart that depends on it).
    """
    lines = values.read_text().splitlines(keepends=True)
    want = {"registry": registry_host, "repository": repository, "tag": "", "digest": digest}
    if slim_digest is not None:
        want["slimDigest"] = slim_digest
    depth, indent, found = 0, -1, set()
    for i, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if not stripped.strip() or stripped.startswith("#"):
            continue
        ind = len(line) - len(stripped)
        key = stripped.split(":", 1)[0]
        if depth and ind <= indent:  # left the block we were in
            while depth and ind <= indent:
                depth -= 1
                indent -= 2
        if depth < len(key_path) and key == key_path[depth] and ind == depth * 2 and stripped.rstrip().endswith(":"):
            depth, indent = depth + 1, ind
            continue
        if depth == len(key_path) and ind == indent + 2 and key in want:
            lines[i] = f"{' ' * ind}{key}: {json.dumps(want[key])}\n"
            found.add(key)
    if found != set(want):
        raise SystemExit(f"release: {values} has no {'.'.join(key_path)}.{sorted(set(want) - found)} to pin")
    values.write_text("".join(lines))
    import yaml  # only the chart step needs it (PyYAML: initkit's own dependency, in the venv)

    node = yaml.safe_load(values.read_text())
    for k in key_path:
        node = node[k]
    got = {k: node.get(k) for k in want}
    if got != want:
        raise SystemExit(f"release: pinning {values} gave {got}, not {want}")


def set_chart_version(chart_yaml: Path, ver: str, dependency_version: bool = False) -> None:
    text = chart_yaml.read_text()
    text = re.sub(r"(?m)^version:.*$", f"version: {ver}", text)
    text = re.sub(r"(?m)^appVersion:.*$", f'appVersion: "{ver}"', text) if not dependency_version else text
    if dependency_version:  # the example's dependency on initkit: the version released with it
        text = re.sub(r"(?m)^(\s+-\s+name:\s+initkit\s*\n\s+version:).*$", rf"\g<1> {ver}", text)
    chart_yaml.write_text(text)


def release_charts(
    registry: str, ver: str, img: dict, digest: str, pub: dict, out: Path, slim_digest: str | None = None
) -> dict:
    """Package and push both charts, their images pinned to the pushed index digests (full and slim)."""
    helm = helm_bin()
    host, path = split_registry(registry)
    repository = f"{path}/{img['repository']}".strip("/")
    charts_ref = f"oci://{registry}/{pub['charts']}"
    plain = ["--plain-http"] if is_loopback(registry) else []
    result = {}
    with tempfile.TemporaryDirectory(prefix="initkit-charts-") as tmp:
        work = Path(tmp) / "charts"
        shutil.copytree(ROOT / "charts", work, ignore=shutil.ignore_patterns("*.tgz", "charts"))
        lib, example = work / "initkit", work / "initkit-example"
        pin_image_values(lib / "values.yaml", host, repository, digest, ["image"], slim_digest)
        set_chart_version(lib / "Chart.yaml", ver)
        pin_image_values(example / "values.yaml", host, repository, digest, ["initkit", "image"], slim_digest)
        set_chart_version(example / "Chart.yaml", ver, dependency_version=True)
        (example / "Chart.lock").unlink(missing_ok=True)
        run(helm, "dependency", "update", str(example), capture=True)  # the pinned library, file://../initkit
        for chart in (lib, example):
            run(helm, "lint", "--strict", str(chart), capture=True)
            pkg_out = run(helm, "package", str(chart), "-d", str(out), capture=True)
            tgz = pkg_out.strip().split(": ")[-1]
            push = run(helm, "push", tgz, charts_ref, *plain, both=True)
            m = re.search(r"Digest:\s*(sha256:[0-9a-f]{64})", push)
            if not m:
                raise SystemExit(f"release: helm push printed no digest: {push}")
            name = chart.name
            result[name] = {"reference": f"{charts_ref}/{name}:{ver}", "digest": m.group(1), "package": tgz}
            log(f"chart {name} {ver} -> {charts_ref}/{name} {m.group(1)}")
    return result


# --- python ----------------------------------------------------------------------------------


def release_python(out: Path) -> dict:
    dist = out / "python"
    shutil.rmtree(dist, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="initkit-src-") as tmp:
        # build from a clean export of the tree (no .venv, caches or other untracked files)
        src = Path(tmp) / "src"
        files = run("git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", capture=True).splitlines()
        for f in files:
            if (ROOT / f).is_file():
                (src / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, src / f)
        run(sys.executable, "-m", "build", "--outdir", str(dist), str(src), capture=True)
    artifacts = sorted(dist.iterdir())
    run(sys.executable, "-m", "twine", "check", "--strict", *map(str, artifacts), capture=True)
    return {p.name: sha256(p) for p in artifacts}


def sha256(p: Path) -> str:
    return "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()


def check_tag(tag: str, owner: str, registry: str) -> int:
    """A version tag releases initkit's own version, to a namespace the repository's owner owns."""
    problems = []
    if tag != f"v{images_build.version()}":
        problems.append(f"tag {tag} is not v{images_build.version()} (initkit/__init__.py)")
    if registry.strip("/").lower() != f"ghcr.io/{owner.lower()}":
        problems.append(f"registry {registry} is not ghcr.io/{owner.lower()}, the repository owner's namespace")
    for p in problems:
        print(f"release: {p}", file=sys.stderr)
    return 1 if problems else 0


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    pub = publish_config()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", default=os.environ.get("REGISTRY") or pub["registry"])
    ap.add_argument("--version", default=os.environ.get("VERSION") or images_build.version())
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / "release")
    ap.add_argument("--platform", action="append", help="override [publish] platforms (repeatable)")
    ap.add_argument("--no-python", action="store_true", help="skip the sdist and wheel")
    ap.add_argument(
        "--check-tag",
        metavar="TAG",
        help="only check that TAG is v<initkit version> and that the registry is ghcr.io/<--owner> (release.yml)",
    )
    ap.add_argument("--owner", help="with --check-tag: the forge account that owns the registry namespace")
    args = ap.parse_args()
    if args.check_tag is not None:
        return check_tag(args.check_tag, args.owner or "", args.registry)
    registry, ver = args.registry.strip("/"), args.version
    platforms = args.platform or pub["platforms"]
    if ver != images_build.version():
        log(f"note: VERSION {ver} differs from initkit.__version__ {images_build.version()} (tags use {ver})")
    args.out.mkdir(parents=True, exist_ok=True)
    for tool in ("buildah", "skopeo"):
        if not shutil.which(tool):
            raise SystemExit(f"release: {tool} is missing (run .ci/setup-release.sh)")

    if not os.environ.get("CONTAINERS_CONF"):
        # root here may lack CAP_SYS_RESOURCE: buildah's RUN containers must not raise nofile/nproc
        conf = Path(tempfile.mkdtemp(prefix="initkit-release-")) / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n')
        os.environ["CONTAINERS_CONF"] = str(conf)
    t0 = time.monotonic()
    _, images = images_build.load_config()
    report: dict = {"registry": registry, "version": ver, "platforms": platforms, "images": {}, "charts": {}}
    for platform in platforms:  # per platform, so both targets share one cached builder stage
        for img in images:
            build_platform(img, ver, platform)
    failures = []
    for img in images:
        pushed = push_index(img, ver, platforms, registry, args.out)
        for platform, info in pushed["platforms"].items():
            sbom = write_sbom(img, ver, platform, pushed["reference"], info["digest"], args.out)
            info["sbom"] = sbom.name
            budget = int(img["budget_mb"] * 1_000_000)
            if info["compressed_bytes"] > budget:
                failures.append(f"{img['name']} {platform}: {info['compressed_bytes']} bytes > budget {budget}")
        report["images"][img["name"]] = pushed
    if failures:
        raise SystemExit("release: over budget: " + "; ".join(failures))
    (chart_img,) = [i for i in images if i["name"] == pub["chart_image"]]
    digest = report["images"][chart_img["name"]]["index_digest"]
    slim = report["images"].get(f"{chart_img['name']}-slim")  # what the chart's non-git steps run
    slim_digest = slim["index_digest"] if slim else None
    report["charts"] = release_charts(registry, ver, chart_img, digest, pub, args.out, slim_digest)
    if not args.no_python:
        report["python"] = release_python(args.out)
    report["seconds"] = round(time.monotonic() - t0)
    (args.out / "release.json").write_text(json.dumps(report, indent=2) + "\n")

    print(f"\nrelease {ver} to {registry} ({report['seconds']}s); digests:")
    for info in report["images"].values():
        print(f"  image {info['reference']}@{info['index_digest']}  (OCI image index)")
        for platform, p in info["platforms"].items():
            mb = p["compressed_bytes"] / 1e6
            print(f"    {platform:<12} {p['digest']}  {mb:.2f} MB compressed  {p['sbom']}")
    for info in report["charts"].values():
        print(f"  chart {info['reference']}  {info['digest']}")
    for name, digest in report.get("python", {}).items():
        print(f"  python {name}  {digest}")
    print(f"  report {args.out / 'release.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
