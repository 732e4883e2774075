"""List, then watch from the list's resourceVersion, until a judgement says done.

The objects are kept reduced (`summarize`: a few fields each, never the object),
keyed by namespace/name, at most MAX_OBJECTS of them: a flood of distinct
objects is an error, not a growing dict. A watch that ends (the server's
timeoutSeconds, a proxy's idle cut, an apiserver restart) resumes from the last
resourceVersion seen; 410 Gone (that version was compacted away) relists. A
failed attempt waits a jittered, bounded backoff before the next, and each
attempt reads the token file again (rotation).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initkit import log
from initkit.kube.client import ApiClient, ApiError, Expired, Forbidden, Resource, resource_version
from initkit.kube.config import TokenUnreadable

if TYPE_CHECKING:
    from initkit.cancel import Token

MAX_OBJECTS = 10_000
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0
QUICK_END = 1.0  # a watch that ends sooner than this, with no event, counts as a failure (backoff)


class Done(Exception):
    """The judgement is final (a Job failed, RBAC denied): not retried."""


@dataclass
class Query:
    resource: Resource
    params: dict[str, str]  # fieldSelector / labelSelector
    summarize: Callable[[dict[str, Any]], Any]  # None: not kept (not this target's object)
    judge: Callable[[dict[str, Any]], tuple[bool, str]]  # (ready, detail or reason); may raise Done


def backoff(failures: int) -> float:
    """Full jitter over an exponential ceiling: reconnects of many pods do not march in step."""
    ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(failures, 10))
    return random.uniform(ceiling / 2, ceiling)


def wait(
    client: ApiClient,
    query: Query,
    token: Token,
    *,
    lifetime: float,
    report: Callable[[str], None],
) -> str:
    """Until QUERY's judgement is ready (its detail); REPORT gets each reason it is not, and each error."""
    clock = token.clock
    state: dict[str, Any] = {}
    version: str | None = None
    failures = 0
    shown = query.resource.shown

    trouble = ""  # the last failure, shown with the state until a watch goes well again

    def judged() -> str | None:
        ready, text = query.judge(state)
        report(f"{text}; {trouble}" if trouble and not ready else text)
        return text if ready else None

    while True:
        token.check()
        try:
            if version is None:
                items, version = client.list(query.resource, query.params)
                state = _reduce(items, query.summarize)
                log.debug(f"kube: listed {len(items)} {shown} at resourceVersion {version}; watching")
                if (detail := judged()) is not None:
                    return detail
            began = clock.monotonic()
            events = 0
            dirty = False  # a change not judged yet (a burst is judged once, at its last event)
            for event in client.watch(query.resource, query.params, version, lifetime):
                events += 1
                version = _apply(event, state, query.summarize) or version
                dirty = dirty or event.get("type") != "BOOKMARK"
                if dirty and event.settled:
                    dirty = False
                    if (detail := judged()) is not None:
                        return detail
            if events or clock.monotonic() - began >= QUICK_END:
                failures, trouble = 0, ""
                log.debug(f"kube: the watch of {shown} ended; resuming from resourceVersion {version}")
                continue
            raise ApiError(f"the watch of {shown} ended at once, with no event")
        except Forbidden as exc:
            raise Done(str(exc)) from None
        except Expired:
            log.debug(f"kube: resourceVersion {version} of {shown} expired; listing again")
            version = None
            error = f"{shown}: resourceVersion expired (410 Gone)"
        except ApiError as exc:
            error = str(exc)
        except Done:
            raise
        except TokenUnreadable as exc:  # the token file could not be read at this attempt
            error = str(exc)
        failures += 1
        trouble = error
        report(error)
        delay = backoff(failures)
        log.debug(f"kube: {error}; again in {delay:.2f}s")
        token.wait(delay)


def _reduce(items: list[dict[str, Any]], summarize: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for item in items:
        _keep(state, item, summarize)
    return state


def _key(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ApiError("the API server sent an object without metadata.name")
    return f"{metadata.get('namespace')}/{metadata['name']}"


def _keep(state: dict[str, Any], obj: dict[str, Any], summarize: Callable[[dict[str, Any]], Any]) -> None:
    key = _key(obj)
    summary = summarize(obj)
    if summary is None:
        state.pop(key, None)
        return
    if key not in state and len(state) >= MAX_OBJECTS:
        raise ApiError(f"the API server sent over {MAX_OBJECTS} objects for one target")
    state[key] = summary


def _apply(event: dict[str, Any], state: dict[str, Any], summarize: Callable[[dict[str, Any]], Any]) -> str | None:
    """Fold one event into STATE; the resourceVersion to resume from."""
    kind = event.get("type")
    obj = event.get("object")
    if not isinstance(obj, dict):
        raise ApiError("the API server sent a watch event without an object")
    version = resource_version(obj.get("metadata"))
    if kind in ("ADDED", "MODIFIED"):
        _keep(state, obj, summarize)
    elif kind == "DELETED":
        state.pop(_key(obj), None)
    elif kind != "BOOKMARK":
        raise ApiError(f"the API server sent a watch event of unknown type {str(kind)[:20]!r}")
    return version
