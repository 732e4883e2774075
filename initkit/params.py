"""Click parameter types and the option decorator every command uses."""

from __future__ import annotations

import re
from typing import Any

import click

from initkit.durations import check_seconds, parse_duration


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            if isinstance(value, (int, float)):
                return check_seconds(float(value), value)
            return parse_duration(str(value))
        except (ValueError, OverflowError) as exc:
            self.fail(str(exc), param, ctx)


class Octal(click.ParamType):
    """Permission bits, 0000 to 0777, in octal digits only.

    Not int(x, 8): it takes `-0`, `1_0`, `0o7` and spaces. And not the setuid,
    setgid and sticky bits: a rendered file that is setuid would be a gift to
    whoever controls the template."""

    name = "octal"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
            return value
        text = str(value)
        if not re.fullmatch(r"0*[0-7]{1,4}", text):
            self.fail(f"{text[:20]!r} is not an octal file mode such as 0644", param, ctx)
        mode = int(text, 8)
        if mode > 0o777:
            self.fail(
                f"{text!r}: only permission bits (0000 to 0777); setuid, setgid and sticky are refused", param, ctx
            )
        return mode


class Line(click.ParamType):
    """A string; a repeatable option of this type takes one value per line from its
    environment variable (headers contain spaces, so whitespace cannot separate them)."""

    name = "text"
    envvar_list_splitter = "\n"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)

    def split_envvar_value(self, rv: str) -> list[str]:
        # At "\n" (or "\r\n") only: str.splitlines() also breaks at \r, \x85, \x1c-\x1e and \u2028,
        # making two headers of one line that --header would refuse whole.
        lines = (line.removesuffix("\r") for line in rv.split("\n"))
        return [line for line in lines if line.strip()]


def option(*decls: str, **attrs: Any) -> Any:
    """click.option that shows its INITKIT_* environment variable in --help."""
    attrs.setdefault("show_envvar", True)
    attrs.setdefault("show_default", True)
    return click.option(*decls, **attrs)


class OwnerType(click.ParamType):
    """UID, UID:GID or :GID, numeric only (initkit.owners)."""

    name = "UID[:GID]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from initkit.owners import Owner, OwnerError, parse_owner

        if isinstance(value, Owner):
            return value
        try:
            return parse_owner(str(value).strip())
        except OwnerError as exc:
            self.fail(str(exc), param, ctx)


class ModeType(click.ParamType):
    """chmod's mode spec, symbolic or octal, permission bits only (initkit.modes)."""

    name = "SPEC"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from initkit.modes import ModeError, ModeSpec, parse

        if isinstance(value, ModeSpec):
            return value
        try:
            return parse(str(value).strip())
        except ModeError as exc:
            self.fail(str(exc), param, ctx)
