"""`dns:NAME[?type=TYPE&min=N]`: ready when NAME has records, resolved with dnspython.

`dns:NAME` waits for an A or AAAA record; `?min=N` for at least N addresses (A
and AAAA counted together: a headless Service publishes one per ready pod);
`?type=SRV` (TXT, CNAME, A, AAAA) for records of that type; both combine.

The resolver is configured from the pod's /etc/resolv.conf (nameservers, search
list, ndots, timeout), which dnspython reads itself; `--dns-server IP[:PORT]`
replaces the nameservers and keeps the search list. dnspython sends the queries
and judges the answers (an answer to another question, a malformed record, a
truncated UDP answer retried over TCP, per-read deadlines on TCP).

The order of names comes from here rather than from dnspython's own search,
because glibc (what every other program in the pod uses) differs from it in two
ways that matter: SERVFAIL from one search domain goes on to the next, and a
name that would grow too long with a suffix is still tried as given.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from initkit.errors import BadInput
from initkit.probes import NotReady, TooLate

if TYPE_CHECKING:
    import dns.name
    import dns.resolver

    from initkit.cancel import Token

RESOLV_CONF = "/etc/resolv.conf"
TYPES = ("A", "AAAA", "CNAME", "SRV", "TXT")
ADDRESS_TYPES = ("A", "AAAA")
MAX_MIN = 65535
# One check gives up after this long even with --timeout 0, so a silent server is
# reported (in the summary) and asked again rather than waited on forever.
CHECK_LIFETIME = 10.0
# dnspython's first backoff between two rounds of the nameservers (see DnsProbe._ask).
DNSPYTHON_FIRST_BACKOFF = 0.1
# glibc's RES_MAXNDOTS: a larger ndots in resolv.conf counts as 15.
MAX_NDOTS = 15


def parse_server(text: str) -> tuple[str, int]:
    """`--dns-server IP[:PORT]` (IPv6 as `[IP]:PORT`) -> (ip, port); BadInput when malformed."""
    host, port = text, 53
    if text.startswith("["):  # [::1]:5353
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest[1:]) if re.fullmatch(r":[0-9]{1,5}", rest) else -1
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text) if re.fullmatch(r"[0-9]{1,5}", port_text) else -1
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise BadInput(f"malformed --dns-server {text!r}: expected IP[:PORT]") from None
    if not 0 < port < 65536:
        raise BadInput(f"malformed --dns-server {text!r}: port must be 1 to 65535")
    return host, port


@dataclass(frozen=True)
class Wanted:
    """What a `dns:` target waits for: record types and how many records at least."""

    types: tuple[str, ...] = ADDRESS_TYPES
    minimum: int = 1

    @property
    def noun(self) -> str:
        return "A or AAAA" if self.types == ADDRESS_TYPES else self.types[0]


def parse_target(label: str, rest: str) -> tuple[str, Wanted]:
    """`NAME[?type=TYPE&min=N]` -> (NAME, Wanted); BadInput naming what is wrong."""

    def bad(why: str) -> BadInput:
        return BadInput(f"malformed target {label!r}: {why}")

    name, sep, query = rest.partition("?")
    if not sep:
        return name, Wanted()
    if not query:
        raise bad("nothing after '?': expected type=TYPE and/or min=N")
    given: dict[str, str] = {}
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if key not in ("type", "min"):
            raise bad(f"unknown key {key!r}: expected type=TYPE and/or min=N")
        if key in given:
            raise bad(f"{key}= given twice")
        if not eq or not value:
            raise bad(f"{key}= needs a value")
        given[key] = value
    rdtype = given.get("type", "").upper()
    if "type" in given and rdtype not in TYPES:
        raise bad(f"unknown record type {given['type']!r}: expected one of {', '.join(TYPES)}")
    minimum = 1
    if "min" in given:
        text = given["min"]
        if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= MAX_MIN:
            raise bad(f"min={text!r}: expected a whole number from 1 to {MAX_MIN}")
        minimum = int(text)
    return name, Wanted((rdtype,) if rdtype else ADDRESS_TYPES, minimum)


def parse_name(label: str, text: str) -> dns.name.Name:
    """NAME as dnspython's Name (relative unless it ends with a dot); BadInput when invalid."""
    import dns.exception
    import dns.name

    # A name is typed, not escaped: backslashes, spaces and control characters are typos.
    if not text or text in (".", "@") or any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in text):
        raise BadInput(f"malformed target {label!r}: invalid DNS name {text!r}")
    try:
        return dns.name.from_text(text, origin=None)
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise BadInput(f"malformed target {label!r}: invalid DNS name {text!r} ({_sentence(exc)})") from None


