"""Jinja templates over pod facts, env and values, in Jinja's sandbox.

Templates may come from ConfigMaps that someone else controls, so they run
in `SandboxedEnvironment`; undefined variables are errors that name the
variable and the template line.

The sandbox stops a template reaching Python internals, not one exhausting the
pod: `'x' * 10**9` or `2 ** (10**9)` is a single C call that allocates gigabytes
and holds off SIGTERM until it returns. So the operators that can build big
values in one step, `range` and the output are bounded here; what slips past
(a filter's width, a growing capture block) meets the memory limit of
initkit.memlimit, which turns it into a quick MemoryError.

A long render checks the run's token (initkit.cancel) from the sandbox's hooks:
every call, attribute and item lookup, intercepted operator, `range()`, output
chunk and every 1024 items of any `{% for %}` loop (each loop's iterable is
wrapped at parse time), so SIGTERM stops it within a second with `Stopped`
raised from initkit's own code, not from a signal handler inside Jinja.
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
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from initkit import cancel
from initkit.errors import BadInput
from initkit.podfacts import FACT_SOURCES, PodFacts, checked_env

RESERVED = ("pod", "node", "env")

MAX_RANGE = 10_000  # items of one range(); Jinja's own limit (100000) nested twice is 10**10 steps
MAX_SIZE = 1 << 24  # characters of a string, items of a list, made by one operator
MAX_INT_BITS = 1 << 16  # an int of ~20000 digits; Python refuses to print more than 4300 anyway
MAX_OUTPUT = 1 << 24  # characters rendered by one run, all templates together (16 MiB)
CHECK_EVERY = 1024  # items of a loop between two checks of the token
CHECKED_LOOP = "initkit_checked_loop"  # the filter every `{% for %}` iterable goes through


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
        "env": _Namespace(
            "env", lambda n: checked_env(n, env.get(n)), lambda n: f"environment variable {n} is not set"
        ),
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


def _sized(value: Any) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


def _too_big(size: int, what: str) -> jinja2.exceptions.SecurityError:
    return jinja2.exceptions.SecurityError(f"{what} of {size} items is too big (the limit is {MAX_SIZE})")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse before Python computes it: these are single C calls that no signal interrupts."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*" and isinstance(left, int) and _sized(right):
        left, right = right, left
    if operator == "*" and _sized(left) and isinstance(right, int) and len(left) * right > MAX_SIZE:
        raise _too_big(len(left) * right, f"'*' making a {type(left).__name__}")
    if operator == "+" and _sized(left) and _sized(right) and len(left) + len(right) > MAX_SIZE:
        raise _too_big(len(left) + len(right), f"'+' making a {type(left).__name__}")
    if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise jinja2.exceptions.SecurityError(f"'*' making an int of over {MAX_INT_BITS} bits is not allowed")
    if operator == "**" and ints and abs(left) > 1 and right > 0 and left.bit_length() * right > MAX_INT_BITS:
        raise jinja2.exceptions.SecurityError(f"'**' making an int of over {MAX_INT_BITS} bits is not allowed")


def _checked_loop(token: cancel.Token) -> Any:
    """The filter around every loop's iterable: the token is checked every CHECK_EVERY items."""

    def checked(items: Any) -> Any:
        token.check()
        if isinstance(items, jinja2.Undefined):
            return items  # Jinja's own error (or empty loop) for an undefined iterable
        return _checked_items(items, token)

    return checked


def _checked_range(token: cancel.Token) -> Any:
    def checked_range(*args: int) -> range:
        token.check()
        return _bounded_range(*args)

    return checked_range


def _checked_items(items: Any, token: cancel.Token) -> Any:
    for count, item in enumerate(items, 1):
        if not count % CHECK_EVERY:
            token.check()
        yield item


def _bounded_range(*args: int) -> range:
    try:
        items = range(*args)
        size = len(items)
    except OverflowError:
        size = MAX_RANGE + 1
    if size > MAX_RANGE:
        raise jinja2.exceptions.SecurityError(f"range() of more than {MAX_RANGE} items is not allowed")
    return items


def _bounded_concat(parts: Any) -> str:
    """What a `{% set %}` block, a macro or a `{% filter %}` block returns: bounded like an operator."""
    parts = list(parts)
    size = sum(len(part) for part in parts)
    if size > MAX_SIZE:
        raise _too_big(size, "a block's output")
    return "".join(parts)


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox with bounds on the operations that build big values in one step."""

    intercepted_binops = frozenset({"*", "+", "**"})  # also keeps Jinja from folding them at compile time
    concat = staticmethod(_bounded_concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.token = cancel.current()  # the run's: a signal stops the render at the next hook
        self.globals["range"] = _checked_range(self.token)
        self.filters[CHECKED_LOOP] = _checked_loop(self.token)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every `{% for %}` iterates through the checked filter: a loop that calls nothing still checks.

        `_parse` is where Jinja turns source into the tree it compiles (also for `parse`)."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, CHECKED_LOOP, [], [], None, None, lineno=loop.iter.lineno)
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.token.check()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.token.check()
        return super().call(context, obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.token.check()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.token.check()
        return super().getitem(obj, argument)


def make_environment() -> SandboxedEnvironment:
    """The sandbox every template runs in; callers that load files set `loader`."""
    environment = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters.update(
        b64encode=_b64encode, b64decode=_b64decode, sha256=_sha256, tojson=_to_json, toyaml=_to_yaml
    )
    return environment


class OutputBudget:
    """Characters one run may render, shared by all its templates (they are all kept until written)."""

    def __init__(self, limit: int = MAX_OUTPUT) -> None:
        self.left = limit
        self.limit = limit

    def render(self, template: jinja2.Template, context: Mapping[str, Any]) -> str:
        """Render chunk by chunk, stopping as soon as the budget is spent."""
        token = getattr(template.environment, "token", None) or cancel.current()
        chunks = []
        for chunk in template.generate(context):
            token.check()
            self.left -= len(chunk)
            if self.left < 0:
                raise OutputTooBig(self.limit)
            chunks.append(chunk)
        return "".join(chunks)


class OutputTooBig(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"rendered output passes {limit >> 20} MiB, the limit for one run")


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
        return OutputBudget().render(template, context)
    except jinja2.TemplateError as exc:
        raise template_error(exc, name) from exc
    except OutputTooBig as exc:
        raise BadInput(f"{name}: {exc}") from None
