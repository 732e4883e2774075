"""initkit certs: the outputs read by real consumers (openssl, Java's keytool, a TLS handshake),
re-runs that write nothing, expiry, a changed name, a mounted CA and a mounted certificate."""

from __future__ import annotations

import datetime
import os
import re
import shlex
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.certs_helpers import FQDN, POD_ENV, openssl, operator_ca, snapshot
from tests.conftest import ROOT, requirement

PASSWORD = "s3cret pass"  # a space: keytool and openssl must get it whole


def keytool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = requirement.tool("keytool", "apt-get install openjdk-17-jre-headless")
    quick = ["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto"]  # a JVM that starts sooner
    return subprocess.run([tool, *quick, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def pod(run_cli):
    """run_cli with the pod's Downward API environment."""

    def run(*args: str, env: dict[str, str] | None = None):
        return run_cli("certs", *args, env={**POD_ENV, **(env or {})})

    return run


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "store-password"
    path.parent.mkdir()
    path.write_text(PASSWORD + "\n")  # one trailing newline: not part of the password
    return path


def stores_args(password_file: Path) -> list[str]:
    return [
        "--pkcs12", "keystore.p12", "--pkcs12-password-file", str(password_file),
        "--keystore", "keystore.jks", "--keystore-password-file", str(password_file),
        "--truststore", "truststore.jks",
    ]  # fmt: skip


def test_issues_a_pem_key_and_certificate_that_openssl_verifies(pod, tmp_path):
    dest = tmp_path / "tls"
    result = pod(str(dest), "--service", "kafka-headless", "--dns-name", "localhost")
    assert result.code == 0, result.stderr
    assert "issued" in result.stderr and "created a CA" in result.stderr
    assert stat.S_IMODE(os.stat(dest / "tls.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(dest / "ca.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(dest / "tls.crt").st_mode) == 0o644
    assert (dest / "tls.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    verified = openssl("verify", "-CAfile", str(dest / "ca.crt"), str(dest / "tls.crt"))
    assert verified.returncode == 0 and verified.stdout.strip().endswith(": OK"), verified.stdout + verified.stderr
    sans = openssl("x509", "-in", str(dest / "tls.crt"), "-noout", "-ext", "subjectAltName").stdout
    for name in (f"DNS:{FQDN}", "DNS:kafka-0", "DNS:localhost", "IP Address:127.0.0.1"):
        assert name in sans
    purpose = openssl("verify", "-CAfile", str(dest / "ca.crt"), "-purpose", "sslserver", str(dest / "tls.crt"))
    assert purpose.returncode == 0, purpose.stderr


def test_pkcs12_has_the_modern_profile_and_opens_in_openssl_and_keytool(pod, tmp_path, password_file):
    dest = tmp_path / "tls"
    assert pod(str(dest), *stores_args(password_file)).code == 0
    info = openssl("pkcs12", "-info", "-noout", "-in", str(dest / "keystore.p12"), "-passin", f"file:{password_file}")
    assert info.returncode == 0, info.stderr
    assert "MAC: sha256" in info.stderr
    assert info.stderr.count("PBES2, PBKDF2, AES-256-CBC") == 2, info.stderr  # the key and the certificates
    assert "RC2" not in info.stderr and "3DES" not in info.stderr
    assert stat.S_IMODE(os.stat(dest / "keystore.p12").st_mode) == 0o600
    listed = keytool(
        "-list", "-v", "-storetype", "PKCS12", "-keystore", str(dest / "keystore.p12"), "-storepass", PASSWORD
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "Alias name: server" in listed.stdout and "PrivateKeyEntry" in listed.stdout
    assert "Certificate chain length: 2" in listed.stdout
    wrong = openssl("pkcs12", "-info", "-noout", "-in", str(dest / "keystore.p12"), "-passin", "pass:wrong")
    assert wrong.returncode != 0  # the password protects it


def test_jks_keystore_and_truststore_open_in_keytool(pod, tmp_path, password_file):
    dest = tmp_path / "tls"
    assert pod(str(dest), *stores_args(password_file)).code == 0
    keystore = keytool(
        "-list", "-v", "-storetype", "JKS", "-keystore", str(dest / "keystore.jks"), "-storepass", PASSWORD
    )
    assert keystore.returncode == 0, keystore.stdout + keystore.stderr
    assert "Alias name: server" in keystore.stdout and "Certificate chain length: 2" in keystore.stdout
    trust = keytool(
        "-list", "-v", "-storetype", "JKS", "-keystore", str(dest / "truststore.jks"), "-storepass", PASSWORD
    )
    assert trust.returncode == 0, trust.stdout + trust.stderr
    assert "Alias name: ca" in trust.stdout and "trustedCertEntry" in trust.stdout
    # keytool checks the store's integrity with the password: a wrong one fails
    bad = keytool("-list", "-storetype", "JKS", "-keystore", str(dest / "truststore.jks"), "-storepass", "nope")
    assert bad.returncode != 0


def _serve_once(dest: Path, listener: socket.socket, errors: list[BaseException]) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(dest / "tls.crt", dest / "tls.key")
    while True:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                if tls.recv(5) == b"quit\n":
                    return
                tls.sendall(b"hello\n")
        except (ssl.SSLError, OSError) as exc:  # a client that refused the certificate
            errors.append(exc)


def _connect(port: int, ca: Path, name: str) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        tls.sendall(b"ping\n")
        return tls.recv(6)


def test_a_tls_server_serves_the_certificate_to_a_client_that_trusts_the_ca(pod, tmp_path):
    dest = tmp_path / "tls"
    assert pod(str(dest), "--service", "kafka-headless").code == 0
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors: list[BaseException] = []
    server = threading.Thread(target=_serve_once, args=(dest, listener, errors), daemon=True)
    server.start()
    try:
        assert _connect(port, dest / "ca.crt", FQDN) == b"hello\n"  # by the headless Service's name
        assert _connect(port, dest / "ca.crt", "127.0.0.1") == b"hello\n"  # by the pod's IP
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            _connect(port, dest / "ca.crt", "kafka-1.kafka-headless.data.svc.cluster.local")
        other = tmp_path / "other"
        assert pod(str(other), "--service", "kafka-headless").code == 0  # another CA
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            _connect(port, other / "ca.crt", FQDN)
    finally:
        context = ssl.create_default_context(cafile=str(dest / "ca.crt"))
        with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw, server_hostname=FQDN) as t:
            t.sendall(b"quit\n")
        server.join(10)
        listener.close()


def test_openssl_s_server_serves_what_the_pkcs12_holds_to_s_client(pod, tmp_path, password_file):
    """A second consumer of the PKCS#12: openssl unpacks it, s_server serves it, s_client verifies by IP."""
    dest = tmp_path / "tls"
    assert pod(str(dest), *stores_args(password_file)).code == 0
    bundle = tmp_path / "bundle.pem"
    unpacked = openssl(
        "pkcs12", "-in", str(dest / "keystore.p12"), "-passin", f"file:{password_file}", "-nodes", "-out", str(bundle)
    )
    assert unpacked.returncode == 0, unpacked.stderr
    tool = requirement.tool("openssl", "apt-get install openssl")
    server = subprocess.Popen(
        [tool, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-cert", str(bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.PIPE,
        text=True,
    )  # fmt: skip  (stdin stays open: s_server ends a session at its EOF)
    try:
        port = None
        for line in server.stdout:  # "ACCEPT 127.0.0.1:PORT" once it listens
            if found := re.match(r"ACCEPT 127\.0\.0\.1:(\d+)", line):
                port = int(found.group(1))
                break
        assert port is not None
        client = subprocess.run(
            [tool, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(dest / "ca.crt"),
             "-verify_ip", "127.0.0.1", "-verify_return_error", "-brief"],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert "Verification: OK" in client.stderr, client.stderr
    finally:
        server.kill()
        server.wait()


def test_a_rerun_writes_nothing(pod, tmp_path, password_file):
    dest = tmp_path / "tls"
    args = [str(dest), "--service", "kafka-headless", *stores_args(password_file)]
    assert pod(*args).code == 0
    before = snapshot(dest)
    again = pod(*args)
    assert again.code == 0, again.stderr
    assert "kept" in again.stderr and "0 files written" in again.stderr
    assert snapshot(dest) == before  # inodes, mtimes, modes and bytes
    password_file.write_text("another password\n")  # the Secret changed: the stores follow, the PEM stays
    changed = pod(*args)
    assert changed.code == 0 and "3 files written" in changed.stderr, changed.stderr
    after = snapshot(dest)
    assert {name: after[name] for name in ("tls.crt", "tls.key", "ca.crt")} == {
        name: before[name] for name in ("tls.crt", "tls.key", "ca.crt")
    }
    info = openssl("pkcs12", "-info", "-noout", "-in", str(dest / "keystore.p12"), "-passin", f"file:{password_file}")
    assert info.returncode == 0, info.stderr


def test_a_certificate_within_the_renewal_margin_is_issued_again(pod, tmp_path):
    dest = tmp_path / "tls"
    assert pod(str(dest), "--days", "10", "--renew-before", "1d").code == 0
    first, ca = (dest / "tls.crt").read_bytes(), snapshot(dest)["ca.key"]
    kept = pod(str(dest), "--days", "10", "--renew-before", "9d")
    assert kept.code == 0 and (dest / "tls.crt").read_bytes() == first  # 10 days left > 9
    renewed = pod(str(dest), "--days", "365", "--renew-before", "11d")
    assert renewed.code == 0, renewed.stderr
    assert "within the renewal margin" in renewed.stderr
    assert (dest / "tls.crt").read_bytes() != first
    assert snapshot(dest)["ca.key"] == ca  # the CA is never replaced
    assert openssl("verify", "-CAfile", str(dest / "ca.crt"), str(dest / "tls.crt")).returncode == 0


def test_time_passing_renews_the_certificate(tmp_path, monkeypatch):
    """An injected moment: the same request, 340 days on, is within 30 days of the end."""
    from initkit.certs import job
    from tests.certs_helpers import POD_ENV as env

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from initkit.commands.certs import _request

    opts = dict(
        dest=str(tmp_path / "tls"), ca_cert=None, ca_key=None, ca_key_password_file=None, ca_dir=None,
        ca_common_name="initkit CA", ca_days=3650, dns_name=(), ip_address=(), pod=True, service=None,
        namespace=None, cluster_domain="cluster.local", common_name=None, key_type="ecdsa-p256", days=365,
        renew_before=30 * 86400.0, pkcs12=None, pkcs12_password_file=None, keystore=None,
        keystore_password_file=None, truststore=None, truststore_password_file=None, alias="server", ca_alias="ca",
        owner=None,
    )  # fmt: skip
    request = _request(opts)
    job.run(request)
    first = (tmp_path / "tls" / "tls.crt").read_bytes()
    now = datetime.datetime.now(datetime.UTC)
    job.run(job.Request(**{**request.__dict__, "now": now + datetime.timedelta(days=300)}))
    assert (tmp_path / "tls" / "tls.crt").read_bytes() == first
    job.run(job.Request(**{**request.__dict__, "now": now + datetime.timedelta(days=340)}))
    assert (tmp_path / "tls" / "tls.crt").read_bytes() != first


def test_a_changed_pod_ip_or_name_is_issued_again(pod, tmp_path):
    dest = tmp_path / "tls"
    assert pod(str(dest)).code == 0
    first_key = (dest / "tls.key").read_bytes()
    moved = pod(str(dest), env={"POD_IP": "127.0.0.2"})
    assert moved.code == 0 and "its names differ" in moved.stderr
    assert (
        "IP Address:127.0.0.2"
        in openssl("x509", "-in", str(dest / "tls.crt"), "-noout", "-ext", "subjectAltName").stdout
    )
    assert (dest / "tls.key").read_bytes() != first_key  # a new key with the new certificate
    named = pod(str(dest), "--dns-name", "broker.example.test", env={"POD_IP": "127.0.0.2"})
    assert named.code == 0 and "broker.example.test" in named.stderr
    other_type = pod(
        str(dest), "--dns-name", "broker.example.test", "--key-type", "ecdsa-p256", env={"POD_IP": "127.0.0.2"}
    )
    assert other_type.code == 0 and "the key is not ecdsa-p256" in other_type.stderr


def test_a_mounted_ca_with_an_encrypted_key_signs_and_a_new_ca_reissues(pod, tmp_path, password_file):
    ca_cert, ca_key = operator_ca(tmp_path / "ca", password="ca pass")
    dest = tmp_path / "tls"
    args = ["--ca-cert", str(ca_cert), "--ca-key", str(ca_key), *stores_args(password_file)]
    missing_password = pod(str(dest), *args)
    assert missing_password.code == 2 and "is encrypted" in missing_password.stderr
    assert not dest.exists() or not os.listdir(dest)
    args += ["--ca-key-password-file", str(tmp_path / "ca" / "ca-key-password")]
    result = pod(str(dest), *args)
    assert result.code == 0, result.stderr
    assert not (dest / "ca.key").exists()  # the operator's CA key stays in its Secret
    assert (dest / "ca.crt").read_bytes() == ca_cert.read_bytes()
    assert openssl("verify", "-CAfile", str(ca_cert), str(dest / "tls.crt")).returncode == 0
    rotated_cert, rotated_key = operator_ca(tmp_path / "ca2", password="ca pass")
    args[1], args[3] = str(rotated_cert), str(rotated_key)
    args[-1] = str(tmp_path / "ca2" / "ca-key-password")
    rotated = pod(str(dest), *args)
    assert rotated.code == 0 and "not issued by this CA" in rotated.stderr
    assert openssl("verify", "-CAfile", str(rotated_cert), str(dest / "tls.crt")).returncode == 0
    trust = keytool("-list", "-rfc", "-keystore", str(dest / "truststore.jks"), "-storepass", PASSWORD)
    assert rotated_cert.read_text().strip() in trust.stdout.replace("\r", "")


def test_a_mounted_certificate_is_never_overwritten_and_feeds_the_keystores(pod, tmp_path, password_file):
    ca_cert, ca_key = operator_ca(tmp_path / "ca")
    dest = tmp_path / "tls"
    dest.mkdir()
    made = openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", str(dest / "tls.key"), "-out", str(dest / "tls.crt"),
        "-subj", "/CN=operator", "-days", "5", "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-addext", "subjectAltName=DNS:operator.example.test",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    before = {name: (dest / name).read_bytes() for name in ("tls.crt", "tls.key")}
    inodes = {name: os.stat(dest / name).st_ino for name in before}
    result = pod(str(dest), "--ca-cert", str(ca_cert), "--ca-key", str(ca_key), *stores_args(password_file))
    assert result.code == 0, result.stderr
    assert "not written by initkit" in result.stderr and "expires on" in result.stderr  # 5 days < 30
    assert {name: (dest / name).read_bytes() for name in before} == before
    assert {name: os.stat(dest / name).st_ino for name in before} == inodes
    listed = openssl("pkcs12", "-in", str(dest / "keystore.p12"), "-passin", f"file:{password_file}", "-nokeys")
    assert "subject=CN = operator" in listed.stdout, listed.stderr
    # Another run, other names wanted: the operator's files still stay as they are.
    again = pod(str(dest), "--ca-cert", str(ca_cert), "--ca-key", str(ca_key), "--dns-name", "x.test")
    assert again.code == 0 and {name: (dest / name).read_bytes() for name in before} == before


def test_a_foreign_keystore_is_not_overwritten(pod, tmp_path, password_file):
    dest = tmp_path / "tls"
    dest.mkdir()
    (dest / "keystore.p12").write_bytes(b"the operator's own keystore")
    result = pod(str(dest), "--pkcs12", "keystore.p12", "--pkcs12-password-file", str(password_file))
    assert result.code == 2
    assert "keystore.p12 was not written by initkit" in result.stderr and len(result.lines) == 1
    assert (dest / "keystore.p12").read_bytes() == b"the operator's own keystore"
    assert os.listdir(dest) == ["keystore.p12"]  # refused before anything was made


def test_a_kept_ca_is_never_replaced(pod, tmp_path):
    dest = tmp_path / "tls"
    assert pod(str(dest), "--ca-dir", str(tmp_path / "ca-store")).code == 0
    assert sorted(os.listdir(tmp_path / "ca-store")) == [".initkit-certs.json", "ca.crt", "ca.key"] or sorted(
        os.listdir(tmp_path / "ca-store")
    ) == ["ca.crt", "ca.key"]
    assert not (dest / "ca.key").exists()
    ca = (tmp_path / "ca-store" / "ca.key").read_bytes()
    (tmp_path / "ca-store" / "ca.key").unlink()
    result = pod(str(dest), "--ca-dir", str(tmp_path / "ca-store"))
    assert result.code == 2 and "never replaces one" in result.stderr
    assert not (tmp_path / "ca-store" / "ca.key").exists() and ca


def test_owner_is_set_on_the_files(pod, tmp_path, require):
    require.root("chown")
    dest = tmp_path / "tls"
    assert pod(str(dest), "--owner", "1234:2345").code == 0
    for name in ("tls.key", "tls.crt", "ca.crt"):
        st = os.stat(dest / name)
        assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert os.stat(dest / "ca.key").st_uid == 0  # the CA's key stays root's: the app need not read it


def test_options_from_the_environment(run_cli, tmp_path, password_file):
    dest = tmp_path / "tls"
    env = {
        **POD_ENV,
        "INITKIT_CERTS_DEST": str(dest),
        "INITKIT_CERTS_DNS_NAME": "a.example.test b.example.test",
        "INITKIT_CERTS_PKCS12": "keystore.p12",
        "INITKIT_CERTS_PKCS12_PASSWORD_FILE": str(password_file),
    }
    assert run_cli("certs", env=env).code == 0
    sans = openssl("x509", "-in", str(dest / "tls.crt"), "-noout", "-ext", "subjectAltName").stdout
    assert "DNS:a.example.test" in sans and "DNS:b.example.test" in sans
    assert (dest / "keystore.p12").exists()


def test_without_cryptography_it_names_the_initkit_image(tmp_path):
    code = "import sys\nsys.modules['cryptography'] = None\nfrom initkit.cli import main\nmain(sys.argv[1:])\n"
    proc = subprocess.run(
        [sys.executable, "-c", code, "certs", str(tmp_path / "d")], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "use the initkit image" in proc.stderr
    assert not (tmp_path / "d").exists()


def test_the_readme_example_runs(pod, tmp_path):
    """The README's certs example, its paths moved below tmp_path."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### certs") :]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    command = " ".join(line.rstrip("\\").strip() for line in block.strip().splitlines())
    args = shlex.split(command)
    assert args[:2] == ["initkit", "certs"]
    moved = [f"{tmp_path}{arg}" if arg.startswith("/") else arg for arg in args[2:]]
    operator_ca(tmp_path / "secrets" / "ca", name="tls")  # the CA's Secret: tls.crt and tls.key
    (tmp_path / "secrets" / "keystore-password").write_text(PASSWORD + "\n")
    result = pod(*moved)
    assert result.code == 0, result.stderr
    assert (
        openssl("verify", "-CAfile", str(tmp_path / "tls" / "ca.crt"), str(tmp_path / "tls" / "tls.crt")).returncode
        == 0
    )
    assert (tmp_path / "tls" / "keystore.jks").exists() and (tmp_path / "tls" / "truststore.jks").exists()
