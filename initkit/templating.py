"""Jinja templates over pod facts, env and values, in Jinja's sandbox.

Templates may come from ConfigMaps that someone else controls, so they run
in `SandboxedEnvironment`; undefined variables are errors that name the
variable and the template line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import traceback
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from initkit.errors import BadInput
from initkit.podfacts import FACT_SOURCES, PodFacts

RESERVED = ("pod", "node", "env")


class _Namespace:
    """Attribute access for `pod.*`, `node.*` and `env.*` with helpful undefineds."""

    def __init__(self, prefix: str, lookup: Any, hint: Any) -> None:
        self._prefix = prefix
        self._lookup = lookup
        self._hint = hint

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = self._lookup(name)
        if value is None:
            return jinja2.StrictUndefined(hint=self._hint(name), name=f"{self._prefix}.{name}")
        return value

    __getitem__ = __getattr__

    def __iter__(self) -> Any:
        return iter(())


def _fact_hint(prefix: str) -> Any:
    def hint(name: str) -> str:
        key = f"{prefix}.{name}"
        if key in FACT_SOURCES:
            return f"{key} is unknown here: set {FACT_SOURCES[key]}"
        return f"{key} is not a pod fact (known: {', '.join(FACT_SOURCES)})"

    return hint


def base_context(facts: PodFacts | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    facts = facts or PodFacts(environ)
    env = os.environ if environ is None else environ
    pod_attrs = {"ip": "ip", "name": "name", "namespace": "namespace", "uid": "uid"}
    return {
        "pod": _Namespace("pod", lambda n: getattr(facts, pod_attrs[n]) if n in pod_attrs else None, _fact_hint("pod")),
        "node": _Namespace("node", lambda n: facts.node_name if n == "name" else None, _fact_hint("node")),
        "env": _Namespace("env", env.get, lambda n: f"environment variable {n} is not set"),
    }


def _to_yaml(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip("\n")


def _b64encode(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: str) -> str:
    return base64.b64decode(value).decode()


def _sha256(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def _to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, sort_keys=False)


def make_environment() -> SandboxedEnvironment:
    """The sandbox every template runs in; callers that load files set `loader`."""
    environment = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters.update(
        b64encode=_b64encode, b64decode=_b64decode, sha256=_sha256, tojson=_to_json, toyaml=_to_yaml
    )
    return environment


def _template_line(exc: BaseException, name: str) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == name or frame.filename.endswith(os.sep + name):
            return frame.lineno
    return None


def template_error(exc: jinja2.TemplateError, name: str) -> BadInput:
    """One line naming the template, the line and the cause."""
    line = _template_line(exc, name)
    where = f"{name}:{line}" if line else name
    kind = {
        jinja2.UndefinedError: "undefined variable",
        jinja2.TemplateSyntaxError: "template syntax error",
    }.get(type(exc), "template error")
    if isinstance(exc, jinja2.exceptions.SecurityError):
        kind = "unsafe template"
    message = str(exc.message if getattr(exc, "message", None) else exc).splitlines()[0]
    return BadInput(f"{where}: {kind}: {message}")


def render_string(source: str, context: Mapping[str, Any], name: str = "<template>") -> str:
    environment = make_environment()
    try:
        template = environment.from_string(source)
        template.filename = name
        return template.render(context)
    except jinja2.TemplateError as exc:
        raise template_error(exc, name) from exc
