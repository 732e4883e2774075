"""values.schema.json of both charts: malformed values fail with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import Helm, HelmFailed

pytestmark = pytest.mark.helm

SCHEMA_ERROR = "values don't meet the specifications of the schema(s) in the following chart(s):"
KINDS = "'wait-for', 'register', 'sleep', 'git-clone', 'render'"
VOLUME = {"name": "workspace", "mountPath": "/workspace"}


def wait(**extra: Any) -> dict[str, Any]:
    return {"kind": "wait-for", "targets": ["dns:myservice"], **extra}


INITKIT_CASES = {
    "target-not-a-string": (
        [{"kind": "wait-for", "targets": ["dns:myservice", 5432]}],
        "at '/steps/0/targets/1': got number, want string",
    ),
    "target-not-a-list": (
        [{"kind": "wait-for", "targets": "dns:myservice"}],
        "at '/steps/0/targets': got string, want array",
    ),
    "unknown-step-kind": (
        [{"kind": "frobnicate"}],
        f"at '/steps/0/kind': value must be one of {KINDS}",
    ),
    "missing-step-kind": ([{"targets": ["dns:a"]}], "at '/steps/0': missing property 'kind'"),
    "negative-timeout-seconds": ([wait(timeout=-5)], "at '/steps/0/timeout': minimum: got -5, want 0"),
    "negative-timeout-string": ([wait(timeout="-5s")], "at '/steps/0/timeout': '-5s' does not match pattern"),
    "negative-sleep": (
        [{"kind": "sleep", "duration": -1}],
        "at '/steps/1/duration': minimum: got -1, want 0",
    ),
    "unknown-step-option": ([wait(retries=3)], "at '/steps/0': additional properties 'retries' not allowed"),
    "literal-token": (
        [{"kind": "register", "url": "http://r.invalid", "token": "hunter2"}],
        "at '/steps/0/token': got string, want object",
    ),
    "ssh-key-without-known-hosts": (
        [
            {
                "kind": "git-clone",
                "repo": "ssh://git@g.invalid/r.git",
                "volume": VOLUME,
                "sshKey": {"secret": "k", "key": "ssh-privatekey"},
            }
        ],
        "at '/steps/0': properties 'knownHosts' required, if 'sshKey' exists",
    ),
    "render-without-dest": (
        [{"kind": "render", "template": {"configMap": "t", "key": "t"}, "volume": VOLUME}],
        "at '/steps/0': missing property 'dest'",
    ),
}


def run_invalid(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "invalid-values.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmFailed) as failed:
        helm.template(path)
    return failed.value.stderr


@pytest.mark.parametrize("case", sorted(INITKIT_CASES))
def test_invalid_initkit_values_fail_clearly(helm: Helm, tmp_path: Path, case: str) -> None:
    steps, message = INITKIT_CASES[case]
    if case == "negative-sleep":
        steps = [wait(), *steps]
    stderr = run_invalid(helm, tmp_path, {"initkit": {"steps": steps}})
    assert SCHEMA_ERROR in stderr
    assert "\ninitkit:\n" in stderr, "the message names the chart whose schema failed"
    assert message in stderr, stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "StatefulSet"}, "at '/kind': value must be one of 'Deployment', 'Pod'"),
        ({"replicaCount": -1}, "at '/replicaCount': minimum: got -1, want 0"),
        ({"app": {"command": "sleep 1"}}, "at '/app/command': got string, want array"),
        ({"initkit": {"logFormat": "xml"}}, "at '/logFormat': value must be one of '', 'text', 'json'"),
        ({"initkit": {"image": {"digest": "latest"}}}, "at '/image/digest': 'latest' does not match pattern"),
        ({"typo": 1}, "additional properties 'typo' not allowed"),
    ],
    ids=["workload-kind", "replicas", "app-command", "log-format", "digest", "unknown-key"],
)
def test_invalid_example_values_fail_clearly(helm: Helm, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    stderr = run_invalid(helm, tmp_path, values)
    assert SCHEMA_ERROR in stderr
    assert message in stderr, stderr
