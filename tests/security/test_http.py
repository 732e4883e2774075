"""register and wait-for's http targets against hostile and awkward servers, proxies and redirects.

Everything here is real and on loopback: tinyproxy as the forward proxy, servers
that drip or flood their answers, two hosts (127.0.0.1 and 127.0.0.2) for a
cross-host redirect. Names resolve only in a private mount namespace whose
/etc/hosts the test writes, never through the host's resolver.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initkit import cancel
from tests.conftest import initkit_command
from tests.security.hostile_http import CrossHostRedirect, DripServer, FloodServer, RawServer, wait_until
from tests.servers import Reply, ScriptedHttpServer, free_port

POD = {"POD_NAME": "myapp-7d4b9", "POD_NAMESPACE": "shop", "POD_IP": "10.244.1.17", "POD_UID": "8d2c-11"}
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so a proxied request is refused


def _need(condition: bool, reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where a silent skip would hide a hole."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def server():
    s = ScriptedHttpServer()
    yield s
    s.stop()


@pytest.fixture
def tls(tmp_path):
    """(server context, path of its CA) from a CA the test makes; plus a second, unrelated CA."""
    trustme = pytest.importorskip("trustme")
    ca, other = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    return context, str(tmp_path / "ca.pem"), str(tmp_path / "other-ca.pem")


class Tinyproxy:
    """Debian's tinyproxy on 127.0.0.1, in the foreground, logging every request and CONNECT."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
        _need(os.path.exists(binary), "tinyproxy is not installed (Debian: apt-get install tinyproxy)")
        self.port = free_port()
        self.log = workdir / "tinyproxy.log"
        conf = workdir / "tinyproxy.conf"
        # No ConnectPort line: CONNECT is allowed to any port (the test servers use random ones).
        conf.write_text(
            f'Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogFile "{self.log}"\nLogLevel Info\n'
            "MaxClients 50\nAllow 127.0.0.0/8\n"
        )
        self.proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"
        if not wait_until(self._listening, 5):
            self.stop()
            raise RuntimeError("tinyproxy did not start")

    def _listening(self) -> bool:
        import socket

        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def lines(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def proxy(tmp_path):
    p = Tinyproxy(tmp_path)
    yield p
    p.stop()


# ---- proxies: as requests reads them from the environment ---------------------------------------


def test_register_and_wait_for_go_through_an_http_proxy(run_cli, server, proxy):
    env = {**POD, "HTTP_PROXY": proxy.url, "NO_PROXY": ""}
    assert run_cli("register", server.url("/r"), env=env).code == 0
    result = run_cli("wait-for", server.url("/healthz"), "--timeout", "10s", env=env)
    assert result.code == 0, result.stderr
    assert [s.path for s in server.seen] == ["/r", "/healthz"]
    assert all("tinyproxy" in s.headers.get("Via", "") for s in server.seen)


def test_https_goes_through_the_proxy_by_connect(run_cli, proxy, tls):
    context, ca, _ = tls
    server = ScriptedHttpServer(tls=context)
    try:
        env = {**POD, "HTTPS_PROXY": proxy.url, "NO_PROXY": ""}
        result = run_cli("register", server.url("/r"), "--ca-file", ca, env=env)
        waited = run_cli("wait-for", server.url("/healthz"), "--ca-file", ca, "--timeout", "10s", env=env)
    finally:
        server.stop()
    assert result.code == 0, result.stderr
    assert waited.code == 0, waited.stderr
    assert [s.path for s in server.seen] == ["/r", "/healthz"]
    assert proxy.lines().count(f"CONNECT 127.0.0.1:{server.port}") == 2


def test_no_proxy_cidr_bypasses_the_proxy(run_cli, server):
    """The issue's repro: NO_PROXY=127.0.0.0/8 must keep loopback away from a proxy that is down."""
    env = {**POD, "HTTP_PROXY": DEAD_PROXY, "NO_PROXY": "10.0.0.0/8,127.0.0.0/8,.svc"}
    waited = run_cli("wait-for", server.url("/healthz"), "--timeout", "5s", env=env)
    assert waited.code == 0, waited.stderr
    assert run_cli("register", server.url("/r"), env=env).code == 0
    # And the proxy really is read: without the CIDR entry the request goes to the dead proxy.
    proxied = run_cli("register", server.url("/r"), "--attempts", "1", env={**env, "NO_PROXY": "10.0.0.0/8"})
    assert proxied.code == 1 and "proxy: connection refused" in proxied.stderr
    assert len(server.seen) == 2


def _in_private_hosts(tmp_path: Path, hosts: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run argv in a mount namespace where /etc/hosts is `hosts` and resolv.conf names a dead loopback server,
    so names resolve from the file and no query can leave the machine."""
    _need(shutil.which("unshare") is not None and os.geteuid() == 0, "needs root and unshare for a private /etc/hosts")
    (tmp_path / "hosts").write_text(hosts)
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.77\noptions timeout:1 attempts:1\n")
    script = (
        f"mount --bind {tmp_path / 'hosts'} /etc/hosts && mount --bind {tmp_path / 'resolv.conf'} /etc/resolv.conf"
        ' && exec "$@"'
    )
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_proxy_suffix_bypasses_the_proxy(tmp_path, server):
    hosts = "127.0.0.1 localhost\n127.0.0.1 registry.shop.svc\n"
    url = f"http://registry.shop.svc:{server.port}/r"
    env = {**POD, "HTTP_PROXY": DEAD_PROXY, "http_proxy": DEAD_PROXY}
    direct = _in_private_hosts(
        tmp_path, hosts, initkit_command("register", url), {**env, "NO_PROXY": "10.0.0.0/8,.svc,.cluster.local"}
    )
    assert direct.returncode == 0, direct.stderr
    assert [s.headers["Host"] for s in server.seen] == [f"registry.shop.svc:{server.port}"]
    proxied = _in_private_hosts(
        tmp_path, hosts, initkit_command("register", url, "--attempts", "1"), {**env, "NO_PROXY": ".cluster.local"}
    )
    assert proxied.returncode == 1 and "proxy: connection refused" in proxied.stderr
    assert len(server.seen) == 1


# ---- TLS: --ca-file is the trust, whatever REQUESTS_CA_BUNDLE says --------------------------------


def test_ca_file_wins_over_requests_ca_bundle(run_cli, tls):
    context, ca, other = tls
    server = ScriptedHttpServer(tls=context)
    try:
        trusted = run_cli("register", server.url(), "--ca-file", ca, env={**POD, "REQUESTS_CA_BUNDLE": other})
        overridden = run_cli(
            "register", server.url(), "--ca-file", other, "--attempts", "1", env={**POD, "REQUESTS_CA_BUNDLE": ca}
        )
        probe = run_cli("wait-for", server.url(), "--ca-file", ca, "--timeout", "5s", env={"REQUESTS_CA_BUNDLE": other})
    finally:
        server.stop()
    assert trusted.code == 0, trusted.stderr
    assert overridden.code == 1 and "certificate verify failed" in overridden.stderr
    assert probe.code == 0, probe.stderr


# ---- redirects ----------------------------------------------------------------------------------


@pytest.fixture
def redirect():
    r = CrossHostRedirect()
    yield r
    r.stop()


@pytest.mark.parametrize("how", ["token-file", "header"])
def test_authorization_is_dropped_on_a_cross_host_redirect(run_cli, redirect, tmp_path, how):
    token = "s3cr3t-bearer-value"
    (tmp_path / "token").write_text(token)
    auth = (
        ["--token-file", str(tmp_path / "token")]
        if how == "token-file"
        else ["--header", "Authorization: Bearer {{ env.API_KEY }}"]
    )
    result = run_cli("register", redirect.origin.url("/r"), *auth, "--data", "a=1", env={**POD, "API_KEY": token})
    assert result.code == 0, result.stderr
    (first,), (landed,) = redirect.origin.seen, redirect.landing.seen
    assert first.headers["Authorization"] == f"Bearer {token}"
    assert (landed.method, landed.path, landed.body) == ("POST", "/landing", "a=1")  # 307 keeps method and body
    assert "Authorization" not in landed.headers
    assert landed.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]


def test_authorization_is_kept_on_a_same_host_redirect(run_cli, server, tmp_path):
    (tmp_path / "token").write_text("tok-same-host")
    server.script = [Reply(307, "", {"Location": server.url("/next")})]
    assert run_cli("register", server.url("/r"), "--token-file", str(tmp_path / "token"), env=POD).code == 0
    assert [s.headers.get("Authorization") for s in server.seen] == ["Bearer tok-same-host"] * 2


def test_basic_auth_from_url_userinfo_is_dropped_on_a_cross_host_redirect(run_cli, redirect):
    url = redirect.origin.url("/r").replace("http://", "http://admin:hunter22@")
    assert run_cli("register", url, env=POD).code == 0
    assert redirect.origin.seen[0].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in redirect.landing.seen[0].headers


SECRET_HEADERS = {
    "X-Api-Key": "s3cret-api-key",
    "PRIVATE-TOKEN": "s3cret-private-token",
    "Cookie": "sid=s3cret-cookie",
    "Proxy-Authorization": "Basic s3cret-proxy-auth",
}


def _send_with_secret_headers(run_cli, command: str, url: str, tmp_path: Path):
    """register or fetch URL with every kind of credential header, plus one plain header."""
    (tmp_path / "token").write_text("s3cret-bearer-token")
    args = ["--token-file", str(tmp_path / "token"), "--header", "X-Team: blue"]
    for name, value in SECRET_HEADERS.items():
        args += ["--header", f"{name}: {value}"]
    if command == "register":
        return run_cli("register", url, *args, env=POD)
    digest = hashlib.sha256(b"payload").hexdigest()
    return run_cli("fetch", url, str(tmp_path / "out"), "--sha256", digest, *args)


@pytest.mark.parametrize("landing_host", ["127.0.0.2", "127.0.0.1"])  # another host; the same one on another port
@pytest.mark.parametrize("command", ["register", "fetch"])
def test_every_credential_header_is_dropped_on_a_cross_host_redirect(run_cli, tmp_path, command, landing_host):
    landing = ScriptedHttpServer(host=landing_host)
    origin = ScriptedHttpServer()
    landing.default = Reply(200, "payload")
    origin.default = Reply(302, "", {"Location": landing.url("/landing")})
    try:
        result = _send_with_secret_headers(run_cli, command, origin.url("/start"), tmp_path)
    finally:
        origin.stop()
        landing.stop()
    assert result.code == 0, result.stderr
    (first,), (landed,) = origin.seen, landing.seen
    assert first.headers["X-Api-Key"] == "s3cret-api-key" and first.headers["PRIVATE-TOKEN"] == "s3cret-private-token"
    assert first.headers["Authorization"] == "Bearer s3cret-bearer-token"
    assert "s3cret" not in json.dumps(landed.headers), landed.headers
    assert landed.headers["X-Team"] == "blue"  # only credentials are dropped


@pytest.mark.parametrize("command", ["register", "fetch"])
def test_credential_headers_are_kept_on_a_same_host_redirect(run_cli, server, tmp_path, command):
    server.script = [Reply(302, "", {"Location": server.url("/next")})]
    server.default = Reply(200, "payload")
    result = _send_with_secret_headers(run_cli, command, server.url("/start"), tmp_path)
    assert result.code == 0, result.stderr
    first, landed = server.seen
    for name in ("Authorization", "X-Api-Key", "PRIVATE-TOKEN"):  # requests itself resends Cookie from its jar only
        assert landed.headers[name] == first.headers[name]


def test_a_redirect_loop_ends(run_cli, server):
    server.default = Reply(302, "", {"Location": server.url("/again")})
    result = run_cli("register", server.url(), "--attempts", "1", env=POD)
    assert result.code == 1
    assert "too many redirects" in result.stderr
    assert len(server.seen) == 6  # the request and 5 redirects


# ---- deadlines: a server that drips --------------------------------------------------------------


@pytest.mark.parametrize(("part", "status"), [("headers", 200), ("body", 422), ("body", 503)])
def test_register_timeout_is_a_deadline_against_a_dripping_server(run_proc, part, status):
    drip = DripServer(part, status)
    try:
        started = time.monotonic()
        result = run_proc("register", drip.url(), "--timeout", "3s", env=POD, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        drip.stop()
    assert elapsed < 4.5, (elapsed, result.stderr)
    assert result.code == 1, result.stderr
    assert len(result.lines) == 1 or all("retrying" in line for line in result.lines[:-1])
    if status == 422:
        assert "was refused: HTTP 422 Drip: aaaa" in result.stderr  # what came before the deadline
    elif status == 503:
        # A retryable answer's body is not waited for: the retries come at once, then the deadline ends them.
        assert "failed: HTTP 503; gave up after" in result.lines[-1] and "the 3s timeout" in result.lines[-1]
    else:
        assert "the 3s timeout passed" in result.lines[-1]
        assert "timed out" in result.lines[-1]


def test_register_timeout_is_a_deadline_over_tls_too(run_proc, tls):
    context, ca, _ = tls
    drip = DripServer("headers", tls=context)
    try:
        started = time.monotonic()
        result = run_proc("register", drip.url(), "--ca-file", ca, "--timeout", "3s", env=POD, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        drip.stop()
    assert drip.connections == 1  # the TLS handshake and request went through; only the answer dripped
    assert result.code == 1, result.stderr
    assert elapsed < 4.5, (elapsed, result.stderr)
    assert "timed out" in result.lines[-1] and "the 3s timeout passed" in result.lines[-1]


def test_a_success_with_a_dripping_body_is_not_waited_for(run_proc):
    drip = DripServer("body", 201)
    try:
        started = time.monotonic()
        result = run_proc("register", drip.url(), "--timeout", "10s", env=POD, timeout=30)
    finally:
        drip.stop()
    assert result.code == 0, result.stderr
    assert time.monotonic() - started < 3
    assert "registered (HTTP 201)" in result.stderr


def test_each_wait_for_http_check_is_bounded(run_proc):
    """A check that hangs must end (after 5 s), count as not ready, and be retried, not hold its target forever."""
    drip = DripServer("headers")
    try:
        started = time.monotonic()
        result = run_proc("wait-for", drip.url(), "--timeout", "13s", timeout=60)
        elapsed = time.monotonic() - started
    finally:
        drip.stop()
    assert result.code == 1, result.stderr  # never "ready": a head cut off at the limit is no answer
    assert "is ready" not in result.stderr
    assert result.lines[-1].endswith(f"not ready: {drip.url()} (timed out)")
    assert drip.connections >= 3  # checks at about 0 s, 6 s and 12 s
    assert elapsed < 14.5


@pytest.mark.parametrize("command", ["register", "wait-for"])
def test_sigterm_cuts_a_dripping_answer_at_once(command):
    """The request is cut by the token's watchdog (its socket shut down), not by an exception raised into urllib3."""
    drip = DripServer("headers")
    proc = subprocess.Popen(
        initkit_command(command, drip.url(), "--timeout", "1m"), stderr=subprocess.PIPE, text=True,
        env={**os.environ, **POD},
    )  # fmt: skip
    try:
        assert wait_until(lambda: drip.connections >= 1), "no request arrived"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        drip.stop()
    assert code == 143
    assert took < 1.0, took
    assert proc.stderr.read().splitlines()[-1] == f"initkit {command}: error: stopped by SIGTERM"


# ---- memory: a server that floods ----------------------------------------------------------------


def _peak_rss_kib(argv: list[str], env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, int]:
    out = tmp_path / "rss"
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(out), *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, int(out.read_text().split()[-1])


@pytest.mark.parametrize(
    ("status", "args"), [(422, []), (503, ["--timeout", "3s", "--attempts", "2"]), (307, ["--timeout", "3s"])]
)
def test_register_never_reads_a_flood_into_memory(tmp_path, server, status, args):
    """Not the answer to a refusal, nor one urllib3 drains before a retry, nor a redirect's."""
    _need(os.path.exists("/usr/bin/time"), "GNU time is not installed (Debian: time)")
    flood = FloodServer(status, headers=f"Location: {server.url('/landing')}\r\n" if status == 307 else "")
    try:
        started = time.monotonic()
        done, rss = _peak_rss_kib(initkit_command("register", flood.url(), *args), POD, tmp_path)
        elapsed = time.monotonic() - started
    finally:
        flood.stop()
    if status == 307:
        assert done.returncode == 0, done.stderr
        assert [s.path for s in server.seen] == ["/landing"]
        assert rss < 60 * 1024, f"peak RSS {rss} KiB"
        return
    assert done.returncode == 1, done.stderr
    assert elapsed < 6
    assert rss < 60 * 1024, f"peak RSS {rss} KiB"
    assert flood.sent < flood.size
    if status == 422:
        assert "was refused: HTTP 422 Flood: flood flood" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


# ---- secrets and bad input: exit 2, one line, naming the part, never the value --------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    ("header", "value", "what"),
    [
        ("Authorization: Bearer {{ env.API_KEY }}", "first-half\nsecond-half-s3cr3t", "line break"),
        ("Authorization: Bearer {{ env.API_KEY }}", "tab-ok\tbut\rcarriage-s3cr3t", "line break"),
        ("X-Api-Key: {{ env.API_KEY }}", "zone-\u6f22\u5b57-s3cr3t", "non-latin-1"),
    ],
)
def test_a_header_value_that_cannot_be_sent_is_bad_input_naming_only_the_header(
    run_cli, server, fmt, header, value, what
):
    result = run_cli("--log-format", fmt, "register", server.url(), "--header", header, env={**POD, "API_KEY": value})
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1
    line = json.loads(result.lines[0])["msg"] if fmt == "json" else result.lines[0]
    assert header.split(":")[0] in line and what in line
    for piece in ("first-half", "second-half", "carriage", "s3cr3t", "\\u6f22", "\u6f22"):
        assert piece not in result.stderr
    assert server.seen == []


def test_a_token_that_is_not_latin_1_is_bad_input_naming_the_header(run_cli, server, tmp_path):
    (tmp_path / "token").write_text("t\u00f6k-\u6f22-secret")
    result = run_cli("register", server.url(), "--token-file", str(tmp_path / "token"), env=POD)
    assert result.code == 2 and len(result.lines) == 1
    assert "header Authorization" in result.stderr and "non-latin-1" in result.stderr
    assert "secret" not in result.stderr and "\u6f22" not in result.stderr
    assert server.seen == []


def test_latin_1_header_values_are_sent(run_cli, server):
    result = run_cli("register", server.url(), "--header", "X-Name: {{ env.N }}", env={**POD, "N": "Zo\u00eb"})
    assert result.code == 0, result.stderr
    assert server.seen[0].headers["X-Name"].encode("latin-1") == "Zo\u00eb".encode("latin-1")


@pytest.mark.parametrize("method", ["GET /x HTTP/1.1", "", "GET\r\nX-Evil: 1", "P\u00d6ST"])
def test_a_method_is_a_token(run_cli, server, method):
    result = run_cli("register", server.url(), "--method", method, env=POD)
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "invalid --method" in result.stderr
    assert server.seen == []


def test_an_unusual_method_that_is_a_token_is_sent(run_cli, server):
    server.default = Reply(409, "")
    assert run_cli("register", server.url(), "--method", "patch", env=POD).code == 0
    assert server.seen[0].method == "PATCH"


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:0/",
        "http://:80/",
        "http://127.0.0.1:1/x\ny",
        "http://admin:pass word@127.0.0.1:1/",
    ],
)
def test_an_unusable_url_is_bad_input_at_once(run_cli, url):
    for argv, wording in (
        (["register", url], "invalid URL"),
        (["wait-for", url, "--timeout", "30s"], "malformed target"),
    ):
        with cancel.use_clock(cancel.FakeClock()) as clock:  # a URL taken as good would be retried, or time out
            result = run_cli(*argv, env=POD)
        assert result.code == 2, result.stderr
        assert len(result.lines) == 1 and wording in result.stderr
        assert "pass word" not in result.stderr
        assert clock.sleeps == []  # refused before any wait


