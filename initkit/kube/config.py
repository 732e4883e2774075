"""Where the API server is and how initkit proves who it is: in-cluster, or a kubeconfig.

In a pod: KUBERNETES_SERVICE_HOST/PORT, and the ServiceAccount's projected files
(token, ca.crt, namespace). The kubelet rewrites the token before it expires, so
the token is read again for every connection (`Config.bearer`), never kept.

For a run outside a pod (a laptop, the tests): a kubeconfig (`--kubeconfig`, or
KUBECONFIG) with its current context: the server, its CA (a file or inline data),
and a token, a token file (re-read likewise) or a client certificate and key.
Exec plugins, auth providers and basic auth are refused (exit 2): initkit runs
no program a kubeconfig names. `insecure-skip-tls-verify` is refused too: the
token is a credential, and initkit always verifies the server.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from initkit import redact, secretfile
from initkit.errors import BadInput, JobFailed

SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBECONFIG_LIMIT = 1 << 20  # a kubeconfig is a few KiB; a bigger one is no kubeconfig
NAMESPACE_LIMIT = 253


class TokenUnreadable(JobFailed):
    """The token file could not be read for a (re)connection: retried until the deadline."""


@dataclass
class Config:
    server: str  # scheme://host:port, no path
    ca_file: str | None  # None: the system's CAs
    namespace: str  # the default for targets without NS/
    source: str  # how a message names this configuration
    token_file: str | None = None  # read again for each connection
    token: str | None = None  # a kubeconfig's inline token
    cert: tuple[str, str] | None = None  # client certificate and key files

    def bearer(self) -> str | None:
        """The token to send now: the file's content as it is at this connection (rotation)."""
        if self.token_file is None:
            return self.token
        try:
            return secretfile.read(self.token_file, "ServiceAccount token file")
        except BadInput as exc:  # the kubelet swaps the file atomically; a bad moment is retried
            raise TokenUnreadable(str(exc)) from None


def load(kubeconfig: str | None) -> Config:
    """The kubeconfig's current context when one is given (option or KUBECONFIG), else in-cluster."""
    if kubeconfig:
        return from_kubeconfig(_first_path(kubeconfig))
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    raise BadInput(
        "Kubernetes API targets need the pod's ServiceAccount (KUBERNETES_SERVICE_HOST is not set) "
        "or --kubeconfig (KUBECONFIG)"
    )


def _first_path(value: str) -> str:
    """KUBECONFIG may list several files; initkit merges none and takes the first that exists."""
    paths = [p for p in value.split(os.pathsep) if p]
    for path in paths:
        if os.path.exists(path):
            return path
    raise BadInput(f"kubeconfig {value} does not exist")


def in_cluster() -> Config:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"KUBERNETES_SERVICE_PORT={port!r} is not a port number")
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name
    token_file = os.path.join(SERVICEACCOUNT_DIR, "token")
    ca_file = os.path.join(SERVICEACCOUNT_DIR, "ca.crt")
    if not os.path.isfile(token_file):
        raise BadInput(
            f"no ServiceAccount token at {token_file}: the pod needs automountServiceAccountToken "
            "(the chart sets it when an API target is used)"
        )
    config = Config(
        server=f"https://{host}:{port}",
        ca_file=ca_file if os.path.isfile(ca_file) else None,
        namespace=_own_namespace(),
        source="in-cluster ServiceAccount",
        token_file=token_file,
    )
    secretfile.read(token_file, "ServiceAccount token file")  # unusable at the start: exit 2
    return config


def _own_namespace() -> str:
    path = os.path.join(SERVICEACCOUNT_DIR, "namespace")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            namespace = handle.read(NAMESPACE_LIMIT + 1).strip()
    except OSError:
        namespace = os.environ.get("POD_NAMESPACE", "")
    if not namespace:
        raise BadInput(f"cannot tell the pod's namespace ({path} is missing): write NS/ before the name")
    return namespace


def from_kubeconfig(path: str) -> Config:
    import yaml

    try:
        with open(path, "rb") as handle:
            raw = handle.read(KUBECONFIG_LIMIT + 1)
    except OSError as exc:
        raise BadInput(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    if len(raw) > KUBECONFIG_LIMIT:
        raise BadInput(f"kubeconfig {path} is over {KUBECONFIG_LIMIT >> 20} MiB")
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise BadInput(f"kubeconfig {path} is not valid YAML") from None
    if not isinstance(document, dict):
        raise BadInput(f"kubeconfig {path} is not a kubeconfig (no mapping)")
    base = os.path.dirname(os.path.abspath(path))
    name = document.get("current-context")
    context = _named(document, "contexts", "context", name, path)
    cluster = _named(document, "clusters", "cluster", context.get("cluster"), path)
    user = _named(document, "users", "user", context.get("user"), path) if context.get("user") else {}
    where = f"kubeconfig {path} (context {name})"
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise BadInput(f"{where}: the cluster's server {server!r} is not an http(s) URL")
    if cluster.get("insecure-skip-tls-verify"):
        raise BadInput(f"{where}: insecure-skip-tls-verify is refused: initkit always verifies the API server")
    for unsupported in ("exec", "auth-provider", "username", "password"):
        if user.get(unsupported):
            raise BadInput(
                f"{where}: the user's {unsupported} is not supported (use a token, tokenFile or a client certificate)"
            )
    config = Config(
        server=server,
        ca_file=_file_or_data(cluster, "certificate-authority", base, where),
        namespace=str(context.get("namespace") or "default"),
        source=where,
    )
    if user.get("tokenFile"):
        config.token_file = _path(str(user["tokenFile"]), base)
        secretfile.read(config.token_file, "token file")
    elif user.get("token"):
        config.token = str(user["token"]).strip()
        redact.register(config.token)
    cert = _file_or_data(user, "client-certificate", base, where)
    key = _file_or_data(user, "client-key", base, where)
    if cert and key:
        config.cert = (cert, key)
    if server.startswith("http://") and (config.token or config.token_file or config.cert):
        raise BadInput(f"{where}: credentials are never sent over plain http ({server})")
    return config


def _named(document: dict[str, Any], section: str, key: str, name: Any, path: str) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name and isinstance(entry.get(key), dict):
            return entry[key]  # type: ignore[no-any-return]
    raise BadInput(f"kubeconfig {path}: no {key} named {name!r} (current-context {document.get('current-context')!r})")


def _path(value: str, base: str) -> str:
    return value if os.path.isabs(value) else os.path.join(base, value)


def _file_or_data(section: dict[str, Any], key: str, base: str, where: str) -> str | None:
    """A path: KEY, or KEY-data (base64) written to a private temporary file for the run (ssl loads files)."""
    if section.get(f"{key}-data"):
        try:
            data = base64.b64decode(str(section[f"{key}-data"]), validate=True)
        except (binascii.Error, ValueError):
            raise BadInput(f"{where}: {key}-data is not base64") from None
        return _private_file(key, data)
    if section.get(key):
        path = _path(str(section[key]), base)
        if not os.path.isfile(path):
            raise BadInput(f"{where}: {key} {path} does not exist")
        return path
    return None


_private_dir: list[str] = []


def _private_file(name: str, data: bytes) -> str:
    if not _private_dir:
        _private_dir.append(tempfile.mkdtemp(prefix="initkit-kube-"))  # mode 0700
        atexit.register(shutil.rmtree, _private_dir[0], True)
    path = os.path.join(_private_dir[0], name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
