"""wait-for against a real DNS server (dnsmasq), real TCP and HTTP(S) servers and files."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import initkit_command
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


# --- DNS -------------------------------------------------------------------------------------


def test_dns_name_that_appears_while_waiting(run_cli, dns):
    later(1.0, lambda: dns.add("myservice.test", "10.0.0.7"))
    started = time.monotonic()
    result = run_cli("wait-for", "dns:myservice.test", "--dns-server", dns.server, "--interval", "200ms")
    assert result.code == 0, result.stderr
    assert 1.0 <= time.monotonic() - started < 3
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
    assert "DNS timeout" in result.stderr


RESOLV_CONF = "nameserver {ns}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"


def run_in_pod_resolver(tmp_path: Path, dns: DnsServer, *args: str) -> subprocess.Popen[str]:
    """Run initkit with a pod-like /etc/resolv.conf seen through a private mount namespace."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(RESOLV_CONF.format(ns=dns.address))
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script, str(resolv), *initkit_command(*args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_dns_short_name_through_the_pods_search_list(tmp_path, dns):
    proc = run_in_pod_resolver(tmp_path, dns, "wait-for", "dns:myservice", "--timeout", "20s", "--interval", "300ms")
    time.sleep(1.0)
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
    listener.bind(("::1", 0))
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
    ],
)
def test_malformed_targets_are_bad_input(run_cli, target, message):
    result = run_cli("wait-for", target)
    assert result.code == 2
    assert len(result.lines) == 1 and message in result.stderr


@pytest.mark.parametrize("server", ["not-an-ip", "127.0.0.1:x", "127.0.0.1:0"])
def test_malformed_dns_server_is_bad_input(run_cli, server):
    result = run_cli("wait-for", "dns:a.test", "--dns-server", server)
    assert result.code == 2 and "--dns-server" in result.stderr


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
    assert [r["level"] for r in records] == ["info", "error"]
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


def test_sigterm_while_waiting_exits_143_within_a_second(tmp_path):
    proc = subprocess.Popen(
        initkit_command("wait-for", f"file:{tmp_path}/never", f"tcp:127.0.0.1:{free_port()}"),
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
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
