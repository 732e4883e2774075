"""Pod facts from Kubernetes' Downward API, with fallbacks outside a pod.

POD_IP, POD_NAME, POD_NAMESPACE, POD_UID and NODE_NAME are what a pod spec
sets with `fieldRef`. Facts are looked up lazily: a template that never uses
`pod.ip` never resolves the hostname.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from functools import cached_property

from initkit.errors import BadInput

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class PodFacts:
    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        namespace_file: str = SERVICE_ACCOUNT_NAMESPACE,
    ) -> None:
        self._env = os.environ if environ is None else environ
        self._namespace_file = namespace_file

    def _var(self, name: str) -> str | None:
        return checked_env(name, self._env.get(name)) or None

    @cached_property
    def name(self) -> str | None:
        return self._var("POD_NAME") or socket.gethostname() or None

    @cached_property
    def namespace(self) -> str | None:
        found = self._var("POD_NAMESPACE")
        if found:
            return found
        try:
            with open(self._namespace_file, encoding="utf-8") as f:
                return f.read(4096).strip() or None
        except OSError:
            return None
        except UnicodeDecodeError:
            raise BadInput(f"{self._namespace_file} is not UTF-8 text") from None

    @cached_property
    def ip(self) -> str | None:
        found = self._var("POD_IP")
        if found:
            return found
        # The kubelet writes the pod's IP for its hostname into /etc/hosts.
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return None

    @cached_property
    def uid(self) -> str | None:
        return self._var("POD_UID")

    @cached_property
    def node_name(self) -> str | None:
        return self._var("NODE_NAME")

    def identity(self) -> str:
        """What stays the same across re-runs of this pod's init containers."""
        if self.uid:
            return f"uid:{self.uid}"
        return f"name:{self.namespace or ''}/{self.name or ''}"

    def as_dict(self) -> dict[str, dict[str, str | None]]:
        return {
            "pod": {"ip": self.ip, "name": self.name, "namespace": self.namespace, "uid": self.uid},
            "node": {"name": self.node_name},
        }


def checked_env(name: str, value: str | None) -> str | None:
    """The value of an environment variable, refused (exit 2) when its bytes are not UTF-8.

    Python decodes such bytes to lone surrogates, which no file or stream can hold
    later: the failure would come at write time, far from its cause."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(f"environment variable {name} is not valid UTF-8") from None
    return value


FACT_SOURCES = {
    "pod.ip": "POD_IP (fieldRef status.podIP)",
    "pod.name": "POD_NAME (fieldRef metadata.name)",
    "pod.namespace": "POD_NAMESPACE (fieldRef metadata.namespace)",
    "pod.uid": "POD_UID (fieldRef metadata.uid)",
    "node.name": "NODE_NAME (fieldRef spec.nodeName)",
}
