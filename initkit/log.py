"""Logging to stderr, as text or as one JSON object a line; always redacted.

A tiny logger rather than the stdlib's `logging`: start-up time matters for
init containers and this is all initkit needs. With --debug, libraries that
use `logging` (urllib3) are routed here too, and redacted like the rest.

Every line is one line of text a terminal only displays: a text line has its
control characters escaped here (`printable`), as JSON escapes them in a JSON
line, whatever a server put in its reason phrase or body.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from initkit.redact import redact

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}

_state: dict[str, Any] = {"format": "text", "level": INFO, "command": None}


def configure(fmt: str | None = None, level: int | None = None) -> None:
    _route_warnings()
    if fmt is not None:
        _state["format"] = fmt
    if level is not None:
        _state["level"] = level
        if level <= DEBUG:
            _route_stdlib_logging()


def set_command(name: str | None) -> None:
    _state["command"] = name


def preconfigure(argv: list[str], environ: dict[str, str] | Any) -> None:
    """Pick the format before click parses anything, so usage errors obey it too."""
    fmt = environ.get("INITKIT_LOG_FORMAT")
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--log-format" and i + 1 < len(argv):
            fmt = argv[i + 1]
        elif arg.startswith("--log-format="):
            fmt = arg.split("=", 1)[1]
    if fmt in ("text", "json"):
        _state["format"] = fmt


def is_debug() -> bool:
    return _state["level"] <= DEBUG


def printable(text: str) -> str:
    """TEXT with every character a terminal would act on escaped as Python writes it (`\\x1b`,
    `\\n`, `\\u2028`): C0 (tab too), DEL, C1, line and paragraph separators, bidi and other
    format characters. `str.isprintable` is Unicode's own list of them."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def emit(level: int, msg: str, **fields: Any) -> None:
    if level < _state["level"]:
        return
    if _state["format"] == "json":
        msg = redact(msg)  # json.dumps escapes every control character (ensure_ascii)
        record: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "level": _NAMES.get(level, "info"),
            "command": _state["command"],
            "msg": msg,
        }
        for key, value in fields.items():
            record[key] = redact(value) if isinstance(value, str) else value
        import json  # only for --log-format json: text logs start without it

        line = json.dumps(record, default=str)
    else:
        prefix = "initkit" + (f" {_state['command']}" if _state["command"] else "")
        tag = "" if level == INFO else f"{_NAMES.get(level, 'info')}: "
        line = f"{prefix}: {tag}{msg}"
        if level <= DEBUG and fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        # Redacted before escaping (a registered secret as it is) and after (its escaped form,
        # and a URL whose line break no longer hides the end of its userinfo or query value).
        line = redact(printable(redact(line)))
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def debug(msg: str, **fields: Any) -> None:
    emit(DEBUG, msg, **fields)


def info(msg: str, **fields: Any) -> None:
    emit(INFO, msg, **fields)


def warning(msg: str, **fields: Any) -> None:
    emit(WARNING, msg, **fields)


def error(msg: str, **fields: Any) -> None:
    emit(ERROR, msg, **fields)


def _route_warnings() -> None:
    """Python's warnings (a library's DeprecationWarning, ...) become log lines, so
    that with --log-format json every stderr line stays one JSON object."""
    import warnings

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        emit(WARNING, f"{category.__name__}: {message}")

    warnings.showwarning = show


def _route_stdlib_logging() -> None:
    import logging

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emit(DEBUG, f"{record.name}: {record.getMessage()}")

    root = logging.getLogger()
    if not any(isinstance(h, _Handler) for h in root.handlers):
        root.addHandler(_Handler())
    root.setLevel(logging.DEBUG)
