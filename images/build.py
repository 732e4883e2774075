#!/usr/bin/env python3
"""Build the initkit images defined in images/images.toml on the local Docker engine.

Usage: python3 images/build.py [--only NAME]... [--no-smoke] [--no-budget] [--report FILE] [--repository R]

For each image: `docker build --target TARGET` with BuildKit, tags
`<repo>:dev<suffix>` and `<repo>:<version><suffix>` (version from
initkit/__init__.py), OCI labels from build args, then runs the smoke checks
(read-only root, no network) and checks the compressed size
(`docker save | gzip -6`) against the budget. Exits non-zero on any failure.
Stdlib only (Python >= 3.11). The docker client is $DOCKER, else Debian's
/usr/bin/docker (which has BuildKit built in), else `docker` on PATH.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "images" / "images.toml"


def docker_cmd() -> str:
    if os.environ.get("DOCKER"):
        return os.environ["DOCKER"]
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if not found:
        raise SystemExit("build: no docker client found")
    return found


def load_config() -> tuple[dict, list[dict]]:
    data = tomllib.loads(CONFIG.read_text())
    defaults = data.get("defaults", {})
    images = [{**defaults, **img} for img in data["image"]]
    return defaults, images


def version() -> str:
    text = (ROOT / "initkit" / "__init__.py").read_text()
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    if not m:
        raise SystemExit("build: no __version__ in initkit/__init__.py")
    return m.group(1)


def git(*args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def source_date_epoch() -> int:
    """The time of the last commit that changed what goes into the image layers.

    Not simply HEAD's: the builder stage runs with it, so a commit elsewhere (docs, tests)
    would otherwise re-run the whole assembly, which takes minutes for arm64 under qemu.
    """
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    commit_time = git("log", "-1", "--format=%ct", "--", "initkit", "Dockerfiles")
    return int(commit_time) if commit_time else 0


def tags(img: dict, ver: str) -> list[str]:
    repo, suffix = img["repository"], img.get("tag_suffix", "")
    return [f"{repo}:dev{suffix}", f"{repo}:{ver}{suffix}"]


BASE_NAME = os.environ.get("BASE_IMAGE", "debian:trixie-slim")
# The builder stage (Debian's dpkg database, the assembled trees) is kept as
# <repository>-builder:dev for the tests that check every shipped file against dpkg's lists.


def base_digest(image: str) -> str:
    """The base image's repo digest if it was pulled, else its ID (a local stand-in)."""
    out = subprocess.run(
        [docker_cmd(), "image", "inspect", "-f", "{{json .RepoDigests}} {{.Id}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(" ", 1)
    digests = json.loads(out[0]) or []
    return digests[0].split("@", 1)[1] if digests else out[1].strip()


def build_args(img: dict, ver: str, base_name: str, base_digest: str) -> dict[str, str]:
    """The Dockerfile's build arguments (OCI labels, reproducible mtimes, the base it used)."""
    epoch = source_date_epoch()
    revision = git("rev-parse", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "initkit", "Dockerfiles"):
        revision += "-dirty"
    created = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "VERSION": ver,
        "REVISION": revision,
        "CREATED": created,
        "SOURCE": img["source"],
        "LICENSES": img["licenses"],
        "SOURCE_DATE_EPOCH": str(epoch),
        "BASE_NAME": base_name,
        "BASE_DIGEST": base_digest,
    }


def build(img: dict, ver: str, target: str | None = None, out_tags: list[str] | None = None) -> None:
    cmd = [docker_cmd(), "build", "-f", str(ROOT / img["dockerfile"]), "--target", target or img["target"]]
    for key, value in build_args(img, ver, BASE_NAME, base_digest(BASE_NAME)).items():
        cmd += ["--build-arg", f"{key}={value}"]
    for tag in tags(img, ver) if out_tags is None else out_tags:
        cmd += ["-t", tag]
    cmd.append(str(ROOT))
    print("build:", " ".join(cmd), flush=True)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, env=env)
    print(f"build: {target or img['name']} built in {time.monotonic() - t0:.1f}s", flush=True)


def compressed_size(image: str) -> int:
    """Bytes of `docker save IMAGE | gzip -6`."""
    proc = subprocess.Popen([docker_cmd(), "save", image], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    counter = _Counter()
    with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6, mtime=0) as gz:
        shutil.copyfileobj(proc.stdout, gz, 1 << 20)
    if proc.wait() != 0:
        raise SystemExit(f"build: docker save {image} failed")
    return counter.n


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)

    def flush(self) -> None:
        pass


