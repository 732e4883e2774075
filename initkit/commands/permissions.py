"""`initkit permissions PATH... --owner UID[:GID] --mode SPEC`: Bitnami's volumePermissions, idempotently.

Replaces `chown -R 1001:1001 /data && chmod -R g+rwX /data`, which rewrites every
inode on every pod restart, descends into `lost+found` and other mounts, and
follows a symlink that a swapped directory puts in its way. This walk:

- compares each entry's lstat with the wanted owner and mode and calls chown or
  chmod only where they differ, so a re-run changes nothing (not even ctime);
- never follows a symlink: directories are opened relative to their parent's
  descriptor with O_NOFOLLOW (a directory swapped for a link after it was listed
  fails to open instead of leading out of PATH), links are lchown'ed like
  `chown -R` does and never chmod'ed (Linux cannot chmod a link itself), and
  other entries are chmod'ed through an O_PATH|O_NOFOLLOW descriptor checked to
  be the inode that was listed;
- holds one directory open, whatever the depth: it goes down by opening a
  child relative to it and closing it, and back up through `..`, which must be
  the directory it came from (one moved while it was walked stops the walk,
  exit 1); each level keeps its name and inode, not a path, so a tree deeper
  than PATH_MAX takes neither more memory nor more descriptors;
- skips `lost+found` at the top of each PATH, every entry on another file
  system (a subPath file, a volume), and every mount point the mount table
  lists below PATH, so a bind mount of the same disk too (emptyDir, hostPath
  share the node's): list a mount as its own PATH;
- changes a directory after its content, so a mode that takes away root's search
  permission (o-rwx) cannot stop the walk half-way;
- needs CAP_CHOWN (chown) and CAP_FOWNER (chmod of files root does not own) and
  nothing else, except CAP_DAC_READ_SEARCH for directories that root cannot
  search without it (mode 0700 and owned by the app user, e.g. a database's
  data directory), or the broader CAP_DAC_OVERRIDE, which unlike it is in Pod
  Security's baseline set; a missing capability is exit 1 naming it.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

import click

from initkit import cancel, log, mounts
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.modes import ModeError, ModeSpec, parse
from initkit.params import option

_MAX_ID = 2**32 - 2  # (uid_t)-1 means "leave unchanged" to chown(2)
_PROGRESS_EVERY = 10.0  # seconds between progress lines on a large tree
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIPPED_AT_TOP = "lost+found"
_MAX_SHOWN = 4096  # PATH_MAX: a message names a deeper entry by PATH and its last levels


@dataclass(frozen=True)
class Owner:
    uid: int | None
    gid: int | None

    def __str__(self) -> str:
        return f"{'' if self.uid is None else self.uid}{'' if self.gid is None else f':{self.gid}'}"


class OwnerType(click.ParamType):
    """UID, UID:GID or :GID, numeric only: an image has no passwd entry for the app's user,
    and a name resolved here could mean another number in the app's image."""

    name = "UID[:GID]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Owner:
        if isinstance(value, Owner):
            return value
        text = str(value).strip()
        user, sep, group = text.partition(":")
        if not user and not group:
            self.fail(f"{text!r} is not UID[:GID] or :GID", param, ctx)
        if sep and not group:
            self.fail(
                f"{text!r}: give the group as a number too (UID:GID); no passwd entry names a login group", param, ctx
            )
        uid, gid = (self._id(part, text, param, ctx) if part else None for part in (user, group))
        return Owner(uid, gid)

    def _id(self, part: str, text: str, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if not part.isdecimal() or not part.isascii():
            self.fail(
                f"{text!r}: give numeric ids such as 1001:1001 (images have no passwd entries to look names up)",
                param,
                ctx,
            )
        number = int(part)
        if number > _MAX_ID:
            self.fail(f"{text!r}: {number} is not a valid id (0 to {_MAX_ID})", param, ctx)
        return number


class ModeType(click.ParamType):
    name = "SPEC"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> ModeSpec:
        if isinstance(value, ModeSpec):
            return value
        try:
            return parse(str(value).strip())
        except ModeError as exc:
            self.fail(str(exc), param, ctx)


@click.command("permissions", epilog=EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, required=True, envvar="INITKIT_PERMISSIONS_PATHS")
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
def command(paths: tuple[str, ...], owner: Owner | None, mode: ModeSpec | None) -> None:
    """Give every entry under each PATH the owner and mode wanted, changing only what differs.

    Symlinks are never followed (they are lchown'ed, never chmod'ed);
    `lost+found` at the top of a PATH, mount points and anything on another
    file system are skipped. X in a mode means execute for directories and for files someone can
    already execute, as with chmod. Needs CAP_CHOWN and CAP_FOWNER (and
    CAP_DAC_READ_SEARCH for directories that others cannot read and search).

    Replaces: chown -R 1001:1001 /data && chmod -R g+rwX /data
    """
    if owner is None and mode is None:
        raise BadInput("nothing to do: give --owner, --mode or both")
    if mode is not None and not os.path.isdir("/proc/self/fd"):
        # Linux cannot chmod without following a link except through /proc/self/fd (as glibc's lchmod).
        raise JobFailed("--mode needs /proc mounted, to change modes without following symlinks")
    umask = os.umask(0)  # chmod reads it for specs without who letters (+X); reading it means setting it
    os.umask(umask)
    walker = _Walker(owner, mode, umask)
    for path in paths:
        counts = walker.run(path)
        log.info(
            f"{_show(path)}: {counts.checked} {'entry' if counts.checked == 1 else 'entries'} checked, "
            f"{counts.changed} changed "
            f"({counts.owners} owner, {counts.modes} mode)",
            path=path,
            checked=counts.checked,
            changed=counts.changed,
            owner_changes=counts.owners,
            mode_changes=counts.modes,
            skipped=counts.skipped,
        )


@dataclass
class _Counts:
    checked: int = 0
    changed: int = 0
    owners: int = 0
    modes: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Level:
    """A directory on the way down from PATH. Only the deepest one's descriptor is open, and
    each level keeps no path: a tree deeper than PATH_MAX is walked in memory and descriptors
    that do not grow with its depth."""

    name: str  # relative to the level above; PATH itself for the first
    ino: int  # checked when climbing back into it through `..`
    # (name, inode) of the subdirectories still to walk, the next one last.
    todo: list[tuple[str, int]] = field(default_factory=list)


class _Walker:
    def __init__(self, owner: Owner | None, mode: ModeSpec | None, umask: int) -> None:
        self.owner = owner
        self.mode = mode
        self.umask = umask
        self.counts = _Counts()
        # st_mode -> wanted mode, for files and for directories: a tree has few distinct modes.
        self._file_modes: dict[int, int] = {}
        self._dir_modes: dict[int, int] = {}
        self._next_progress = 0.0
        self._path = ""
        self._levels: list[_Level] = []
        self._dev = 0  # PATH's file system: entries on another are skipped
        self._mounts: frozenset[tuple[int, int]] = frozenset()  # roots of the mounts below PATH

    def run(self, path: str) -> _Counts:
        self.counts = _Counts()
        self._path = path
        self._next_progress = time.monotonic() + _PROGRESS_EVERY
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise BadInput(f"{_show(path)}: not found") from None
        except NotADirectoryError:
            raise BadInput(f"{_show(path)}: not a directory") from None
        except OSError as exc:
            raise _failure("read", path, exc) from None
        if stat.S_ISLNK(st.st_mode):
            raise BadInput(f"{_show(path)} is a symlink: give the path it points to (links are never followed)")
        if stat.S_ISDIR(st.st_mode):
            self._walk(path)
        else:
            parent, name = os.path.split(os.path.normpath(path))
            try:
                parent_fd = os.open(parent or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                raise _failure("open directory", parent or ".", exc) from None
            self._levels = [_Level(parent, 0)] if parent else []
            try:
                self._fix_entry(parent_fd, name, st)
            finally:
                os.close(parent_fd)
                self._levels = []
        return self.counts

    def _walk(self, path: str) -> None:
        """Depth first, holding one directory open: down by opening a child relative to it, back
        up through `..`, checked to be the directory that was left."""
        try:
            fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            raise _failure("open directory", path, exc) from None
        try:
            st = os.fstat(fd)
            self._dev = st.st_dev
            self._mounts = self._mounts_below(fd, path)
            self._levels = [_Level(path, st.st_ino)]
            self._list(fd)
            token = cancel.current()
            while True:
                token.check()  # SIGTERM: stop between two directories (the caller's finally cleans up)
                level = self._levels[-1]
                if level.todo:
                    name, ino = level.todo.pop()
                    child = self._open_dir(fd, name, ino)
                    if child is not None:
                        os.close(fd)
                        fd = child
                        self._levels.append(_Level(name, ino))
                        self._list(fd)
                    continue
                # Content first, then the directory: a mode taking away search rights comes last,
                # so `..` is opened before it, while this directory can still be searched.
                up = self._climb(fd, self._levels[-2].ino) if len(self._levels) > 1 else None
                try:
                    self._fix_dir(fd)
                except BaseException:
                    if up is not None:
                        os.close(up)
                    raise
                if up is None:
                    return
                os.close(fd)
                fd = up
                self._levels.pop()
        finally:
            os.close(fd)
            self._levels = []

    def _mounts_below(self, fd: int, path: str) -> frozenset[tuple[int, int]]:
        try:
            return mounts.roots_below(fd)
        except OSError as exc:
            raise JobFailed(
                f"cannot read the mount table {mounts.MOUNTINFO} ({exc.strerror or exc}): "
                f"it is needed to skip the mounts inside {_show(path)}; mount /proc"
            ) from None

    def _list(self, fd: int) -> None:
        """Fix every entry of the directory but its subdirectories, which are noted to walk next."""
        try:
            entries = os.scandir(fd)  # a duplicate of fd, closed when the listing ends
        except OSError as exc:
            raise _failure("read directory", self._display(), exc) from None
        todo = self._levels[-1].todo
        top = len(self._levels) == 1
        # For the fast path below: on a re-run nearly every entry is already right.
        want_uid = self.owner.uid if self.owner is not None else None
        want_gid = self.owner.gid if self.owner is not None else None
        spec, file_modes, dev, roots = self.mode, self._file_modes, self._dev, self._mounts
        token, seen = cancel.current(), 0
        with entries:
            while True:
                seen += 1
                if not seen % 1024:
                    token.check()  # a directory of millions of entries still stops within a second
                try:
                    entry = next(entries, None)
                except OSError as exc:  # getdents failing half-way: an I/O error, a file system gone
                    raise _failure("read directory", self._display(), exc) from None
                if entry is None:
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since it was listed: nothing to fix
                except OSError as exc:
                    raise _failure("read", self._display(entry.name), exc) from None
                mode = st.st_mode
                if st.st_dev != dev:
                    self._skip(entry.name, "on another file system")
                elif roots and (dev, st.st_ino) in roots and entry.inode() != st.st_ino:
                    # The directory's own entry names the inode the mount covers; a lookup
                    # crosses into the mount. The mount's source, if it is inside PATH, is walked.
                    self._skip(entry.name, "a mount point")
                elif stat.S_ISDIR(mode):
                    if top and entry.name == _SKIPPED_AT_TOP:
                        log.debug(f"skipped {_show(self._display(entry.name))}")
                    else:
                        todo.append((entry.name, st.st_ino))
                elif (
                    (want_uid is None or st.st_uid == want_uid)
                    and (want_gid is None or st.st_gid == want_gid)
                    and (spec is None or stat.S_ISLNK(mode) or file_modes.get(mode) == mode & 0o7777)
                ):
                    self._tick()  # a file, link or other entry that is right already
                else:
                    self._fix_entry(fd, entry.name, st)
        todo.reverse()  # walked in the order listed

    def _skip(self, name: str, why: str) -> None:
        display = self._display(name)
        self.counts.skipped.append(display)
        log.info(f"skipped {_show(display)}: {why} (give a mount as its own PATH)")

    def _open_dir(self, parent_fd: int, name: str, listed_ino: int) -> int | None:
        """The subdirectory listed, opened relative to its parent; None if it is no longer that one."""
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                log.warning(f"skipped {_show(self._display(name))}: replaced by a link or file while walking")
                return None
            raise _failure("open directory", self._display(name), exc) from None
        try:
            now = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if (now.st_dev, now.st_ino) != (self._dev, listed_ino):
            # The listing's checks (same file system, not a mount, not lost+found) were of another inode.
            log.warning(f"skipped {_show(self._display(name))}: replaced while walking")
            os.close(fd)
            return None
        return fd

    def _climb(self, fd: int, parent_ino: int) -> int:
        """The parent of the directory open as fd, which must be the one the walk came down from.

        Anything else means the directory was moved while it was walked: where `..` leads now is
        not PATH's, so the walk stops rather than go on there.
        """
        try:
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise _failure("open directory", self._display(".."), exc) from None
        try:
            now = os.fstat(up)
        except BaseException:
            os.close(up)
            raise
        if (now.st_dev, now.st_ino) != (self._dev, parent_ino):
            os.close(up)
            raise JobFailed(f"{_show(self._display())}: moved while it was walked (stopped)")
        return up

    def _fix_dir(self, fd: int) -> None:
        """Change the directory walked through its open descriptor: it cannot be a link."""
        st = os.fstat(fd)
        changed = False
        chown = self._chown_args(st)
        if chown is not None:
            try:
                os.chown(fd, *chown)
            except OSError as exc:
                raise _failure("chown", self._display(), exc, self.owner) from None
            self.counts.owners += 1
            changed = True
        if self.mode is not None:
            want = self._wanted(st.st_mode, is_dir=True)
            if want != stat.S_IMODE(st.st_mode):
                try:
                    os.chmod(fd, want)
                except OSError as exc:
                    raise _failure("chmod", self._display(), exc) from None
                self.counts.modes += 1
                changed = True
        self.counts.changed += changed
        self._tick()

    def _fix_entry(self, dir_fd: int, name: str, st: os.stat_result) -> None:
        """A file, link, socket, fifo or device, by name relative to its directory's descriptor."""
        changed = False
        chown = self._chown_args(st)
        if chown is not None:
            try:
                # fchownat(AT_SYMLINK_NOFOLLOW): a link itself, as chown -R does; never what it points to.
                os.chown(name, *chown, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise _failure("chown", self._display(name), exc, self.owner) from None
            self.counts.owners += 1
            changed = True
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISLNK(st.st_mode):
                try:  # chown cleared them, as it does for chown -R: compute the mode from what is left
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError as exc:
                    raise _failure("read", self._display(name), exc) from None
        if self.mode is not None and not stat.S_ISLNK(st.st_mode):
            want = self._wanted(st.st_mode, is_dir=False)
            if want != stat.S_IMODE(st.st_mode) and self._chmod_nofollow(dir_fd, name, st, want):
                self.counts.modes += 1
                changed = True
        self.counts.changed += changed
        self._tick()

    def _chmod_nofollow(self, dir_fd: int, name: str, listed: os.stat_result, want: int) -> bool:
        try:
            fd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _failure("chmod", self._display(name), exc) from None
        try:
            now = os.fstat(fd)
            if stat.S_ISLNK(now.st_mode) or (now.st_dev, now.st_ino) != (listed.st_dev, listed.st_ino):
                log.warning(f"skipped {_show(self._display(name))}: replaced while walking")
                return False
            # The descriptor pins the inode that was listed; /proc/self/fd/N reaches it, not a link's target.
            os.chmod(f"/proc/self/fd/{fd}", want)
        except OSError as exc:
            raise _failure("chmod", self._display(name), exc) from None
        finally:
            os.close(fd)
        return True

    def _display(self, name: str | None = None) -> str:
        """The path of the directory walked, or of name in it: built only for a message, and
        shortened past PATH_MAX to PATH, the number of levels left out, and the last ones."""
        names = [level.name for level in self._levels]
        if name is not None:
            names.append(name)
        if not names:
            return ""
        head, rest = names[0], names[1:]
        if sum(len(n) + 1 for n in rest) > _MAX_SHOWN:
            tail: list[str] = []
            size = 0
            for part in reversed(rest):
                size += len(part) + 1
                if size > _MAX_SHOWN // 2 and tail:
                    break
                tail.append(part)
            rest = [f"...({len(rest) - len(tail)} levels)...", *reversed(tail)]
        return f"{head.rstrip('/')}/{'/'.join(rest)}" if rest else head

    def _wanted(self, mode: int, is_dir: bool) -> int:
        assert self.mode is not None
        cache = self._dir_modes if is_dir else self._file_modes
        want = cache.get(mode)
        if want is None:
            want = cache[mode] = self.mode.apply(mode, is_dir, self.umask)
        return want

    def _chown_args(self, st: os.stat_result) -> tuple[int, int] | None:
        """(uid, gid) for chown, -1 where nothing changes; None when the owner is right already."""
        if self.owner is None:
            return None
        uid = self.owner.uid if self.owner.uid is not None and self.owner.uid != st.st_uid else -1
        gid = self.owner.gid if self.owner.gid is not None and self.owner.gid != st.st_gid else -1
        return None if uid == gid == -1 else (uid, gid)

    def _tick(self) -> None:
        self.counts.checked += 1
        if self.counts.checked % 1024 == 0 and time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + _PROGRESS_EVERY
            log.info(
                f"{_show(self._path)}: {self.counts.checked} entries checked so far, {self.counts.changed} changed"
            )


def _failure(op: str, display: str, exc: OSError, owner: Owner | None = None) -> JobFailed:
    """One line naming the entry and, for a refusal, the capability the container lacks."""
    where = _show(display)
    if exc.errno == errno.EPERM and op == "chown":
        return JobFailed(f"not permitted to chown {where} to {owner}: the container needs CAP_CHOWN")
    if exc.errno == errno.EPERM and op == "chmod":
        return JobFailed(f"not permitted to chmod {where}: the container needs CAP_FOWNER (it does not own the file)")
    if exc.errno == errno.EACCES:
        return JobFailed(
            f"cannot {op} {where}: permission denied (to walk directories it cannot search otherwise, "
            "the container needs CAP_DAC_READ_SEARCH, or CAP_DAC_OVERRIDE under Pod Security's baseline)"
        )
    if exc.errno == errno.EROFS:
        return JobFailed(f"cannot {op} {where}: read-only file system")
    return JobFailed(f"cannot {op} {where}: {exc.strerror or exc}")


def _show(path: str) -> str:
    """A path on one line: a file name may hold a newline or an escape sequence."""
    return path if path.isprintable() else repr(path)[1:-1]
