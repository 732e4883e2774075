"""The walk behind `initkit permissions`: each entry under a PATH given an owner and a mode,
changing only what differs, never following a link.

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
- skips what `Excludes` matches (by default `lost+found` and `.snapshot` at the
  top of each PATH), the other PATHs of the run that lie inside this one (each is
  walked with its own owner and mode), every entry on another file system (a
  subPath file, a volume), and every mount point the mount table lists below
  PATH, so a bind mount of the same disk too (emptyDir, hostPath share the
  node's): list a mount as its own PATH;
- leaves a read-only file system (EROFS) as it is, with one warning: the whole
  PATH when its mount is read-only, else the directory where the error came
  from (a snapshot directory of a network file system) and everything below it;
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
import fnmatch
import os
import re
import stat
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from initkit import cancel, fs, log, mounts
from initkit.errors import JobFailed
from initkit.modes import ModeSpec
from initkit.owners import Owner

PROGRESS_EVERY = 10.0  # seconds between progress lines on a large tree
DEFAULT_EXCLUDES = ("lost+found", ".snapshot")  # as Bitnami's volumePermissions scripts skip
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SHOWN = 4096  # PATH_MAX: a message names a deeper entry by PATH and its last levels


@dataclass(frozen=True)
class Target:
    """One PATH of a run and what its entries should have (None: left as they are)."""

    path: str
    owner: Owner | None
    mode: ModeSpec | None


# ---- --exclude ---------------------------------------------------------------------------------------


class ExcludeError(ValueError):
    """A glob that could never match a path relative to PATH."""


class Excludes:
    """Globs matched against an entry's path relative to PATH, one component at a time.

    `*`, `?` and `[...]` match within one component (never a `/`; `*` matches a
    leading dot too), so `lost+found` is only PATH's own and `*/cache` is one
    level down; a leading `**/` matches at any depth (`**/.snapshot`). Only the
    patterns that can match at a directory's depth are tried on its entries."""

    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = tuple(glob for glob in globs if glob)  # '' matches nothing: `--exclude ''` excludes nothing
        self._fixed: dict[int, list[tuple[re.Pattern[str], ...]]] = {}
        self._anywhere: list[tuple[re.Pattern[str], ...]] = []
        for glob in self.globs:
            anywhere, parts = _split_glob(glob)
            compiled = tuple(re.compile(fnmatch.translate(part)) for part in parts)
            if anywhere:
                self._anywhere.append(compiled)
            else:
                self._fixed.setdefault(len(compiled), []).append(compiled)

    def for_directory(self, names: list[str]) -> re.Pattern[str] | None:
        """One pattern for the names of the entries of the directory at `names` (relative to PATH),
        or None when no glob can match there."""
        last: list[str] = []
        for pats in self._fixed.get(len(names) + 1, ()):
            if all(p.fullmatch(n) for p, n in zip(pats[:-1], names, strict=True)):
                last.append(pats[-1].pattern)
        for pats in self._anywhere:
            above = len(pats) - 1
            if above <= len(names) and all(
                p.fullmatch(n) for p, n in zip(pats[:-1], names[len(names) - above :], strict=True)
            ):
                last.append(pats[-1].pattern)
        return re.compile("|".join(f"(?:{p})" for p in last)) if last else None


def _split_glob(glob: str) -> tuple[bool, list[str]]:
    parts = glob.split("/")
    anywhere = parts[0] == "**"
    if anywhere:
        parts = parts[1:]
    for part in parts or [""]:
        if part in ("", ".", "..", "**"):
            raise ExcludeError(
                f"--exclude {glob!r}: give a path relative to PATH, such as lost+found, */cache or **/.snapshot "
                "(no leading /, no empty, '.' or '..' parts, ** only as the first part)"
            )
    return anywhere, parts


# ---- --mkdir -------------------------------------------------------------------------------------------


