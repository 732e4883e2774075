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

_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)", re.ASCII)
_KEYISH = re.compile(r"[A-Za-z0-9_.\\-]+")

# Values files come from chart values and ConfigMaps, so they are bounded before they can
# cost memory: YAML aliases share one node however often they are used, but merging,
# --set and tojson copy it each time, so an alias counts at every use (billion laughs).
MAX_FILE_BYTES = 1 << 20  # what one ConfigMap or Secret can hold
MAX_NODES = 100_000
MAX_TEXT = 1 << 24  # characters of scalars
MAX_DEPTH = 100


class _Refused(Exception):
    def __init__(self, mark: Any, reason: str) -> None:
        super().__init__(reason)
        self.mark = mark
        self.reason = reason


def _bounded_loader(stream: str) -> Any:
    """yaml.SafeLoader that counts the nodes a document expands to, aliases at each use."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, characters), once composed
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                node = super().compose_node(parent, index)
                if id(node) not in self.sizes:
                    # PyYAML registers an anchor before composing its content: this alias is inside it
                    raise _Refused(mark, "an alias refers to a value that contains it")
                return node  # its parent counts its whole size again
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _Refused(self.peek_event().start_mark, f"nested more than {MAX_DEPTH} levels deep")
                node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
            self._weigh(node)
            return node

        def _weigh(self, node: Any) -> None:
            if isinstance(node, yaml.ScalarNode):
                nodes, text = 1, len(node.value)
            else:
                children = (
                    [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
                )
                nodes = 1 + sum(self.sizes[id(child)][0] for child in children)
                text = sum(self.sizes[id(child)][1] for child in children)
            if nodes > MAX_NODES:
                raise _Refused(node.start_mark, f"expands to more than {MAX_NODES} values (aliases count at each use)")
            if text > MAX_TEXT:
                raise _Refused(node.start_mark, f"expands to more than {MAX_TEXT >> 20} MiB of text")
            self.sizes[id(node)] = (nodes, text)

    return BoundedLoader(stream)


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
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise BadInput(f"values file {path}: not found") from None
    except IsADirectoryError:
        raise BadInput(f"values file {path}: is a directory") from None
    except OSError as exc:
        raise BadInput(f"values file {path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise BadInput(f"values file {path}: larger than {MAX_FILE_BYTES >> 20} MiB (what a ConfigMap holds)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"values file {path}: not UTF-8 text") from None
    loader = None
    try:
        loader = _bounded_loader(text)  # the reader refuses control characters already here
        data = loader.get_single_data()
    except _Refused as exc:
        where = f":{exc.mark.line + 1}:{exc.mark.column + 1}" if exc.mark else ""
        raise BadInput(f"values file {path}{where}: {exc.reason}") from None
    except yaml.MarkedYAMLError as exc:
        # problem and position only: the context snippet could show a secret
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed"
        raise BadInput(f"values file {path}{where}: malformed YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise BadInput(
            f"values file {path}: malformed YAML: character #x{exc.character:04x} at offset {exc.position} not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise BadInput(f"values file {path}: malformed YAML: {type(exc).__name__}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # a constructor refused a scalar: a 5000-digit int, 2001-13-45 as a date; the value itself is not shown
        raise BadInput(f"values file {path}: a value cannot be read: {type(exc).__name__}") from None
    finally:
        if loader is not None:
            loader.dispose()
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


def split_key(key: str) -> list[str]:
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
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 in argv or the environment
        raise BadInput(f"--set #{position} is not valid UTF-8") from None
    key, sep, raw = item.partition("=")
    if not sep:
        # show it only if it looks like a key: it might be a mistyped secret
        shown = repr(item) if _KEYISH.fullmatch(item) else f"#{position}"
        raise BadInput(f"--set {shown} has no '=': expected KEY=VALUE")
    path = split_key(key.strip())
    if any(not part or not part.isprintable() for part in path):
        raise BadInput(f"--set #{position}: malformed key {key.strip()[:40]!r}: expected KEY or A.B.C")
    if len(path) > MAX_DEPTH:
        raise BadInput(f"--set #{position}: key has more than {MAX_DEPTH} parts")
    if path[0] in RESERVED:
        raise BadInput(
            f"--set {key.strip()}: {path[0]} is reserved for pod facts and env (reserved: {', '.join(RESERVED)})"
        )
    try:
        return path, parse_scalar(raw)
    except ValueError:  # an int of more digits than Python converts (4300)
        raise BadInput(f"--set {'.'.join(path)}: the number has too many digits") from None


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
