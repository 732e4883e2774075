"""register against a real, scripted HTTP(S) server."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import time
from email.utils import formatdate

import pytest

from initkit import cancel
from tests.conftest import initkit_command, wait_until
from tests.servers import Reply, ScriptedHttpServer, free_port

POD = {"POD_NAME": "myapp-7d4b9", "POD_NAMESPACE": "shop", "POD_IP": "10.244.1.17", "POD_UID": "8d2c-11"}


@pytest.fixture
def server():
    s = ScriptedHttpServer()
    yield s
    s.stop()


def test_form_body_like_curl_d_with_pod_facts(run_cli, server):
    result = run_cli("register", server.url("/register"), "--data", "instance={{ pod.name }}&ip={{ pod.ip }}", env=POD)
    assert result.code == 0, result.stderr
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/register")
    assert seen.body == "instance=myapp-7d4b9&ip=10.244.1.17"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "registered (HTTP 200)" in result.stderr


def test_json_body_headers_and_templated_url(run_cli, server):
    result = run_cli(
        "register",
        server.url("/pods/{{ pod.namespace }}"),
        "--method",
        "put",
        "--json",
        '{"name": "{{ pod.name }}", "node": "{{ env.ZONE }}"}',
        "--header",
        "X-Pod: {{ pod.uid }}",
        env={**POD, "ZONE": "eu-1"},
    )
    assert result.code == 0, result.stderr
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("PUT", "/pods/shop")
    assert json.loads(seen.body) == {"name": "myapp-7d4b9", "node": "eu-1"}
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Pod"] == "8d2c-11"


def test_idempotency_key_is_stable_across_reruns_and_differs_between_pods(run_cli, server):
    for _ in range(2):
        assert run_cli("register", server.url(), env=POD).code == 0
    assert run_cli("register", server.url(), env={**POD, "POD_UID": "other"}).code == 0
    keys = [s.headers["Idempotency-Key"] for s in server.seen]
    assert keys[0] == keys[1] != keys[2]


def test_idempotency_key_falls_back_to_namespace_and_name(run_cli, server):
    env = {"POD_NAME": "a", "POD_NAMESPACE": "ns"}
    assert run_cli("register", server.url(), env=env).code == 0
    assert run_cli("register", server.url(), env=env).code == 0
    assert run_cli("register", server.url(), env={**env, "POD_NAME": "b"}).code == 0
    keys = [s.headers["Idempotency-Key"] for s in server.seen]
    assert keys[0] == keys[1] != keys[2]


def test_409_means_already_registered(run_cli, server):
    server.script = [Reply(409, "exists")]
    result = run_cli("register", server.url(), env=POD)
    assert result.code == 0
    assert "already registered (HTTP 409)" in result.stderr


@pytest.fixture
def clock():
    """The runs' clock: pauses between attempts take no real time, and are recorded."""
    with cancel.use_clock(cancel.FakeClock()) as fake:
        yield fake


def test_5xx_and_connection_errors_are_retried_then_succeed(run_cli, server, clock):
    server.script = [Reply(503), Reply(500), Reply(502)]
    result = run_cli("register", server.url(), env=POD)
    assert result.code == 0, result.stderr
    assert len(server.seen) == 4
    # urllib3's Retry backoff (factor 0.5): 0 (no pause), then 1 and 2 s, each plus up to 0.5 s of jitter.
    (one, two) = clock.sleeps
    assert 1 <= one <= 1.5 and 2 <= two <= 2.5, clock.sleeps
    assert result.stderr.count("retrying in") == 3
    assert len({s.headers["Idempotency-Key"] for s in server.seen}) == 1


def test_429_retry_after_seconds_is_honoured(run_cli, server, clock):
    server.script = [Reply(429, "slow down", {"Retry-After": "2"})]
    result = run_cli("register", server.url(), env=POD)
    assert result.code == 0
    assert clock.sleeps == [2.0]
    assert "HTTP 429; retrying in 2s" in result.stderr


