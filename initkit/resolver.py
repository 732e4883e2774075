"""A small stub resolver (stdlib only) for wait-for's `dns:` targets.

It does what nslookup and glibc do with a pod's /etc/resolv.conf: the
nameservers in order, the search list, and `options ndots:N` deciding whether
a name is tried as is first or after the search suffixes. It asks for A, then
AAAA, over UDP, falling back to TCP when an answer is truncated.

dnspython would do the same, but importing it costs 12 MiB of memory and
0.1 s: more than the whole wait-for budget of an init container.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field

RESOLV_CONF = "/etc/resolv.conf"
TYPE_A, TYPE_AAAA, TYPE_CNAME = 1, 28, 5
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {FORMERR: "FORMERR", SERVFAIL: "SERVFAIL", NXDOMAIN: "NXDOMAIN", NOTIMP: "NOTIMP", REFUSED: "REFUSED"}


class DnsError(Exception):
    """The name did not resolve; the message is the short reason."""


class NameNotFound(DnsError):
    pass


class ServerTimeout(DnsError):
    pass


@dataclass
class ResolvConf:
    nameservers: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 53)])
    search: list[str] = field(default_factory=list)
    ndots: int = 1
    timeout: float = 5.0


def read_resolv_conf(path: str = RESOLV_CONF) -> ResolvConf:
    """Parse resolv.conf as glibc does (the last `search`/`domain` wins)."""
    conf = ResolvConf(nameservers=[])
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        key, values = words[0], words[1:]
        if key == "nameserver":
            conf.nameservers.append((values[0], 53))
        elif key == "search":
            conf.search = [v.strip(".") for v in values if v.strip(".")]
        elif key == "domain":
            conf.search = [values[0].strip(".")] if values[0].strip(".") else []
        elif key == "options":
            for option in values:
                name, _, value = option.partition(":")
                if name == "ndots" and value.isdigit():
                    conf.ndots = min(int(value), 15)
                elif name == "timeout" and value.isdigit():
                    conf.timeout = max(1.0, float(value))
    if not conf.nameservers:
        conf.nameservers = [("127.0.0.1", 53)]  # glibc's default
    return conf


def names_to_try(name: str, conf: ResolvConf) -> list[str]:
    """Fully qualified names in the order glibc tries them."""
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{suffix}." for suffix in conf.search]
    if name.count(".") >= conf.ndots:
        return [f"{name}.", *searched]
    return [*searched, f"{name}."]


def encode_name(name: str) -> bytes:
    labels = name.rstrip(".").split(".")
    out = bytearray()
    for label in labels:
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"invalid DNS name {name!r}: empty or over-long label")
        out += bytes([len(raw)]) + raw
    if len(out) > 254:
        raise ValueError(f"invalid DNS name {name!r}: longer than 253 characters")
    return bytes(out) + b"\0"


def build_query(query_id: int, name: str, qtype: int) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # RD set: recursion desired
    return header + encode_name(name) + struct.pack("!HH", qtype, 1)


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # compression pointer ends the name
            return offset + 2
        offset += 1 + length


@dataclass
class Response:
    rcode: int
    truncated: bool
    addresses: list[str]


def parse_response(data: bytes, query_id: int) -> Response | None:
    """None when the packet is not the answer to our query."""
    if len(data) < 12:
        return None
    rid, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    if rid != query_id or not flags & 0x8000:
        return None
    offset = 12
    addresses: list[str] = []
    try:
        for _ in range(qdcount):
            offset = _skip_name(data, offset) + 4
        for _ in range(ancount):
            offset = _skip_name(data, offset)
            rtype, _, _, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
            offset += 10
            rdata = data[offset : offset + rdlength]
            offset += rdlength
            if rtype == TYPE_A and len(rdata) == 4:
                addresses.append(socket.inet_ntop(socket.AF_INET, rdata))
            elif rtype == TYPE_AAAA and len(rdata) == 16:
                addresses.append(socket.inet_ntop(socket.AF_INET6, rdata))
    except (IndexError, struct.error):
        if not flags & 0x0200:
            return Response(FORMERR, False, [])
    return Response(flags & 0x000F, bool(flags & 0x0200), addresses)


def _sockaddr(server: tuple[str, int], kind: int) -> tuple[int, tuple]:
    family, _, _, _, sockaddr = socket.getaddrinfo(
        server[0], server[1], type=kind, flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    )[0]
    return family, sockaddr


def _udp(query: bytes, query_id: int, server: tuple[str, int], deadline: float) -> Response:
    family, sockaddr = _sockaddr(server, socket.SOCK_DGRAM)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(sockaddr)  # the kernel then drops datagrams from anyone else
        sock.send(query)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            try:
                answer = parse_response(sock.recv(65535), query_id)
            except ConnectionRefusedError:  # ICMP port unreachable: nobody listens
                raise TimeoutError from None
            if answer is not None:
                return answer


def _tcp(query: bytes, query_id: int, server: tuple[str, int], deadline: float) -> Response:
    family, sockaddr = _sockaddr(server, socket.SOCK_STREAM)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.connect(sockaddr)
        sock.sendall(struct.pack("!H", len(query)) + query)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = sock.recv(65535)
            if not chunk:
                break
            data += chunk
    answer = parse_response(data[2:], query_id)
    if answer is None:
        raise TimeoutError
    return answer


class Resolver:
    def __init__(self, conf: ResolvConf, lifetime: float = 3.0) -> None:
        self.conf = conf
        self.lifetime = lifetime

    def _ask(self, name: str, qtype: int, deadline: float) -> Response:
        """Ask each nameserver in turn; the first usable answer wins."""
        failures: list[str] = []
        per_server = min(self.conf.timeout, 2.0)
        for server in self.conf.nameservers:
            query_id = int.from_bytes(os.urandom(2), "big")
            query = build_query(query_id, name, qtype)
            where = f"{server[0]}:{server[1]}" if server[1] != 53 else server[0]
            try:
                answer = _udp(query, query_id, server, min(deadline, time.monotonic() + per_server))
                if answer.truncated:
                    answer = _tcp(query, query_id, server, deadline)
            except (TimeoutError, OSError):
                failures.append(f"no answer from {where}")
                continue
            if answer.rcode in (NOERROR, NXDOMAIN):
                return answer
            failures.append(f"{RCODE_NAMES.get(answer.rcode, answer.rcode)} from {where}")
        if all(f.startswith("no answer") for f in failures):
            raise ServerTimeout("DNS timeout: " + ", ".join(failures))
        raise DnsError("; ".join(failures))

    def resolve(self, name: str) -> list[str]:
        """Addresses (A, else AAAA) of the first name that has any; raises DnsError."""
        deadline = time.monotonic() + self.lifetime
        found_name = False
        for candidate in names_to_try(name, self.conf):
            for qtype in (TYPE_A, TYPE_AAAA):
                answer = self._ask(candidate, qtype, deadline)
                if answer.rcode == NXDOMAIN:
                    break
                found_name = True
                if answer.addresses:
                    return answer.addresses
        if found_name:
            raise NameNotFound("no A or AAAA record")
        raise NameNotFound("NXDOMAIN")
