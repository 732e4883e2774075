"""wait-for targets: parse `dns:NAME`, `tcp:HOST:PORT`, `http(s)://...`, `file:PATH` and the database URLs.

Each probe has a `label` and a `check(token)` that returns a short detail when
the target is ready and raises `NotReady(reason)` when it is not; a check waits
on the token (initkit.cancel: the run's by default), so a signal or the deadline
ends it, and its time is the token's clock. Probe modules
import their libraries lazily, so `wait-for tcp:...` loads neither requests
nor dnspython. Everything a user can get wrong in a target is judged here, at
parse time, so a typo is exit 2 at once rather than retried until the timeout.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from initkit.errors import BadInput
from initkit.urls import check_http_url, shown, without_userinfo

if TYPE_CHECKING:
    from initkit.cancel import Token


class NotReady(Exception):
    """The target is not ready; the message is the reason (NXDOMAIN, HTTP 503, ...)."""


class TooLate(NotReady):
    """A check that began too close to the deadline to ask anything: the last reason stands."""


class Probe(Protocol):
    label: str

    def check(self, token: Token | None = None) -> str: ...


SCHEMES = (
    "dns:NAME[?type=TYPE&min=N], tcp:HOST:PORT, http://URL[#EXPECT], https://URL[#EXPECT], file:PATH, "
    "postgres://[USER@]HOST[:PORT][/DB][?OPTIONS][#EXPECT], mysql://..., redis://..., rediss://..., "
    "or a Kubernetes API target: job:, pods:, endpoints:, daemonset:, cr:, gone:"
)
# Database and broker targets: scheme -> the module and class that checks it, and the driver's
# top-level module and the Debian package that has it. Each probe imports its driver only inside
# its check; `initkit info` lists the schemes whose driver this image has.
DB_PROBES = {
    "postgres": ("initkit.probes.postgres", "PostgresProbe", "psycopg", "python3-psycopg"),
    "postgresql": ("initkit.probes.postgres", "PostgresProbe", "psycopg", "python3-psycopg"),
    "mysql": ("initkit.probes.mysql", "MysqlProbe", "pymysql", "python3-pymysql"),
    "mariadb": ("initkit.probes.mysql", "MysqlProbe", "pymysql", "python3-pymysql"),
    "redis": ("initkit.probes.redis", "RedisProbe", "redis", "python3-redis"),
    "rediss": ("initkit.probes.redis", "RedisProbe", "redis", "python3-redis"),
}
# Targets whose libraries every image has (dnspython and requests are in the slim one too; the
# Kubernetes API targets need only requests).
CORE_SCHEMES = ("dns", "tcp", "http", "https", "file", "job", "pods", "endpoints", "daemonset", "cr")
HTTP_EXPECT_KEYS = "status=200,204 (or 2xx), body=TEXT, regex=PATTERN, json=FIELD=VALUE, header=NAME:TEXT"


@dataclass
class HttpExpect:
    """What an http(s) target's answer must show besides arriving: parsed from the URL's fragment.

    The fragment is never sent to a server, so it can carry the expectations
    without touching the request. Empty: any 2xx."""

    statuses: frozenset[int] = frozenset()  # empty: 200 to 299
    status_text: str = "2xx"
    body: list[str] = field(default_factory=list)  # substrings
    regex: list[Any] = field(default_factory=list)  # re2 patterns: .search(text), .pattern
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
            expect.regex.append(_compile_regex(value, bad))
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


def _compile_regex(value: str, bad: Callable[[str], BadInput]) -> Any:
    """A pattern for RE2, whose matching time is linear in the body: a server cannot make it backtrack
    for ever (Python's `re` can, in one C call that neither --timeout nor SIGTERM interrupts)."""
    try:
        import re2
    except ImportError:
        raise BadInput(
            "regex= needs RE2 (linear-time matching), which initkit-slim leaves out: use the initkit image "
            "(elsewhere: pip install google-re2, or Debian's python3-re2)"
        ) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would log the parse error on stderr besides raising it
    try:
        return re2.compile(value, options)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise bad(
            f"regex {value!r} is not a valid regular expression in RE2 syntax ({why}; no backreferences or lookaround)"
        ) from None


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
    kube: Callable[[], tuple[Any, float]] | None = None,
) -> Probe:
    """A probe for TARGET; `deadline` (on the run token's clock) bounds each DNS check so it ends in time.

    `kube` gives the API configuration and the watch lifetime, loaded only when an API target needs them."""
    kind, sep, rest = target.partition(":")
    if kind in ("job", "pods", "endpoints", "daemonset", "cr", "gone"):
        from initkit.probes.kube import parse as parse_kube

        if kube is None:
            raise BadInput(f"{without_userinfo(target)!r}: Kubernetes API targets are wait-for's only")
        return parse_kube(target, kube)
    if not sep or not rest:
        raise BadInput(f"malformed target {without_userinfo(target)!r}: expected {SCHEMES}")
    if kind == "dns":
        from initkit.probes.dns import DnsProbe

        return DnsProbe.parse(target, rest, dns_server, deadline=deadline)
    if kind == "tcp":
        from initkit.probes.tcp import TcpProbe

        return TcpProbe.parse(target, rest)
    if kind in ("http", "https"):
        url, _, fragment = target.partition("#")
        check_http_url(url, label="malformed target")
        expect = parse_expectations(fragment, target)
        from initkit.probes.http import HttpProbe

        return HttpProbe(url, ca_file, expect, label=target)
    if kind == "file":
        from initkit.probes.file import FileProbe

        return FileProbe(target, rest)
    if kind.lower() in DB_PROBES and rest.startswith("//"):
        import importlib

        module, name, driver, package = DB_PROBES[kind.lower()]
        if not has_module(driver):
            raise BadInput(
                f"{kind.lower()}:// targets need the {driver} driver, which this image leaves out: use the "
                f"initkit image (elsewhere: Debian's {package}, or pip install {driver})"
            )
        probe: Probe = getattr(importlib.import_module(module), name).parse(target, deadline=deadline)
        return probe
    raise BadInput(f"unknown target kind {kind!r} in {without_userinfo(target)!r}: expected {SCHEMES}")


def has_module(name: str) -> bool:
    """Whether top-level module NAME can be imported here, found without importing it (a driver such
    as psycopg costs tens of milliseconds to import: `initkit info` must not pay that)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available_schemes() -> list[str]:
    """The target schemes this installation can check: the core ones, and each database or broker
    scheme whose driver is installed (the images smoke-test that each driver they ship imports)."""
    return [*CORE_SCHEMES, *(scheme for scheme, (*_, driver, _pkg) in DB_PROBES.items() if has_module(driver))]
