"""wait-for's dns: targets against hostile and slow DNS servers, with glibc as the reference.

Every server here is a `HostileDns` on port 53 of its own 127.x.y.z, over UDP and TCP.
initkit runs as a child process that sees a pod's /etc/resolv.conf through a private mount
namespace; glibc's `getent ahosts` runs under the same resolv.conf, so each case can say both
what initkit does and that glibc (what every other program in the pod uses) agrees.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from tests.conftest import initkit_command
from tests.security import hostile_dns
from tests.security.hostile_dns import HostileDns, Reply

SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
POD_RESOLV_CONF = f"nameserver {{ns}}\nsearch {' '.join(SEARCH)}\noptions ndots:5\n"
_resolv_files = itertools.count()


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileDns]]:
    started: list[HostileDns] = []

    def start(script: hostile_dns.Script) -> HostileDns:
        server = HostileDns(script)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def in_pod(tmp_path: Path, server: HostileDns, argv: list[str], timeout: float = 60) -> tuple[int, str, float]:
    """Run ARGV with SERVER as the pod's only nameserver; (exit code, stdout + stderr, seconds taken)."""
    resolv = tmp_path / f"resolv-{next(_resolv_files)}.conf"
    resolv.write_text(POD_RESOLV_CONF.format(ns=server.address))
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    started = time.monotonic()
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, str(resolv), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def glibc(tmp_path: Path, server: HostileDns, name: str) -> tuple[bool, set[str]]:
    """(resolved?, addresses) as `getent ahosts NAME` sees them in the pod."""
    code, out, _ = in_pod(tmp_path, server, ["getent", "ahosts", name])
    return code == 0, {line.split()[0] for line in out.splitlines() if line.strip()}


def initkit(tmp_path: Path, server: HostileDns, *args: str) -> tuple[int, str, float]:
    return in_pod(tmp_path, server, initkit_command("wait-for", *args))


def qname(query: dns.message.Message) -> str:
    return query.question[0].name.to_text(omit_final_dot=True)


def is_a(query: dns.message.Message) -> bool:
    return query.question[0].rdtype == dns.rdatatype.A


def nxdomain(query: dns.message.Message) -> bytes:
    return hostile_dns.answer(query, rcode=dns.rcode.NXDOMAIN)


def control(query: dns.message.Message) -> Reply | None:
    """control.test has 10.0.0.1 (and no AAAA): proves the server and the setup work."""
    if qname(query) == "control.test":
        return Reply(hostile_dns.answer(query, "10.0.0.1") if is_a(query) else hostile_dns.answer(query))
    return None


# --- answers that must not be believed ---------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_answer_to_another_question_is_not_believed(tmp_path, hostile, transport):
    def script(query: dns.message.Message, how: str) -> Reply:
        if (reply := control(query)) is not None:
            return reply
        if transport == "tcp" and how == "udp":
            return Reply(hostile_dns.truncated(query))  # so the lie comes over TCP
        if is_a(query):
            return Reply(hostile_dns.other_question(query, "elsewhere.test", "10.6.6.6"))
        return Reply(hostile_dns.other_question(query, "elsewhere.test", "fd00::666"))

    server = hostile(script)
    code, out, took = initkit(tmp_path, server, "dns:victim.test.", "dns:control.test.", "--timeout", "3s")
    assert code == 1, out
    assert "dns:control.test. is ready" in out and "(10.0.0.1)" in out
    assert "not ready: dns:victim.test." in out
    assert "10.6.6.6" not in out and "fd00::666" not in out
    assert took < 6
    assert ("victim.test.", "A", transport) in server.asked
    assert glibc(tmp_path, server, "victim.test.") == (False, set())
    assert glibc(tmp_path, server, "control.test.") == (True, {"10.0.0.1"})


@pytest.mark.parametrize("malformed", [hostile_dns.rdlength_past_end, hostile_dns.owner_pointer_loop])
def test_a_malformed_record_is_not_believed(tmp_path, hostile, malformed):
    def script(query: dns.message.Message, how: str) -> Reply:
        if (reply := control(query)) is not None:
            return reply
        if is_a(query):
            return Reply(malformed(query, "10.6.6.6"))
        return Reply(hostile_dns.answer(query))

    server = hostile(script)
    code, out, _ = initkit(tmp_path, server, "dns:victim.test.", "dns:control.test.", "--timeout", "2s")
    assert code == 1, out
    assert "dns:control.test. is ready" in out
    assert "not ready: dns:victim.test." in out and "10.6.6.6" not in out
    assert glibc(tmp_path, server, "victim.test.") == (False, set())


def test_a_tcp_answer_dripped_byte_by_byte_does_not_outlive_the_timeout(tmp_path, hostile):
    def script(query: dns.message.Message, how: str) -> Reply:
        if how == "udp":
            return Reply(hostile_dns.truncated(query))
        drip = 0.5 if qname(query) == "drip.test" else 0.01  # ~25 s for the whole answer, or ~0.5 s
        return Reply(hostile_dns.answer(query, "10.0.0.9") if is_a(query) else hostile_dns.answer(query), drip=drip)

    server = hostile(script)
    code, out, took = initkit(tmp_path, server, "dns:drip.test.", "dns:trickle.test.", "--timeout", "3s")
    assert code == 1, out
    assert "dns:trickle.test. is ready" in out  # a TCP answer that arrives in time is taken
    assert "not ready: dns:drip.test. (DNS timeout" in out
    assert took < 3 + 2  # the deadline holds however the bytes arrive (start-up included)
    assert ("drip.test.", "A", "tcp") in server.asked