def test_retry_after_http_date_is_honoured(run_cli, server, clock):
    server.script = [Reply(503, "", {"Retry-After": formatdate(time.time() + 3, usegmt=True)})]
    assert run_cli("register", server.url(), env=POD).code == 0
    (pause,) = clock.sleeps
    assert 1.5 <= pause <= 3  # the date has a resolution of a second


def test_retry_after_beyond_the_timeout_gives_up_at_once(run_cli, server, clock):
    server.script = [Reply(503, "", {"Retry-After": "120"})]
    result = run_cli("register", server.url(), "--timeout", "10s", env=POD)
    assert result.code == 1
    assert clock.sleeps == []  # no pause at all
    assert "timeout would pass before the next attempt" in result.stderr


def test_backoff_ends_at_the_timeout_without_another_attempt(run_cli, server, clock):
    """--timeout 2s with backoff 0, 1, 2 s: the 2 s pause would pass the deadline, so no third retry."""
    server.default = Reply(503)
    result = run_cli("register", server.url(), "--timeout", "2s", env=POD)
    assert result.code == 1
    assert len(clock.sleeps) == 1 and 1 <= clock.sleeps[0] <= 1.5, clock.sleeps
    assert len(server.seen) == 3
    assert result.lines[-1].endswith("the 2s timeout would pass before the next attempt"), result.lines


def test_gives_up_after_attempts(run_cli, server):
    server.default = Reply(503, "maintenance")
    result = run_cli("register", server.url(), "--attempts", "2", env=POD)
    assert result.code == 1
    assert len(server.seen) == 2
    assert result.lines[-1].endswith("failed: HTTP 503; gave up after 2 attempts")


def test_4xx_fails_at_once_showing_status_and_answer(run_cli, server):
    server.script = [Reply(422, '{"error": "ip is not in the pod CIDR"}')]
    result = run_cli("register", server.url("/register"), env=POD)
    assert result.code == 1
    assert len(server.seen) == 1
    assert len(result.lines) == 1
    assert "HTTP 422" in result.stderr and "ip is not in the pod CIDR" in result.stderr


def test_unreachable_host_is_retried_then_fails(run_cli):
    url = f"http://127.0.0.1:{free_port()}/register"
    result = run_cli("register", url, "--attempts", "2", env=POD)
    assert result.code == 1
    assert "connection refused; gave up after 2 attempts" in result.stderr


def test_token_goes_out_as_bearer_and_never_appears_in_output(run_cli, server, tmp_path):
    token = "s3cr3t-token-value"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    server.script = [Reply(503), Reply(403, f"token {token} is not allowed here")]
    result = run_cli("--debug", "register", server.url(), "--token-file", str(token_file), env=POD)
    assert result.code == 1
    assert [s.headers["Authorization"] for s in server.seen] == [f"Bearer {token}"] * 2
    assert token not in result.stderr + result.stdout
    assert "token *** is not allowed here" in result.stderr


def test_credentials_in_url_are_basic_auth_and_redacted(run_cli, server):
    url = server.url("/r").replace("http://", "http://admin:hunter22@")
    server.script = [Reply(400, "no")]
    result = run_cli("register", url, env=POD)
    assert result.code == 1
    assert server.seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"admin:hunter22").decode()
    assert "hunter22" not in result.stderr
    assert "admin:***@" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token-file", "/nonexistent/token"], "token file /nonexistent/token does not exist"),
        (["--json", '{"ip": {{ pod.ip }}'], "--json does not render to valid JSON"),
        (["--data", "a={{ nope }}"], "--data:1: undefined variable: 'nope' is undefined"),
        (["--header", "no-colon"], "malformed --header"),
        (["--data", "a", "--json", "{}"], "mutually exclusive"),
        (["--ca-file", "/nonexistent/ca.pem"], "CA file /nonexistent/ca.pem does not exist"),
        (["--attempts", "0"], "--attempts"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_cli, server, args, message):
    result = run_cli("register", server.url(), *args, env={"POD_IP": "10.0.0.1"})
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and message in result.stderr
    assert server.seen == []


