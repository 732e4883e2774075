"""Docs generated from the code are up to date: the README's CLI reference (cog)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_readme_cli_reference_matches_the_code():
    cog = [sys.executable, "-m", "cogapp", "--check", "README.md"]
    result = subprocess.run(cog, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (
        f"README.md's CLI reference is stale: run `make docs`\n{result.stdout}{result.stderr}"
    )
