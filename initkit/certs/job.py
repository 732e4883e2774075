"""One run of `initkit certs`: the CA, the pod's certificate, the keystores, written to DEST.

The names in DEST: tls.key (PKCS#8, 0600), tls.crt, ca.crt (0644), and the
keystores the options name. Every file is judged before any is written:

- absent, or initkit's (the ledger, `initkit.certs.dest`): written when its
  content must change, else left alone (its mtime too);
- someone else's (a Secret mounted with subPath, a file put there): never
  written. The pod's certificate and key (tls.crt and tls.key, both) are then
  used as they are, for the keystores too; any other such file is kept when it
  already holds what initkit would write, and is an error (exit 2) otherwise.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes as PrivateKey

from initkit import cancel, log, secretfile
from initkit.certs import ca as ca_mod
from initkit.certs import dest as dest_mod
from initkit.certs import leaf, pem, stores
from initkit.certs.dest import Dest, Owner
from initkit.errors import BadInput

CERT, KEY, CA_CERT, CA_KEY = "tls.crt", "tls.key", "ca.crt", "ca.key"
RESERVED = (CERT, KEY, CA_CERT, CA_KEY, dest_mod.LEDGER)
PRIVATE, PUBLIC = 0o600, 0o644


@dataclass(frozen=True)
class MountedCA:
    cert: str
    key: str
    password_file: str | None


@dataclass(frozen=True)
class CreatedCA:
    store: str  # the directory that keeps ca.crt and ca.key (DEST by default)
    common_name: str
    days: int


@dataclass(frozen=True)
class Store:
    name: str  # a file name in DEST
    password_file: str


@dataclass(frozen=True)
class Request:
    dest: str
    wanted: leaf.Wanted
    ca: MountedCA | CreatedCA
    alias: str
    ca_alias: str
    pkcs12: Store | None = None
    keystore: Store | None = None
    truststore: Store | None = None
    owner: Owner | None = None
    now: datetime.datetime | None = None  # tests: a run at another moment


def run(request: Request) -> None:
    token = cancel.current()
    now = request.now or datetime.datetime.now(datetime.UTC)
    passwords = {
        store.name: secretfile.read(store.password_file, "password file")
        for store in (request.pkcs12, request.keystore, request.truststore)
        if store is not None
    }
    ca_password = None
    if isinstance(request.ca, MountedCA) and request.ca.password_file:
        ca_password = secretfile.read(request.ca.password_file, "CA key password file")
    with dest_mod.opened(request.dest, request.owner) as dest:
        names = [CERT, KEY, CA_CERT] + [s.name for s in (request.pkcs12, request.keystore, request.truststore) if s]
        current = {name: dest.read(name) for name in names}
        foreign = {name for name, data in current.items() if data is not None and not dest.is_ours(name, data)}
        token.check()
        operators = CERT in foreign or KEY in foreign
        stray = sorted(foreign - {CERT, KEY, CA_CERT})
        if stray and not operators:  # refused before anything is made: only an operator's own pair explains it
            raise _not_ours(dest, stray[0])
        if operators:
            key, cert, issuer = _operators_pair(request, dest, current, foreign, now, ca_password)
            action = f"kept {dest.shown(CERT)} and {dest.shown(KEY)}: not written by initkit (mounted?)"
        else:
            authority = _ca(request, dest, now, ca_password)
            token.check()
            key, cert, action = _leaf(request, dest, authority, current, now)
            issuer = authority.cert
        token.check()
        files = _files(request, dest, key, cert, issuer, current, passwords)
        for name in foreign & set(files):
            if files[name][0] != current[name]:
                raise _not_ours(dest, name)
            del files[name]  # already what is wanted, and still not initkit's
        token.check()
        written = dest.write_all(files, current)
    kept = len(files) - len(written)
    log.info(f"{action}; {len(written)} file{'s' if len(written) != 1 else ''} written, {kept} unchanged")


def _not_ours(dest: Dest, name: str) -> BadInput:
    return BadInput(
        f"{dest.shown(name)} was not written by initkit (a mounted Secret?) and is not what initkit "
        "would write: initkit never overwrites it; remove it or name another file"
    )


# ---- the CA ----


def _ca(request: Request, dest: Dest, now: datetime.datetime, password: str | None) -> ca_mod.CA:
    spec = request.ca
    if isinstance(spec, MountedCA):
        authority = ca_mod.from_pem(
            pem.read_input(spec.cert, "CA certificate"),
            pem.read_input(spec.key, "CA key"),
            spec.cert,
            spec.key,
            password,
            now,
        )
    else:
        authority = _stored_ca(spec, dest, now, request.wanted.key_type)
    left = authority.not_after - now
    if left <= request.wanted.renew_before:
        log.warning(
            f"the CA {authority.shown} expires on {authority.not_after:%Y-%m-%d}, within --renew-before: "
            "the pod's certificate ends with it and is issued again on every run; renew the CA"
        )
    return authority


def _stored_ca(spec: CreatedCA, dest: Dest, now: datetime.datetime, key_type: str) -> ca_mod.CA:
    same = os.path.realpath(spec.store) == os.path.realpath(dest.path)
    if same:
        return _load_or_create(dest, spec, now, key_type)
    with dest_mod.opened(spec.store) as store:
        return _load_or_create(store, spec, now, key_type)


def _load_or_create(store: Dest, spec: CreatedCA, now: datetime.datetime, key_type: str) -> ca_mod.CA:
    cert_data, key_data = store.read(CA_CERT), store.read(CA_KEY)
    if cert_data is not None and key_data is not None:
        return ca_mod.from_pem(cert_data, key_data, store.shown(CA_CERT), store.shown(CA_KEY), None, now)
    if cert_data is not None or key_data is not None:
        present, absent = (CA_CERT, CA_KEY) if cert_data is not None else (CA_KEY, CA_CERT)
        raise BadInput(
            f"{store.shown(present)} exists but {store.shown(absent)} does not: initkit creates a CA only where "
            "neither is, and never replaces one (mount a CA with --ca-cert and --ca-key, or remove the file)"
        )
    key, cert = ca_mod.create(key_type, spec.common_name, spec.days, now)
    store.create(CA_KEY, pem.key_pem(key), PRIVATE)  # the key first: a CA certificate alone is refused above
    store.create(CA_CERT, pem.cert_pem(cert), PUBLIC)
    log.info(f"created a CA in {store.path} (until {cert.not_valid_after_utc:%Y-%m-%d})")
    return ca_mod.CA(cert, key, store.shown(CA_CERT))


# ---- the pod's certificate ----


def _leaf(
    request: Request, dest: Dest, authority: ca_mod.CA, current: dict[str, bytes | None], now: datetime.datetime
) -> tuple[PrivateKey, x509.Certificate, str]:
    cert_data, key_data = current[CERT], current[KEY]
    why = "there was none"
    if cert_data is not None and key_data is not None:
        why = "it does not parse"
        try:
            key = pem.private_key(key_data, dest.shown(KEY))
            cert = pem.certificate(cert_data, dest.shown(CERT))
        except BadInput:
            pass  # initkit's own files, damaged: issued again
        else:
            reason = leaf.why_reissue(authority, key, cert, request.wanted, now)
            if reason is None:
                return key, cert, f"kept {dest.shown(CERT)} (valid until {cert.not_valid_after_utc:%Y-%m-%d})"
            why = reason
    key, cert = leaf.issue(authority, request.wanted, now)
    return (
        key,
        cert,
        f"issued {dest.shown(CERT)} for {request.wanted.describe()} until {cert.not_valid_after_utc:%Y-%m-%d} ({why})",
    )


def _operators_pair(
    request: Request,
    dest: Dest,
    current: dict[str, bytes | None],
    foreign: set[str],
    now: datetime.datetime,
    ca_password: str | None,
) -> tuple[PrivateKey, x509.Certificate, x509.Certificate | None]:
    if not {CERT, KEY} <= foreign:
        mine, theirs = (KEY, CERT) if CERT in foreign else (CERT, KEY)
        state = "is missing" if current[mine] is None else "was"
        raise BadInput(
            f"{dest.shown(theirs)} was not written by initkit (mounted?), but {dest.shown(mine)} {state}: "
            "mount both the certificate and its key, or neither"
        )
    cert_data, key_data = current[CERT], current[KEY]
    assert cert_data is not None and key_data is not None
    cert = pem.certificates(cert_data, dest.shown(CERT))[0]
    key = pem.private_key(key_data, dest.shown(KEY))
    if not pem.key_matches(key, cert):
        raise BadInput(f"{dest.shown(KEY)} is not the key of {dest.shown(CERT)}")
    if cert.not_valid_after_utc - now <= request.wanted.renew_before:
        log.warning(f"{dest.shown(CERT)} (not initkit's) expires on {cert.not_valid_after_utc:%Y-%m-%d}: renew it")
    issuer = None
    if isinstance(request.ca, MountedCA):
        issuer = pem.certificate(pem.read_input(request.ca.cert, "CA certificate"), request.ca.cert)
    elif (ca_data := current[CA_CERT]) is not None:
        issuer = pem.certificates(ca_data, dest.shown(CA_CERT))[0]
    if issuer is not None and cert.issuer != issuer.subject:
        log.warning(f"{dest.shown(CERT)} was not issued by the CA that ca.crt and the truststore hold")
    return key, cert, issuer


# ---- what goes in DEST ----


def _files(
    request: Request,
    dest: Dest,
    key: PrivateKey,
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    current: dict[str, bytes | None],
    passwords: dict[str, str],
) -> dict[str, tuple[bytes, int]]:
    """Every file of DEST with its content and mode; an existing file that already holds what is wanted
    keeps its bytes (a keystore's salt is new at every write, so equal content is judged by opening it)."""
    files: dict[str, tuple[bytes, int]] = {}
    _put(files, current, KEY, lambda: pem.key_pem(key), PRIVATE, lambda old: _same_key(old, key))
    _put(files, current, CERT, lambda: pem.cert_pem(cert), PUBLIC, lambda old: _same_certs(old, [cert]))
    if issuer is not None:
        _put(files, current, CA_CERT, lambda: pem.cert_pem(issuer), PUBLIC, lambda old: _same_certs(old, [issuer]))
    if request.pkcs12:
        name, password = request.pkcs12.name, passwords[request.pkcs12.name]
        _put(
            files,
            current,
            name,
            lambda: stores.pkcs12_bytes(request.alias, key, cert, issuer, password),
            PRIVATE,
            lambda old: stores.pkcs12_holds(old, key, cert, issuer, password),
        )
    if request.keystore:
        name, password = request.keystore.name, passwords[request.keystore.name]
        chain = [cert] + ([issuer] if issuer is not None else [])
        key_der = stores.pkcs8_der(key)
        _put(
            files,
            current,
            name,
            lambda: stores.jks_keystore_bytes(request.alias, key, cert, issuer, password),
            PRIVATE,
            lambda old: stores.jks_holds(old, password, request.alias, key_der, chain),
        )
    if request.truststore:
        if issuer is None:
            raise BadInput("a truststore needs the CA: give --ca-cert (or put ca.crt in DEST beside tls.crt)")
        name, password = request.truststore.name, passwords[request.truststore.name]
        _put(
            files,
            current,
            name,
            lambda: stores.jks_truststore_bytes(request.ca_alias, issuer, password),
            PUBLIC,
            lambda old: stores.jks_holds(old, password, request.ca_alias, None, [issuer]),
        )
    return files


def _put(
    files: dict[str, tuple[bytes, int]],
    current: dict[str, bytes | None],
    name: str,
    make: Callable[[], bytes],
    mode: int,
    holds: Callable[[bytes], bool],
) -> None:
    old = current.get(name)
    files[name] = (old if old is not None and holds(old) else make(), mode)


def _same_key(old: bytes, key: PrivateKey) -> bool:
    try:
        found = pem.private_key(old, "")
    except BadInput:
        return False
    return stores.pkcs8_der(found) == stores.pkcs8_der(key)


def _same_certs(old: bytes, wanted: list[x509.Certificate]) -> bool:
    try:
        return pem.certificates(old, "") == wanted
    except BadInput:
        return False
