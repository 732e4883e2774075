"""Shared by the certs tests: an operator's CA made with the openssl command line, snapshots of DEST,
and the pod's environment (the Downward API variables a pod spec sets)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import requirement

POD_ENV = {"POD_NAME": "kafka-0", "POD_IP": "127.0.0.1", "POD_NAMESPACE": "data"}
FQDN = "kafka-0.kafka-headless.data.svc.cluster.local"


def openssl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = requirement.tool("openssl", "apt-get install openssl")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def operator_ca(where: Path, *, ca: bool = True, password: str | None = None, name: str = "ca") -> tuple[Path, Path]:
    """A CA (or, with ca=False, a certificate that is not one) made as an operator would, with openssl."""
    where.mkdir(parents=True, exist_ok=True)
    cert, key = where / f"{name}.crt", where / f"{name}.key"
    constraints = "basicConstraints=critical,CA:TRUE" if ca else "basicConstraints=critical,CA:FALSE"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert)]
    args += ["-subj", f"/CN=operator {name}", "-days", "30", "-addext", constraints]
    if password is None:
        args.append("-nodes")
    else:
        (where / "ca-key-password").write_text(password + "\n")
        args += ["-passout", f"file:{where / 'ca-key-password'}"]
    done = openssl(*args)
    assert done.returncode == 0, done.stderr
    return cert, key


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """name: (inode, mtime_ns, mode, content) of every entry: a re-run that rewrites anything changes it."""
    found = {}
    for name in sorted(os.listdir(directory)):
        st = os.lstat(directory / name)
        content = (directory / name).read_bytes() if stat.S_ISREG(st.st_mode) else b""
        found[name] = (st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode), content)
    return found