def make_missing(target: Target, umask: int) -> list[str]:
    """Create the missing directories of target.path, each given the target's owner and mode;
    returns the paths created. Every directory on the way, existing or made, is opened with
    O_NOFOLLOW: a link the app planted there (before or meanwhile) stops the run, exit 1."""
    path = os.path.abspath(target.path)
    head, missing = path, []
    while not os.path.lexists(head):
        head, tail = os.path.split(head)
        missing.append(tail)
    created: list[str] = []
    if not missing:
        return created
    try:
        # Below "/", no link is followed: the app may have planted one on the way (`vol/pg -> /etc`).
        with fs.open_dir("/", [part for part in head.split("/") if part]) as opened:
            fd = os.dup(opened)
    except fs.UnsafePath as exc:
        raise JobFailed(f"--mkdir {show(path)}: {exc}") from None
    except OSError as exc:
        raise failure("open directory", head, exc) from None
    try:
        for name in reversed(missing):
            head = os.path.join(head, name)
            try:
                os.mkdir(name, 0o777, dir_fd=fd)  # less the umask, as mkdir(1)
            except FileExistsError:
                pass  # made meanwhile: opened (and checked) below
            except OSError as exc:
                raise failure("create directory", head, exc) from None
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise failure("open directory", head, exc) from None
            os.close(fd)
            fd = child
            _give(fd, head, target, umask)
            created.append(head)
    finally:
        os.close(fd)
    return created


def _give(fd: int, shown: str, target: Target, umask: int) -> None:
    st = os.fstat(fd)
    chown = target.owner.chown_args(st) if target.owner is not None else None
    try:
        if chown is not None:
            os.chown(fd, *chown)
        if target.mode is not None:
            os.chmod(fd, target.mode.apply(st.st_mode, True, umask))
    except OSError as exc:
        raise failure("chown" if chown else "chmod", shown, exc, target.owner) from None


# ---- the walk ------------------------------------------------------------------------------------------


@dataclass
class Counts:
    checked: int = 0
    changed: int = 0
    owners: int = 0
    modes: int = 0
    skipped: list[str] = field(default_factory=list)
    read_only: list[str] = field(default_factory=list)  # what was left as it is: a read-only file system


@dataclass(slots=True)
class Level:
    """A directory on the way down from PATH. Only the deepest one's descriptor is open, and
    each level keeps no path: a tree deeper than PATH_MAX is walked in memory and descriptors
    that do not grow with its depth."""

    name: str  # relative to the level above; PATH itself for the first
    ino: int  # checked when climbing back into it through `..`
    # (name, inode) of the subdirectories still to walk, the next one last.
    todo: list[tuple[str, int]] = field(default_factory=list)
    read_only: bool = False  # EROFS met here: nothing more below it is tried


class _ReadOnly(Exception):
    """EROFS from a chown or chmod: the walk leaves that directory (or the whole PATH) as it is."""


