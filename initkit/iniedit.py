"""`render --edit FILE --set KEY=VALUE` for INI and Java .properties files.

Replaces `airflow_conf_set`-style scripts (sed, crudini) that rewrite one key of a
config file. Only the keys set change: every other line -- comments, blank lines,
order, spacing, continuation lines -- is kept byte for byte, because the edit
goes through libraries that parse a file into its lines and write back the
lines they did not touch: iniparse (Debian's python3-iniparse) for INI and
javaproperties' PropertiesFile (python3-javaproperties) for .properties. A key
already holding the value is not touched at all, so a re-run writes nothing.

INI: `SECTION.KEY=VALUE` (the first unescaped dot ends the section: `a\\.b.key`
is key `key` of section `a.b`); keys match case-insensitively, as Python's
configparser (which Airflow uses) reads them; a missing key is added at the end
of its section, a missing section at the end of the file. A value is written as
given and must be one line: a line break would let a value start a section of
its own.

.properties: `KEY=VALUE`, the whole key (dots and all); the file is read and
written as ISO-8859-1 (Java's encoding for it, and lossless for any bytes), and
a new value is escaped as Java reads it (`\\uXXXX` past ASCII, `\\n`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from initkit.errors import BadInput

INI, PROPERTIES = "ini", "properties"
_EXTENSIONS = {".ini": INI, ".cfg": INI, ".properties": PROPERTIES}
ENCODING = {INI: "utf-8", PROPERTIES: "latin-1"}


def format_of(path: str) -> str | None:
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _one_line(text: str) -> bool:
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def ini_key(key_path: Sequence[str], shown: str) -> tuple[str, str]:
    """(section, option) of a split `SECTION.KEY`; exit 2 for what INI cannot hold."""
    if len(key_path) < 2:
        raise BadInput(f"--set {shown}: an INI key is SECTION.KEY")
    section, option = key_path[0], ".".join(key_path[1:])
    if not section.strip() or "]" in section or not _one_line(section):
        raise BadInput(f"--set {shown}: malformed section name")
    if option != option.strip() or not option or option[0] in "[#;" or not _one_line(option):
        raise BadInput(f"--set {shown}: malformed key")
    if any(ch in option for ch in "=:"):
        raise BadInput(f"--set {shown}: an INI key cannot hold '=' or ':'")
    return section, option


def edit_ini(path: str, text: str, sets: Sequence[tuple[str, str, str, str]]) -> str:
    """`text` with each (section, option, value, shown key) set."""
    import configparser

    from iniparse import INIConfig

    try:
        config = INIConfig(io.StringIO(text))
    except configparser.MissingSectionHeaderError as exc:
        raise BadInput(f"edit file {path}:{exc.lineno}: malformed INI: a key before any [section]") from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else "?"
        raise BadInput(f"edit file {path}:{line}: malformed INI line") from None
    except configparser.Error as exc:
        raise BadInput(f"edit file {path}: malformed INI: {type(exc).__name__}") from None
    for section, option, value, shown in sets:
        if not _one_line(value):
            raise BadInput(f"--set {shown}: the value holds a line break or control character; it must be one line")
        if section in list(config) and _current(config, section, option) == value:
            continue  # unchanged: its line stays as it is
        config[section][option] = value
    result = str(config)
    if text.endswith("\n") and not result.endswith("\n"):
        result += "\n"
    return result


def _current(config: Any, section: str, option: str) -> str | None:
    from iniparse.config import Undefined

    value = config[section][option]
    return None if isinstance(value, Undefined) else value


def edit_properties(path: str, text: str, sets: Sequence[tuple[str, str, str]]) -> str:
    """`text` with each (key, value, shown key) set."""
    from javaproperties import InvalidUEscapeError, PropertiesFile

    try:
        properties = PropertiesFile.load(io.StringIO(text))
    except InvalidUEscapeError:
        raise BadInput(f"edit file {path}: malformed .properties: an invalid \\u escape") from None
    except ValueError as exc:
        raise BadInput(f"edit file {path}: malformed .properties: {type(exc).__name__}") from None
    for key, value, _shown in sets:
        if properties.get(key) != value:
            properties[key] = value
    out = io.StringIO()
    properties.dump(out, separator="=", ensure_ascii=True)
    return out.getvalue()
