"""Hostile inputs for `initkit certs` (issue 19): what a Secret's author, a chart value or an app that
shares DEST can hand it. Each ends in one line (exit 2), shows no password, and writes nothing
through a link nor outside DEST."""

from __future__ import annotations

import datetime
import os
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.certs_helpers import POD_ENV, operator_ca, snapshot

SECRET = "hunter2-Pa55"


@pytest.fixture
def certs(run_cli):
    def run(*args: str, env: dict[str, str] | None = None):
        result = run_cli("certs", *args, env={**POD_ENV, **(env or {})})
        assert SECRET not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
        return result

    return run


def one_line(result, code: int, text: str) -> None:
    assert result.code == code, result.stderr
    assert len(result.lines) == 1 and text in result.lines[0], result.stderr


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _self_signed(tmp_path: Path, name: str, extensions: list[tuple[x509.ExtensionType, bool]], days: int = 30):
    """A self-signed certificate with exactly these extensions (what openssl req would not make)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2 * abs(days)))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(_pem(builder.sign(key, hashes.SHA256())))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


CA_TRUE = (x509.BasicConstraints(ca=True, path_length=None), True)


# ---- hostile CA files (the Secret's author, or a chart value naming the wrong file) ----


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", "does not parse"),
        (b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n", "does not parse"),
        (b"\x00\xff" * 1000, "holds no PEM certificate"),
    ],
)
def test_a_malformed_ca_certificate_is_one_line(certs, tmp_path, content, message):
    _, key = operator_ca(tmp_path / "ca")
    bad = tmp_path / "bad.crt"
    bad.write_bytes(content)
    result = certs(str(tmp_path / "tls"), "--ca-cert", str(bad), "--ca-key", str(key))
    one_line(result, 2, message)
    assert not (tmp_path / "tls").exists() or os.listdir(tmp_path / "tls") == []


def test_a_huge_ca_file_is_refused_after_a_bounded_read(certs, tmp_path):
    _, key = operator_ca(tmp_path / "ca")
    huge = tmp_path / "huge.crt"
    with open(huge, "wb") as f:
        f.truncate(4 << 30)  # 4 GiB, sparse: reading it whole would take the memory limit
    started = time.monotonic()
    result = certs(str(tmp_path / "tls"), "--ca-cert", str(huge), "--ca-key", str(key))
    one_line(result, 2, "larger than 1024 KiB")
    assert time.monotonic() - started < 5


def test_a_fifo_as_the_ca_file_does_not_hang(certs, tmp_path):
    _, key = operator_ca(tmp_path / "ca")
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    done = threading.Event()
    threading.Timer(10, lambda: done.is_set() or os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)).start()
    result = certs(str(tmp_path / "tls"), "--ca-cert", str(fifo), "--ca-key", str(key))
    done.set()
    one_line(result, 2, "is not a regular file")


def test_a_certificate_that_is_not_a_ca_is_refused(certs, tmp_path):
    leaf_cert, leaf_key = operator_ca(tmp_path / "notca", ca=False)  # basicConstraints CA:FALSE
    one_line(certs(str(tmp_path / "tls"), "--ca-cert", str(leaf_cert), "--ca-key", str(leaf_key)), 2, "CA:FALSE")
    plain_cert, plain_key = _self_signed(tmp_path, "plain", [])  # no basicConstraints at all
    result = certs(str(tmp_path / "tls"), "--ca-cert", str(plain_cert), "--ca-key", str(plain_key))
    one_line(result, 2, "not a CA certificate (no basicConstraints CA:TRUE)")
    usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)  # no keyCertSign
    signer_cert, signer_key = _self_signed(tmp_path, "nosign", [CA_TRUE, (usage, True)])
    result = certs(str(tmp_path / "tls"), "--ca-cert", str(signer_cert), "--ca-key", str(signer_key))
    one_line(result, 2, "does not allow keyCertSign")
    assert not (tmp_path / "tls").exists() or os.listdir(tmp_path / "tls") == []


def test_a_key_that_is_not_the_cas_is_refused(certs, tmp_path):
    ca_cert, _ = operator_ca(tmp_path / "ca")
    _, other_key = operator_ca(tmp_path / "other")
    result = certs(str(tmp_path / "tls"), "--ca-cert", str(ca_cert), "--ca-key", str(other_key))
    one_line(result, 2, "is not the key of the CA certificate")


def test_an_expired_ca_and_a_bundle_are_refused(certs, tmp_path):
    old_cert, old_key = _self_signed(tmp_path, "old", [CA_TRUE], days=-1)
    one_line(certs(str(tmp_path / "tls"), "--ca-cert", str(old_cert), "--ca-key", str(old_key)), 2, "expired on")
    ca_cert, ca_key = operator_ca(tmp_path / "ca")
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(ca_cert.read_bytes() + old_cert.read_bytes())
    one_line(certs(str(tmp_path / "tls"), "--ca-cert", str(bundle), "--ca-key", str(ca_key)), 2, "holds 2 certificates")


def test_a_wrong_ca_key_password_is_one_line_without_the_password(certs, tmp_path):
    ca_cert, ca_key = operator_ca(tmp_path / "ca", password="right password")
    wrong = tmp_path / "wrong"
    wrong.write_text(SECRET + "\n")
    result = certs(
        str(tmp_path / "tls"), "--ca-cert", str(ca_cert), "--ca-key", str(ca_key), "--ca-key-password-file", str(wrong)
    )
    one_line(result, 2, "does not parse (or the password is wrong)")


# ---- passwords ----


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f"{SECRET}\n{SECRET}\n".encode(), "line break or control character"),
        (f"{SECRET}\x00tail".encode(), "line break or control character"),
        (f"{SECRET}\rtail".encode(), "line break or control character"),
        (b"\n", "is empty"),
        (b"\xff\xfe" + SECRET.encode(), "is not UTF-8"),
    ],
)
def test_a_password_file_with_a_newline_or_nul_is_refused_unseen(certs, tmp_path, content, message):
    password = tmp_path / "password"
    password.write_bytes(content)
    dest = tmp_path / "tls"
    result = certs(str(dest), "--pkcs12", "keystore.p12", "--pkcs12-password-file", str(password))
    one_line(result, 2, message)
    assert str(password) in result.stderr
    assert not dest.exists()  # refused before DEST was touched


def test_one_trailing_newline_is_not_part_of_the_password(certs, tmp_path):
    from cryptography.hazmat.primitives.serialization import pkcs12

    for name, content in (("lf", SECRET + "\n"), ("crlf", SECRET + "\r\n"), ("none", SECRET)):
        password = tmp_path / name
        password.write_bytes(content.encode())
        dest = tmp_path / f"tls-{name}"
        assert certs(str(dest), "--pkcs12", "k.p12", "--pkcs12-password-file", str(password)).code == 0
        key, cert, _ = pkcs12.load_key_and_certificates((dest / "k.p12").read_bytes(), SECRET.encode())
        assert key is not None and cert is not None


# ---- DEST shared with the app: planted links, files and names ----


@pytest.mark.parametrize("name", ["tls.key", "tls.crt", "ca.crt", "ca.key", "keystore.p12", ".initkit-certs.json"])
def test_a_symlink_planted_in_dest_is_never_followed(certs, tmp_path, name):
    victim = tmp_path / "outside" / "victim"
    victim.parent.mkdir()
    victim.write_text("the node's file\n")
    dest = tmp_path / "tls"
    dest.mkdir()
    (dest / name).symlink_to(victim)
    password = tmp_path / "password"
    password.write_text(SECRET)
    result = certs(str(dest), "--pkcs12", "keystore.p12", "--pkcs12-password-file", str(password))
    one_line(result, 2, "is a symlink")
    assert victim.read_text() == "the node's file\n"
    assert os.listdir(dest) == [name] and os.path.islink(dest / name)


def test_a_link_swapped_in_after_a_run_is_refused_and_the_target_kept(certs, tmp_path):
    dest = tmp_path / "tls"
    assert certs(str(dest)).code == 0
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (dest / "tls.crt").unlink()
    (dest / "tls.crt").symlink_to(victim)
    one_line(certs(str(dest), "--dns-name", "changed.test"), 2, "is a symlink")
    assert victim.read_text() == "keep me\n"


def test_a_hard_link_to_an_outside_file_is_not_written_through(certs, tmp_path):
    dest = tmp_path / "tls"
    assert certs(str(dest)).code == 0
    victim = tmp_path / "victim"
    os.link(dest / "tls.crt", victim)  # the app links the node's file in (same file system)
    assert certs(str(dest), "--dns-name", "changed.test").code == 0  # reissued: a new inode at tls.crt
    assert victim.read_bytes() != (dest / "tls.crt").read_bytes()
    assert os.stat(victim).st_nlink == 1


@pytest.mark.parametrize(
    "name", ["../outside.p12", "/etc/initkit.p12", "sub/dir.p12", ".hidden", "..", "tls.key", "ca.crt"]
)
def test_a_keystore_name_outside_dest_or_taken_is_refused(certs, tmp_path, name):
    password = tmp_path / "password"
    password.write_text(SECRET)
    dest = tmp_path / "tls"
    result = certs(str(dest), "--pkcs12", name, "--pkcs12-password-file", str(password))
    assert result.code == 2 and len(result.lines) == 1, result.stderr
    assert not dest.exists() and not (tmp_path / "outside.p12").exists()


def test_a_forged_ledger_and_a_garbage_certificate_make_a_new_certificate(certs, tmp_path):
    """The app can write DEST: a damaged tls.crt that the ledger claims is initkit's is issued again."""
    dest = tmp_path / "tls"
    assert certs(str(dest)).code == 0
    import hashlib
    import json

    garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    (dest / "tls.crt").write_bytes(garbage)
    ledger = json.loads((dest / ".initkit-certs.json").read_text())
    ledger["files"]["tls.crt"] = [hashlib.sha256(garbage).hexdigest()]
    (dest / ".initkit-certs.json").write_text(json.dumps(ledger))
    result = certs(str(dest))
    assert result.code == 0 and "it does not parse" in result.stderr
    assert (dest / "tls.crt").read_bytes() != garbage