def make_resolver(server: str | None, resolv_conf: str = RESOLV_CONF) -> dns.resolver.Resolver:
    """A dnspython resolver configured as the pod's glibc is (or for `--dns-server`)."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    try:
        resolver.read_resolv_conf(resolv_conf)
    except dns.resolver.NoResolverConfiguration:
        # No file, or no nameserver line: glibc then asks 127.0.0.1 (the search list, if any, stays).
        resolver.nameservers = ["127.0.0.1"]
    except (dns.exception.DNSException, ValueError) as exc:  # a search domain or nameserver that is no address
        raise BadInput(f"cannot use {resolv_conf}: {_sentence(exc)}") from None
    if server is not None:
        host, port = parse_server(server)
        resolver.nameservers = [host]
        resolver.port = port
    return resolver


def _sentence(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).rstrip(".")


@dataclass
class _Outcome:
    """What one name gave: records, or why not. `kind` drives the search as glibc's h_errno does."""

    kind: Literal["found", "nxdomain", "nodata", "servfail", "error", "unasked"]
    records: tuple[str, ...] = ()
    reason: str = ""


class DnsProbe:
    def __init__(
        self,
        label: str,
        name: dns.name.Name,
        wanted: Wanted,
        resolver: dns.resolver.Resolver,
        deadline: float | None = None,
    ) -> None:
        self.label = label
        self.name = name
        self.wanted = wanted
        self.deadline = deadline  # on the token's clock
        self._resolver = resolver
        self._token: Token = _no_token()

    @classmethod
    def parse(cls, label: str, rest: str, server: str | None, *, deadline: float | None = None) -> DnsProbe:
        text, wanted = parse_target(label, rest)
        return cls(label, parse_name(label, text), wanted, make_resolver(server), deadline)

    def check(self, token: Token | None = None) -> str:
        """Ask the names in glibc's order, within CHECK_LIFETIME, `deadline` and the token's deadline
        (all on the token's clock); Stopped between two queries once the token is cancelled."""
        from initkit import cancel

        token = token or cancel.current()
        self._token, clock = token, token.clock
        expires = clock.monotonic() + CHECK_LIFETIME
        for limit in (self.deadline, token.deadline):
            if limit is not None:
                expires = min(expires, limit)
        outcomes: list[_Outcome] = []
        out_of_time = False
        for group, stop_on_error in self._names_in_glibc_order():
            for qname in group:
                outcome = self._lookup(qname, expires)
                outcomes.append(outcome)
                if outcome.kind == "found":
                    return self._judge(outcome)
                out_of_time = outcome.kind == "unasked" or clock.monotonic() >= expires
                if out_of_time or (outcome.kind == "error" and stop_on_error):
                    break  # glibc ends the search list on anything but NXDOMAIN, NODATA and SERVFAIL
            if out_of_time:
                break
        asked = [o for o in outcomes if o.kind != "unasked"]
        if not asked:
            # began with no time left to ask: a "timeout" here would hide the server's last real answer
            raise TooLate("no time left to ask")
        raise NotReady(_summary(asked, self.wanted))

    def _names_in_glibc_order(self) -> list[tuple[list[dns.name.Name], bool]]:
        """Groups of names as glibc's res_search asks them, each with "an error ends this group".

        A name with at least ndots dots is tried as given first, then with each search
        domain; a shorter one with the search domains first. The search list stops at a
        suffix that makes the name too long, and the name as given is still tried.
        """
        import dns.name

        if self.name.is_absolute():
            return [([self.name], False)]
        resolver = self._resolver
        as_given = self.name.concatenate(dns.name.root)
        if resolver.search:
            suffixes = list(resolver.search)
        elif resolver.domain is not None and resolver.domain != dns.name.root:
            suffixes = [resolver.domain]
        else:
            suffixes = []
        searched: list[dns.name.Name] = []
        for suffix in suffixes:
            try:
                searched.append(self.name.concatenate(suffix))
            except dns.name.NameTooLong:
                break
        ndots = min(MAX_NDOTS, 1 if resolver.ndots is None else resolver.ndots)
        if len(self.name.labels) - 1 >= ndots:
            return [([as_given], False), (searched, True)]
        return [(searched, True), ([as_given], False)]

    def _lookup(self, qname: dns.name.Name, expires: float) -> _Outcome:
        """Ask for each wanted type of QNAME (AAAA only when A alone is not enough)."""
        records: list[str] = []
        last = _Outcome("nodata")
        for rdtype in self.wanted.types:
            outcome = self._ask(qname, rdtype, expires)
            if outcome.kind == "found":
                records.extend(outcome.records)
                if len(records) >= self.wanted.minimum:
                    break
            elif outcome.kind == "nxdomain":
                return outcome  # the name does not exist: no need to ask for AAAA
            elif outcome.kind != "nodata" and not records:
                return outcome
            last = outcome
        if records:
            return _Outcome("found", tuple(records))
        return last

    def _ask(self, qname: dns.name.Name, rdtype: str, expires: float) -> _Outcome:
        """One question, asked round after round of the nameservers until answered or EXPIRES.

        Each resolve() call gets one round's worth of lifetime: dnspython sleeps a backoff
        before each further round without checking the lifetime first (0.1 s, doubling to
        2 s), so one long-lived call could overrun the deadline by up to 2 s. A fresh call
        starts again at 0.1 s, which is kept in hand below.
        """
        import dns.exception
        import dns.resolver

        resolver = self._resolver
        token = self._token
        one_round = resolver.timeout * max(1, len(resolver.nameservers))
        timed_out = _Outcome("error", reason=f"DNS timeout: no answer from {self._servers()}")
        asked = False
        while True:
            token.check()
            left = expires - token.clock.monotonic() - DNSPYTHON_FIRST_BACKOFF
            if left <= 0:
                return timed_out if asked else _Outcome("unasked")
            asked = True
            try:
                answer = resolver.resolve(
                    qname, rdtype, search=False, raise_on_no_answer=False, lifetime=min(left, one_round)
                )
            except dns.resolver.NXDOMAIN:
                return _Outcome("nxdomain", reason="NXDOMAIN")
            except dns.resolver.NoNameservers as exc:
                problems = _server_errors(exc)
                kind = "servfail" if problems and all(p.startswith("SERVFAIL") for p in problems) else "error"
                return _Outcome(kind, reason="; ".join(dict.fromkeys(problems)) or "no usable nameserver")
            except dns.exception.Timeout:
                continue  # another round, if time is left
            except dns.exception.DNSException as exc:
                return _Outcome("error", reason=_sentence(exc))
            if answer.rrset is None:
                return _Outcome("nodata", reason=f"no {self.wanted.noun} record")
            return _Outcome("found", tuple(rdata.to_text() for rdata in answer.rrset))

    def _servers(self) -> str:
        return ", ".join(_where(str(ns), self._resolver.port) for ns in self._resolver.nameservers)

    def _judge(self, outcome: _Outcome) -> str:
        records = sorted(set(outcome.records))
        shown = ", ".join(records)
        if len(records) < self.wanted.minimum:
            noun = "addresses" if self.wanted.types == ADDRESS_TYPES else f"{self.wanted.noun} records"
            raise NotReady(f"{len(records)} of at least {self.wanted.minimum} {noun}: {shown}")
        return shown


def _no_token() -> Token:
    from initkit import cancel

    return cancel.current()


def _where(address: str, port: int) -> str:
    # dnspython names a server "Do53:10.96.0.10@53" in its errors; users know it as 10.96.0.10
    address = re.sub(r"^Do53:(.*)@[0-9]+$", r"\1", address)
    if port == 53:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _server_errors(exc: Exception) -> list[str]:
    """'SERVFAIL from 10.96.0.10', 'REFUSED from ...', or what went wrong with a server's answer."""
    problems = []
    for server, _tcp, port, error, _response in exc.kwargs.get("errors") or []:  # type: ignore[attr-defined]
        where = _where(server, port)
        problems.append(
            f"{error} from {where}" if isinstance(error, str) else f"bad answer from {where}: {_sentence(error)}"
        )
    return problems


def _summary(outcomes: list[_Outcome], wanted: Wanted) -> str:
    """Why no name had the records, ranked as glibc ranks it: NODATA, then a server's trouble, then NXDOMAIN."""
    if any(o.kind == "nodata" for o in outcomes):
        return f"no {wanted.noun} record"
    troubles = [o.reason for o in outcomes if o.kind in ("servfail", "error")]
    if troubles:
        return troubles[-1]
    return "NXDOMAIN"
