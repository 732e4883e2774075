"""The API targets of wait-for: what each watches and when it is ready.

    job:[NS/]NAME                         the Job completed (Failed: exit 1 at once)
    pods:[NS/]SELECTOR[?min=N]            every matching pod ready (at least one), or N ready
    endpoints:[NS/]SERVICE[?min=N]        the Service's EndpointSlices hold N ready addresses (1)
    daemonset:[NS/]NAME                   its pod on this node (NODE_NAME) is ready
    cr:GROUP/VERSION/PLURAL/[NS/]NAME#condition=TYPE[=STATUS]   a condition of a custom resource
    gone:TARGET                           what TARGET watches no longer exists

NS/ defaults to the pod's own namespace. A selector whose first key has a one-word
prefix (`example/tier=db`) needs its NS/ written, since `example` could be one.
Everything is judged at parse time: a typo is exit 2 at once.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from initkit.errors import BadInput
from initkit.kube.client import Resource
from initkit.kube.watch import Done, Query
from initkit.urls import printable

KINDS = (
    "job:[NS/]NAME, pods:[NS/]SELECTOR[?min=N], endpoints:[NS/]SERVICE[?min=N], daemonset:[NS/]NAME, "
    "cr:GROUP/VERSION/PLURAL/[NS/]NAME#condition=TYPE[=STATUS], each optionally after gone:"
)
API_KINDS = ("job", "pods", "endpoints", "daemonset", "cr", "gone")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SELECTOR = re.compile(r"[A-Za-z0-9._/=!,() -]{1,1024}")
_CONDITION = re.compile(r"[A-Za-z0-9._/-]{1,316}")
REASON_LIMIT = 200


@dataclass
class Target:
    label: str
    kind: str  # job, pods, endpoints, daemonset, cr
    namespace: str | None  # None: the configuration's (the pod's own)
    name: str  # NAME, SELECTOR or SERVICE
    gone: bool = False
    minimum: int | None = None
    node: str | None = None  # daemonset: this node
    group: str = ""
    version: str = ""
    plural: str = ""
    condition: tuple[str, str] | None = None  # cr: (type, status)

    def resource(self, namespace: str) -> Resource:
        ns = self.namespace or namespace
        if self.kind == "job":
            return Resource("batch", "v1", "jobs", ns)
        if self.kind in ("pods", "daemonset"):
            return Resource("", "v1", "pods", ns)
        if self.kind == "endpoints":
            return Resource("discovery.k8s.io", "v1", "endpointslices", ns)
        return Resource(self.group, self.version, self.plural, ns)

    def query(self, namespace: str) -> Query:
        resource = self.resource(namespace)
        where = f"{resource.namespace}/{self.name}"
        if self.kind == "job":
            return Query(
                resource, {"fieldSelector": f"metadata.name={self.name}"}, self._named(_job), self._judge_job(where)
            )
        if self.kind == "pods":
            return Query(resource, {"labelSelector": self.name}, _pod, self._judge_pods(where))
        if self.kind == "daemonset":
            params = {"fieldSelector": f"spec.nodeName={self.node}"}
            return Query(resource, params, self._daemon_pod, self._judge_daemon(where))
        if self.kind == "endpoints":
            params = {"labelSelector": f"kubernetes.io/service-name={self.name}"}
            return Query(resource, params, _slice, self._judge_endpoints(where))
        return Query(
            resource, {"fieldSelector": f"metadata.name={self.name}"}, self._named(self._cr), self._judge_cr(where)
        )

    def _named(self, summarize: Any) -> Any:
        """Only the object of that name is kept, whatever else a server sends (it was asked for no other)."""
        return lambda obj: summarize(obj) if _get(obj, "metadata", "name") == self.name else None

    # ---- judgements: (ready, detail when ready / reason when not) ----

    def _gone(self, state: dict[str, Any], what: str) -> tuple[bool, str]:
        return (not state, f"{what} is gone" if not state else f"{what} still exists")

    def _judge_job(self, where: str) -> Any:
        def judge(state: dict[str, Any]) -> tuple[bool, str]:
            if self.gone:
                return self._gone(state, f"job {where}")
            if not state:
                return False, f"job {where} does not exist"
            outcome, text = next(iter(state.values()))
            if outcome == "failed":
                raise Done(f"job {where} failed: {text}")
            return outcome == "complete", f"job {where} {text}"

        return judge

    def _judge_pods(self, where: str) -> Any:
        def judge(state: dict[str, Any]) -> tuple[bool, str]:
            if self.gone:
                return (not state, f"no pod matches {where}" if not state else f"{len(state)} pods match {where}")
            ready = sum(1 for r in state.values() if r)
            if self.minimum is not None:
                return ready >= self.minimum, f"{ready} of {len(state)} pods ready ({where}, min {self.minimum})"
            return bool(state) and ready == len(state), f"{ready} of {len(state)} pods ready ({where})"

        return judge

    def _judge_daemon(self, where: str) -> Any:
        def judge(state: dict[str, Any]) -> tuple[bool, str]:
            what = f"the pod of daemonset {where} on node {self.node}"
            if self.gone:
                return self._gone(state, what)
            if not state:
                return False, f"{what} does not exist"
            return any(state.values()), f"{what} is {'ready' if any(state.values()) else 'not ready'}"

        return judge

    def _judge_endpoints(self, where: str) -> Any:
        def judge(state: dict[str, Any]) -> tuple[bool, str]:
            addresses: set[str] = set().union(*state.values()) if state else set()
            if self.gone:
                return not addresses, f"service {where} has {len(addresses)} ready addresses"
            wanted = self.minimum or 1
            return len(addresses) >= wanted, f"service {where} has {len(addresses)} ready addresses (min {wanted})"

        return judge

    def _judge_cr(self, where: str) -> Any:
        def judge(state: dict[str, Any]) -> tuple[bool, str]:
            what = f"{self.plural}.{self.group} {where}"
            if self.gone:
                return self._gone(state, what)
            if not state:
                return False, f"{what} does not exist"
            assert self.condition is not None
            kind, wanted = self.condition
            found = next(iter(state.values()))
            shown = "absent" if found is None else found
            return found == wanted, f"{what}: condition {kind} is {shown} (want {wanted})"

        return judge

    # ---- summaries: the few fields kept of each object ----

    def _daemon_pod(self, pod: dict[str, Any]) -> bool | None:
        owners = _get(pod, "metadata", "ownerReferences") or []
        if not any(isinstance(o, dict) and o.get("kind") == "DaemonSet" and o.get("name") == self.name for o in owners):
            return None  # another pod on this node: not kept
        if _get(pod, "metadata", "deletionTimestamp"):
            return None
        return _pod_ready(pod)

    def _cr(self, obj: dict[str, Any]) -> str | None:
        if self.condition is None:
            return ""  # gone: only existence counts
        for condition in _get(obj, "status", "conditions") or []:
            if isinstance(condition, dict) and condition.get("type") == self.condition[0]:
                return _short(condition.get("status"))
        return "absent"


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _short(value: Any) -> str:
    text = " ".join(printable(str(value)).split())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + "..."


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = _get(obj, "status", "conditions") or []
    return {str(c.get("type")): c for c in found if isinstance(c, dict)} if isinstance(found, list) else {}


def _job(job: dict[str, Any]) -> tuple[str, str]:
    conditions = _conditions(job)
    for kind in ("Failed", "FailureTarget"):
        if _get(conditions, kind, "status") == "True":
            reason = _short(conditions[kind].get("reason") or "")
            message = _short(conditions[kind].get("message") or "")
            return "failed", f"{reason}: {message}" if message else reason or "failed"
    for kind in ("Complete", "SuccessCriteriaMet"):
        if _get(conditions, kind, "status") == "True":
            return "complete", "complete"
    status = _get(job, "status") or {}
    counts = {k: status.get(k, 0) if isinstance(status, dict) else 0 for k in ("active", "succeeded", "failed")}
    return "running", "running ({active} active, {succeeded} succeeded, {failed} failed)".format(
        **{k: v if isinstance(v, int) else "?" for k, v in counts.items()}
    )


def _pod_ready(pod: dict[str, Any]) -> bool:
    return _get(_conditions(pod), "Ready", "status") == "True"


def _pod(pod: dict[str, Any]) -> bool | None:
    """Ready or not; None for pods that finished (Succeeded/Failed) or are being deleted: not counted."""
    if _get(pod, "status", "phase") in ("Succeeded", "Failed") or _get(pod, "metadata", "deletionTimestamp"):
        return None
    return _pod_ready(pod)


def _slice(endpoint_slice: dict[str, Any]) -> frozenset[str]:
    """The slice's ready addresses (ready absent means ready, as the API says), at most 1000 endpoints."""
    found: set[str] = set()
    endpoints = endpoint_slice.get("endpoints") or []
    for endpoint in endpoints[:1000] if isinstance(endpoints, list) else []:
        if not isinstance(endpoint, dict) or _get(endpoint, "conditions", "ready") is False:
            continue
        addresses = endpoint.get("addresses") or []
        found.update(str(a)[:64] for a in (addresses[:100] if isinstance(addresses, list) else []))
    return frozenset(found)


