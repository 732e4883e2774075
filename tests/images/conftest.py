"""Image tests on a real container engine (docker, podman).

Select them with `pytest -m docker tests/images` (podman kube play tests carry
`podman` too). They need `.ci/setup-docker.sh` and `make images` first; under
CI=true a missing engine or image fails the tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.images import harness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def engine() -> None:
    harness.require_engine()


@pytest.fixture
def net(engine: None, tmp_path: Path, allow_network) -> Iterator[harness.DockerNet]:
    with harness.docker_net(tmp_path) as n:
        allow_network(n.subnet)
        yield n
