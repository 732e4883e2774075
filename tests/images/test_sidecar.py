"""`register` as a native sidecar, on Docker with the slim image.

The registry is a real HTTP server on the Docker network's gateway, named
`registry` by the network's own dnsmasq. The container runs read-only as
PID 1, registers, and stays up; `docker stop` (SIGTERM, then SIGKILL after the
grace period) must make it send the DELETE within the grace period and exit
0; a restart (what kubelet does to a sidecar with restartPolicy: Always)
registers again with the same Idempotency-Key and deregisters again.

INITKIT_TEST_SOURCE=/path/to/initkit bind-mounts that package over the
image's (read-only), to run these tests against a branch before its image
is built.
"""

from __future__ import annotations

import json
import os
import time

from tests.images.harness import IMAGE_SLIM, docker, wait_until
from tests.servers import ScriptedHttpServer

GRACE = 10  # docker stop -t: the pod's terminationGracePeriodSeconds
POD = {"POD_NAME": "myapp-0", "POD_NAMESPACE": "shop", "POD_IP": "10.9.8.7", "POD_UID": "1f0e-77"}


SOURCE = os.environ.get("INITKIT_TEST_SOURCE")  # read at import: the fixtures clear INITKIT_* for each test


def _overlay() -> list[str]:
    source = SOURCE
    return ["-v", f"{os.path.abspath(source)}:/usr/lib/python3/dist-packages/initkit:ro"] if source else []


def _exit_code(name: str) -> int:
    state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
    assert not state["Running"], state
    return int(state["ExitCode"])


def test_sidecar_deregisters_on_docker_stop_and_restarts_idempotently(net):
    registry = ScriptedHttpServer(host=net.gateway)
    try:
        net.dns.add("registry", net.gateway)
        env = [x for key, value in POD.items() for x in ("-e", f"{key}={value}")]
        name = f"{net.name}-sidecar"
        net.run(
            "--read-only", *env, *_overlay(), IMAGE_SLIM, "--log-format", "json",
            "register", f"http://registry:{registry.port}/nodes/{{{{ pod.name }}}}",
            "--json", '{"ip": "{{ pod.ip }}"}', "--deregister-method", "DELETE", "--deregister-timeout", "5s",
            name=name,
        )  # fmt: skip
        for round_ in (1, 2):
            posted = 2 * round_ - 1
            try:
                wait_until(lambda n=posted: len(registry.seen) == n, timeout=30, what="the register POST")
            except AssertionError:
                raise AssertionError(docker("logs", name, check=False).stderr) from None
            # Registered and waiting for SIGTERM (a signal during the registration is 143 by design).
            wait_until(
                lambda n=round_: docker("logs", name).stderr.count("staying up to deregister") == n,
                timeout=30,
                what="'staying up'",
            )
            assert json.loads(docker("inspect", "-f", "{{json .State.Running}}", name).stdout) is True
            began = time.monotonic()
            docker("stop", "-t", str(GRACE), name, timeout=GRACE + 30)
            stopped_after = time.monotonic() - began
            assert len(registry.seen) == 2 * round_, [s.method for s in registry.seen]
            assert stopped_after < GRACE / 2, stopped_after  # deregistered and exited; never SIGKILLed
            assert _exit_code(name) == 0, docker("logs", name).stderr
            if round_ == 1:
                docker("start", name)  # kubelet restarting the sidecar: same container, same pod
        logs = [json.loads(line) for line in docker("logs", name).stderr.splitlines()]
    finally:
        registry.stop()
    post1, delete1, post2, delete2 = registry.seen
    assert [s.method for s in registry.seen] == ["POST", "DELETE", "POST", "DELETE"]
    assert {s.path for s in registry.seen} == {"/nodes/myapp-0"}
    assert post1.body == post2.body == '{"ip": "10.9.8.7"}'
    assert post1.headers["Idempotency-Key"] == post2.headers["Idempotency-Key"]
    assert delete1.headers["Idempotency-Key"] == delete2.headers["Idempotency-Key"]
    assert any("deregistered (HTTP 200)" in record["msg"] for record in logs)
    assert all(record["command"] == "register" for record in logs)
