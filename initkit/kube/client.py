"""Bounded LIST and WATCH requests to the API server, on initkit.httpclient (requests).

The server is trusted to say what exists, never to be well-behaved: every answer
is read in bounded pieces with `read1` (what has arrived, never "until N bytes"),
a list page is capped at MAX_PAGE, one watch event at MAX_OBJECT (etcd stores
objects of 1.5 MiB at most), one event must arrive within OBJECT_TIMEOUT once it
has begun, a connection lasts at most its lifetime, and the run's token cuts
every socket at once (httpclient's watchdog). A resourceVersion is an opaque
short string: a longer or stranger one is a protocol error, not something kept.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initkit import httpclient
from initkit.kube.config import Config
from initkit.urls import printable

if TYPE_CHECKING:
    from initkit.cancel import Token

MAX_OBJECT = 4 << 20  # one watch event (one line)
MAX_PAGE = 16 << 20  # one page of a list
PAGE_SIZE = 100  # objects a list page asks for
OBJECT_TIMEOUT = 30.0  # once an event has begun, its end must arrive within this
REQUEST_TIMEOUT = 30.0  # one list page, head and body
CONNECT_TIMEOUT = 10.0
MAX_RESOURCE_VERSION = 64  # decimal uint64 in etcd: 20 digits
_RESOURCE_VERSION = re.compile(r"[0-9A-Za-z._:-]{1,64}")
READ_CHUNK = 64 * 1024
MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class Resource:
    """A namespaced resource: `group` "" is the core API (/api/v1)."""

    group: str
    version: str
    plural: str
    namespace: str

    @property
    def path(self) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{root}/namespaces/{urllib.parse.quote(self.namespace, safe='')}/{urllib.parse.quote(self.plural)}"

    @property
    def shown(self) -> str:
        """As RBAC names it: jobs.batch, pods, endpointslices.discovery.k8s.io."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


class ApiError(Exception):
    """An answer that is no success, or a protocol error; `status` is the HTTP status (0: none)."""

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.status = status


class Forbidden(ApiError):
    """HTTP 403: the ServiceAccount lacks `verb` on the resource (RBAC)."""

    def __init__(self, verb: str, resource: Resource) -> None:
        super().__init__(
            f"RBAC denied (HTTP 403): the ServiceAccount cannot {verb} {resource.shown} in namespace "
            f"{resource.namespace} (it needs get, list and watch on {resource.shown} there)",
            403,
        )


class Expired(ApiError):
    """410 Gone: the resourceVersion is too old for a watch; relist."""


class Event(dict[str, Any]):
    """One watch event: {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}.

    `settled`: no further whole event had arrived with it, so judging now sees the latest state
    (judging after every event of a burst would cost the square of the burst)."""

    settled = True


class ApiClient:
    def __init__(self, config: Config, token: Token) -> None:
        self.config = config
        self.token = token
        self.http = httpclient.Client(config.ca_file, token=token)
        if config.cert is not None:
            self.http.session.cert = config.cert
        self.http.session.max_redirects = 0  # an API server does not redirect; the token goes nowhere else
        self.http.session.trust_env = False  # no ~/.netrc, no REQUESTS_CA_BUNDLE: the kubeconfig says all
        self.http.session.headers["Accept"] = "application/json"

    def _headers(self) -> dict[str, str]:
        bearer = self.config.bearer()  # re-read for each connection: a rotated token is used at once
        return {"Authorization": f"Bearer {bearer}"} if bearer else {}

    def _url(self, resource: Resource, params: dict[str, str]) -> str:
        return f"{self.config.server}{resource.path}?{urllib.parse.urlencode(params)}"

    def list(self, resource: Resource, params: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
        """Every object (page by page) and the list's resourceVersion, to watch from."""
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            query = {**params, "limit": str(PAGE_SIZE), **({"continue": cont} if cont else {})}
            page = self._get_json(resource, query, "list")
            batch = page.get("items")
            metadata = page.get("metadata")
            if not isinstance(batch, list) or not isinstance(metadata, dict):
                raise ApiError("the API server's list has no items or metadata")
            items.extend(item for item in batch if isinstance(item, dict))
            cont = str(metadata.get("continue") or "")
            if not cont:
                return items, resource_version(metadata)
            if len(cont) > 4096:
                raise ApiError("the API server's continue token is over 4 KiB")

    def _get_json(self, resource: Resource, query: dict[str, str], verb: str) -> dict[str, Any]:
        now = self.token.clock.monotonic()
        try:
            with self.http.stream(
                self._url(resource, query),
                headers=self._headers(),
                deadline=now + REQUEST_TIMEOUT,
                per_attempt=REQUEST_TIMEOUT,
                read_timeout=REQUEST_TIMEOUT,
            ) as stream:
                response = stream.response
                body = _read_bounded(response, MAX_PAGE, f"one page of the {resource.shown} list")
                self.token.check()
                if stream.cut():
                    raise ApiError(f"the {resource.shown} list did not arrive within {REQUEST_TIMEOUT:.0f}s")
        except (httpclient.RequestFailed, httpclient.GaveUp) as exc:
            raise ApiError(f"cannot reach the API server {self.config.server}: {exc}") from None
        _check_status(response.status_code, body, verb, resource)
        return _json_object(body, f"the {resource.shown} list")

    def watch(self, resource: Resource, params: dict[str, str], version: str, lifetime: float) -> Iterator[Event]:
        """Events after VERSION until the server ends the watch (after about LIFETIME seconds) or the
        connection breaks (ApiError); Expired for 410 Gone (in the head or as an ERROR event)."""
        query = {
            **params,
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(1, int(lifetime))),
        }
        try:
            with self.http.stream(
                self._url(resource, query),
                headers=self._headers(),
                deadline=None,
                per_attempt=lifetime + CONNECT_TIMEOUT,  # the server's own end, and a margin
                read_timeout=lifetime + CONNECT_TIMEOUT,
            ) as stream:
                response = stream.response
                if response.status_code != 200:
                    body = _read_bounded(response, 64 * 1024, "an error answer", cut=True)
                    _check_status(response.status_code, body, "watch", resource)
                    raise ApiError(f"the watch of {resource.shown} answered HTTP {response.status_code}")
                try:
                    for line, settled in _lines(response, self.token):
                        event = Event(_json_object(line, f"a {resource.shown} watch event"))
                        event.settled = settled
                        if event.get("type") == "ERROR":
                            _raise_status_event(event.get("object"), resource)
                        yield event
                except ApiError:
                    raise
                except Exception as exc:  # urllib3 ProtocolError, OSError: the connection broke
                    self.token.check()
                    if stream.cut():
                        raise ApiError(
                            f"the watch of {resource.shown} was cut off (it outlived {lifetime:.0f}s)"
                        ) from None
                    raise ApiError(f"the watch of {resource.shown} broke: {httpclient.describe_error(exc)}") from None
        except (httpclient.RequestFailed, httpclient.GaveUp) as exc:
            raise ApiError(f"cannot reach the API server {self.config.server}: {exc}") from None


