"""More hostile inputs for `initkit certs` (red team): keys and keystores the app plants in DEST that
would make OpenSSL work for minutes, beyond any deadline and deaf to SIGTERM."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import resource
import secrets
import struct
import textwrap

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.certs_helpers import POD_ENV

_SMALL_PRIMES = math.prod(p for p in range(3, 5000, 2) if all(p % q for q in range(3, math.isqrt(p) + 1, 2)))


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_len(len(raw)) + raw


def _odd_without_small_factors(bits: int) -> int:
    """An odd number OpenSSL's trial division passes, so its primality test runs a modexp of its size."""
    while True:
        value = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if math.gcd(value, _SMALL_PRIMES) == 1:
            return value


def huge_rsa_key_pem(bits: int) -> bytes:
    """A PKCS#1 RSA key of `bits` bits whose 'primes' are not: made in milliseconds, and a check of it
    by OpenSSL takes seconds at 16384 bits, minutes at 65536 (the file is 50 KB, far under 1 MiB)."""
    p, q = _odd_without_small_factors(bits // 2), _odd_without_small_factors(bits // 2)
    d = _odd_without_small_factors(bits - 2)
    fields = (0, p * q, 65537, d, p, q, d % (p - 1), d % (q - 1), _odd_without_small_factors(bits // 2 - 2))
    body = b"".join(_der_int(value) for value in fields)
    der = b"\x30" + _der_len(len(body)) + body
    text = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{text}\n-----END RSA PRIVATE KEY-----\n".encode()


def test_a_huge_rsa_key_planted_as_the_ca_key_in_dest_is_refused_at_once(run_proc, tmp_path):
    """--ca-dir defaults to DEST, which the app writes: its ca.key is parsed on every run."""
    dest = tmp_path / "tls"
    assert run_proc("certs", str(dest), env=POD_ENV, timeout=60).code == 0
    (dest / "ca.key").write_bytes(huge_rsa_key_pem(65536))
    result = run_proc("certs", str(dest), env=POD_ENV, timeout=40)  # it took 80 s, deaf to SIGTERM
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "-bit RSA key: initkit signs with 8192 bits at most" in result.lines[0], (
        result.stderr
    )


def test_a_huge_rsa_key_planted_as_tls_key_with_its_own_certificate_is_refused_at_once(run_proc, tmp_path):
    """The app plants tls.crt and tls.key (as a mounted pair looks): the key is parsed before anything."""
    dest = tmp_path / "tls"
    assert run_proc("certs", str(dest), env=POD_ENV, timeout=60).code == 0
    (dest / "tls.crt").write_bytes((dest / "ca.crt").read_bytes())
    (dest / "tls.key").write_bytes(huge_rsa_key_pem(65536))
    result = run_proc("certs", str(dest), env=POD_ENV, timeout=40)
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "-bit RSA key: initkit signs with 8192 bits at most" in result.lines[0], (
        result.stderr
    )


def _costly_pkcs12(data: bytes, password: bytes) -> bytes:
    """The PKCS#12 `data` again, its key and certificate bags encrypted with 65536 PBKDF2 rounds, that
    count then raised to 8388607 in place (same length) and the MAC dropped: OpenSSL derives each bag's
    key before it can tell the data is bad, holding the GIL (about 10 s a bag here)."""
    key, cert, cas = pkcs12.load_key_and_certificates(data, password)
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(0x10000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password)
    )
    cheap = pkcs12.serialize_key_and_certificates(b"tls", key, cert, cas, encryption)  # type: ignore[arg-type]
    assert cheap.count(b"\x02\x03\x01\x00\x00") == 2
    children, i = [], 4 if cheap[1] == 0x82 else 2  # PFX: version, authSafe, macData
    while i < len(cheap):
        size, start = cheap[i + 1], i + 2
        if size & 0x80:
            size, start = int.from_bytes(cheap[i + 2 : i + 2 + (size & 0x7F)], "big"), i + 2 + (size & 0x7F)
        children.append(cheap[i : start + size])
        i = start + size
    body = b"".join(children[:2]).replace(b"\x02\x03\x01\x00\x00", b"\x02\x03\x7f\xff\xff")
    return b"\x30\x82" + len(body).to_bytes(2, "big") + body


def test_a_pkcs12_with_costly_key_derivations_planted_in_dest_is_replaced_unopened(run_proc, tmp_path):
    """The app knows the keystore's password (it reads the keystore) and plants one in DEST that the
    forged ledger claims: initkit opened it to see whether it already holds the key, for 20 s."""
    dest, password = tmp_path / "tls", tmp_path / "password"
    password.write_text("changeit")
    args = ("certs", str(dest), "--pkcs12", "keystore.p12", "--pkcs12-password-file", str(password))
    assert run_proc(*args, env=POD_ENV, timeout=60).code == 0
    hostile = _costly_pkcs12((dest / "keystore.p12").read_bytes(), b"changeit")
    (dest / "keystore.p12").write_bytes(hostile)
    ledger = json.loads((dest / ".initkit-certs.json").read_text())
    ledger["files"]["keystore.p12"] = [hashlib.sha256(hostile).hexdigest()]
    (dest / ".initkit-certs.json").write_text(json.dumps(ledger))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_proc(*args, env=POD_ENV, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.code == 0, result.stderr
    assert after.ru_utime - before.ru_utime < 5, result.stderr  # CPU time: the machine may be busy
    assert "1 file written" in result.stderr, result.stderr
    key, _cert, _cas = pkcs12.load_key_and_certificates((dest / "keystore.p12").read_bytes(), b"changeit")
    assert key is not None


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _costly_jceks(iterations: int) -> bytes:
    """A JCEKS keystore of one private key protected by PBEWithMD5AndTripleDES with `iterations`
    rounds: pyjks runs them in Python (0.9 s for 100000) before it checks the store's hash, so the
    app needs no password to plant it."""
    oid = _tlv(0x06, bytes([0x2B, 0x06, 0x01, 0x04, 0x01, 0x2A, 0x02, 0x13, 0x01]))  # 1.3.6.1.4.1.42.2.19.1
    params = _tlv(0x30, _tlv(0x04, b"saltsalt") + _tlv(0x02, iterations.to_bytes(4, "big")))
    info = _tlv(0x30, _tlv(0x30, oid + params) + _tlv(0x04, bytes(32)))
    entry = struct.pack(">IH", 1, 3) + b"tls" + struct.pack(">QI", 0, len(info)) + info + struct.pack(">I", 0)
    return b"\xce\xce\xce\xce" + struct.pack(">II", 2, 1) + entry + bytes(20)


def test_a_jceks_with_two_billion_key_rounds_planted_in_dest_is_replaced_unopened(run_proc, tmp_path):
    """initkit writes JKS only: a JCEKS at the keystore's name (claimed by a forged ledger) took hours."""
    dest, password = tmp_path / "tls", tmp_path / "password"
    password.write_text("changeit")
    args = ("certs", str(dest), "--keystore", "keystore.jks", "--keystore-password-file", str(password))
    assert run_proc(*args, env=POD_ENV, timeout=60).code == 0
    hostile = _costly_jceks(0x7FFFFFFF)
    (dest / "keystore.jks").write_bytes(hostile)
    ledger = json.loads((dest / ".initkit-certs.json").read_text())
    ledger["files"]["keystore.jks"] = [hashlib.sha256(hostile).hexdigest()]
    (dest / ".initkit-certs.json").write_text(json.dumps(ledger))
    result = run_proc(*args, env=POD_ENV, timeout=60)
    assert result.code == 0 and "1 file written" in result.stderr, result.stderr
    assert (dest / "keystore.jks").read_bytes()[:4] == b"\xfe\xed\xfe\xed"


def test_a_fifo_as_a_password_file_does_not_hang(run_proc, tmp_path):
    """A password file that is a FIFO (a path in a shared volume): open() blocked for ever, and SIGTERM
    with it (Python retries the open after the handler); now one line, as for the CA's files."""
    fifo = tmp_path / "password"
    os.mkfifo(fifo)
    dest = tmp_path / "tls"
    result = run_proc(
        "certs", str(dest), "--pkcs12", "k.p12", "--pkcs12-password-file", str(fifo), env=POD_ENV, timeout=30
    )
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "is not a regular file" in result.lines[0], result.stderr
    assert not dest.exists()