def test_a_huge_or_garbage_ledger_owns_nothing(certs, tmp_path):
    dest = tmp_path / "tls"
    assert certs(str(dest)).code == 0
    before = snapshot(dest)
    with open(dest / ".initkit-certs.json", "wb") as f:
        f.truncate(8 << 20)  # sparse: beyond the 64 KiB a ledger may take
    started = time.monotonic()
    result = certs(str(dest), "--dns-name", "changed.test")
    assert time.monotonic() - started < 5  # a bounded read, not 1 GiB
    # Nothing is initkit's now: its tls.crt and tls.key count as the operator's and are kept as they are.
    one_line(result, 0, "not written by initkit (mounted?); 0 files written")
    assert {k: v for k, v in snapshot(dest).items() if k != ".initkit-certs.json"} == {
        k: v for k, v in before.items() if k != ".initkit-certs.json"
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POD_IP": "10.0.0.1; rm -rf /"}, "is not an IP address"),
        ({"POD_NAME": "web_0/../../etc"}, "is not a DNS name"),
        ({"POD_NAME": "a" * 300}, "is not a DNS name"),
    ],
)
def test_hostile_pod_facts_are_refused(certs, tmp_path, env, message):
    one_line(certs(str(tmp_path / "tls"), env=env), 2, message)
    assert not (tmp_path / "tls").exists()


def test_a_hostile_dns_name_value_is_refused(certs, tmp_path):
    for value in ("exa mple.test", "-bad.test", "a..b", "x" * 64 + ".test", "bad\nname.test", "*.*.test"):
        one_line(certs(str(tmp_path / "tls"), "--dns-name", value), 2, "is not a DNS name")


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_fifo_or_directory_planted_in_dest_is_one_line(certs, tmp_path, kind):
    dest = tmp_path / "tls"
    dest.mkdir()
    if kind == "fifo":
        os.mkfifo(dest / "tls.key")  # opened without O_NONBLOCK, the read would wait for a writer for ever
    else:
        (dest / "tls.key").mkdir()
    one_line(certs(str(dest)), 2, "is not a regular file")
    assert os.listdir(dest) == ["tls.key"]
