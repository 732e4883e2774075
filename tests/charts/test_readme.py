"""The library chart's README tables are generated from the `## @param` comments of
values.yaml by readme-generator-for-helm (.ci/setup-helm.sh installs it): regenerating
them into a copy must change nothing."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

from tests.charts.conftest import LIBRARY, find_tool, missing


def test_readme_parameters_are_generated_from_values(tmp_path: Path) -> None:
    generator = find_tool("INITKIT_README_GENERATOR", "readme-generator/node_modules/.bin/readme-generator")
    if generator is None:
        missing("readme-generator not found at .ci/bin/readme-generator")
    assert generator is not None
    readme = tmp_path / "README.md"
    shutil.copyfile(LIBRARY / "README.md", readme)
    result = subprocess.run(
        [str(generator), "--values", str(LIBRARY / "values.yaml"), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    want, have = readme.read_text(), (LIBRARY / "README.md").read_text()
    diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "README.md", "regenerated"))
    assert not diff, (
        "charts/initkit/README.md is stale; run .ci/bin/readme-generator/node_modules/.bin/readme-generator "
        f"--values charts/initkit/values.yaml --readme charts/initkit/README.md\n{diff}"
    )


def test_every_value_has_a_param_comment() -> None:
    """readme-generator checks this too; here the check does not need node."""
    import yaml

    def leaves(node: object, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node:
            return [key for k, v in node.items() for key in leaves(v, f"{prefix}{k}.")]
        return [prefix.rstrip(".")]

    text = (LIBRARY / "values.yaml").read_text()
    params = {line.split()[2] for line in text.splitlines() if line.startswith("## @param ")}
    undocumented = [
        key for key in leaves(yaml.safe_load(text)) if not any(key == p or key.startswith(f"{p}.") for p in params)
    ]
    assert undocumented == []
