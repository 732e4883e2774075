"""helm lint --strict of both charts, with each helm."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.conftest import Helm, ci_values_files

pytestmark = pytest.mark.helm


def test_library_chart_lints_strict(helm: Helm) -> None:
    result = helm.run("lint", "--strict", helm.library)
    assert "0 chart(s) failed" in result.stdout


def test_example_chart_lints_strict(helm: Helm) -> None:
    result = helm.run("lint", "--strict", helm.example)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", ci_values_files(), ids=lambda p: p.name)
def test_example_chart_lints_strict_with_ci_values(helm: Helm, values: Path) -> None:
    result = helm.run("lint", "--strict", helm.example, "--values", values)
    assert "0 chart(s) failed" in result.stdout


def test_library_chart_is_not_installable(helm: Helm) -> None:
    result = helm.run("template", "x", helm.library, check=False)
    assert result.returncode != 0
    assert "library" in result.stderr


def test_setup_helm_is_fast_when_done(helm: Helm) -> None:
    """.ci/setup-helm.sh leaves binaries that already have the right version alone."""
    import subprocess
    import time

    from tests.charts.conftest import ROOT, find_helm

    if find_helm("helm3") != ROOT / ".ci/bin/helm3" or find_helm("helm4") != ROOT / ".ci/bin/helm4":
        pytest.skip("helm binaries come from INITKIT_HELM3/4, not .ci/setup-helm.sh")
    started = time.monotonic()
    result = subprocess.run([str(ROOT / ".ci/setup-helm.sh")], capture_output=True, text=True, timeout=60, check=True)
    assert time.monotonic() - started < 10
    assert "helm3: v3.19.0 already" in result.stdout
    assert "helm4: v4.1.4 already" in result.stdout
