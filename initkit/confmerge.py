"""`render --merge`: YAML and JSON config files deep-merged in order, round-trip.

The rule (the one `yq eval-all '. as $i ireduce ({}; . * $i)'` charts use, stated
here so nobody has to guess): mappings merge key by key, recursively; anything
else -- a list, a scalar, null -- replaces what was there, whole; a key of a
later file that is new is added at the end of its mapping. An empty file adds
nothing. The first file is the skeleton: its key order, comments, quotes,
anchors and indentation are kept (ruamel.yaml's round-trip mode); a later file's
comments travel with the keys it adds.

These files may come from a ConfigMap someone else writes, so reading them is
bounded before they can cost memory: a size cap (`--max-input-size`), at most
MAX_DEPTH levels of nesting, at most MAX_NODES values with an alias counted at
each use (a billion-laughs file is refused while it is being read, before
anything expands it), and no alias inside the anchor it names (a cycle). No
message shows a value: errors name the file, line and key.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from typing import Any

from initkit.errors import BadInput

MAX_INPUT_BYTES = 1 << 20  # the default of --max-input-size: what one ConfigMap can hold
MAX_NODES = 100_000
MAX_TEXT = 1 << 24  # characters of scalars, aliases counted at each use
MAX_DEPTH = 100
CHECK_EVERY = 1024  # values composed between two checks of the run's token
CHECK_CHARS = 1 << 16  # characters looked at, or pieces written back, between two checks of it
MAX_NUMBER = 4300  # characters of an int: Python's own limit for a decimal one

YAML, JSON = "yaml", "json"
_EXTENSIONS = {".yaml": YAML, ".yml": YAML, ".json": JSON}


def format_of(path: str | None) -> str | None:
    """yaml or json from a file name's extension; None when it says neither."""
    if not path:
        return None
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