# ---- parsing ----


def is_api_target(kind: str) -> bool:
    return kind in API_KINDS


def parse(target: str, node: str | None) -> Target:
    gone = target.startswith("gone:")
    body = target[len("gone:") :] if gone else target
    kind, sep, rest = body.partition(":")

    def bad(why: str) -> BadInput:
        return BadInput(f"malformed target {printable(target)!r}: {why}")

    if not sep or not rest:
        raise bad(f"expected {KINDS}")
    if kind == "cr":
        return _parse_cr(target, rest, gone, bad)
    rest, _, query = rest.partition("?")
    minimum = _minimum(query, kind, bad)
    namespace, name = _namespace(rest, kind, bad)
    if kind in ("job", "daemonset", "endpoints"):
        if not _SUBDOMAIN.fullmatch(name):
            raise bad(f"{name!r} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')")
    elif kind == "pods":
        if not _SELECTOR.fullmatch(name):
            raise bad(f"{name!r} is not a label selector such as app=web,tier!=cache")
    else:
        raise bad(f"unknown API target kind {kind!r}: expected {KINDS}")
    if kind == "daemonset" and not node:
        raise BadInput(
            f"{printable(target)}: daemonset: needs this node's name in NODE_NAME "
            "(the Downward API's spec.nodeName: the chart sets it)"
        )
    return Target(target, kind, namespace, name, gone=gone, minimum=minimum, node=node)


