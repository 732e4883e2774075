"""The stub resolver against a real dnsmasq (and silent or closed ports)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from initkit import resolver
from initkit.resolver import ResolvConf, Resolver, names_to_try, read_resolv_conf
from tests.servers import DnsServer, free_port


@pytest.fixture
def dns(tmp_path: Path):
    server = DnsServer(tmp_path / "dns", extra=("cname=alias.test,target.test",))
    yield server
    server.stop()


def test_resolv_conf_as_glibc_reads_it(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(
        "# pod\nnameserver 10.96.0.10\nnameserver fd00::10 ; second\ndomain old.example\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local.\noptions ndots:5 timeout:1 rotate\n"
    )
    conf = read_resolv_conf(str(path))
    assert conf.nameservers == [("10.96.0.10", 53), ("fd00::10", 53)]
    assert conf.search == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert (conf.ndots, conf.timeout) == (5, 1.0)


def test_missing_resolv_conf_means_localhost(tmp_path):
    conf = read_resolv_conf(str(tmp_path / "none"))
    assert conf.nameservers == [("127.0.0.1", 53)] and conf.search == [] and conf.ndots == 1


def test_ndots_decides_whether_the_search_list_comes_first():
    conf = ResolvConf(search=["ns.svc.cluster.local", "cluster.local"], ndots=5)
    assert names_to_try("mydb", conf) == ["mydb.ns.svc.cluster.local.", "mydb.cluster.local.", "mydb."]
    assert names_to_try("a.b.c.d.e.f", conf)[0] == "a.b.c.d.e.f."
    assert names_to_try("mydb.other.svc.cluster.local.", conf) == ["mydb.other.svc.cluster.local."]
    assert names_to_try("x.y", ResolvConf(search=["s"], ndots=1)) == ["x.y.", "x.y.s."]


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".test", ("a." * 130) + "b"])
def test_invalid_names(name):
    with pytest.raises(ValueError, match="invalid DNS name"):
        resolver.encode_name(name)


def conf_for(*servers: tuple[str, int], search: tuple[str, ...] = (), timeout: float = 1.0) -> ResolvConf:
    return ResolvConf(nameservers=list(servers), search=list(search), ndots=5, timeout=timeout)


def test_search_list_and_nxdomain(dns):
    dns.add("web.team.test", "10.0.0.3")
    r = Resolver(conf_for((dns.address, 53), search=("nope.test", "team.test")))
    assert r.resolve("web") == ["10.0.0.3"]
    with pytest.raises(resolver.NameNotFound, match="NXDOMAIN"):
        r.resolve("db")


def test_cname_chain_and_ipv6(dns):
    dns.add("target.test", "10.0.0.4")
    dns.add("six.test", "fd00::6")
    r = Resolver(conf_for((dns.address, 53)))
    assert r.resolve("alias.test") == ["10.0.0.4"]
    assert r.resolve("six.test") == ["fd00::6"]


def test_truncated_udp_answer_is_retried_over_tcp(dns):
    addresses = [f"10.9.{i // 250}.{i % 250 + 1}" for i in range(60)]  # > 512 bytes without EDNS
    dns.add("big.test", *addresses)
    r = Resolver(conf_for((dns.address, 53)))
    assert sorted(r.resolve("big.test")) == sorted(addresses)


def test_next_nameserver_when_the_first_is_silent(dns):
    dns.add("up.test", "10.0.0.5")
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        r = Resolver(conf_for(silent.getsockname(), (dns.address, 53)))
        started = time.monotonic()
        assert r.resolve("up.test") == ["10.0.0.5"]
        assert 0.9 < time.monotonic() - started < 2.5
    finally:
        silent.close()


def test_no_server_listening_is_a_timeout_naming_it():
    port = free_port()
    r = Resolver(conf_for(("127.0.0.1", port)))
    with pytest.raises(resolver.ServerTimeout, match=f"no answer from 127.0.0.1:{port}"):
        r.resolve("x.test")


def test_refused_is_reported(tmp_path):
    server = DnsServer(tmp_path / "dns2", nxdomain_for_unknown=False)
    try:
        r = Resolver(conf_for((server.address, 53)))
        with pytest.raises(resolver.DnsError, match=f"REFUSED from {server.address}"):
            r.resolve("www.elsewhere.test.")
    finally:
        server.stop()
