"""`dns:NAME`: ready when NAME resolves to an A or AAAA record.

Resolution follows the pod's /etc/resolv.conf as nslookup does: its
nameservers, search list and ndots (`options ndots:5` in a pod), so
`dns:myservice` finds myservice.<namespace>.svc.cluster.local.
`--dns-server IP[:PORT]` replaces the nameservers and keeps the search list.
"""

from __future__ import annotations

import ipaddress

from initkit import resolver
from initkit.errors import BadInput
from initkit.probes import NotReady


def parse_server(text: str) -> tuple[str, int]:
    host, port = text, 53
    if text.startswith("["):  # [::1]:5353
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else -1
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
        self.label = label
        self.name = name
        try:
            resolver.encode_name(name)
        except ValueError as exc:
            raise BadInput(f"malformed target {label!r}: {exc}") from None
        conf = resolver.read_resolv_conf()
        if server:
            conf.nameservers = [parse_server(server)]
        self._resolver = resolver.Resolver(conf)

    def check(self) -> str:
        try:
            return ", ".join(sorted(self._resolver.resolve(self.name)))
        except resolver.DnsError as exc:
            raise NotReady(str(exc)) from None