class Walker:
    def __init__(
        self,
        owner: Owner | None,
        mode: ModeSpec | None,
        umask: int,
        excludes: Excludes | None = None,
        others: Collection[tuple[int, int]] = (),
    ) -> None:
        self.owner = owner
        self.mode = mode
        self.umask = umask
        self.excludes = excludes or Excludes(DEFAULT_EXCLUDES)
        self.others = frozenset(others)  # (st_dev, st_ino) of the run's other PATHs: walked on their own
        self.counts = Counts()
        # st_mode -> wanted mode, for files and for directories: a tree has few distinct modes.
        self._file_modes: dict[int, int] = {}
        self._dir_modes: dict[int, int] = {}
        self._next_progress = 0.0
        self._path = ""
        self._levels: list[Level] = []
        self._dev = 0  # PATH's file system: entries on another are skipped
        self._mounts: frozenset[tuple[int, int]] = frozenset()  # roots of the mounts below PATH

    def run(self, path: str) -> Counts:
        """Walk `path`, which the caller checked exists and is no link."""
        self.counts = Counts()
        self._path = path
        self._next_progress = time.monotonic() + PROGRESS_EVERY
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise failure("read", path, exc) from None
        if stat.S_ISDIR(st.st_mode):
            self._walk(path)
            return self.counts
        parent, name = os.path.split(os.path.normpath(path))
        parent_fd = _open_path(parent or ".", path)
        self._levels = [Level(parent, 0)] if parent else []
        try:
            self._fix_entry(parent_fd, name, st)
        except _ReadOnly:
            self._read_only(path, "")
        finally:
            os.close(parent_fd)
            self._levels = []
        return self.counts

    def _walk(self, path: str) -> None:
        """Depth first, holding one directory open: down by opening a child relative to it, back
        up through `..`, checked to be the directory that was left."""
        fd = _open_path(path, path)
        try:
            st = os.fstat(fd)
            self._dev = st.st_dev
            self._mounts = self._mounts_below(fd, path)
            self._levels = [Level(path, st.st_ino)]
            if not self._list_or_leave(fd):
                return
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
                        self._levels.append(Level(name, ino))
                        if not self._list_or_leave(fd):
                            return
                    continue
                # Content first, then the directory: a mode taking away search rights comes last,
                # so `..` is opened before it, while this directory can still be searched.
                up = self._climb(fd, self._levels[-2].ino) if len(self._levels) > 1 else None
                try:
                    if not level.read_only:
                        self._fix_dir(fd)
                except _ReadOnly:
                    if self._whole_path_read_only(fd):
                        return
                    self._read_only(self._display(), "")
                finally:
                    if up is not None and self._levels == []:
                        os.close(up)  # the walk was left (a read-only PATH): `up` is no longer needed
                if up is None or not self._levels:
                    return
                os.close(fd)
                fd = up
                self._levels.pop()
        finally:
            os.close(fd)
            self._levels = []

    def _list_or_leave(self, fd: int) -> bool:
        """List the directory open as fd; False when the whole PATH turned out read-only."""
        try:
            self._list(fd)
        except _ReadOnly:
            if self._whole_path_read_only(fd):
                return False
            level = self._levels[-1]
            level.read_only = True
            level.todo.clear()
            self._read_only(self._display(), " and everything below it")
        return True

    def _whole_path_read_only(self, fd: int) -> bool:
        """Whether the mount walked is read-only (every entry walked is on it): then the whole
        PATH is left, with one line, and the walk ends."""
        try:
            read_only = bool(os.fstatvfs(fd).f_flag & os.ST_RDONLY)
        except OSError:
            return False
        if read_only:
            self._read_only(self._path, "")
            self._levels = []
        return read_only

    def _read_only(self, display: str, below: str) -> None:
        self.counts.read_only.append(display)
        log.warning(f"left {show(display)}{below} as it is: read-only file system")

    def _mounts_below(self, fd: int, path: str) -> frozenset[tuple[int, int]]:
        try:
            return mounts.roots_below(fd)
        except OSError as exc:
            raise JobFailed(
                f"cannot read the mount table {mounts.MOUNTINFO} ({exc.strerror or exc}): "
                f"it is needed to skip the mounts inside {show(path)}; mount /proc"
            ) from None

    def _list(self, fd: int) -> None:
        """Fix every entry of the directory but its subdirectories, which are noted to walk next."""
        try:
            entries = os.scandir(fd)  # a duplicate of fd, closed when the listing ends
        except OSError as exc:
            raise failure("read directory", self._display(), exc) from None
        todo = self._levels[-1].todo
        excluded = self.excludes.for_directory([level.name for level in self._levels[1:]])
        # For the fast path below: on a re-run nearly every entry is already right.
        want_uid = self.owner.uid if self.owner is not None else None
        want_gid = self.owner.gid if self.owner is not None else None
        spec, file_modes, dev, roots, others = self.mode, self._file_modes, self._dev, self._mounts, self.others
        token, seen = cancel.current(), 0
        with entries:
            while True:
                seen += 1
                if not seen % 1024:
                    token.check()  # a directory of millions of entries still stops within a second
                try:
                    entry = next(entries, None)
                except OSError as exc:  # getdents failing half-way: an I/O error, a file system gone
                    raise failure("read directory", self._display(), exc) from None
                if entry is None:
                    break
                if excluded is not None and excluded.fullmatch(entry.name):
                    log.debug(f"excluded {show(self._display(entry.name))}")
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since it was listed: nothing to fix
                except OSError as exc:
                    raise failure("read", self._display(entry.name), exc) from None
                mode = st.st_mode
                if st.st_dev != dev:
                    self._skip(entry.name, "on another file system")
                elif roots and (dev, st.st_ino) in roots and entry.inode() != st.st_ino:
                    # The directory's own entry names the inode the mount covers; a lookup
                    # crosses into the mount. The mount's source, if it is inside PATH, is walked.
                    self._skip(entry.name, "a mount point")
                elif others and (dev, st.st_ino) in others:
                    log.debug(f"left {show(self._display(entry.name))} to its own PATH")
                elif stat.S_ISDIR(mode):
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
        log.info(f"skipped {show(display)}: {why} (give a mount as its own PATH)")

    def _open_dir(self, parent_fd: int, name: str, listed_ino: int) -> int | None:
        """The subdirectory listed, opened relative to its parent; None if it is no longer that one."""
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                log.warning(f"skipped {show(self._display(name))}: replaced by a link or file while walking")
                return None
            raise failure("open directory", self._display(name), exc) from None
        try:
            now = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if (now.st_dev, now.st_ino) != (self._dev, listed_ino):
            # The listing's checks (same file system, not a mount, not excluded) were of another inode.
            log.warning(f"skipped {show(self._display(name))}: replaced while walking")
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
            raise failure("open directory", self._display(".."), exc) from None
        try:
            now = os.fstat(up)
        except BaseException:
            os.close(up)
            raise
        if (now.st_dev, now.st_ino) != (self._dev, parent_ino):
            os.close(up)
            raise JobFailed(f"{show(self._display())}: moved while it was walked (stopped)")
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
                raise failure("chown", self._display(), exc, self.owner) from None
            self.counts.owners += 1
            changed = True
        if self.mode is not None:
            want = self._wanted(st.st_mode, is_dir=True)
            if want != stat.S_IMODE(st.st_mode):
                try:
                    os.chmod(fd, want)
                except OSError as exc:
                    raise failure("chmod", self._display(), exc) from None
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
                raise failure("chown", self._display(name), exc, self.owner) from None
            self.counts.owners += 1
            changed = True
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISLNK(st.st_mode):
                try:  # chown cleared them, as it does for chown -R: compute the mode from what is left
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError as exc:
                    raise failure("read", self._display(name), exc) from None
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
            raise failure("chmod", self._display(name), exc) from None
        try:
            now = os.fstat(fd)
            if stat.S_ISLNK(now.st_mode) or (now.st_dev, now.st_ino) != (listed.st_dev, listed.st_ino):
                log.warning(f"skipped {show(self._display(name))}: replaced while walking")
                return False
            # The descriptor pins the inode that was listed; /proc/self/fd/N reaches it, not a link's target.
            os.chmod(f"/proc/self/fd/{fd}", want)
        except OSError as exc:
            raise failure("chmod", self._display(name), exc) from None
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
        return None if self.owner is None else self.owner.chown_args(st)

    def _tick(self) -> None:
        self.counts.checked += 1
        if self.counts.checked % 1024 == 0 and time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + PROGRESS_EVERY
            log.info(f"{show(self._path)}: {self.counts.checked} entries checked so far, {self.counts.changed} changed")


def _open_path(directory: str, path: str) -> int:
    """The directory of PATH's walk, reached from `/` one component at a time with O_NOFOLLOW: the
    app that owns the volume may have swapped a directory above PATH for a link (`vol/pg -> /etc`)."""
    try:
        with fs.open_dir("/", [part for part in os.path.abspath(directory).split("/") if part]) as fd:
            return os.dup(fd)
    except fs.UnsafePath as exc:
        raise JobFailed(f"{show(path)}: {exc}") from None
    except OSError as exc:
        raise failure("open directory", directory, exc) from None


def failure(op: str, display: str, exc: OSError, owner: Owner | None = None) -> Exception:
    """One line naming the entry and, for a refusal, the capability the container lacks.
    EROFS from a chown or chmod is `_ReadOnly`, which the walk turns into a warning."""
    where = show(display)
    if exc.errno == errno.EROFS and op in ("chown", "chmod"):
        return _ReadOnly(where)
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


def show(path: str) -> str:
    """A path on one line: a file name may hold a newline or an escape sequence."""
    return path if path.isprintable() else repr(path)[1:-1]
