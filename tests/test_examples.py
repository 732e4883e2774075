"""The README's pod is examples/myapp.yaml, and it is a valid Pod for Kubernetes 1.30 and 1.37."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import requirement

ROOT = Path(__file__).resolve().parent.parent
POD = ROOT / "examples" / "myapp.yaml"


def test_readme_shows_the_example_pod_verbatim():
    assert POD.read_text() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_example_pod_is_valid(version):
    kubernetes_validate = requirement.module("kubernetes_validate")
    kubernetes_validate.validate(yaml.safe_load(POD.read_text()), version, strict=True)


def test_example_pod_runs_initkit_hardened():
    pod = yaml.safe_load(POD.read_text())["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    for container in pod["initContainers"]:
        assert container["image"].startswith("initkit:")
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