def uncompressed_size(image: str) -> int:
    out = subprocess.run(
        [docker_cmd(), "image", "inspect", "-f", "{{.Size}}", image],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def smoke(img: dict, image: str, ver: str) -> list[str]:
    failures = []
    for check in img.get("smoke", []):
        cmd = [docker_cmd(), "run", "--rm", "--read-only", "--network", "none"]
        if "entrypoint" in check:
            cmd += ["--entrypoint", check["entrypoint"]]
        cmd += [image, *check.get("args", [])]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        want = check.get("expect_rc", 0)
        ok_rc = p.returncode in ((126, 127) if check.get("daemon_error") else (want,))
        problems = []
        if not ok_rc:
            problems.append(f"rc {p.returncode} != {want}")
        for stream, text in (("stdout", p.stdout), ("stderr", p.stderr)):
            expect = check.get(f"expect_{stream}")
            if expect and expect.format(version=ver) not in text:
                problems.append(f"{stream} lacks {expect!r}")
        label = " ".join(cmd[cmd.index(image) :])
        if "entrypoint" in check:
            label = f"--entrypoint {check['entrypoint']} {label}"
        if problems:
            tail = f"\n  stdout: {p.stdout[-400:]}\n  stderr: {p.stderr[-400:]}"
            failures.append(f"{label}: {'; '.join(problems)}{tail}")
        print(f"smoke: {'ok  ' if not problems else 'FAIL'} {label}", flush=True)
    return failures


CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pinned_versions() -> dict[str, str]:
    """constraints.txt's `name==version` lines: what the test venv installs."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        name, sep, ver = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[name] = ver
    return pins


def check_versions(image: str) -> list[str]:
    """The image's Python libraries against constraints.txt: a test venv on other versions proves nothing."""
    pins = pinned_versions()
    script = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: out[name] = None\n"
        "print(json.dumps(out))"
    )
    p = subprocess.run(
        [docker_cmd(), "run", "--rm", "--read-only", "--network", "none", "--entrypoint", "/usr/bin/python3",
         image, "-c", script, *pins],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if p.returncode != 0:
        return [f"{image}: cannot read its library versions: {p.stderr[-400:]}"]
    shipped = json.loads(p.stdout)
    # The slim image leaves some libraries out (absent is fine); a present one must match the pin.
    wrong = {n: (v, pins[n]) for n, v in shipped.items() if v is not None and v != pins[n]}
    print(f"versions: {'ok  ' if not wrong else 'FAIL'} {image} against constraints.txt", flush=True)
    return [f"{image} ships {n} {v}, constraints.txt pins {want}" for n, (v, want) in wrong.items()]


def main() -> int:
    ap = argparse.ArgumentParser(description="Build the initkit images from images/images.toml")
    ap.add_argument("--only", action="append", help="build only this image (repeatable)")
    ap.add_argument("--no-smoke", action="store_true", help="skip the smoke checks")
    ap.add_argument("--no-budget", action="store_true", help="do not fail when over the size budget")
    ap.add_argument("--report", type=Path, help="write a JSON report here")
    ap.add_argument("--list", action="store_true", help="print the image definitions and exit")
    ap.add_argument(
        "--repository",
        help="tag as REPOSITORY:dev... instead of images.toml's (a private name on a shared engine; "
        "the tests take INITKIT_IMAGE, INITKIT_IMAGE_SLIM, INITKIT_BUILDER_IMAGE)",
    )
    args = ap.parse_args()

    _, images = load_config()
    if args.repository:
        images = [{**i, "repository": args.repository} for i in images]
    if args.only:
        unknown = set(args.only) - {i["name"] for i in images}
        if unknown:
            raise SystemExit(f"build: unknown image(s) {sorted(unknown)}")
        images = [i for i in images if i["name"] in args.only]
    ver = version()
    if args.list:
        for img in images:
            print(json.dumps({**img, "tags": tags(img, ver)}, indent=2))
        return 0

    failures: list[str] = []
    report = []
    for img in images:
        build(img, ver)
        image = tags(img, ver)[0]
        if not args.no_smoke:
            failures += smoke(img, image, ver)
            failures += check_versions(image)
        gz, raw = compressed_size(image), uncompressed_size(image)
        budget = int(img["budget_mb"] * 1_000_000)
        status = "ok" if gz <= budget else "OVER BUDGET"
        print(
            f"size: {image}: {gz / 1e6:.2f} MB compressed (budget {img['budget_mb']} MB, aim "
            f"{img.get('aim_mb', '-')} MB), {raw / 1e6:.2f} MB uncompressed: {status}",
            flush=True,
        )
        if gz > budget and not args.no_budget:
            failures.append(f"{image} is {gz} bytes compressed, over its budget of {budget}")
        report.append({"name": img["name"], "tags": tags(img, ver), "compressed": gz, "uncompressed": raw})
    if images:  # a cache hit of the stage both images were assembled in
        build(images[0], ver, target="builder", out_tags=[f"{images[0]['repository']}-builder:dev"])
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