def _lines(response: Any, token: Token) -> Iterator[tuple[bytes, bool]]:
    """The body's lines (and whether no further whole line came with it), each at most MAX_OBJECT
    bytes and each whole within OBJECT_TIMEOUT of its start."""
    clock = token.clock
    pending = bytearray()
    began = 0.0
    while True:
        chunk = response.raw.read1(READ_CHUNK, decode_content=False)
        token.check()
        if not chunk:
            return  # the server ended the watch
        if not pending:
            began = clock.monotonic()
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start:end]
            if len(pending) > MAX_OBJECT:
                raise ApiError(f"the API server sent a watch event over {MAX_OBJECT >> 20} MiB")
            if pending.strip():
                yield bytes(pending), chunk.find(b"\n", end + 1) < 0
            pending.clear()
            start = end + 1
            began = clock.monotonic()
        pending += chunk[start:]
        if len(pending) > MAX_OBJECT:
            raise ApiError(f"the API server sent a watch event over {MAX_OBJECT >> 20} MiB")
        if pending and clock.monotonic() - began > OBJECT_TIMEOUT:
            raise ApiError(f"the API server took over {OBJECT_TIMEOUT:.0f}s to send one watch event")


def _read_bounded(response: Any, limit: int, what: str, *, cut: bool = False) -> bytes:
    """At most LIMIT bytes of the body: more is an ApiError (or, with CUT, silently dropped)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.raw.read1(READ_CHUNK, decode_content=False)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            if cut:
                return b"".join(chunks)
            raise ApiError(f"the API server sent {what} over {limit >> 20} MiB")
        chunks.append(chunk)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise ApiError(f"the API server sent {what} that is not JSON") from None
    if not isinstance(value, dict):
        raise ApiError(f"the API server sent {what} that is not a JSON object")
    return value


def _status_message(body: bytes) -> str:
    """The Status object's message, on one bounded printable line (the server wrote it)."""
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError, RecursionError):
        message = ""
    text = " ".join(printable(str(message)).split())
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "..."


def _check_status(status: int, body: bytes, verb: str, resource: Resource) -> None:
    if 200 <= status < 300:
        return
    if status == 403:
        raise Forbidden(verb, resource)
    if status == 410:
        raise Expired("resourceVersion expired (HTTP 410 Gone)", 410)
    if status == 401:
        raise ApiError("the API server refused the token (HTTP 401 Unauthorized)", 401)
    if status == 404:
        raise ApiError(f"the API server does not serve {resource.shown} (HTTP 404; is its CRD installed?)", 404)
    message = _status_message(body)
    raise ApiError(f"{verb} {resource.shown} answered HTTP {status}" + (f": {message}" if message else ""), status)


def _raise_status_event(obj: Any, resource: Resource) -> None:
    code = obj.get("code") if isinstance(obj, dict) else None
    if code == 410:
        raise Expired("resourceVersion expired (410 Gone in the watch)", 410)
    if code == 403:
        raise Forbidden("watch", resource)
    message = _status_message(json.dumps(obj).encode()) if isinstance(obj, dict) else ""
    raise ApiError(f"the watch of {resource.shown} sent an error (code {code})" + (f": {message}" if message else ""))


def resource_version(metadata: Any) -> str:
    """An object's or list's resourceVersion: opaque, short and plain, or a protocol error."""
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    if not isinstance(version, str) or not _RESOURCE_VERSION.fullmatch(version):
        raise ApiError("the API server sent a resourceVersion that is not one (empty, over 64 characters or odd)")
    return version
