"""The issuing CA: the operator's (a Secret), or one initkit creates once and keeps."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from initkit.certs import pem
from initkit.certs.keys import new_key
from initkit.errors import BadInput

CA_NOT_BEFORE_SLACK = datetime.timedelta(minutes=5)  # nodes' clocks differ a little


@dataclass(frozen=True)
class CA:
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes
    shown: str  # where it came from, for messages

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc


def signing_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def from_pem(
    cert_data: bytes, key_data: bytes, cert_shown: str, key_shown: str, password: str | None, now: datetime.datetime
) -> CA:
    """The CA in these PEM bytes, checked: one certificate, a CA's, that its key matches, valid now."""
    cert = pem.certificate(cert_data, cert_shown)
    key = pem.private_key(key_data, key_shown, password)
    check(cert, key, cert_shown, key_shown, now)
    return CA(cert, key, cert_shown)


def check(
    cert: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    cert_shown: str,
    key_shown: str,
    now: datetime.datetime,
) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = _key_usage(cert)
    except x509.ExtensionNotFound:
        raise BadInput(f"{cert_shown} is not a CA certificate (no basicConstraints CA:TRUE)") from None
    except ValueError as exc:  # duplicate or malformed extensions
        raise BadInput(f"{cert_shown} has extensions that do not parse ({exc})") from None
    if not constraints.ca:
        raise BadInput(f"{cert_shown} is not a CA certificate (basicConstraints CA:FALSE)")
    if usage is not None and not usage.key_cert_sign:
        raise BadInput(f"{cert_shown} is a CA certificate whose keyUsage does not allow keyCertSign")
    if not pem.key_matches(key, cert):
        raise BadInput(f"{key_shown} is not the key of the CA certificate {cert_shown}")
    if now < cert.not_valid_before_utc:
        raise BadInput(f"{cert_shown} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")
    if now >= cert.not_valid_after_utc:
        raise BadInput(f"{cert_shown} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def create(
    key_type: str, common_name: str, days: int, now: datetime.datetime
) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    """A new self-signed CA that may sign leaf certificates only (pathlen 0)."""
    key = new_key(key_type)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CA_NOT_BEFORE_SLACK)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, signing_hash(key))
    )
    return key, cert
