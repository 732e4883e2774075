"""Keystores: PKCS#12 with a modern profile, and Java's JKS (keystore and truststore) through pyjks.

PKCS#12 is written as OpenSSL 3 does by default: keys and certificates under
PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) and a SHA-256 MAC. The old profile
(RC2-40 / 3DES, SHA-1 MAC) fails on OpenSSL 3 without its legacy provider and on
Java 20 and later. JKS is Java's own format, for consumers that cannot read
PKCS#12: its key protection and integrity check are SHA-1 based, which no option
can change (the format allows nothing else); the file is mode 0600.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

_DER = serialization.Encoding.DER
PBKDF2_ROUNDS = 100_000  # hundreds of milliseconds for a guess on purpose; a load takes one


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
    try:
        found_key, found_cert, found_cas = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except (ValueError, TypeError):
        return False
    if found_key is None or found_cert != cert or list(found_cas) != ([ca] if ca is not None else []):
        return False
    return _pkcs8(found_key) == _pkcs8(key)


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

    try:
        return jks.KeyStore.loads(data, password)
    except Exception:  # pyjks raises many kinds (struct.error, its own, ValueError) for a file it cannot open
        return None


def _pkcs8(key: Any) -> bytes:
    return bytes(key.private_bytes(_DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def pkcs8_der(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return _pkcs8(key)