# ---- Retry-After ---------------------------------------------------------------------------------


def test_a_huge_retry_after_without_timeout_is_capped(server):
    """20 digits of Retry-After with --timeout 0: no crash, a capped pause, and SIGTERM still ends it."""
    server.default = Reply(503, "", {"Retry-After": "9" * 20})
    proc = subprocess.Popen(
        initkit_command("register", server.url(), "--timeout", "0"),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **POD},
    )
    try:
        readable, _, _ = select.select([proc.stderr], [], [], 10)
        assert readable, "no retry line within 10 s"
        line = proc.stderr.readline()
        assert "HTTP 503; retrying in 10m0s (attempt 1 of 10)" in line, line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(2) == 143
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_huge_retry_after_with_a_timeout_gives_up_at_once(run_cli, server):
    server.default = Reply(429, "", {"Retry-After": "9" * 20})
    with cancel.use_clock(cancel.FakeClock()) as clock:
        result = run_cli("register", server.url(), "--timeout", "5m", env=POD)
    assert result.code == 1
    assert clock.sleeps == [] and len(server.seen) == 1
    assert result.lines[-1].endswith(
        "HTTP 429; gave up after 1 attempts: the 5m0s timeout would pass before the next attempt"
    )


def test_a_retry_after_that_is_no_number_nor_date_means_the_usual_backoff(run_cli, server):
    server.script = [Reply(503, "", {"Retry-After": "soon"})]
    result = run_cli("register", server.url(), env=POD)
    assert result.code == 0, result.stderr
    assert "HTTP 503; retrying in" in result.stderr and "(attempt 1 of 10)" in result.stderr
    assert len(server.seen) == 2


