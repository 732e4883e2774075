"""Options more than one command takes, each declared once (as pip's `cmdoptions`).

Each factory returns a click decorator. Defaults that differ by command (how long a
job may take, how many attempts it gets) are arguments; names, types, metavars and
help texts are not, so `--ca-file` means the same thing everywhere. Every option has
its environment twin, INITKIT_<COMMAND>_<OPTION> (the group's auto_envvar_prefix).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from initkit.params import Duration, Line, option

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def headers(command: str, metavar: str = "'NAME: VALUE'") -> Decorator:
    """--header, repeatable; one header per line in INITKIT_<COMMAND>_HEADER (singular: the
    automatic name would follow the parameter, `headers`)."""
    return option(
        "--header",
        "headers",
        envvar=f"INITKIT_{command.upper().replace('-', '_')}_HEADER",
        type=Line(),
        multiple=True,
        metavar=metavar,
        help="Extra request header (repeatable; one per line in the environment variable).",
    )


def token_file() -> Decorator:
    return option("--token-file", type=click.Path(dir_okay=False), help="Send its content as a Bearer token.")


def ca_file(what: str = "https") -> Decorator:
    return option("--ca-file", type=click.Path(dir_okay=False), metavar="FILE", help=f"CA bundle to verify {what}.")


def attempts(default: int) -> Decorator:
    return option("--attempts", type=click.IntRange(min=1), default=default, help="Tries before giving up.")


def timeout(default: str, covers: str = "", zero: str = "none", note: str = "") -> Decorator:
    """--timeout: one deadline for the whole command; COVERS names what it includes."""
    what = (
        f"Overall time limit{', ' + covers + ' included' if covers else ''} (0: {zero}){'; ' + note if note else ''}."
    )
    return option("--timeout", type=Duration(), default=default, help=what)
