"""Keystores: PKCS#12 with a modern profile, and Java's JKS (keystore and truststore) through pyjks.

PKCS#12 is written as OpenSSL 3 does by default: keys and certificates under
PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and a SHA-256 MAC. The old profile
(RC2-40 / 3DES, SHA-1 MAC) fails on OpenSSL 3 without its legacy provider and on
Java 20 and later. JKS is Java's own format, for consumers that cannot read
PKCS#12: its key protection and integrity check are SHA-1 based, which no option
can change (the format allows nothing else); the file is mode 0600.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

_DER = serialization.Encoding.DER
PBKDF2_ROUNDS = 100_000  # hundreds of milliseconds for a guess on purpose; a load takes one
# What opening a PKCS#12 may cost: the sum, over its key derivations (PBKDF2, scrypt, PKCS#12 PBE, the MAC),
# of the product of the numbers after the salt (iterations; N, r, p). initkit's own is 202048 (two bags of
# 100000 rounds, a MAC of 2048); the app can plant one in DEST whose OpenSSL holds the GIL for hours (a
# SIGTERM is never handled): one that costs more than ten times initkit's is not opened.
MAX_KDF_WORK = 1 << 21
_SEQUENCE, _OCTET_STRING, _INTEGER = 0x30, 0x04, 0x02
_JKS_MAGIC = b"\xfe\xed\xfe\xed"  # JCEKS is 0xcececece


def pkcs12_bytes(
    alias: str,
    key: CertificateIssuerPrivateKeyTypes,
    cert: x509.Certificate,
    ca: x509.Certificate | None,
    password: str,
) -> bytes:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PBKDF2_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("utf-8"))
    )
    return pkcs12.serialize_key_and_certificates(
        alias.encode("utf-8"), key, cert, [ca] if ca is not None else None, encryption
    )


def pkcs12_holds(
    data: bytes,
    key: CertificateIssuerPrivateKeyTypes,
    cert: x509.Certificate,
    ca: x509.Certificate | None,
    password: str,
) -> bool:
    """Whether the PKCS#12 `data` opens with `password` and holds exactly this key, certificate and CA."""
    if _kdf_work(memoryview(data)) > MAX_KDF_WORK:
        return False
    try:
        found_key, found_cert, found_cas = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except (ValueError, TypeError):
        return False
    if found_key is None or found_cert != cert or list(found_cas) != ([ca] if ca is not None else []):
        return False
    return _pkcs8(found_key) == _pkcs8(key)


def _der(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """The (tag, content) of each DER element in `data`, until one does not parse (a ciphertext)."""
    i = 0
    while i + 2 <= len(data):
        tag, size, i = data[i], data[i + 1], i + 2
        if size & 0x80:
            width = size & 0x7F
            if not 0 < width <= 4 or i + width > len(data):
                return
            size, i = int.from_bytes(data[i : i + width], "big"), i + width
        if i + size > len(data):
            return
        yield tag, data[i : i + size]
        i += size


def _kdf_work(data: memoryview, depth: int = 0) -> int:
    """The work of every key derivation in `data`: a SEQUENCE of a salt then numbers (PBKDF2-params,
    scrypt-params, pkcs-12PbeParams, and MacData's tail) costs their product. Constructed elements and
    OCTET STRINGs (PKCS#12 nests its bags in them) are looked into, 32 levels deep."""
    work = 0
    for tag, content in _der(data) if depth < 32 else ():
        if tag & 0x20 or tag == _OCTET_STRING:
            work += _kdf_work(content, depth + 1)
        if tag == _SEQUENCE:
            work += _salted_product(content)
    return work


def _salted_product(sequence: memoryview) -> int:
    product, previous = 0, None
    for tag, content in _der(sequence):
        if tag == _INTEGER and (product or previous == _OCTET_STRING):
            product = max(product, 1) * max(1, int.from_bytes(content, "big", signed=True))
        elif product:
            break
        previous = tag
    return product


def jks_keystore_bytes(
    alias: str,
    key: CertificateIssuerPrivateKeyTypes,
    cert: x509.Certificate,
    ca: x509.Certificate | None,
    password: str,
) -> bytes:
    import jks

    chain = [cert.public_bytes(_DER)] + ([ca.public_bytes(_DER)] if ca is not None else [])
    entry = jks.PrivateKeyEntry.new(alias, chain, _pkcs8(key), "pkcs8")
    entry.encrypt(password)  # the key's password: the store's, as keytool and most servers expect
    return bytes(jks.KeyStore.new("jks", [entry]).saves(password))


def jks_truststore_bytes(alias: str, ca: x509.Certificate, password: str) -> bytes:
    import jks

    entry = jks.TrustedCertEntry.new(alias, ca.public_bytes(_DER))
    return bytes(jks.KeyStore.new("jks", [entry]).saves(password))


def jks_holds(data: bytes, password: str, alias: str, key_der: bytes | None, chain: list[x509.Certificate]) -> bool:
    """Whether the JKS `data` opens with `password` and holds exactly one entry `alias`: the key and
    chain given (key_der: PKCS#8), or when key_der is None the one trusted certificate chain[0]."""
    store = _load_jks(data, password)
    if store is None or list(store.entries) != [alias]:
        return False
    entry = store.entries[alias]
    ders = [cert.public_bytes(_DER) for cert in chain]
    if key_der is None:
        return bool(getattr(entry, "cert", None) == ders[0])
    certs = [der for _kind, der in getattr(entry, "cert_chain", [])]
    return bool(getattr(entry, "pkey_pkcs8", None) == key_der and certs == ders)


def _load_jks(data: bytes, password: str) -> Any:
    import jks

    if not data.startswith(_JKS_MAGIC):
        return None  # initkit writes JKS only; a JCEKS's key rounds are the file's (pyjks runs billions in Python)
    try:
        return jks.KeyStore.loads(data, password)
    except Exception:  # pyjks raises many kinds (struct.error, its own, ValueError) for a file it cannot open
        return None


def _pkcs8(key: Any) -> bytes:
    return bytes(key.private_bytes(_DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def pkcs8_der(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return _pkcs8(key)