# ---- properties of the checks before sending --------------------------------------------------------


@given(value=st.text(min_size=1, max_size=40), name=st.text(min_size=1, max_size=12))
@settings(max_examples=300, deadline=None)
def test_a_header_passes_the_check_only_if_it_can_be_sent(value, name):
    """Whatever the text: the check refuses it naming the header alone, or requests and http.client send it."""
    import requests

    from initkit import httpclient
    from initkit.errors import BadInput

    secret = f"<{value}>"
    try:
        httpclient.check_headers({name: secret})
    except BadInput as exc:
        assert "\n" not in str(exc) and secret not in str(exc)
        return
    prepared = requests.Request("POST", "http://127.0.0.1/", headers={name: secret}).prepare()
    assert prepared.headers[name] == secret
    secret.encode("latin-1")  # what http.client does with a header value
    assert name.isascii()


@given(
    url=st.one_of(
        st.text(max_size=40),
        st.builds(lambda rest: "http://" + rest, st.text(max_size=30)),
        st.builds(lambda port, path: f"http://127.0.0.1:{port}/{path}", st.integers(-5, 10**6), st.text(max_size=8)),
    )
)
@settings(max_examples=400, deadline=None)
def test_a_url_passes_the_check_only_if_requests_can_prepare_it(url):
    import requests

    from initkit import httpclient
    from initkit.errors import BadInput

    try:
        httpclient.check_url(url)
    except BadInput as exc:
        assert "\n" not in str(exc)
        return
    requests.Request("GET", url).prepare()