def read_input(path: str, what: str, limit: int, encoding: str = "utf-8") -> str:
    """A regular file's UTF-8 text, refused past `limit` bytes (0: no limit) without reading more.

    Opened non-blocking and checked to be a regular file, so a FIFO or a device
    named by mistake (or planted) is refused instead of blocking the pod."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BadInput(f"{what} {path}: not found") from None
    except OSError as exc:
        raise BadInput(f"{what} {path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise BadInput(f"{what} {path}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{what} {path}: not a regular file")
        if limit and st.st_size > limit:
            raise BadInput(f"{what} {path}: larger than {_size(limit)} (--max-input-size)")
        try:
            raw = handle.read(limit + 1) if limit else handle.read()
        except OSError as exc:
            raise BadInput(f"{what} {path}: cannot read: {exc.strerror}") from None
    if limit and len(raw) > limit:  # grew since the fstat
        raise BadInput(f"{what} {path}: larger than {_size(limit)} (--max-input-size)")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        raise BadInput(f"{what} {path}: not UTF-8 text") from None


def _size(limit: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift} {unit}"
    return f"{limit} bytes"


class _Refused(Exception):
    def __init__(self, mark: Any, reason: str) -> None:
        super().__init__(reason)
        self.mark = mark
        self.reason = reason


def _yaml() -> Any:
    """A round-trip ruamel.yaml whose composer counts what a document expands to."""
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.constructor import RoundTripConstructor
    from ruamel.yaml.events import AliasEvent
    from ruamel.yaml.nodes import MappingNode, ScalarNode
    from ruamel.yaml.reader import Reader
    from ruamel.yaml.representer import RoundTripRepresenter
    from ruamel.yaml.scalarstring import FoldedScalarString

    from initkit import cancel

    token = cancel.current()

    class CheckedReader(Reader):
        """One scalar of a MiB is scanned for seconds, a character at a time, between two values
        the composer counts: the token is checked every CHECK_CHARS characters looked at."""

        looked = 0

        def peek(self, index: int = 0) -> Any:
            self.looked += 1
            if self.looked % CHECK_CHARS == 0:
                token.check()
            return super().peek(index)

        def forward(self, length: int = 1) -> None:
            while length > CHECK_CHARS:
                token.check()
                super().forward(CHECK_CHARS)
                length -= CHECK_CHARS
            super().forward(length)

    class BoundedConstructor(RoundTripConstructor):
        def construct_bounded_int(self, node: Any) -> Any:
            # YAML 1.1's 1:2:3 is base 60: ruamel computes 60**parts in a Python loop (quadratic)
            if isinstance(node.value, str) and len(node.value) > MAX_NUMBER:
                raise _Refused(node.start_mark, f"a number of more than {MAX_NUMBER} characters")
            return self.construct_yaml_int(node)

    BoundedConstructor.add_constructor("tag:yaml.org,2002:int", BoundedConstructor.construct_bounded_int)

    class LinearRepresenter(RoundTripRepresenter):
        def represent_folded(self, data: Any) -> Any:
            """ruamel's own, which copies the whole string at each fold (minutes for 260000 lines),
            in one pass: a `\\a` marks each fold the emitter keeps."""
            cuts = [
                at
                for at in sorted(set(getattr(data, "fold_pos", [])))
                if 0 < at < len(data) - 1
                and data[at] == " "
                and not data[at - 1].isspace()
                and not data[at + 1].isspace()
            ]
            pieces = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]
            text = "\a".join(pieces) if cuts else data  # as ruamel: the comment stays only when nothing folds
            return self.represent_scalar("tag:yaml.org,2002:str", text, style=">", anchor=data.yaml_anchor(any=True))

    LinearRepresenter.add_representer(FoldedScalarString, LinearRepresenter.represent_folded)

    class BoundedComposer(Composer):
        def __init__(self, loader: Any = None) -> None:
            super().__init__(loader)
            self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters), once composed
            self.depth = 0
            self.token = token

        def compose_node(self, parent: Any, index: Any) -> Any:
            if len(self.sizes) % CHECK_EVERY == 0:
                self.token.check()  # a big file takes seconds to read in pure Python: SIGTERM ends it
            if self.parser.check_event(AliasEvent):
                mark = self.parser.peek_event().start_mark
                node = super().compose_node(parent, index)
                if id(node) not in self.sizes:  # its anchor is still being composed: a cycle
                    raise _Refused(mark, "an alias refers to a value that contains it")
                return node  # its parent counts its whole size again, at this use
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _Refused(self.parser.peek_event().start_mark, f"nested more than {MAX_DEPTH} levels deep")
                node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
            self._weigh(node)
            return node

        def _weigh(self, node: Any) -> None:
            if isinstance(node, ScalarNode):
                nodes, text = 1, len(node.value)
            else:
                children = [c for pair in node.value for c in pair] if isinstance(node, MappingNode) else node.value
                nodes = 1 + sum(self.sizes[id(child)][0] for child in children)
                text = sum(self.sizes[id(child)][1] for child in children)
            if nodes > MAX_NODES:
                raise _Refused(node.start_mark, f"expands to more than {MAX_NODES} values (aliases count at each use)")
            if text > MAX_TEXT:
                raise _Refused(node.start_mark, f"expands to more than {MAX_TEXT >> 20} MiB of text")
            self.sizes[id(node)] = (nodes, text)

    yaml = YAML(typ="rt", pure=True)
    yaml.Reader = CheckedReader
    yaml.Composer = BoundedComposer
    yaml.Constructor = BoundedConstructor
    yaml.Representer = LinearRepresenter
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never re-wrap a long line of the input
    return yaml


def load(path: str, limit: int, what: str = "merge file") -> tuple[Any, str, str]:
    """(document, format, text) of one input; the document is None for an empty file."""
    text = read_input(path, what, limit)
    shown = f"{what} {path}"
    if format_of(path) == JSON:
        return _load_json(shown, text), JSON, text
    return _load_yaml(shown, text), YAML, text


def _load_yaml(path: str, text: str) -> Any:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return _yaml().load(text)
    except _Refused as exc:
        raise BadInput(f"{path}{_where(exc.mark)}: {exc.reason}") from None
    except MarkedYAMLError as exc:
        # problem and position only: the context snippet could show a secret
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed"
        raise BadInput(f"{path}{_where(mark)}: malformed YAML: {_unquoted(problem)}") from None
    except YAMLError as exc:  # the reader's "unacceptable character", and the like: no position to give
        raise BadInput(f"{path}: malformed YAML: {type(exc).__name__}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor refused a scalar (2001-13-45)
        raise BadInput(f"{path}: a value cannot be read: {type(exc).__name__}") from None


def _unquoted(problem: str) -> str:
    """ruamel's problem without the part of the input it quotes: `found duplicate key "k" with value
    "v"`, `found unknown escape character 'q'` (the key stays: messages name keys)."""
    problem = problem.splitlines()[0] if problem.strip() else "malformed"
    return re.split(r" with value |, but found | '", problem)[0]


def _where(mark: Any) -> str:
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def _load_json(path: str, text: str) -> Any:
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise BadInput(f"{path}: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # an int of more digits than Python converts
        raise BadInput(f"{path}: a value cannot be read: {type(exc).__name__}") from None
    if _depth(data) > MAX_DEPTH:
        raise BadInput(f"{path}: nested more than {MAX_DEPTH} levels deep")
    return data


def _depth(data: Any) -> int:
    """How deeply mappings and lists nest, walked without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in children)
    return deepest


def merge(base: Any, overlay: Any) -> Any:
    """`overlay` over `base`: mappings merge key by key (in place in `base`, which keeps its
    comments and order), anything else replaces. An empty document (None) adds nothing."""
    if overlay is None:
        return base
    if not (isinstance(base, Mapping) and isinstance(overlay, Mapping)):
        return overlay
    _merge_into(base, overlay)
    return base


def _merge_into(base: Any, overlay: Mapping[Any, Any]) -> None:
    for key, value in overlay.items():
        old = base.get(key) if key in base else None
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            _merge_into(old, value)
        else:
            base[key] = value


def set_value(document: Any, path: Sequence[str], value: Any, shown: str) -> Any:
    """The document with `value` at `path`, creating mappings on the way; exit 2 when a
    value on the way is not a mapping."""
    from ruamel.yaml.comments import CommentedMap

    if document is None:
        document = CommentedMap()
    if not isinstance(document, Mapping):
        raise BadInput(f"--set {shown}: the merged document is a {_kind(document)}, not a mapping")
    node = document
    for depth, part in enumerate(path[:-1]):
        inner = node.get(part)
        if inner is None:
            inner = node[part] = CommentedMap()
        elif not isinstance(inner, Mapping):
            where = ".".join(path[: depth + 1])
            raise BadInput(f"--set {shown}: {where} is a {_kind(inner)}, not a mapping")
        node = inner
    if path[-1] not in node or not _same(node[path[-1]], value):
        node[path[-1]] = value  # only when it changes: an equal value keeps its quotes and comments
    return document


def _same(old: Any, value: Any) -> bool:
    if value is None or old is None:
        return old is value
    if isinstance(old, bool) != isinstance(value, bool):
        return False  # True == 1 in Python, not in YAML
    return isinstance(old, type(value)) and old == value


def dump(document: Any, fmt: str, first_text: str) -> str:
    """The document as YAML laid out like the first file (its indentation), or as JSON."""
    if fmt == JSON:
        try:
            return (
                json.dumps(
                    document,
                    indent=_json_indent(first_text),
                    ensure_ascii=False,
                    allow_nan=False,
                    default=_json_default,
                )
                + "\n"
            )
        except ValueError as exc:  # NaN or infinity, or a cycle
            raise BadInput(f"the merged document cannot be written as JSON: {exc}") from None
    if document is None:
        return ""
    yaml = _yaml()
    mapping, sequence, offset = _layout(first_text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    out = _CheckedText()
    yaml.dump(document, out)
    return out.getvalue()


class _CheckedText(io.StringIO):
    """The emitter's output. It writes a block scalar line by line, for seconds: the token is checked."""

    def __init__(self) -> None:
        from initkit import cancel

        super().__init__()
        self.token, self.writes = cancel.current(), 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes % CHECK_CHARS == 0:
            self.token.check()
        return super().write(text)


def _json_default(value: Any) -> Any:
    import datetime

    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    tagged = getattr(value, "value", None)  # ruamel's TaggedScalar (`!Ref x`): its text
    if isinstance(tagged, str):
        return tagged
    raise BadInput(f"the merged document holds a {type(value).__name__}, which JSON cannot hold")


def _json_indent(text: str) -> int:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) < len(line):
            return len(line) - len(stripped)
    return 2


def _layout(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) of a YAML text, from its first nested
    mapping and its first block sequence under a key; 2, 2, 0 where it has none."""
    from initkit import cancel

    token = cancel.current()
    mapping = offset = None
    previous: tuple[int, str] | None = None  # (indent, stripped) of the last content line
    for number, line in enumerate(text.splitlines()):
        if number % CHECK_EVERY == 0:
            token.check()  # a MiB of lines that nest nothing is read to its end
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if previous is not None and previous[1].endswith(":") and indent > previous[0]:
            if stripped.startswith("- ") or stripped == "-":
                offset = indent - previous[0] if offset is None else offset
            elif mapping is None:
                mapping = indent - previous[0]
        if mapping is not None and offset is not None:
            break
        previous = (indent, stripped)
    mapping = mapping or 2
    offset = offset or 0
    return mapping, max(mapping, offset + 2), offset


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def merged(
    paths: Sequence[str],
    sets: Sequence[tuple[list[str], Any, str]],
    fmt: str | None,
    limit: int,
    what: str = "merge file",
) -> str:
    """The files deep-merged in order, then each set (path, value, shown key), as text in `fmt`
    (default: the first file's format)."""
    from initkit import cancel

    token = cancel.current()
    document: Any = None
    first_fmt, first_text = YAML, ""
    for index, path in enumerate(paths):
        token.check()
        loaded, kind, text = load(path, limit, what)
        if index == 0:
            first_fmt, first_text = kind, text
        document = merge(document, loaded)
    for key_path, value, shown in sets:
        document = set_value(document, key_path, value, shown)
    return dump(document, fmt or first_fmt, first_text)