def _minimum(query: str, kind: str, bad: Any) -> int | None:
    if not query:
        return None
    key, eq, value = query.partition("=")
    if kind not in ("pods", "endpoints") or key != "min" or not eq:
        raise bad("only pods: and endpoints: take ?min=N")
    if not value.isdigit() or not 0 < int(value) <= 100_000:
        raise bad(f"min={value!r}: expected a whole number from 1")
    return int(value)


def _namespace(text: str, kind: str, bad: Any) -> tuple[str | None, str]:
    head, slash, tail = text.partition("/")
    if slash and _LABEL.fullmatch(head) and tail:
        return head, tail
    if slash and kind != "pods":
        raise bad(f"{head!r} is not a valid namespace (a DNS label: lower-case letters, digits and '-')")
    return None, text


def _parse_cr(target: str, rest: str, gone: bool, bad: Any) -> Target:
    path, _, fragment = rest.partition("#")
    parts = path.split("/")
    if len(parts) not in (4, 5) or not all(parts):
        raise bad(
            "expected cr:GROUP/VERSION/PLURAL/[NS/]NAME#condition=TYPE, "
            "e.g. cr:cert-manager.io/v1/certificates/web#condition=Ready"
        )
    group, version, plural = parts[:3]
    namespace, name = (parts[3], parts[4]) if len(parts) == 5 else (None, parts[3])
    if not _SUBDOMAIN.fullmatch(group) or "." not in group:
        raise bad(f"{group!r} is not an API group such as cert-manager.io")
    if not re.fullmatch(r"v[0-9]+((alpha|beta)[0-9]+)?", version):
        raise bad(f"{version!r} is not an API version such as v1 or v1beta1")
    if not _LABEL.fullmatch(plural):
        raise bad(f"{plural!r} is not a resource's plural name such as certificates")
    if namespace is not None and not _LABEL.fullmatch(namespace):
        raise bad(f"{namespace!r} is not a valid namespace")
    if not _SUBDOMAIN.fullmatch(name):
        raise bad(f"{name!r} is not a valid Kubernetes name")
    condition = None
    if fragment or not gone:
        key, eq, value = fragment.partition("=")
        kind, _, status = urllib.parse.unquote(value).partition("=")
        if key != "condition" or not eq or not _CONDITION.fullmatch(kind):
            raise bad("expected #condition=TYPE or #condition=TYPE=STATUS after the name, e.g. #condition=Ready")
        condition = (kind, status or "True")
    return Target(
        target, "cr", namespace, name, gone=gone, group=group, version=version, plural=plural, condition=condition
    )