# ---- INITKIT_*_HEADER: one header a line, lines end at \n only ----------------------------------------


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\u2028", "\u2029"])
def test_a_header_line_from_the_environment_is_not_split_at_other_line_breaks(run_cli, server, separator):
    """str.splitlines() would make two headers of this one line, where --header refuses it whole."""
    result = run_cli("register", server.url(), env={**POD, "INITKIT_REGISTER_HEADER": f"X-A: 1{separator}X-B: 2"})
    assert result.code == 2, result.stderr
    assert "header X-A" in result.stderr and len(result.lines) == 1
    assert server.seen == []


def test_a_header_value_with_nel_from_the_environment_stays_one_header(run_cli):
    """NEL (\x85) is latin-1 text that --header sends inside the value: so does the environment."""
    raw = RawServer(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    try:
        env = {**POD, "INITKIT_REGISTER_HEADER": "X-A: 1\x85X-B: 2\nX-C: 3\n"}
        result = run_cli("register", raw.url(), env=env)
    finally:
        raw.stop()
    assert result.code == 0, result.stderr
    (head,) = raw.heads
    lines = head.split(b"\r\n")
    assert b"X-A: 1\x85X-B: 2" in lines and b"X-C: 3" in lines
    assert not any(line.startswith(b"X-B") for line in lines)
