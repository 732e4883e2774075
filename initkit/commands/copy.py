"""`initkit copy SRC... DEST`: an app's default files out of its image (an image volume) or a
ConfigMap into a volume, idempotently. The copy is `initkit.copytree`'s; this module parses
and checks the options."""

from __future__ import annotations

import os

import click

from initkit import cancel, log, options
from initkit.commands.fetch import Size
from initkit.copytree import Copier, Settings, show
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.modes import ModeSpec
from initkit.owners import Owner
from initkit.params import ModeType, OwnerType, option


@click.command("copy", epilog=EXIT_CODES_HELP)
@click.argument("sources", nargs=-1, required=True, metavar="SRC...", envvar="INITKIT_COPY_SOURCES")
@click.argument("dest", metavar="DEST", envvar="INITKIT_COPY_DEST")
@option(
    "--owner",
    type=OwnerType(),
    default=None,
    show_default=False,
    help="Numeric owner of what is copied: UID, UID:GID or :GID (default: initkit's user).",
)
@option(
    "--mode",
    type=ModeType(),
    default=None,
    show_default=False,
    help="chmod's mode applied to SRC's modes: g+rwX, a=rX, 0644...; no setuid, setgid or sticky "
    "(default: SRC's permission bits).",
)
@option("--overwrite", is_flag=True, help="Replace what the app changed since the last copy, too.")
@option("--max-entries", type=click.IntRange(min=0), default=100_000, help="Most entries in SRC (0: none).")
@option("--max-size", type=Size(), default="4GiB", help="Most bytes of files in SRC (0: none).")
@options.timeout("10m", covers="the whole copy")
def command(
    sources: tuple[str, ...],
    dest: str,
    owner: Owner | None,
    mode: ModeSpec | None,
    overwrite: bool,
    max_entries: int,
    max_size: int,
    timeout: float,
) -> None:
    """Copy the content of each SRC directory (or each SRC file) into DEST, changing only what differs.

    Modes and symlinks inside SRC are kept (links are copied as links, never
    followed); FIFOs, sockets and devices are skipped with a warning. Each file
    is written to a temp file and renamed: a run killed midway is finished by
    the next. DEST/.initkit-copy.json records what was written, so that a file
    the app changed since is kept (unless --overwrite). Nothing in DEST is
    followed.

    Replaces: cp -a /opt/app/conf/. /emptydir/conf/ (run in the app's image)
    """
    for source in sources:
        if not os.path.exists(source):
            raise BadInput(f"{show(source)}: not found")
    if os.path.islink(dest) and not os.path.isdir(dest):
        raise BadInput(f"{show(dest)}: a dangling symlink")
    umask = os.umask(0)
    os.umask(umask)
    settings = Settings(owner, mode, overwrite, max_entries, max_size, umask)
    created = not os.path.lexists(dest)
    dest_fd = _open_dest(dest)
    try:
        for source in sources:
            if _overlap(source, dest, dest_fd):
                raise BadInput(f"SRC {show(source)} and DEST {show(dest)} overlap: the copy would copy itself")
        copier = Copier(dest, settings, cancel.current().child(timeout=timeout))
        counts = copier.run(list(sources), dest_fd)
        if created and owner is not None:
            _give(dest_fd, dest, owner)  # last: root without CAP_DAC_OVERRIDE cannot write into the app's
    finally:
        os.close(dest_fd)
    log.info(
        f"{show(dest)}: {counts.entries} {'entry' if counts.entries == 1 else 'entries'} from "
        f"{len(sources)} SRC, {counts.written} written, {counts.unchanged} unchanged, "
        f"{len(counts.kept)} kept, {len(counts.skipped)} skipped",
        dest=dest,
        entries=counts.entries,
        written=counts.written,
        unchanged=counts.unchanged,
        kept=len(counts.kept),  # counts, not lists: a JSON line stays small whatever SRC holds
        skipped=len(counts.skipped),
    )


def _open_dest(dest: str) -> int:
    """DEST, which the operator named (it may be a link), created with its parents if missing."""
    try:
        os.makedirs(dest, exist_ok=True)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except NotADirectoryError:
        raise BadInput(f"{show(dest)}: not a directory") from None
    except FileExistsError:
        raise BadInput(f"{show(dest)}: not a directory") from None
    except OSError as exc:
        raise JobFailed(f"cannot create {show(dest)}: {exc.strerror or exc}") from None
    return fd


def _give(fd: int, dest: str, owner: Owner) -> None:
    try:
        os.fchown(fd, -1 if owner.uid is None else owner.uid, -1 if owner.gid is None else owner.gid)
    except OSError as exc:
        raise JobFailed(f"cannot chown {show(dest)} to {owner}: {exc.strerror or exc}") from None


def _overlap(source: str, dest: str, dest_fd: int) -> bool:
    """Whether SRC is DEST or below it, or DEST below SRC: the copy would copy its own output."""
    dest_st = os.fstat(dest_fd)
    try:
        src_st = os.stat(source)
    except OSError:
        return False
    return _below(source, (dest_st.st_dev, dest_st.st_ino)) or _below(dest, (src_st.st_dev, src_st.st_ino))


def _below(path: str, top: tuple[int, int]) -> bool:
    """Whether the directory `top` (st_dev, st_ino) is path or one of its parents, links resolved."""
    path = os.path.realpath(path)
    while True:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) == top:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
