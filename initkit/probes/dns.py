"""`dns:NAME`: ready when NAME resolves to an A or AAAA record.

Resolution follows the pod's /etc/resolv.conf as nslookup does: its
nameservers, search list and ndots (`options ndots:5` in a pod), so
`dns:myservice` finds myservice.<namespace>.svc.cluster.local.
`--dns-server IP[:PORT]` replaces the nameservers and keeps the search list.
"""

from __future__ import annotations

from initkit.errors import BadInput
from initkit.probes import NotReady

QUERY_LIFETIME = 2.0


def parse_server(text: str) -> tuple[str, int]:
    import ipaddress

    host, port = text, 53
    if text.startswith("["):  # [::1]:5353
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.lstrip(":")) if rest.lstrip(":").isdigit() else -1
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text) if port_text.isdigit() else -1
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise BadInput(f"malformed --dns-server {text!r}: expected IP[:PORT]") from None
    if not 0 < port < 65536:
        raise BadInput(f"malformed --dns-server {text!r}: port must be 1 to 65535")
    return host, port


class DnsProbe:
    def __init__(self, label: str, name: str, server: str | None) -> None:
        import dns.exception
        import dns.name
        import dns.resolver

        self.label = label
        try:
            self.name = dns.name.from_text(name, origin=None)
        except (dns.exception.DNSException, ValueError) as exc:
            raise BadInput(f"malformed target {label!r}: {exc}") from None
        address = parse_server(server) if server else None
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            if address is None:
                raise BadInput("no nameserver in /etc/resolv.conf: pass --dns-server") from None
            resolver = dns.resolver.Resolver(configure=False)
        if address is not None:
            resolver.nameservers = [address[0]]
            resolver.port = address[1]
        resolver.lifetime = QUERY_LIFETIME
        resolver.cache = None
        self._resolver = resolver

    def check(self) -> str:
        import dns.exception
        import dns.resolver

        for rdtype in ("A", "AAAA"):
            try:
                answer = self._resolver.resolve(self.name, rdtype, search=True)
            except dns.resolver.NXDOMAIN:
                raise NotReady("NXDOMAIN") from None
            except dns.resolver.NoAnswer:
                continue
            except dns.resolver.LifetimeTimeout:
                raise NotReady("DNS timeout: no answer from the nameserver") from None
            except dns.resolver.NoNameservers as exc:
                raise NotReady(f"no nameserver answered ({_first_line(exc)})") from None
            except dns.exception.DNSException as exc:
                raise NotReady(_first_line(exc)) from None
            return ", ".join(sorted(str(r) for r in answer))
        raise NotReady("no A or AAAA record")


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
