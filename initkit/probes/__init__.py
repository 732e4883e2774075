"""wait-for targets: parse `dns:NAME`, `tcp:HOST:PORT`, `http(s)://...`, `file:PATH`.

Each probe has a `label` and a `check()` that returns a short detail when the
target is ready and raises `NotReady(reason)` when it is not. Probe modules
import their libraries lazily, so `wait-for tcp:...` loads neither requests
nor dnspython. Everything a user can get wrong in a target is judged here, at
parse time, so a typo is exit 2 at once rather than retried until the timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from initkit.errors import BadInput


class NotReady(Exception):
    """The target is not ready; the message is the reason (NXDOMAIN, HTTP 503, ...)."""


class Probe(Protocol):
    label: str

    def check(self) -> str: ...


SCHEMES = "dns:NAME[?type=TYPE&min=N], tcp:HOST:PORT, http://URL[#EXPECT], https://URL[#EXPECT] or file:PATH"
HTTP_EXPECT_KEYS = "status=200,204 (or 2xx), body=TEXT, regex=PATTERN, json=FIELD=VALUE, header=NAME:TEXT"


@dataclass
class HttpExpect:
    """What an http(s) target's answer must show besides arriving: parsed from the URL's fragment.

    The fragment is never sent to a server, so it can carry the expectations
    without touching the request. Empty: any 2xx."""

    statuses: frozenset[int] = frozenset()  # empty: 200 to 299
    status_text: str = "2xx"
    body: list[str] = field(default_factory=list)  # substrings
    regex: list[re.Pattern[str]] = field(default_factory=list)
    json: list[tuple[list[str], str]] = field(default_factory=list)  # (dotted path, expected value)
    header: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, substring)

    @property
    def needs_body(self) -> bool:
        return bool(self.body or self.regex or self.json)


def parse_expectations(fragment: str, target: str) -> HttpExpect:
    """`status=200,204&body=UP&json=status=UP`: each value percent-decoded (%26 for a literal &)."""
    import urllib.parse

    expect = HttpExpect()
    if not fragment:
        return expect

    def bad(why: str) -> BadInput:
        return BadInput(f"malformed target {shown(target)!r}: {why}")

    for item in fragment.split("&"):
        key, sep, raw = item.partition("=")
        value = urllib.parse.unquote(raw)
        if not sep or not value:
            raise bad(f"expected KEY=VALUE after '#', one of {HTTP_EXPECT_KEYS}; got {item!r}")
        if key == "status":
            expect.statuses, expect.status_text = _statuses(value, bad), value
        elif key == "body":
            expect.body.append(value)
        elif key == "regex":
            try:
                expect.regex.append(re.compile(value))
            except re.error as exc:
                raise bad(f"regex {value!r} is not a valid regular expression ({exc})") from None
        elif key == "json":
            path, eq, wanted = value.partition("=")
            if not eq or not path or any(not part for part in path.split(".")):
                raise bad(f"json={value!r}: expected json=FIELD=VALUE, FIELD dotted (status, components.db.status)")
            expect.json.append((path.split("."), wanted))
        elif key == "header":
            name, colon, wanted = value.partition(":")
            if not colon or not name.strip():
                raise bad(f"header={value!r}: expected header=NAME:TEXT")
            expect.header.append((name.strip().lower(), wanted.strip()))
        else:
            raise bad(f"unknown expectation {key!r}: expected {HTTP_EXPECT_KEYS}")
    return expect


def _statuses(value: str, bad: Callable[[str], BadInput]) -> frozenset[int]:
    codes: set[int] = set()
    for part in value.split(","):
        part = part.strip().lower()
        if re.fullmatch(r"[1-5]xx", part):
            base = int(part[0]) * 100
            codes.update(range(base, base + 100))
        elif re.fullmatch(r"[1-5][0-9][0-9]", part):
            codes.add(int(part))
        else:
            raise bad(f"status={value!r}: expected codes such as 200,204 or a class such as 2xx")
    return frozenset(codes)


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
        url, _, fragment = target.partition("#")
        check_http_url(url)
        expect = parse_expectations(fragment, target)
        from initkit.probes.http import HttpProbe

        return HttpProbe(url, ca_file, expect, label=target)
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
        return BadInput(f"malformed target {_without_userinfo(url)!r}: invalid URL: {why}")

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
