"""Values for templates: YAML/JSON files deep-merged in order, then `--set KEY=VALUE`.

Values may hold secrets, so no message here ever includes a value: errors name
the file, the line or the key, never the content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from initkit.errors import BadInput
from initkit.templating import RESERVED

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_KEYISH = re.compile(r"[A-Za-z0-9_.\\-]+")


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A new mapping: `overlay` over `base`; mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def load_file(path: str) -> dict[str, Any]:
    """One values file (YAML, or JSON which YAML reads too) as a mapping; {} when empty."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise BadInput(f"values file {path}: not found") from None
    except IsADirectoryError:
        raise BadInput(f"values file {path}: is a directory") from None
    except UnicodeDecodeError:
        raise BadInput(f"values file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"values file {path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # problem and position only: the context snippet could show a secret
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed"
        raise BadInput(f"values file {path}{where}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"values file {path}: malformed YAML: {type(exc).__name__}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"values file {path}: must be a mapping (key: value), not a {_kind(data)}")
    reserved = sorted(k for k in data if k in RESERVED)
    if reserved:
        raise BadInput(
            f"values file {path}: {', '.join(reserved)} is reserved for pod facts and env "
            f"(reserved: {', '.join(RESERVED)})"
        )
    return data


def parse_scalar(text: str) -> Any:
    """A --set value typed as Helm's --set does: ints, true/false, null; anything else a string.

    `--set replicas=3` gives 3, `--set debug=true` gives True. Quote to keep a
    string (`--set 'tag="3"'`). Floats stay strings so `version=1.10` is not 1.1,
    and leading zeros (`0644`) stay strings; use a values file for other types.
    """
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered in ("null", "~"):
        return None
    if _INT.fullmatch(text):
        return int(text)
    return text


def _split_key(key: str) -> list[str]:
    """`a.b.c` -> [a, b, c]; `a\\.b.c` -> [a.b, c] for keys that contain dots."""
    parts, current, escaped = [], [], False
    for char in key:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def parse_set(item: str, position: int = 1) -> tuple[list[str], Any]:
    """`db.replicas=3` -> (["db", "replicas"], 3)."""
    key, sep, raw = item.partition("=")
    if not sep:
        # show it only if it looks like a key: it might be a mistyped secret
        shown = repr(item) if _KEYISH.fullmatch(item) else f"#{position}"
        raise BadInput(f"--set {shown} has no '=': expected KEY=VALUE")
    path = _split_key(key.strip())
    if any(not part for part in path):
        raise BadInput(f"--set #{position}: malformed key {key.strip()!r}: expected KEY or A.B.C")
    if path[0] in RESERVED:
        raise BadInput(
            f"--set {key.strip()}: {path[0]} is reserved for pod facts and env (reserved: {', '.join(RESERVED)})"
        )
    return path, parse_scalar(raw)


def apply_set(values: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A new mapping with `value` at `path`, creating intermediate mappings."""
    result = dict(values)
    node = result
    for depth, part in enumerate(path[:-1]):
        inner = node.get(part)
        if inner is None:
            inner = {}
        elif not isinstance(inner, Mapping):
            where = ".".join(path[: depth + 1])
            raise BadInput(f"--set {'.'.join(path)}: {where} is a {_kind(inner)}, not a mapping")
        node[part] = dict(inner)
        node = node[part]
    node[path[-1]] = value
    return result


def load(files: Iterable[str] = (), sets: Iterable[str] = ()) -> dict[str, Any]:
    """Values files deep-merged in order, then each --set in order."""
    values: dict[str, Any] = {}
    for path in files:
        values = deep_merge(values, load_file(path))
    for position, item in enumerate(sets, 1):
        key_path, value = parse_set(item, position)
        values = apply_set(values, key_path, value)
    return values


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__