def test_undefined_pod_fact_names_the_downward_api_variable(run_cli, server):
    result = run_cli("register", server.url(), "--data", "uid={{ pod.uid }}")
    assert result.code == 2
    assert "set POD_UID (fieldRef metadata.uid)" in result.stderr


def test_url_without_scheme_is_bad_input(run_cli):
    result = run_cli("register", "mgmt/register", env=POD)
    assert result.code == 2 and "invalid URL" in result.stderr


def test_https_with_ca_file(run_cli, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = ScriptedHttpServer(tls=context)
    try:
        result = run_cli("register", server.url(), "--ca-file", str(tmp_path / "ca.pem"), env=POD)
        untrusted = run_cli("register", server.url(), "--attempts", "1", env=POD)
    finally:
        server.stop()
    assert result.code == 0, result.stderr
    assert untrusted.code == 1 and "certificate verify failed" in untrusted.stderr


def test_options_from_environment(run_cli, server, tmp_path):
    (tmp_path / "t").write_text("tok-from-env")
    env = {
        **POD,
        "INITKIT_REGISTER_URL": server.url("/env"),
        "INITKIT_REGISTER_METHOD": "PUT",
        "INITKIT_REGISTER_DATA": "ip={{ pod.ip }}",
        "INITKIT_REGISTER_TOKEN_FILE": str(tmp_path / "t"),
        "INITKIT_REGISTER_HEADER": "X-Team: platform ops\nX-Pod: {{ pod.name }}\n",
    }
    result = run_cli("register", env=env)
    assert result.code == 0, result.stderr
    (seen,) = server.seen
    assert (seen.method, seen.path, seen.body) == ("PUT", "/env", "ip=10.244.1.17")
    assert seen.headers["Authorization"] == "Bearer tok-from-env"
    assert (seen.headers["X-Team"], seen.headers["X-Pod"]) == ("platform ops", "myapp-7d4b9")


# ---- sidecar mode: deregistration on SIGTERM, heartbeat ---------------------------------------------------


def _start_sidecar(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        initkit_command("register", *args),
        env={**os.environ, **POD, **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_staying(proc: subprocess.Popen[str], within: float = 10.0) -> list[str]:
    """The lines before 'staying up': registered, and the sidecar's signal handling is in place
    (a signal before that, during the registration, is exit 143 by design)."""
    import threading

    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "staying up" in line:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(within) and "staying up" in lines[-1], lines
    return lines


def test_sidecar_registers_stays_up_and_deregisters_on_sigterm(server):
    proc = _start_sidecar(
        server.url("/nodes/{{ pod.name }}"),
        "--json",
        '{"ip": "{{ pod.ip }}"}',
        "--deregister-method",
        "DELETE",
        "--header",
        "X-Team: shop",
    )
    try:
        before = _wait_staying(proc)
        assert proc.poll() is None  # registered, and still running: it deregisters on the signal below
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
    finally:
        proc.kill()
    assert time.monotonic() - began < 1
    assert code == 0
    register, deregister = server.seen
    assert (register.method, register.path, register.body) == ("POST", "/nodes/myapp-7d4b9", '{"ip": "10.244.1.17"}')
    assert (deregister.method, deregister.path, deregister.body) == ("DELETE", "/nodes/myapp-7d4b9", "")
    assert deregister.headers["X-Team"] == "shop"
    assert deregister.headers["Idempotency-Key"] != register.headers["Idempotency-Key"]
    err = "".join(before) + proc.stderr.read()
    assert "staying up to deregister on SIGTERM" in err and "DELETE" in err and "deregistered (HTTP 200)" in err


def test_sidecar_deregister_url_and_body_are_templated(server):
    proc = _start_sidecar(
        server.url("/register"),
        "--data",
        "instance={{ pod.name }}",
        "--deregister-method",
        "POST",
        "--deregister-url",
        server.url("/deregister?ns={{ pod.namespace }}"),
        "--deregister-data",
        "instance={{ pod.name }}&uid={{ pod.uid }}",
    )
    try:
        _wait_staying(proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
    assert server.seen[1].path == "/deregister?ns=shop"
    assert server.seen[1].body == "instance=myapp-7d4b9&uid=8d2c-11"


def test_deregistration_is_retried_within_its_timeout_and_404_counts_as_done(server):
    server.script = [Reply(201), Reply(503), Reply(404)]
    proc = _start_sidecar(server.url("/n"), "--deregister-method", "DELETE")
    try:
        _wait_staying(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert [s.method for s in server.seen] == ["POST", "DELETE", "DELETE"]
    assert "already deregistered (HTTP 404)" in proc.stderr.read()


def test_a_failed_deregistration_is_exit_1_within_the_deregister_timeout(server):
    server.script = [Reply(201)]
    server.default = Reply(503)
    proc = _start_sidecar(server.url("/n"), "--deregister-method", "DELETE", "--deregister-timeout", "1500ms")
    try:
        _wait_staying(proc)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    finally:
        proc.kill()
    assert code == 1
    assert time.monotonic() - began < 2.5
    last = proc.stderr.read().splitlines()[-1]
    assert "DELETE" in last and "HTTP 503" in last and "1.5s timeout" in last


def test_heartbeat_re_registers_until_stopped(server):
    proc = _start_sidecar(server.url("/n"), "--heartbeat", "200ms")
    try:
        wait_until(lambda: len(server.seen) >= 4)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
    finally:
        proc.kill()
    assert code == 143  # no deregister request: stopped like any job
    assert {s.method for s in server.seen} == {"POST"}
    assert len({s.headers["Idempotency-Key"] for s in server.seen}) == 1


def test_a_failed_heartbeat_is_a_warning_not_the_end(server):
    server.script = [Reply(200), Reply(400, "bad"), Reply(200)]
    proc = _start_sidecar(server.url("/n"), "--heartbeat", "200ms", "--deregister-method", "DELETE")
    try:
        wait_until(lambda: len(server.seen) >= 4)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert "warning: heartbeat: POST" in err and "HTTP 400" in err
    assert server.seen[-1].method == "DELETE"


def test_sigterm_before_registration_succeeds_sends_no_deregistration(server):
    server.default = Reply(503)
    proc = _start_sidecar(server.url("/n"), "--deregister-method", "DELETE")
    try:
        wait_until(lambda: len(server.seen) >= 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 143
    finally:
        proc.kill()
    assert {s.method for s in server.seen} == {"POST"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--deregister-url", "http://x/"], "need --deregister-method"),
        (["--deregister-method", "DEL ETE"], "invalid --method"),
        (["--deregister-method", "DELETE", "--deregister-json", "{oops"], "--deregister-json does not render"),
        (["--deregister-method", "DELETE", "--deregister-data", "a", "--deregister-json", "{}"], "mutually exclusive"),
        (["--deregister-method", "DELETE", "--deregister-url", "ftp://x/"], "invalid URL"),
    ],
)
def test_bad_sidecar_input_exits_2_before_registering(run_cli, server, args, message):
    result = run_cli("register", server.url("/n"), *args)
    assert result.code == 2 and len(result.lines) == 1 and message in result.stderr
    assert server.seen == []


def test_sidecar_options_from_the_environment(server):
    env = {
        "INITKIT_REGISTER_URL": server.url("/n"),
        "INITKIT_REGISTER_DEREGISTER_METHOD": "DELETE",
        "INITKIT_REGISTER_DEREGISTER_URL": server.url("/gone/{{ pod.name }}"),
        "INITKIT_REGISTER_DEREGISTER_TIMEOUT": "5s",
        "INITKIT_REGISTER_HEARTBEAT": "0",
    }
    proc = _start_sidecar(env=env)
    try:
        _wait_staying(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
    assert (server.seen[1].method, server.seen[1].path) == ("DELETE", "/gone/myapp-7d4b9")
