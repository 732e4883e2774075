"""Small DNS servers that misbehave on purpose, on port 53 of a fresh 127.x.y.z over UDP and TCP.

Port 53 because glibc (the reference the tests compare with, through `getent ahosts`
under a private resolv.conf) asks nothing else. Each server answers from a script:
`script(query, transport)` returns a `Reply`, built with dnspython's message API;
only the malformations no valid message can carry (`rdlength_past_end`,
`owner_pointer_loop`) patch the bytes dnspython produced.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

_next_address = itertools.count(1)


@dataclass
class Reply:
    wire: bytes | None  # None: say nothing
    delay: float = 0.0  # answer this much later (each query in its own thread, as a busy server would)
    drip: float = 0.0  # over TCP: one byte at a time, this many seconds apart


Script = Callable[[dns.message.Message, str], Reply]


def answer(
    query: dns.message.Message, *records: str, rcode: int = dns.rcode.NOERROR, ttl: int = 0, edns: bool = True
) -> bytes:
    """The proper response to QUERY: RECORDS (rdata text of the asked type) and RCODE."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if not edns:  # no OPT record after the answer (the malformations count bytes)
        response.use_edns(False)
    question = query.question[0]
    if records:
        response.answer.append(dns.rrset.from_text(question.name, ttl, "IN", question.rdtype, *records))
    return response.to_wire()


def truncated(query: dns.message.Message) -> bytes:
    """An empty answer with TC set: "ask again over TCP"."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.TC
    return response.to_wire()


def other_question(query: dns.message.Message, name: str, *records: str) -> bytes:
    """An answer, with the query's ID, to a question about NAME rather than the one asked."""
    other = dns.message.make_query(name, query.question[0].rdtype)
    other.id = query.id
    return answer(other, *records)


def rdlength_past_end(query: dns.message.Message, record: str) -> bytes:
    """A one-record answer whose rdlength claims far more bytes than the packet holds."""
    wire = bytearray(answer(query, record, edns=False))
    struct.pack_into("!H", wire, _first_record_at(query) + 2 + 8, 0x4000)  # after owner pointer, type, class, TTL
    return bytes(wire)


def owner_pointer_loop(query: dns.message.Message, record: str) -> bytes:
    """A one-record answer whose owner name is a compression pointer to itself."""
    wire = bytearray(answer(query, record, edns=False))
    owner_at = _first_record_at(query)
    assert wire[owner_at] & 0xC0 == 0xC0, "dnspython compresses the owner name to a pointer at the question"
    struct.pack_into("!H", wire, owner_at, 0xC000 | owner_at)
    return bytes(wire)


def _first_record_at(query: dns.message.Message) -> int:
    """Offset of the answer section: the 12-byte header, then the question (name, type, class)."""
    return 12 + len(query.question[0].name.to_wire()) + 4


class HostileDns:
    """A scripted DNS server on ADDRESS:53 (UDP and TCP); `asked` records (name, type, transport)."""

    def __init__(self, script: Script, address: str | None = None, port: int = 53) -> None:
        self.script = script
        self.address = address or f"127.54.{os.getpid() % 250 + 1}.{next(_next_address) % 250 + 1}"
        self.port = port
        self.asked: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((self.address, port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.address, port))
        self.tcp.listen(16)
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    def names_asked(self) -> list[str]:
        """Distinct names asked, in the order first asked, without the trailing dot."""
        return list(dict.fromkeys(name.rstrip(".") for name, _, _ in self.asked))

    def stop(self) -> None:
        self._stop.set()
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                sock.close()

    def _reply_for(self, wire: bytes, transport: str) -> Reply | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        if not query.question:
            return None
        question = query.question[0]
        self.asked.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype), transport))
        return self.script(query, transport)

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self.udp], [], [], 0.1)
                if not readable:
                    continue
                wire, peer = self.udp.recvfrom(65535)
            except (OSError, ValueError):
                return
            threading.Thread(target=self._answer_udp, args=(wire, peer), daemon=True).start()

    def _answer_udp(self, wire: bytes, peer: tuple[str, int]) -> None:
        reply = self._reply_for(wire, "udp")
        if reply is None or reply.wire is None:
            return
        time.sleep(reply.delay)
        with contextlib.suppress(OSError):
            self.udp.sendto(reply.wire, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([self.tcp], [], [], 0.1)
                if not readable:
                    continue
                conn, _ = self.tcp.accept()
            except (OSError, ValueError):
                return
            threading.Thread(target=self._answer_tcp, args=(conn,), daemon=True).start()

    def _answer_tcp(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            while not self._stop.is_set():  # glibc may ask A and AAAA over one connection
                head = _recv_exactly(conn, 2)
                if head is None:
                    return
                wire = _recv_exactly(conn, struct.unpack("!H", head)[0])
                if wire is None:
                    return
                reply = self._reply_for(wire, "tcp")
                if reply is None or reply.wire is None:
                    continue
                time.sleep(reply.delay)
                framed = struct.pack("!H", len(reply.wire)) + reply.wire
                if not reply.drip:
                    conn.sendall(framed)
                    continue
                for i in range(len(framed)):
                    if self._stop.wait(reply.drip):
                        return
                    conn.sendall(framed[i : i + 1])


def _recv_exactly(conn: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data
