"""`initkit permissions PATH... --owner UID[:GID] --mode SPEC`: Bitnami's volumePermissions, idempotently.

Replaces `chown -R 1001:1001 /data && chmod -R g+rwX /data`, which rewrites every
inode on every pod restart, descends into `lost+found` and other mounts, and
follows a symlink that a swapped directory puts in its way. This module parses
and checks the options; the walk is `initkit.permtree`'s.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import click

from initkit import log
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.modes import ModeSpec
from initkit.owners import Owner
from initkit.params import ModeType, OwnerType, option
from initkit.permtree import DEFAULT_EXCLUDES, ExcludeError, Excludes, Target, Walker, make_missing, show

_AS_COMMAND = "-"  # in --path: the command's --owner or --mode


class PathSpecType(click.Tuple):
    """`--path PATH OWNER MODE`: three arguments, `-` for the command's --owner or --mode.

    In INITKIT_PERMISSIONS_PATH, one `PATH OWNER MODE` a line: OWNER and MODE hold no
    space, so the last two words are they and PATH is the rest (it may hold spaces)."""

    def __init__(self) -> None:
        super().__init__([click.Path(), _OwnerOrSame(), _ModeOrSame()])

    def split_envvar_value(self, rv: str) -> list[str]:
        words: list[str] = []
        for line in rv.split("\n"):
            line = line.strip()
            if not line:
                continue
            fields = line.rsplit(None, 2)
            if len(fields) != 3:
                raise click.BadParameter(f"{line!r} is not PATH OWNER MODE", param_hint="INITKIT_PERMISSIONS_PATH")
            words += fields
        return words


class _OwnerOrSame(OwnerType):
    name = "OWNER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return None if value == _AS_COMMAND else super().convert(value, param, ctx)


class _ModeOrSame(ModeType):
    name = "MODE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return None if value == _AS_COMMAND else super().convert(value, param, ctx)


class _Globs(click.ParamType):
    """One glob a line in INITKIT_PERMISSIONS_EXCLUDE (a name may hold a space); an empty line
    is the empty glob, which matches nothing: a value of one empty line excludes nothing."""

    name = "GLOB"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)

    def split_envvar_value(self, rv: str) -> list[str]:
        return [line.removesuffix("\r") for line in rv.removesuffix("\n").split("\n")]


@click.command("permissions", epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, required=False, envvar="INITKIT_PERMISSIONS_PATHS")
@option(
    "--owner",
    type=OwnerType(),
    default=None,
    show_default=False,
    help="Numeric owner for every entry: UID, UID:GID, or :GID for the group only.",
)
@option(
    "--mode",
    type=ModeType(),
    default=None,
    show_default=False,
    help="chmod's mode: symbolic (u+rwX,g+rwX; o-rwx; a=rX; g=u) or octal (0775); no setuid, setgid or sticky.",
)
@option(
    "--path",
    "path_specs",
    envvar="INITKIT_PERMISSIONS_PATH",
    type=PathSpecType(),
    multiple=True,
    metavar="PATH OWNER MODE",
    show_default=False,
    help="Another PATH with its own owner and mode (- for --owner's or --mode's); repeatable. "
    "One 'PATH OWNER MODE' a line in the environment variable.",
)
@option(
    "--exclude",
    "excludes",
    envvar="INITKIT_PERMISSIONS_EXCLUDE",
    type=_Globs(),
    multiple=True,
    default=DEFAULT_EXCLUDES,
    metavar="GLOB",
    help="Skip what matches, by path relative to each PATH: * ? [..] within one name, **/ for any depth; "
    "repeatable, replaces the defaults ('' for none). One a line in the environment variable.",
)
@option("--mkdir", is_flag=True, help="Create missing PATHs (and their parents) with the owner and mode.")
def command(
    paths: tuple[str, ...],
    owner: Owner | None,
    mode: ModeSpec | None,
    path_specs: tuple[tuple[str, Owner | None, ModeSpec | None], ...],
    excludes: tuple[str, ...],
    mkdir: bool,
) -> None:
    """Give every entry under each PATH the owner and mode wanted, changing only what differs.

    Symlinks are never followed (they are lchown'ed, never chmod'ed);
    `lost+found` and `.snapshot` at the top of a PATH, mount points and anything on another
    file system are skipped, and a read-only file system is left with a warning.
    X in a mode means execute for directories and for files someone can
    already execute, as with chmod. A PATH inside another is walked with its own owner and mode
    only. Needs CAP_CHOWN and CAP_FOWNER (and
    CAP_DAC_READ_SEARCH for directories that others cannot read and search).

    Replaces: chown -R 1001:1001 /data && chmod -R g+rwX /data

    Per path: --path /bitnami/postgresql/data 1001:1001 u=rwX,go= --path /dev/shm - a+rwX
    """
    targets = [Target(path, owner, mode) for path in paths]
    targets += [
        Target(path, owner if one_owner is None else one_owner, mode if one_mode is None else one_mode)
        for path, one_owner, one_mode in path_specs
    ]
    if not targets:
        raise BadInput("nothing to do: give a PATH or --path PATH OWNER MODE")
    for target in targets:
        if target.owner is None and target.mode is None:
            raise BadInput(f"nothing to do: give --owner, --mode or both (for {show(target.path)})")
    if any(t.mode is not None for t in targets) and not os.path.isdir("/proc/self/fd"):
        # Linux cannot chmod without following a link except through /proc/self/fd (as glibc's lchmod).
        raise JobFailed("--mode needs /proc mounted, to change modes without following symlinks")
    try:
        excluded = Excludes(excludes)
    except ExcludeError as exc:
        raise BadInput(str(exc)) from None
    umask = os.umask(0)  # chmod reads it for specs without who letters (+X); reading it means setting it
    os.umask(umask)
    if mkdir:
        for target in targets:
            for created in make_missing(target, umask):
                log.info(f"created {show(created)}")
    identities = _identities(targets)
    for target, identity in zip(targets, identities, strict=True):
        others = {other for other in identities if other != identity}
        counts = Walker(target.owner, target.mode, umask, excluded, others).run(target.path)
        log.info(
            f"{show(target.path)}: {counts.checked} {'entry' if counts.checked == 1 else 'entries'} checked, "
            f"{counts.changed} changed "
            f"({counts.owners} owner, {counts.modes} mode)",
            path=target.path,
            checked=counts.checked,
            changed=counts.changed,
            owner_changes=counts.owners,
            mode_changes=counts.modes,
            skipped=counts.skipped,
            read_only=counts.read_only,
        )


def _identities(targets: list[Target]) -> list[tuple[int, int]]:
    """(st_dev, st_ino) of each PATH, which must exist, be no link, and be given once: a PATH
    inside another is left out of the other's walk by this identity."""
    seen: dict[tuple[int, int], str] = {}
    for target in targets:
        try:
            st = os.lstat(target.path)
        except FileNotFoundError:
            raise BadInput(f"{show(target.path)}: not found (--mkdir creates it)") from None
        except NotADirectoryError:
            raise BadInput(f"{show(target.path)}: not a directory") from None
        except OSError as exc:
            raise JobFailed(f"cannot read {show(target.path)}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(f"{show(target.path)} is a symlink: give the path it points to (links are never followed)")
        identity = (st.st_dev, st.st_ino)
        if identity in seen:
            raise BadInput(f"{show(target.path)} is given twice (also as {show(seen[identity])})")
        seen[identity] = target.path
    return list(seen)
