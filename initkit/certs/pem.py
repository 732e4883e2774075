"""Reading the operator's certificate and key files: bounded, never a FIFO, errors in one line."""

from __future__ import annotations

import os
import stat

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PrivateKeyTypes

from initkit.errors import BadInput

MAX_INPUT = 1 << 20  # a CA certificate or key is a few KiB; a bigger file is not one
# OpenSSL's check of an RSA key tests its primes: minutes for a 64 Kibit key (50 KB) the app planted in DEST,
# in C, deaf to SIGTERM; so the size is read first, from a load that skips the check
MAX_RSA_BITS = 8192
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO planted there must not hang the read


def read_input(path: str, what: str) -> bytes:
    """The bytes of a file the operator named (a Secret's key may be a symlink: it is followed)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise BadInput(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{what} {path} is not a regular file")
        return read_bounded(fd, f"{what} {path}")
    finally:
        os.close(fd)


class TooBig(BadInput):
    """A file larger than any certificate, key or ledger initkit reads."""


def read_bounded(fd: int, shown: str, limit: int = MAX_INPUT) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise TooBig(f"{shown} is larger than {limit >> 10} KiB: not a certificate or key")
        chunks.append(chunk)


def certificates(data: bytes, shown: str) -> list[x509.Certificate]:
    """Every certificate of a PEM file; exit 2 when there is none or one does not parse."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise BadInput(f"{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise BadInput(f"{shown} holds a PEM certificate that does not parse") from None


def certificate(data: bytes, shown: str) -> x509.Certificate:
    found = certificates(data, shown)
    if len(found) != 1:
        raise BadInput(f"{shown} holds {len(found)} certificates: give the one certificate alone")
    return found[0]


def private_key(data: bytes, shown: str, password: str | None = None) -> CertificateIssuerPrivateKeyTypes:
    """A PEM private key (PKCS#8, PKCS#1 or SEC1; encrypted when a password is given)."""
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        raise BadInput(f"{shown} holds no PEM private key")
    secret = password.encode("utf-8") if password is not None else None
    key = _load_key(data, shown, secret, skip_rsa_check=True)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size > MAX_RSA_BITS:
            raise BadInput(
                f"{shown} holds a {key.key_size}-bit RSA key: initkit signs with {MAX_RSA_BITS} bits at most"
            )
        key = _load_key(data, shown, secret, skip_rsa_check=False)  # now checked, in bounded time
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise BadInput(f"{shown} holds a {type(key).__name__}: initkit signs with RSA, ECDSA or Ed25519 keys")
    return key


def _load_key(data: bytes, shown: str, secret: bytes | None, skip_rsa_check: bool) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(data, secret, unsafe_skip_rsa_key_validation=skip_rsa_check)
    except TypeError:  # encrypted without a password, or a password for a key that has none
        if secret is None:
            raise BadInput(f"{shown} is encrypted: give its password with --ca-key-password-file") from None
        raise BadInput(f"{shown} is not encrypted, but a password was given for it") from None
    except ValueError:
        hint = " (or the password is wrong)" if secret is not None else ""
        raise BadInput(f"{shown} holds a private key that does not parse{hint}") from None
    except Exception as exc:  # cryptography reports some malformed keys as UnsupportedAlgorithm
        raise BadInput(f"{shown} holds a private key initkit cannot use ({type(exc).__name__})") from None


def key_matches(key: CertificateIssuerPrivateKeyTypes, cert: x509.Certificate) -> bool:
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(*raw) == cert.public_key().public_bytes(*raw)


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """PKCS#8, unencrypted: what servers read (the file is mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
