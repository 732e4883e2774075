"""wait-for's Kubernetes API targets (job:, pods:, endpoints:, daemonset:, cr:, gone:): the glue.

A check here is not one look: it lists and watches (initkit.kube.watch) until the
target is ready, so the change is seen as the API server sends it, not at the next
interval. `reason` is what the target is waiting on now, for wait-for's summaries
and its timeout line. A Job that failed and RBAC denied are final: JobFailed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from initkit.errors import JobFailed

if TYPE_CHECKING:
    from initkit.cancel import Token
    from initkit.kube.config import Config
    from initkit.kube.targets import Target


class KubeProbe:
    def __init__(self, target: Target, config: Config, *, lifetime: float) -> None:
        self.label = target.label
        self.target = target
        self.config = config
        self.lifetime = lifetime
        self.reason = "not checked yet"

    def _report(self, reason: str) -> None:
        self.reason = reason

    def check(self, token: Token | None = None) -> str:
        from initkit import cancel
        from initkit.kube import watch
        from initkit.kube.client import ApiClient

        token = token or cancel.current()
        query = self.target.query(self.config.namespace)
        try:
            return watch.wait(ApiClient(self.config, token), query, token, lifetime=self.lifetime, report=self._report)
        except watch.Done as exc:
            raise JobFailed(f"{self.label}: {exc}") from None


def parse(target: str, kube: Callable[[], tuple[Config, float]]) -> KubeProbe:
    """The target's syntax first (a typo is exit 2 before any file is read), then the configuration."""
    import os

    from initkit.kube.targets import parse as parse_target

    parsed = parse_target(target, os.environ.get("NODE_NAME"))
    config, lifetime = kube()
    return KubeProbe(parsed, config, lifetime=lifetime)
