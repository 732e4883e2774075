"""The pod's certificate: the names it must hold, issuing it, and whether an existing one can stay."""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from initkit.certs import keys, pem
from initkit.certs.ca import CA, CA_NOT_BEFORE_SLACK, signing_hash

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
MAX_COMMON_NAME = 64  # ub-common-name (RFC 5280)


def dns_name(text: str) -> str | None:
    """`text` lower-cased when it is a DNS name a certificate may hold (a leading `*.` allowed), else None."""
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if labels and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return name


@dataclass(frozen=True)
class Wanted:
    """What the pod's certificate must be: its names, its key type, how long it lives."""

    common_name: str
    dns: frozenset[str]
    ips: frozenset[IPAddress]
    key_type: str
    days: int
    renew_before: datetime.timedelta

    def describe(self) -> str:
        return ", ".join([*sorted(self.dns), *sorted(str(ip) for ip in self.ips)])


def issue(ca: CA, wanted: Wanted, now: datetime.datetime) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    """A new key and a certificate for it, signed by the CA; it ends no later than the CA does."""
    key = keys.new_key(wanted.key_type)
    public = key.public_key()
    not_after = min(now + datetime.timedelta(days=wanted.days), ca.not_after)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in sorted(wanted.dns)]
    names += [x509.IPAddress(ip) for ip in sorted(wanted.ips, key=lambda ip: (ip.version, ip))]
    is_rsa = isinstance(public, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted.common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - CA_NOT_BEFORE_SLACK, ca.cert.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=is_rsa,  # RSA key exchange (TLS 1.2 clients that still use it)
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # clientAuth too: brokers and cluster members present the same certificate to each other
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    return key, builder.sign(ca.key, signing_hash(ca.key))


def why_reissue(
    ca: CA, key: CertificateIssuerPrivateKeyTypes, cert: x509.Certificate, wanted: Wanted, now: datetime.datetime
) -> str | None:
    """None when the existing certificate and key may stay; else why they must be replaced."""
    if not pem.key_matches(key, cert):
        return "the key does not match the certificate"
    if keys.type_of(cert.public_key()) != wanted.key_type:
        return f"the key is not {wanted.key_type}"
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return "it was not issued by this CA"
    left = cert.not_valid_after_utc - now
    if left <= wanted.renew_before:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}, within the renewal margin"
    if now < cert.not_valid_before_utc:
        return "it is not valid yet"
    if names_of(cert) != (wanted.dns, wanted.ips):
        return "its names differ from the wanted ones"
    subject = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [attr.value for attr in subject] != [wanted.common_name]:
        return "its common name differs"
    return None


def names_of(cert: x509.Certificate) -> tuple[frozenset[str], frozenset[IPAddress]]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return frozenset(), frozenset()
    return (
        frozenset(name.lower() for name in sans.get_values_for_type(x509.DNSName)),
        frozenset(sans.get_values_for_type(x509.IPAddress)),  # type: ignore[arg-type]
    )
