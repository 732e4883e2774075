"""Click parameter types and the option decorator every command uses."""

from __future__ import annotations

from typing import Any

import click

from initkit.durations import parse_duration


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Octal(click.ParamType):
    name = "octal"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            mode = int(str(value), 8)
        except ValueError:
            self.fail(f"{value!r} is not an octal file mode such as 0644", param, ctx)
        if not 0 <= mode <= 0o7777:
            self.fail(f"{value!r} is not a file mode (0 to 7777)", param, ctx)
        return mode


class Line(click.ParamType):
    """A string; a repeatable option of this type takes one value per line from its
    environment variable (headers contain spaces, so whitespace cannot separate them)."""

    name = "text"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)

    def split_envvar_value(self, rv: str) -> list[str]:
        return [line for line in rv.splitlines() if line.strip()]


def option(*decls: str, **attrs: Any) -> Any:
    """click.option that shows its INITKIT_* environment variable in --help."""
    attrs.setdefault("show_envvar", True)
    attrs.setdefault("show_default", True)
    return click.option(*decls, **attrs)
