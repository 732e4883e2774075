"""wait-for against a real DNS server (dnsmasq), real TCP and HTTP(S) servers and files."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from initkit import cancel
from tests.conftest import initkit_command, missing, wait_until
from tests.servers import DnsServer, Reply, ScriptedHttpServer, free_port


@pytest.fixture
def dns(tmp_path: Path):
    server = DnsServer(tmp_path / "dns")
    yield server
    server.stop()


def later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


def once(predicate, action) -> threading.Thread:
    """ACTION as soon as PREDICATE holds (an event: a query in the DNS server's log), in a thread."""
    thread = threading.Thread(target=lambda: (wait_until(predicate, 15), action()), daemon=True)
    thread.start()
    return thread


def was_asked(dns: DnsServer, name: str) -> bool:
    return any(f" {name} from" in line for line in dns.queries())


# --- DNS -------------------------------------------------------------------------------------


def test_dns_name_that_appears_while_waiting(run_cli, dns):
    once(lambda: was_asked(dns, "myservice.test"), lambda: dns.add("myservice.test", "10.0.0.7"))
    result = run_cli("wait-for", "dns:myservice.test", "--dns-server", dns.server, "--interval", "200ms")
    assert result.code == 0, result.stderr
    assert "dns:myservice.test is ready" in result.stderr
    assert "10.0.0.7" in result.stderr


def test_dns_nxdomain_until_timeout_names_the_cause(run_cli, dns):
    result = run_cli("wait-for", "dns:mydb.test", "--dns-server", dns.server, "--timeout", "1500ms")
    assert result.code == 1
    assert result.lines[-1] == "initkit wait-for: error: timed out after 1.5s; not ready: dns:mydb.test (NXDOMAIN)"
    assert dns.queries(), "the test's own DNS server answered the queries"


def test_dns_aaaa_only_name_is_ready(run_cli, dns):
    dns.add("v6only.test", "fd00::5")
    result = run_cli("wait-for", "dns:v6only.test", "--dns-server", dns.server, "--timeout", "5s")
    assert result.code == 0, result.stderr
    assert "fd00::5" in result.stderr


def test_dns_timeout_when_no_server_answers(run_cli):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        result = run_cli("wait-for", "dns:x.test", "--dns-server", f"127.0.0.1:{port}", "--timeout", "2500ms")
    finally:
        silent.close()
    assert result.code == 1
    assert f"dns:x.test (DNS timeout: no answer from 127.0.0.1:{port})" in result.stderr


def test_dns_refused_is_named(run_cli, tmp_path):
    server = DnsServer(tmp_path / "refusing", nxdomain_for_unknown=False)
    try:
        # Several checks: the reason named at the deadline is the last answer's, so one slow first
        # answer on a loaded machine (a DNS timeout) does not decide it.
        args = ("dns:www.elsewhere.test.", "--dns-server", server.address, "--timeout", "3s", "--interval", "250ms")
        result = run_cli("wait-for", *args)
    finally:
        server.stop()
    assert result.code == 1
    assert f"dns:www.elsewhere.test. (REFUSED from {server.address})" in result.stderr


def test_a_check_begun_too_late_to_ask_keeps_the_last_reason(tmp_path):
    """A check that starts with less time left than dnspython's first backoff asks nothing: it must
    not replace the server's last real answer (REFUSED) with a made-up "DNS timeout"."""
    from initkit import cancel
    from initkit.commands.wait_for import _Status, poll
    from initkit.probes import NotReady, TooLate, parse

    server = DnsServer(tmp_path / "refusing", nxdomain_for_unknown=False)
    try:
        probe = parse("dns:www.elsewhere.test.", dns_server=server.address)
        with pytest.raises(NotReady, match=f"^REFUSED from {server.address}$"):
            probe.check(cancel.Token().child(timeout=2))
        with pytest.raises(TooLate):
            probe.check(cancel.Token().child(timeout=0.05))
    finally:
        server.stop()

    # wait-for's loop keeps the reason a TooLate check did not replace
    token = cancel.Token(clock=cancel.FakeClock())
    answers = iter([NotReady("REFUSED from 10.0.0.53"), TooLate("no time left to ask")])

    class Probe:
        label = "dns:x"

        def check(self, _token):
            answer = next(answers, None)
            if answer is None:
                token.cancel()
                raise TooLate("no time left to ask")
            raise answer

    status = _Status("dns:x")
    assert not poll(Probe(), status, token, interval=0.5, started=0.0)
    assert status.last_error == "REFUSED from 10.0.0.53"


def test_dns_truncated_udp_answer_is_asked_again_over_tcp(run_cli, dns):
    addresses = [f"10.9.{i // 250}.{i % 250 + 1}" for i in range(60)]  # > 512 bytes without EDNS
    dns.add("big.test", *addresses)
    result = run_cli("wait-for", "dns:big.test?min=60", "--dns-server", dns.server, "--timeout", "5s")
    assert result.code == 0, result.stderr
    assert ", ".join(sorted(addresses)) in result.stderr
    assert "query[A] big.test" in " ".join(dns.queries())


def test_dns_cname_chain_is_followed(run_cli, dns):
    dns.add("target.test", "10.0.0.4")
    dns.cname("alias.test", "target.test")
    result = run_cli("wait-for", "dns:alias.test", "dns:alias.test?type=CNAME", "--dns-server", dns.server)
    assert result.code == 0, result.stderr
    assert "dns:alias.test is ready after" in result.stderr and "(10.0.0.4)" in result.stderr
    assert "dns:alias.test?type=CNAME is ready after" in result.stderr and "(target.test.)" in result.stderr


# --- DNS record counts and types: dns:NAME?min=N, dns:NAME?type=TYPE --------------------------


def test_dns_min_waits_for_a_quorum_counting_a_and_aaaa(run_cli, dns):
    dns.add("mydb-headless.test", "10.0.0.1")
    later(1.0, lambda: dns.add("mydb-headless.test", "10.0.0.1", "10.0.0.2", "fd00::3"))
    started = time.monotonic()
    result = run_cli(
        "wait-for",
        "dns:mydb-headless.test?min=3",
        "--dns-server",
        dns.server,
        "--interval",
        "200ms",
        "--timeout",
        "10s",
    )
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 1.0
    assert "dns:mydb-headless.test?min=3 is ready" in result.stderr
    assert "(10.0.0.1, 10.0.0.2, fd00::3)" in result.stderr


def test_dns_min_times_out_naming_what_was_found(run_cli, dns):
    dns.add("mydb-headless.test", "10.0.0.2", "10.0.0.1")
    result = run_cli("wait-for", "dns:mydb-headless.test?min=3", "--dns-server", dns.server, "--timeout", "3s")
    assert result.code == 1
    assert result.lines[-1] == (  # 3 s: room for a loaded machine to make its checks
        "initkit wait-for: error: timed out after 3s; not ready: "
        "dns:mydb-headless.test?min=3 (2 of at least 3 addresses: 10.0.0.1, 10.0.0.2)"
    )


def test_dns_srv_records_with_a_minimum_appear_late(run_cli, dns):
    dns.srv("_postgresql._tcp.mydb.test", "mydb-0.mydb.test", 5432)
    later(1.0, lambda: dns.srv("_postgresql._tcp.mydb.test", "mydb-1.mydb.test", 5432))
    started = time.monotonic()
    result = run_cli(
        "wait-for",
        "dns:_postgresql._tcp.mydb.test?type=SRV&min=2",
        "--dns-server",
        dns.server,
        "--interval",
        "200ms",
        "--timeout",
        "15s",
    )
    assert result.code == 0, result.stderr
    assert time.monotonic() - started >= 1.0
    assert "(0 0 5432 mydb-0.mydb.test., 0 0 5432 mydb-1.mydb.test.)" in result.stderr


def test_dns_txt_record(run_cli, dns):
    dns.txt("config.test", "schema=42")
    result = run_cli("wait-for", "dns:config.test?type=txt", "--dns-server", dns.server, "--timeout", "5s")
    assert result.code == 0, result.stderr
    assert '("schema=42")' in result.stderr


def test_dns_type_a_is_not_satisfied_by_aaaa(run_cli, dns):
    dns.add("v6only.test", "fd00::5")
    result = run_cli(
        "wait-for", "dns:v6only.test?type=A", "dns:v6only.test?type=AAAA", "--dns-server", dns.server, "--timeout", "1s"
    )
    assert result.code == 1
    assert "dns:v6only.test?type=AAAA is ready" in result.stderr and "(fd00::5)" in result.stderr
    assert result.lines[-1].endswith("not ready: dns:v6only.test?type=A (no A record)")


def test_dns_name_without_the_type_asked_for(run_cli, dns):
    dns.add("web.test", "10.0.0.8")
    result = run_cli("wait-for", "dns:web.test?type=SRV", "--dns-server", dns.server, "--timeout", "1s")
    assert result.code == 1
    assert result.lines[-1].endswith("not ready: dns:web.test?type=SRV (no SRV record)")


RESOLV_CONF = "nameserver {ns}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"


def run_in_pod_resolver(
    tmp_path: Path, dns: DnsServer, *args: str, resolv_conf: str = RESOLV_CONF
) -> subprocess.Popen[str]:
    """Run initkit with a pod-like /etc/resolv.conf seen through a private mount namespace."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(resolv_conf.format(ns=dns.address))
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script, str(resolv), *initkit_command(*args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_dns_short_name_through_the_pods_search_list(tmp_path, dns):
    proc = run_in_pod_resolver(tmp_path, dns, "wait-for", "dns:myservice", "--timeout", "20s", "--interval", "300ms")
    wait_until(lambda: was_asked(dns, "myservice.default.svc.cluster.local") or proc.poll() is not None, 15)
    assert proc.poll() is None, proc.communicate()
    dns.add("myservice.default.svc.cluster.local", "10.96.0.10")
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "dns:myservice is ready" in err and "10.96.0.10" in err
    asked = " ".join(dns.queries())
    assert "myservice.default.svc.cluster.local" in asked  # the search list was used


def test_dns_short_name_times_out_with_nxdomain_through_the_pod_resolver(tmp_path, dns):
    proc = run_in_pod_resolver(tmp_path, dns, "wait-for", "dns:mydb", "--timeout", "1s")
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 1
    assert "dns:mydb (NXDOMAIN)" in err
    names = " ".join(dns.queries())
    for suffix in ("default.svc.cluster.local", "svc.cluster.local", "cluster.local"):
        assert f"mydb.{suffix}" in names


def test_dns_dotted_name_is_asked_as_given_first_and_a_trailing_dot_only_as_given(tmp_path, dns):
    dns.add("a.b.c.d.e.f", "10.0.0.6")
    dns.add("g.test", "10.0.0.7")
    proc = run_in_pod_resolver(tmp_path, dns, "wait-for", "dns:a.b.c.d.e.f", "dns:g.test.", "--timeout", "10s")
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    asked = sorted(re.search(r"query\[\w+\] (\S+)", line).group(1) for line in dns.queries())
    assert asked == ["a.b.c.d.e.f", "g.test"]  # 5 dots, ndots:5: as given first, so no search name was asked


def test_dns_next_nameserver_when_the_first_is_silent(tmp_path, dns):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent_address = f"127.55.{os.getpid() % 250 + 1}.1"
    silent.bind((silent_address, 53))
    dns.add("up.test", "10.0.0.5")
    try:
        started = time.monotonic()
        proc = run_in_pod_resolver(
            tmp_path,
            dns,
            "wait-for",
            "dns:up.test.",
            "--timeout",
            "10s",
            resolv_conf=f"nameserver {silent_address}\nnameserver {{ns}}\n",
        )
        _, err = proc.communicate(timeout=15)
    finally:
        silent.close()
    assert proc.returncode == 0, err
    assert "(10.0.0.5)" in err
    assert 1.5 < time.monotonic() - started < 6  # after the first server's 2 s timeout


def test_resolv_conf_as_dnspython_reads_it_for_the_pod(tmp_path):
    from initkit.probes.dns import make_resolver

    path = tmp_path / "resolv.conf"
    path.write_text(
        "# pod\nnameserver 10.96.0.10\nnameserver fd00::10 ; second\ndomain old.example\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local.\noptions ndots:5 timeout:1 rotate\n"
    )
    resolver = make_resolver(None, str(path))
    assert resolver.nameservers == ["10.96.0.10", "fd00::10"]
    assert [str(s) for s in resolver.search] == ["default.svc.cluster.local.", "svc.cluster.local.", "cluster.local."]
    assert (resolver.ndots, resolver.timeout) == (5, 1)
    replaced = make_resolver("127.0.0.1:5353", str(path))
    assert (replaced.nameservers, replaced.port, len(replaced.search)) == (["127.0.0.1"], 5353, 3)


def test_missing_resolv_conf_means_localhost_as_in_glibc(tmp_path):
    from initkit.probes.dns import make_resolver

    assert make_resolver(None, str(tmp_path / "none")).nameservers == ["127.0.0.1"]


# --- TCP, HTTP, files ------------------------------------------------------------------------


def test_tcp_port_that_starts_listening_later(run_cli):
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen() -> None:
        listener.bind(("127.0.0.1", port))
        listener.listen()

    later(0.8, listen)
    try:
        result = run_cli("wait-for", f"tcp:127.0.0.1:{port}", "--interval", "200ms", "--timeout", "10s")
    finally:
        listener.close()
    assert result.code == 0, result.stderr
    assert f"tcp:127.0.0.1:{port} is ready" in result.stderr


def test_tcp_ipv6_literal(run_cli):
    listener = socket.socket(socket.AF_INET6)
    try:
        listener.bind(("::1", 0))
    except OSError as exc:  # a container started without IPv6 has no ::1
        listener.close()
        missing(f"no IPv6 loopback ({exc.strerror})", "run where ::1 exists")
    listener.listen()
    port = listener.getsockname()[1]
    try:
        result = run_cli("wait-for", f"tcp:[::1]:{port}", "--timeout", "5s")
    finally:
        listener.close()
    assert result.code == 0, result.stderr


def test_http_503_then_200(run_cli):
    server = ScriptedHttpServer()
    server.script = [Reply(503, "starting"), Reply(503, "starting")]
    try:
        result = run_cli("wait-for", server.url("/healthz"), "--interval", "100ms", "--timeout", "10s")
    finally:
        server.stop()
    assert result.code == 0, result.stderr
    assert [s.path for s in server.seen] == ["/healthz"] * 3


def test_http_timeout_reports_last_status(run_cli):
    server = ScriptedHttpServer()
    server.default = Reply(503, "down")
    try:
        result = run_cli("wait-for", server.url(), "--timeout", "1s", "--interval", "200ms")
    finally:
        server.stop()
    assert result.code == 1
    assert f"{server.url()} (HTTP 503)" in result.stderr


def test_https_with_a_ca_the_test_made(run_cli, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ScriptedHttpServer(tls=context)
    try:
        untrusted = run_cli("wait-for", server.url(), "--timeout", "1s")
        trusted = run_cli("wait-for", server.url(), "--ca-file", str(ca_file), "--timeout", "5s")
    finally:
        server.stop()
    assert untrusted.code == 1 and "certificate verify failed" in untrusted.stderr
    assert trusted.code == 0, trusted.stderr


def _wait_http(run_cli, replies, target_suffix, *, default=None, timeout="3s", path="/health"):
    server = ScriptedHttpServer()
    server.script = list(replies)
    if default is not None:
        server.default = default
    try:
        return server, run_cli(
            "wait-for", server.url(path) + target_suffix, "--interval", "100ms", "--timeout", timeout
        )
    finally:
        server.stop()


def test_http_expected_status_set(run_cli):
    server, result = _wait_http(run_cli, [Reply(200, "ok"), Reply(503, "x")], "#status=204,401", default=Reply(401))
    assert result.code == 0, result.stderr
    assert len(server.seen) == 3 and "(HTTP 401)" in result.stderr
    assert all(s.path == "/health" for s in server.seen)  # the fragment is never sent


def test_http_status_class_and_timeout_names_the_expectation(run_cli):
    _, result = _wait_http(run_cli, [], "#status=3xx", default=Reply(200), timeout="500ms")
    assert result.code == 1 and "(HTTP 200, expected 3xx)" in result.lines[-1]


def test_http_body_substring_and_regex(run_cli):
    replies = [Reply(200, "status: STARTING"), Reply(200, "status: UP, version 1.2.3")]
    server, result = _wait_http(run_cli, replies, r"#body=UP&regex=version%20\d%2B\.\d")
    assert result.code == 0, result.stderr
    assert len(server.seen) == 2
    _, failed = _wait_http(run_cli, [], "#body=UP", default=Reply(200, "DOWN"), timeout="500ms")
    assert failed.code == 1 and "body does not hold 'UP': 'DOWN'" in failed.lines[-1]


def test_http_json_fields(run_cli):
    down = json.dumps({"status": "DOWN", "components": {"db": {"status": "UP"}}, "ready": False, "n": 3})
    up = json.dumps({"status": "UP", "components": {"db": {"status": "UP"}}, "ready": True, "n": 3})
    suffix = "#json=status=UP&json=components.db.status=UP&json=ready=true&json=n=3"
    server, result = _wait_http(run_cli, [Reply(200, down), Reply(200, "not json")], suffix, default=Reply(200, up))
    assert result.code == 0, result.stderr
    assert len(server.seen) == 3
    _, failed = _wait_http(run_cli, [], "#json=status=UP", default=Reply(200, down), timeout="500ms")
    assert failed.code == 1 and "JSON status is 'DOWN', expected 'UP'" in failed.lines[-1]
    _, typed = _wait_http(run_cli, [], "#json=ready=1", default=Reply(200, up), timeout="500ms")
    assert typed.code == 1 and "JSON ready is 'true', expected '1'" in typed.lines[-1]


def test_http_json_beyond_64_kib_is_not_read(run_cli):
    big = json.dumps({"pad": "x" * 70_000, "status": "UP"})
    _, result = _wait_http(run_cli, [], "#json=status=UP", default=Reply(200, big), timeout="500ms")
    assert result.code == 1 and "body is not JSON (first 64 KiB read)" in result.lines[-1]


def test_http_header_match(run_cli):
    replies = [Reply(200, "{}", {"X-State": "warming"})]
    server, result = _wait_http(
        run_cli, replies, "#header=x-state:ready", default=Reply(200, "{}", {"X-State": "ready"})
    )
    assert result.code == 0, result.stderr
    assert len(server.seen) == 2


def test_per_target_expectations(run_cli):
    a, b = ScriptedHttpServer(), ScriptedHttpServer()
    a.default, b.default = Reply(200, "A-UP"), Reply(503, "B")
    try:
        result = run_cli(
            "wait-for", a.url("/") + "#body=A-UP", b.url("/") + "#status=503", "--interval", "100ms", "--timeout", "3s"
        )
    finally:
        a.stop()
        b.stop()
    assert result.code == 0, result.stderr


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("#nope=1", "unknown expectation 'nope'"),
        ("#status=20", "expected codes such as 200,204"),
        ("#status=600", "expected codes such as 200,204"),
        ("#regex=(", "not a valid regular expression"),
        ("#json=status", "expected json=FIELD=VALUE"),
        ("#json=a..b=1", "expected json=FIELD=VALUE"),
        ("#header=novalue", "expected header=NAME:TEXT"),
        ("#body", "expected KEY=VALUE after '#'"),
    ],
)
def test_malformed_http_expectations_are_exit_2(run_cli, suffix, message):
    result = run_cli("wait-for", "http://127.0.0.1:1/h" + suffix, "--timeout", "1s")
    assert result.code == 2 and len(result.lines) == 1 and message in result.stderr


def test_connection_refused_is_named(run_cli):
    port = free_port()
    result = run_cli("wait-for", f"http://127.0.0.1:{port}/", f"tcp:127.0.0.1:{port}", "--timeout", "1s")
    assert result.code == 1
    assert result.stderr.count("connection refused") == 2


def test_all_targets_concurrently_and_file_target(run_cli, tmp_path, dns):
    flag = tmp_path / "ready"
    later(0.5, flag.touch)
    later(0.7, lambda: dns.add("svc.test", "10.0.0.1"))
    started = time.monotonic()
    result = run_cli("wait-for", f"file:{flag}", "dns:svc.test", "--dns-server", dns.server, "--interval", "100ms")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started < 3
    assert "all targets ready (2)" in result.stderr


def test_pending_summary_every_ten_seconds_not_every_poll(run_cli, tmp_path, monkeypatch):
    from initkit.commands import wait_for

    monkeypatch.setattr(wait_for, "SUMMARY_EVERY", 0.5)
    flag = tmp_path / "late"
    later(1.3, flag.touch)
    result = run_cli("wait-for", f"file:{flag}", "--interval", "50ms")
    assert result.code == 0
    summaries = [line for line in result.lines if "waiting for 1 of 1 targets" in line]
    assert 1 <= len(summaries) <= 3, result.stderr  # ~26 polls, 2 summaries
    assert "(no such file)" in summaries[0]


# --- Bad input, options from the environment, exec, signals ----------------------------------


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tcp:db", "malformed target 'tcp:db'"),
        ("tcp:db:http", "malformed target 'tcp:db:http'"),
        ("tcp:db:70000", "port from 1 to 65535"),
        ("ftp://x", "unknown target kind 'ftp'"),
        ("myservice", "malformed target 'myservice'"),
        ("dns:", "malformed target 'dns:'"),
        ("dns:a..b", "invalid DNS name 'a..b'"),
        ("dns:" + "x" * 64 + ".test", "invalid DNS name"),
        ("dns:my service", "invalid DNS name 'my service'"),
        ("dns:mydb?", "nothing after '?'"),
        ("dns:mydb?size=3", "unknown key 'size'"),
        ("dns:mydb?min=0", "min='0': expected a whole number from 1 to 65535"),
        ("dns:mydb?min=-1", "min='-1'"),
        ("dns:mydb?min=three", "min='three'"),
        ("dns:mydb?min", "min= needs a value"),
        ("dns:mydb?type=MX", "unknown record type 'MX': expected one of A, AAAA, CNAME, SRV, TXT"),
        ("dns:mydb?type=SRV&type=TXT", "type= given twice"),
        ("dns:mydb?min=2&nope", "unknown key 'nope'"),
        ("http://[::1", "malformed target 'http://[::1': invalid URL: Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/", "Port out of range 0-65535"),
        ("http://127.0.0.1:0/", "port must be 1 to 65535"),
        ("https:///healthz", "expected http://HOST"),
        ("http://[mydb]/", "malformed target 'http://[mydb]/'"),
        ("http://alice:s3cret@[::1/", "malformed target 'http://alice:***@[::1/'"),
    ],
)
def test_malformed_targets_are_bad_input_at_once(run_cli, target, message):
    with cancel.use_clock(cancel.FakeClock()):  # a target taken as good would time out (exit 1) at once
        result = run_cli("wait-for", target)
    assert result.code == 2
    assert len(result.lines) == 1 and message in result.stderr, result.stderr
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize("server", ["not-an-ip", "127.0.0.1:x", "127.0.0.1:0", "", "[::1]:99999", "[::1]x"])
@pytest.mark.parametrize("target", ["dns:a.test", "file:/"])
def test_malformed_dns_server_is_bad_input(run_cli, server, target):
    result = run_cli("wait-for", target, "--dns-server", server)
    assert result.code == 2 and "--dns-server" in result.stderr
    assert len(result.lines) == 1


def test_help_documents_record_counts_and_types(run_cli):
    result = run_cli("wait-for", "--help")
    assert result.code == 0
    text = " ".join(result.stdout.split())
    assert "dns:NAME?min=N (at least N addresses" in text
    assert "dns:NAME?type=SRV|TXT|CNAME|A|AAAA" in text and "dns:_postgresql._tcp.mydb?type=SRV&min=2" in text


def test_first_line_names_the_targets_and_the_timeout_at_once(tmp_path):
    proc = subprocess.Popen(
        initkit_command("wait-for", f"file:{tmp_path}/never", "tcp:127.0.0.1:9", "--timeout", "2m"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline()
        assert proc.poll() is None  # kubectl logs is not empty while it waits
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    assert (
        line
        == f"initkit wait-for: waiting for file:{tmp_path}/never, tcp:127.0.0.1:9 (timeout 2m0s, checking every 1s)\n"
    )


def test_no_timeout_is_said_so(run_cli, tmp_path):
    result = run_cli("wait-for", f"file:{tmp_path}", "--timeout", "0", "--interval", "500ms")
    assert result.lines[0] == f"initkit wait-for: waiting for file:{tmp_path} (no timeout, checking every 0.5s)"


def test_targets_with_line_breaks_stay_one_line(run_cli):
    result = run_cli("wait-for", "file:/no\nsuch", "--timeout", "200ms")
    assert result.code == 1
    assert len(result.lines) == 2
    assert result.lines[-1].endswith("not ready: file:/no\\nsuch (no such file)")


def test_malformed_duration_is_bad_input(run_cli):
    result = run_cli("wait-for", "file:/", "--timeout", "5 minutes")
    assert result.code == 2 and "invalid duration" in result.stderr


def test_options_and_targets_from_environment(run_cli, tmp_path):
    result = run_cli(
        "wait-for",
        env={"INITKIT_WAIT_FOR_TARGETS": f"file:{tmp_path} file:/nonexistent", "INITKIT_WAIT_FOR_TIMEOUT": "700ms"},
    )
    assert result.code == 1
    assert "timed out after 0.7s; not ready: file:/nonexistent (no such file)" in result.stderr


def test_json_logs_parse(run_cli, tmp_path):
    result = run_cli("--log-format", "json", "wait-for", f"file:{tmp_path}", "file:/nope", "--timeout", "300ms")
    assert result.code == 1
    records = [json.loads(line) for line in result.lines]
    assert [r["level"] for r in records] == ["info", "info", "error"]
    assert records[0]["msg"] == f"waiting for file:{tmp_path}, file:/nope (timeout 0.3s, checking every 1s)"
    assert records[-1]["command"] == "wait-for" and "file:/nope" in records[-1]["msg"]


def test_exec_after_double_dash(run_proc, tmp_path):
    result = run_proc("wait-for", f"file:{tmp_path}", "--", sys.executable, "-c", "print('app started')")
    assert result.code == 0, result.stderr
    assert result.stdout == "app started\n"


@pytest.mark.parametrize(("command", "code"), [("/nonexistent/app", 127), ("/etc/hostname", 126)])
def test_exec_failures(run_cli, tmp_path, command, code):
    result = run_cli("wait-for", f"file:{tmp_path}", "--", command)
    assert result.code == code
    assert f"cannot exec {command}" in result.stderr


def test_empty_command_after_double_dash_is_127_in_one_line(run_cli):
    result = run_cli("--quiet", "wait-for", "file:/", "--", "")
    assert result.code == 127
    assert result.lines == ["initkit wait-for: error: cannot exec '': command not found"]


def test_sigterm_while_waiting_exits_143_within_a_second(tmp_path):
    proc = subprocess.Popen(
        initkit_command("wait-for", f"file:{tmp_path}/never", f"tcp:127.0.0.1:{free_port()}"),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "waiting for" in proc.stderr.readline()  # the checks have started
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=5)
    assert time.monotonic() - sent < 1.0
    assert code == 143
    assert proc.stderr.read().strip().endswith("stopped by SIGTERM")


def test_zero_timeout_waits_until_ready(run_cli, tmp_path):
    flag = tmp_path / "f"
    later(0.5, flag.touch)
    result = run_cli("wait-for", f"file:{flag}", "--timeout", "0", "--interval", "100ms")
    assert result.code == 0
    assert os.path.exists(flag)


# --- time, on a fake clock -------------------------------------------------------------------


class _CountingProbe:
    """Ready at its `ready_on`th check; each check takes `takes` seconds of the fake clock."""

    label = "counting"

    def __init__(self, clock: cancel.FakeClock, ready_on: int, takes: float, token: cancel.Token | None = None):
        self.clock, self.ready_on, self.takes, self.token = clock, ready_on, takes, token
        self.starts: list[float] = []

    def check(self, token=None) -> str:
        from initkit.probes import NotReady

        self.starts.append(self.clock.monotonic())
        self.clock.advance(self.takes)
        if self.token is not None and len(self.starts) == 2:
            self.token.cancel()  # a signal during the second check
        if len(self.starts) < self.ready_on:
            raise NotReady("not yet")
        return "ok"


@pytest.mark.parametrize(("takes", "starts"), [(0.3, [0.0, 2.0, 4.0, 6.0]), (2.5, [0.0, 2.5, 5.0, 7.5])])
def test_checks_start_one_interval_apart_or_at_once_after_a_longer_check(takes, starts):
    from initkit.commands import wait_for

    clock = cancel.FakeClock(start=0.0)
    probe = _CountingProbe(clock, ready_on=4, takes=takes)
    status = wait_for._Status("counting")
    assert wait_for.poll(probe, status, cancel.Token(clock=clock), interval=2.0, started=0.0)
    assert probe.starts == starts
    assert status.ready.is_set() and status.last_error == "not yet"


def test_a_cancelled_token_ends_the_checks_without_another():
    from initkit.commands import wait_for

    clock = cancel.FakeClock(start=0.0)
    token = cancel.Token(clock=clock)
    probe = _CountingProbe(clock, ready_on=10, takes=0.1, token=token)
    assert not wait_for.poll(probe, wait_for._Status("counting"), token, interval=1.0, started=0.0)
    assert probe.starts == [0.0, 1.0]  # the pause after the cancelled check ends at once, with no third check


def test_the_timeout_is_a_deadline_on_the_runs_clock(run_cli, tmp_path):
    with cancel.use_clock(cancel.FakeClock()):  # five minutes pass at once
        result = run_cli("wait-for", f"file:{tmp_path}/never", "--timeout", "5m")
    assert result.code == 1
    assert f"timed out after 5m0s; not ready: file:{tmp_path}/never (" in result.lines[-1]
