"""`initkit certs DEST`: a TLS certificate for this pod, from a mounted or a kept CA, with keystores.

Replaces the `openssl req` / `openssl x509 -req` / `openssl pkcs12 -export` /
`keytool -importkeystore` scripts of os-shell init containers. The mechanism is
`initkit.certs`; this module parses and checks the options. cryptography and
pyjks are imported only when the command runs (initkit-slim has neither).
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from typing import TYPE_CHECKING, Any

import click

from initkit.commands.permissions import OwnerType
from initkit.errors import EXIT_CODES_HELP, BadInput
from initkit.params import Duration, option

if TYPE_CHECKING:  # the mechanism imports cryptography: loaded only when the command runs
    from initkit.certs.job import Request
    from initkit.certs.leaf import Wanted

_SLIM = "certs needs python3-cryptography and python3-pyjks, which initkit-slim leaves out: use the initkit image"
KEY_TYPES = ("rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384")  # initkit.certs.keys.KEY_TYPES


@click.command("certs", epilog=EXIT_CODES_HELP)
@click.argument("dest", envvar="INITKIT_CERTS_DEST")
@option(
    "--ca-cert", type=click.Path(dir_okay=False), metavar="FILE", help="The CA's certificate (PEM), e.g. from a Secret."
)
@option("--ca-key", type=click.Path(dir_okay=False), metavar="FILE", help="The CA's private key (PEM).")
@option(
    "--ca-key-password-file", type=click.Path(dir_okay=False), metavar="FILE", help="Password of an encrypted --ca-key."
)
@option(
    "--ca-dir",
    metavar="DIR",
    show_default=False,
    help="Without --ca-cert: where the CA initkit creates once is kept, as ca.crt and ca.key (default: DEST).",
)
@option("--ca-common-name", default="initkit CA", help="Common name of a CA initkit creates.")
@option("--ca-days", type=click.IntRange(1, 36500), default=3650, help="Validity of a CA initkit creates, in days.")
@option(
    "--dns-name",
    multiple=True,
    show_default=False,
    help="A DNS name for the certificate (repeatable; `*.` allowed as the first label).",
)
@option(
    "--ip-address",
    multiple=True,
    show_default=False,
    help="An IP address for the certificate (repeatable).",
)
@option(
    "--pod/--no-pod",
    default=True,
    help="Add the pod's name (POD_NAME, else the hostname) and IP (POD_IP, else the hostname's address).",
)
@option(
    "--service", metavar="NAME", show_default=False, help="Headless Service: add POD_NAME.NAME.NAMESPACE.svc.DOMAIN."
)
@option(
    "--namespace",
    metavar="NAME",
    show_default=False,
    help="Namespace for --service (default: POD_NAMESPACE, else the service account's).",
)
@option("--cluster-domain", default="cluster.local", help="Cluster DNS domain for --service.")
@option("--common-name", show_default=False, help="Subject common name (default: the pod's name, else the first name).")
@option(
    "--key-type",
    type=click.Choice(KEY_TYPES),
    default="rsa-2048",
    help="Key of the pod's certificate (and of a created CA).",
)
@option(
    "--days",
    type=click.IntRange(1, 3650),
    default=365,
    help="Validity of the pod's certificate, in days (never past the CA's).",
)
@option(
    "--renew-before",
    type=Duration(),
    default="30d",
    help="Issue again when the certificate expires within this margin.",
)
@option(
    "--pkcs12",
    metavar="NAME",
    show_default=False,
    help="Also write a PKCS#12 keystore NAME in DEST (AES-256, PBKDF2, SHA-256 MAC).",
)
@option("--pkcs12-password-file", type=click.Path(dir_okay=False), metavar="FILE", help="Password of --pkcs12.")
@option(
    "--keystore", metavar="NAME", show_default=False, help="Also write a JKS keystore NAME in DEST (key and chain)."
)
@option(
    "--keystore-password-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Password of --keystore (its key's too).",
)
@option("--truststore", metavar="NAME", show_default=False, help="Also write a JKS truststore NAME in DEST (the CA).")
@option(
    "--truststore-password-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    show_default=False,
    help="Password of --truststore (default: --keystore-password-file's).",
)
@option("--alias", default="server", help="Alias of the key entry in the keystores.")
@option("--ca-alias", default="ca", help="Alias of the CA in the truststore.")
@option(
    "--owner", type=OwnerType(), default=None, show_default=False, help="Numeric owner of the files written in DEST."
)
def command(**opts: Any) -> None:
    """Issue a TLS certificate for this pod into DEST: tls.key (PKCS#8, mode 0600), tls.crt and ca.crt,
    and the keystores asked for.

    The CA is --ca-cert/--ca-key (a Secret), or one created on the first run and
    kept in --ca-dir (never replaced). The certificate names the pod (its name and
    IP), its headless Service's FQDN (--service) and every --dns-name and
    --ip-address. A re-run keeps the certificate while it is valid for longer than
    --renew-before, chains to the CA and holds the same names and key type, and
    writes nothing then. Files in DEST that initkit did not write (a mounted
    Secret's tls.crt and tls.key) are never overwritten. Passwords come from files
    only: the content without one trailing newline.

    Replaces: openssl req ... && openssl x509 -req -CA ... && openssl pkcs12 -export ... && keytool ...
    """
    try:
        import cryptography  # noqa: F401
        import jks  # noqa: F401
    except ImportError:
        raise BadInput(_SLIM) from None
    from initkit.certs import job

    job.run(_request(opts))


def _request(opts: dict[str, Any]) -> Request:
    from initkit.certs import job
    from initkit.certs.dest import Owner

    dest = str(opts["dest"])
    wanted = _wanted(opts)
    if opts["ca_cert"] or opts["ca_key"]:
        if not (opts["ca_cert"] and opts["ca_key"]):
            raise BadInput("give --ca-cert and --ca-key together")
        if opts["ca_dir"]:
            raise BadInput("--ca-dir keeps a CA initkit creates: it does not go with --ca-cert")
        authority: job.MountedCA | job.CreatedCA = job.MountedCA(
            str(opts["ca_cert"]), str(opts["ca_key"]), _optional(opts["ca_key_password_file"])
        )
    else:
        if opts["ca_key_password_file"]:
            raise BadInput("--ca-key-password-file goes with --ca-key")
        authority = job.CreatedCA(
            str(opts["ca_dir"] or dest), _text(opts["ca_common_name"], "--ca-common-name"), int(opts["ca_days"])
        )
    names = {job.CERT, job.KEY, job.CA_CERT, job.CA_KEY}
    stores = {}
    for kind, password_option in (
        ("pkcs12", "pkcs12_password_file"),
        ("keystore", "keystore_password_file"),
        ("truststore", "truststore_password_file"),
    ):
        name = opts[kind]
        if not name:
            continue
        password = opts[password_option] or (opts["keystore_password_file"] if kind == "truststore" else None)
        if not password:
            raise BadInput(f"--{kind} needs --{password_option.replace('_', '-')} (passwords come from files only)")
        checked = _file_name(str(name), f"--{kind}")
        if checked in names:
            raise BadInput(f"--{kind} {checked}: that name is taken in DEST")
        names.add(checked)
        stores[kind] = job.Store(checked, str(password))
    return job.Request(
        dest=dest,
        wanted=wanted,
        ca=authority,
        alias=_text(opts["alias"], "--alias"),
        ca_alias=_text(opts["ca_alias"], "--ca-alias"),
        owner=Owner(opts["owner"].uid, opts["owner"].gid) if opts["owner"] else None,
        **stores,
    )


def _wanted(opts: dict[str, Any]) -> Wanted:
    from initkit.certs import leaf
    from initkit.podfacts import PodFacts

    facts = PodFacts()
    dns: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    pod_name = None
    if opts["pod"]:
        pod_name = facts.name
        if pod_name:
            dns.append(_dns(pod_name, "the pod's name (POD_NAME or the hostname)"))
        if facts.ip:
            ips.append(_ip(facts.ip, "the pod's IP (POD_IP)"))
    if opts["service"]:
        namespace = opts["namespace"] or facts.namespace
        if not namespace:
            raise BadInput(
                "--service needs the namespace: set POD_NAMESPACE (fieldRef metadata.namespace) or --namespace"
            )
        host = facts.name or socket.gethostname()
        dns.append(_dns(f"{host}.{opts['service']}.{namespace}.svc.{opts['cluster_domain']}", "--service"))
    dns += [_dns(str(name), "--dns-name") for name in opts["dns_name"]]
    ips += [_ip(str(text), "--ip-address") for text in opts["ip_address"]]
    if not dns and not ips:
        raise BadInput("no name for the certificate: give --dns-name or --ip-address (or leave --pod on)")
    common_name = opts["common_name"]
    if common_name:
        common_name = _text(str(common_name), "--common-name")
        if len(str(common_name)) > leaf.MAX_COMMON_NAME:
            raise BadInput(f"--common-name is longer than {leaf.MAX_COMMON_NAME} characters")
    else:
        candidates = [
            name for name in ([pod_name.lower()] if pod_name else []) + dns if len(name) <= leaf.MAX_COMMON_NAME
        ]
        common_name = candidates[0] if candidates else str(ips[0]) if ips else dns[0][: leaf.MAX_COMMON_NAME]
    renew_before = datetime.timedelta(seconds=float(opts["renew_before"]))
    days = int(opts["days"])
    if renew_before >= datetime.timedelta(days=days):
        raise BadInput(f"--renew-before must be shorter than --days ({days}d): every run would issue again")
    return leaf.Wanted(str(common_name), frozenset(dns), frozenset(ips), str(opts["key_type"]), days, renew_before)


def _dns(text: str, what: str) -> str:
    from initkit.certs.leaf import dns_name

    name = dns_name(text)
    if name is None:
        raise BadInput(f"{what}: {text[:80]!r} is not a DNS name")
    return name


def _ip(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise BadInput(f"{what}: {text[:80]!r} is not an IP address") from None


def _file_name(text: str, what: str) -> str:
    """A plain name in DEST: no directory part, nothing that leads out of it, not a hidden file."""
    if not text or "/" in text or "\0" in text or text.startswith(".") or len(text) > 255:
        raise BadInput(f"{what} {text[:80]!r}: give a file name in DEST (no '/', not hidden)")
    return text


def _text(value: object, what: str) -> str:
    text = str(value)
    if not text.strip() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise BadInput(f"{what} must be one line of text")
    return text


def _optional(value: object) -> str | None:
    return str(value) if value else None
