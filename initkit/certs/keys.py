"""The key types initkit generates, by the names --key-type takes."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes

# RSA 2048 first: what every consumer reads (old Java, MongoDB, Kafka's clients); ECDSA where they all do.
KEY_TYPES = ("rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384")
_CURVES = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1}


def new_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type]())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.removeprefix("rsa-")))


def type_of(key: PublicKeyTypes) -> str | None:
    """The --key-type name of a public key, or None when it is of no type initkit generates."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name)
    return None
