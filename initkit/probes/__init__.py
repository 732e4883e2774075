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
        raise BadInput(f"malformed target {_without_userinfo(target)!r}: expected {SCHEMES}")
    if kind == "dns":
        from initkit.probes.dns import DnsProbe

        return DnsProbe.parse(target, rest, dns_server, deadline=deadline)
    if kind == "tcp":
        from initkit.probes.tcp import TcpProbe

        return TcpProbe.parse(target, rest)
    if kind in ("http", "https"):
        check_http_url(target)
        from initkit.probes.http import HttpProbe

        return HttpProbe(target, ca_file)
    if kind == "file":
        from initkit.probes.file import FileProbe

        return FileProbe(target, rest)
    raise BadInput(f"unknown target kind {kind!r} in {_without_userinfo(target)!r}: expected {SCHEMES}")


def check_http_url(url: str) -> None:
    """Refuse a URL no request could ever be sent to (BadInput), before any probe is built.

    Without this, `http://[::1` or a port of 99999 failed inside every check and
    was retried until --timeout, as if the server were merely not up yet.
    """
    import ipaddress
    import urllib.parse

    def bad(why: str) -> BadInput:
        return BadInput(f"malformed target {_without_userinfo(url)!r}: {why}")

    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise bad("a URL cannot hold whitespace or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise bad(str(exc).rstrip(".")) from None
    if not url.lower().startswith(("http://", "https://")) or not parts.hostname:
        raise bad("expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH")
    if port == 0 or (port is None and parts.netloc.rsplit("@", 1)[-1].endswith(":")):
        raise bad("port must be 1 to 65535")
    host = parts.hostname
    if "[" in parts.netloc:  # a bracketed literal must be an IPv6 address (urlsplit checks only some)
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise bad(f"{host!r} in brackets is not an IPv6 address") from None


def _without_userinfo(target: str) -> str:
    """TARGET without the user:password@ of a URL.

    Redaction would hide a password too, but a malformed URL is exactly where its
    pattern may not match; this keeps the secret out of the message in the first place.
    """
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    if "@" in netloc:  # the last @ ends the userinfo, as in urllib3 and requests
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"  # a lone http user is a token
    return f"{scheme}{sep}{netloc}{tail}"


def shown(target: str) -> str:
    """TARGET as a log line may show it: no user:password@, and one line whatever it holds."""
    return printable(_without_userinfo(target))


def printable(text: str) -> str:
    """TEXT with line breaks and other unprintable characters escaped, so a log line stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
