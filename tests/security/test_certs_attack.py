"""More hostile inputs for `initkit certs` (red team): keys and keystores the app plants in DEST that
would make OpenSSL work for minutes, beyond any deadline and deaf to SIGTERM."""

from __future__ import annotations

import base64
import math
import secrets
import textwrap

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
    assert run_proc("certs", str(dest), env=POD_ENV, timeout=30).code == 0
    (dest / "ca.key").write_bytes(huge_rsa_key_pem(65536))
    result = run_proc("certs", str(dest), env=POD_ENV, timeout=20)  # it took 80 s, deaf to SIGTERM
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "-bit RSA key: initkit signs with 8192 bits at most" in result.lines[0], (
        result.stderr
    )


def test_a_huge_rsa_key_planted_as_tls_key_with_its_own_certificate_is_refused_at_once(run_proc, tmp_path):
    """The app plants tls.crt and tls.key (as a mounted pair looks): the key is parsed before anything."""
    dest = tmp_path / "tls"
    assert run_proc("certs", str(dest), env=POD_ENV, timeout=30).code == 0
    (dest / "tls.crt").write_bytes((dest / "ca.crt").read_bytes())
    (dest / "tls.key").write_bytes(huge_rsa_key_pem(65536))
    result = run_proc("certs", str(dest), env=POD_ENV, timeout=20)
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "-bit RSA key: initkit signs with 8192 bits at most" in result.lines[0], (
        result.stderr
    )
