"""wait-for targets: parse `dns:NAME`, `tcp:HOST:PORT`, `http(s)://...`, `file:PATH`.

Each probe has a `label` and a `check()` that returns a short detail when the
target is ready and raises `NotReady(reason)` when it is not. Probe modules
import their libraries lazily, so `wait-for tcp:...` loads neither requests
nor dnspython. Everything a user can get wrong in a target is judged here, at
parse time, so a typo is exit 2 at once rather than retried until the timeout.
"""

from __future__ import annotations

from typing import Protocol

from initkit.errors import BadInput
from initkit.urls import check_http_url, without_userinfo


class NotReady(Exception):
    """The target is not ready; the message is the reason (NXDOMAIN, HTTP 503, ...)."""


class Probe(Protocol):
    label: str

    def check(self) -> str: ...


SCHEMES = "dns:NAME[?type=TYPE&min=N], tcp:HOST:PORT, http://URL, https://URL or file:PATH"


def parse(
    target: str,
    *,
    dns_server: str | None = None,
    ca_file: str | None = None,
    deadline: float | None = None,
) -> Probe:
    """A probe for TARGET; `deadline` (time.monotonic()) bounds each DNS check so it ends in time."""
    kind, sep, rest = target.partition(":")
    if not sep or not rest:
        raise BadInput(f"malformed target {without_userinfo(target)!r}: expected {SCHEMES}")
    if kind == "dns":
        from initkit.probes.dns import DnsProbe

        return DnsProbe.parse(target, rest, dns_server, deadline=deadline)
    if kind == "tcp":
        from initkit.probes.tcp import TcpProbe

        return TcpProbe.parse(target, rest)
    if kind in ("http", "https"):
        check_http_url(target, label="malformed target")
        from initkit.probes.http import HttpProbe

        return HttpProbe(target, ca_file)
    if kind == "file":
        from initkit.probes.file import FileProbe

        return FileProbe(target, rest)
    raise BadInput(f"unknown target kind {kind!r} in {without_userinfo(target)!r}: expected {SCHEMES}")
