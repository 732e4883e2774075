"""`initkit fetch` in the slim image: read-only root, uid 65532, a pod's shared volume, Docker DNS.

The artifact store is a real HTTP server on the network's gateway, named
`artifacts` by the network's dnsmasq. INITKIT_TEST_SOURCE: see test_sidecar.py.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.artifact_server import ArtifactServer
from tests.commands.test_fetch import tar_bytes, zip_bytes
from tests.images.harness import IMAGE_SLIM, DockerPod
from tests.images.test_sidecar import SOURCE

OVERLAY = ("-v", f"{SOURCE}:/usr/lib/python3/dist-packages/initkit:ro") if SOURCE else ()


@pytest.mark.parametrize(
    ("name", "archive"),
    [("p.tgz", tar_bytes({"bin/run.sh": b"#!/bin/sh\n"})), ("p.zip", zip_bytes({"bin/run.sh": b"#!/bin/sh\n"}))],
)
def test_fetch_extracts_into_the_volume_then_reruns_offline(net, name, archive):
    store = ArtifactServer(host=net.gateway)
    try:
        net.dns.add("artifacts", net.gateway)
        pod = DockerPod(net)
        args = (
            "fetch", f"http://artifacts:{store.port}/{name}", "/work/plugin", "--sha256",
            hashlib.sha256(archive).hexdigest(), "--extract", "--strip-components", "1",
        )  # fmt: skip
        store.add(f"/{name}", archive)
        first = pod.run_init(*args, image=IMAGE_SLIM, extra=OVERLAY)
        assert first.returncode == 0, first.stderr
        before = pod.snapshot()
        assert "./plugin/bin/run.sh" in before and "./plugin/.initkit-fetch.json" in before
        assert "f 755 10 " in before  # run.sh keeps its executable bit
    finally:
        store.stop()
    again = pod.run_init(*args, image=IMAGE_SLIM, extra=OVERLAY)  # the store is gone: no network needed
    assert again.returncode == 0, again.stderr
    assert "already matches" in again.stderr
    assert pod.snapshot() == before
