"""Property tests of wait-for's target parser: for any text, a probe or one line of bad input.

The parser is tested directly (fast, many examples), and through the real CLI in a child
process started in an empty network namespace (`unshare -n`), so that whatever name a
random target holds, no query can reach the host's resolver or leave the machine.
"""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initkit.errors import BadInput
from initkit.probes import parse
from initkit.probes.dns import parse_server
from tests.conftest import initkit_command, missing, requirement

# Beginnings that reach deep into each parser, followed by anything.
PREFIXES = [
    "",
    "dns:",
    "dns:mydb?",
    "dns:mydb?min=",
    "dns:mydb?type=",
    "dns:_pg._tcp.mydb?type=SRV&min=",
    "tcp:",
    "tcp:[::1]:",
    "tcp:mydb:",
    "http://",
    "https://",
    "http://[",
    "http://user:pass@",
    "http://127.0.0.1:",
    "file:",
    "ftp://",
]
TAILS = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="abc019.:-_?&=[]@/%#\\ \n", max_size=30),
)
TARGETS = st.builds(str.__add__, st.sampled_from(PREFIXES), TAILS)


def is_one_line(text: str) -> bool:
    return len(text.splitlines()) == 1 and text.strip() == text


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(target=TARGETS, dns_server=st.one_of(st.none(), st.just("127.0.0.1"), st.text(max_size=20)))
def test_any_target_is_a_probe_or_one_line_of_bad_input(target, dns_server):
    try:
        probe = parse(target, dns_server=dns_server)
    except BadInput as exc:
        assert exc.exit_code == 2
        assert is_one_line(str(exc)), repr(str(exc))
        assert "pass@" not in str(exc)  # a URL's password is never repeated
    else:
        assert probe.label == target


@given(text=st.one_of(st.text(max_size=30), st.text(alphabet="0123456789.:[]abcdef", max_size=30)))
def test_any_dns_server_is_an_address_or_one_line_of_bad_input(text):
    try:
        host, port = parse_server(text)
    except BadInput as exc:
        assert is_one_line(str(exc)) and "--dns-server" in str(exc)
    else:
        assert 0 < port < 65536 and host


ARGV_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)


@pytest.fixture(scope="module")
def own_network() -> None:
    """Random names must stay off the network: each run gets a network namespace of its own."""
    requirement.tool("unshare", "apt-get install util-linux")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        missing("unshare -n is refused", "run as root")


@pytest.mark.root
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.one_of(st.builds(str.__add__, st.sampled_from(PREFIXES), ARGV_TEXT), ARGV_TEXT))
def test_the_cli_ends_any_target_with_exit_0_1_or_2_and_one_line(own_network, target):
    proc = subprocess.run(
        ["unshare", "-n", *initkit_command("--quiet", "wait-for", target, "--timeout", "1ms")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert len(lines) == (0 if proc.returncode == 0 else 1), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