# --- what glibc resolves, initkit resolves, asking the same names ------------------------------


def only(name: str, address: str, *, servfail: str | None = None, delay: float = 0.0) -> hostile_dns.Script:
    """NAME has ADDRESS (no AAAA); SERVFAIL for the name SERVFAIL; NXDOMAIN for everything else."""

    def script(query: dns.message.Message, how: str) -> Reply:
        if qname(query) == name:
            return Reply(hostile_dns.answer(query, address) if is_a(query) else hostile_dns.answer(query), delay)
        if qname(query) == servfail:
            return Reply(hostile_dns.answer(query, rcode=dns.rcode.SERVFAIL), delay)
        return Reply(nxdomain(query), delay)

    return script


def test_a_slow_server_still_resolves_a_short_name_through_the_whole_search_list(tmp_path, hostile):
    server = hostile(only("foo", "10.0.0.80", delay=0.8))  # every answer takes 0.8 s
    code, out, took = initkit(tmp_path, server, "dns:foo", "--timeout", "20s")
    assert code == 0, out
    assert "dns:foo is ready" in out and "(10.0.0.80)" in out
    assert took >= 4 * 0.8  # three search domains, then foo as given: one after another
    asked_by_initkit = server.names_asked()
    assert asked_by_initkit == [f"foo.{suffix}" for suffix in SEARCH] + ["foo"]
    server.asked.clear()
    assert glibc(tmp_path, server, "foo") == (True, {"10.0.0.80"})
    assert server.names_asked() == asked_by_initkit


def test_servfail_from_one_search_domain_goes_on_to_the_next(tmp_path, hostile):
    server = hostile(only("foo.svc.cluster.local", "10.0.0.2", servfail="foo.default.svc.cluster.local"))
    code, out, _ = initkit(tmp_path, server, "dns:foo", "--timeout", "5s")
    assert code == 0, out
    assert "(10.0.0.2)" in out
    asked_by_initkit = server.names_asked()
    assert asked_by_initkit == ["foo.default.svc.cluster.local", "foo.svc.cluster.local"]
    server.asked.clear()
    assert glibc(tmp_path, server, "foo") == (True, {"10.0.0.2"})
    assert server.names_asked() == asked_by_initkit


def test_servfail_everywhere_is_named(tmp_path, hostile):
    def script(query: dns.message.Message, how: str) -> Reply:
        return Reply(hostile_dns.answer(query, rcode=dns.rcode.SERVFAIL))

    server = hostile(script)
    code, out, _ = initkit(tmp_path, server, "dns:foo", "--timeout", "1s")
    assert code == 1
    assert f"not ready: dns:foo (SERVFAIL from {server.address})" in out
    assert server.names_asked() == [f"foo.{suffix}" for suffix in SEARCH] + ["foo"]  # none ended the search
    assert glibc(tmp_path, server, "foo") == (False, set())


def test_a_245_character_name_is_tried_as_given_when_no_search_domain_fits(tmp_path, hostile):
    name = ".".join(["a" * 60, "b" * 60, "c" * 60, "d" * 62])  # 3 dots: below ndots:5, so searched first
    assert len(name) == 245
    server = hostile(only(name, "10.0.2.45"))
    code, out, _ = initkit(tmp_path, server, f"dns:{name}", "--timeout", "5s")
    assert code == 0, out
    assert "(10.0.2.45)" in out
    assert server.names_asked() == [name]  # with any search domain it would be longer than 253
    server.asked.clear()
    assert glibc(tmp_path, server, name) == (True, {"10.0.2.45"})
    assert server.names_asked() == [name]


# --- one check's lifetime ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["silent", "drip"])
def test_one_check_ends_within_its_lifetime_even_without_a_deadline(hostile, monkeypatch, how):
    from initkit.probes import NotReady
    from initkit.probes import dns as dns_probe

    def script(query: dns.message.Message, transport: str) -> Reply:
        if how == "silent":
            return Reply(None)
        if transport == "udp":
            return Reply(hostile_dns.truncated(query))
        return Reply(hostile_dns.answer(query, "10.0.0.9"), drip=0.3)

    server = hostile(script)
    monkeypatch.setattr(dns_probe, "CHECK_LIFETIME", 1.5)  # 10 s in real life: --timeout 0 waits forever
    resolver = dns_probe.make_resolver(server.server)
    resolver.timeout = 0.4  # per query: several rounds fit in the lifetime, with dnspython's backoff between
    probe = dns_probe.DnsProbe("dns:x.test.", dns.name.from_text("x.test."), dns_probe.Wanted(), resolver)
    started = time.monotonic()
    with pytest.raises(NotReady, match=f"DNS timeout: no answer from {server.address}"):
        probe.check()
    assert 1.3 < time.monotonic() - started < 1.75
    probe.deadline = time.monotonic() + 0.7  # and a deadline nearer than the lifetime wins
    started = time.monotonic()
    with pytest.raises(NotReady):
        probe.check()
    assert time.monotonic() - started < 0.85
