"""File safety in one place: the paths, directories and files a hostile party may have shaped.

DEST is often a volume the app container can write too, so anything below the
directory the operator named may have been planted: `etc -> /`, or
`app.conf -> /etc/shadow`, or a tree 1,500 levels deep at a temp name. Every
writer of initkit goes through this module:

- `is_within(path, root)`: whether a path, links resolved, is root or below it;
- `open_dir`: a descriptor for root/a/b/..., each part opened with O_NOFOLLOW,
  so a link is refused where it is found, even one swapped in meanwhile;
- `make_parents`: DEST's missing directories, owned like the volume's root;
- `write_atomic`: a change-only write through a temp file beside the
  destination (same file system: the rename is atomic; never /tmp, which is
  read-only in the images), fsync'd, renamed and fchmod'ed by descriptor;
- `replace_tree`: a whole directory swapped in by two renames, rolled back on
  failure, and `recover_tree` for a run killed between the two;
- `remove_tree`: a tree removed with one descriptor at a time, no recursion;
- one temp-file name scheme, `temp_name`, and `sweep`, which every writer calls
  first, so whatever a run killed by `kill -9` left (it runs no clean-up) is
  removed by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable, Collection, Iterator, Sequence

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted where a file goes must not hang.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_TRUSTED_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # a directory the operator named: may be a link


# ---- where a path is --------------------------------------------------------------------------------


def is_within(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it, both with every symlink and `..` resolved (os.path.realpath).

    The stricter of the helpers this replaced: render's compared the strings it
    was given, so `root/../etc` counted as inside; git's resolved links first, as
    this does. Components are compared whole (`/data2` is not inside `/data`).
    This judges names at one moment: where a link may be swapped in afterwards,
    write through `open_dir` instead, which re-checks at every step."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip("/") + "/")


# ---- temp names: one scheme, and a sweep of what killed runs left ----------------------------------

TEMP_MARK = ".initkit-tmp"
TEMP_PATTERN = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}" + re.escape(TEMP_MARK) + r"(?:\.(?P<kind>[a-z]+))?")


def temp_name(name: str, kind: str = "") -> str:
    """`.{name}.{8 hex}.initkit-tmp` (and `.{kind}`): a temp entry beside `name`, hidden, unique, and
    recognised by `sweep`. `kind` tells a writer's temps apart (fetch: a tree `d`, a replaced tree `old`)."""
    suffix = f".{kind}" if kind else ""
    return f".{name}.{os.urandom(4).hex()}{TEMP_MARK}{suffix}"


def temp_of(entry: str, names: Collection[str] | None = None) -> tuple[str, str] | None:
    """(name, kind) when `entry` is a temp name of the scheme (for one of `names`, when given); else None."""
    match = TEMP_PATTERN.fullmatch(entry)
    if match is None or (names is not None and match.group("name") not in names):
        return None
    return match.group("name"), match.group("kind") or ""


def sweep(directory: str | int, names: Collection[str] | None = None) -> list[str]:
    """Remove the temp files and trees of the scheme in `directory` (a path, or an open descriptor),
    only those beside one of `names` when given; returns the entries removed.

    A writer calls it before it writes: a run killed by `kill -9` left its temp
    behind. Only entries matching the scheme are touched; a tree is removed by
    `remove_tree` (no link followed, however deep); what cannot be removed stays."""
    removed = []
    with _dir_fd(directory) as fd:
        with os.scandir(fd) as entries:
            found = [entry.name for entry in entries if temp_of(entry.name, names) is not None]
        for entry in found:
            with contextlib.suppress(OSError):
                remove_tree(entry, dir_fd=fd)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def _dir_fd(directory: str | int) -> Iterator[int]:
    if isinstance(directory, int):
        yield directory
        return
    fd = os.open(directory, _TRUSTED_DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


# ---- directories opened without following links, and files written through them -------------------


class UnsafePath(Exception):
    """A path below the trusted directory is a symlink, or not the kind of file it should be."""

    def __init__(self, path: str, kind: str | None, wanted: str) -> None:
        if kind == "symlink":
            message = f"{path} is a symlink: initkit never writes through links"
        elif wanted == "directory":
            message = f"cannot create directory {path}: a file is in the way"
        elif kind == "directory":
            message = f"cannot write {path}: it is a directory"
        else:
            message = f"cannot write {path}: not a regular file"
        super().__init__(message)
        self.path = path


def _kind_at(name: str, dir_fd: int) -> str | None:
    """'symlink', 'directory', 'file', 'special', or None when absent."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "special"


@contextlib.contextmanager
def open_dir(root: str, parts: Sequence[str] = (), create: bool = False) -> Iterator[int]:
    """A descriptor for root/parts[0]/parts[1]/..., each part opened without following symlinks.

    `root` itself is trusted (the operator named it) and may be a symlink. With
    `create`, missing directories are made (root included). Raises UnsafePath
    when a part is a symlink or a file, FileNotFoundError when missing and not
    `create`.
    """
    if create:
        make_parents(root)
    fd = os.open(root, _TRUSTED_DIR_FLAGS)
    try:
        owner = os.fstat(fd)
        walked = root
        for part in parts:
            walked = os.path.join(walked, part)
            try:
                child = _open_subdir(part, fd, walked)
            except FileNotFoundError:
                if not create:
                    raise
                child = _make_subdir(part, fd, walked, owner)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def make_parents(path: str) -> None:
    """Make directory `path` and its missing ancestors, each owned like the nearest one that exists.

    That ancestor is usually the root of DEST's volume, which the pod's fsGroup or a
    permissions step gave the app's owner; a directory the kubelet did not make (a
    subPath it mounts only in the app's container; podman makes none) then gets the
    same owner, not root's. Owners are copied only by root: anyone else makes
    directories the kernel's way (its own uid; the group of a setgid parent). Each
    new level is made and opened relative to its parent with O_NOFOLLOW, so a link
    planted where a directory goes is refused (UnsafePath), never followed; the
    nearest existing ancestor is trusted, as DEST's directory always was.
    """
    path = os.path.abspath(path)
    missing: list[str] = []
    head = path
    while not os.path.lexists(head):
        head, part = os.path.split(head)
        missing.append(part)
    fd = os.open(head, _TRUSTED_DIR_FLAGS)  # the operator named it: may be a link
    try:
        owner, walked = os.fstat(fd), head
        for part in reversed(missing):
            walked = os.path.join(walked, part)
            child = _make_subdir(part, fd, walked, owner)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def _make_subdir(part: str, dir_fd: int, shown: str, owner: os.stat_result) -> int:
    """Make (if missing) and open dir_fd/part; a directory this call made gets `owner`'s uid and gid."""
    try:
        os.mkdir(part, 0o777, dir_fd=dir_fd)  # less the umask, as os.makedirs
    except FileExistsError:  # made meanwhile: opened (and checked) below, its owner left alone
        return _open_subdir(part, dir_fd, shown)
    child = _open_subdir(part, dir_fd, shown)
    if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
        os.fchown(child, owner.st_uid, owner.st_gid)
    return child


def _open_subdir(part: str, dir_fd: int, shown: str) -> int:
    try:
        return os.open(part, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        raise UnsafePath(shown, _kind_at(part, dir_fd), "directory") from None


def check_tree(root: str, relative: Sequence[str]) -> None:
    """Refuse (UnsafePath) before anything is written when root/relative could not be
    written safely: a symlink or a file on the way, a directory or a symlink at the end.
    Missing parts are fine (they will be created); other errors (no permission) are
    left for the write to report."""
    try:
        fd = os.open(root, _TRUSTED_DIR_FLAGS)
    except OSError:
        return
    try:
        walked = root
        for depth, part in enumerate(relative):
            walked = os.path.join(walked, part)
            kind = _kind_at(part, fd)
            if kind is None:
                return
            if depth == len(relative) - 1:
                if kind != "file":
                    raise UnsafePath(walked, kind, "file")
                return
            if kind != "directory":
                raise UnsafePath(walked, kind, "directory")
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except UnsafePath:
        raise
    except OSError:
        return
    finally:
        os.close(fd)


def _read_existing(dir_fd: int, name: str, shown: str) -> tuple[int, os.stat_result] | None:
    """An open descriptor of the existing regular file `name`, or None when there is none."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise UnsafePath(shown, "symlink", "file") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePath(shown, "directory" if stat.S_ISDIR(st.st_mode) else "special", "file")
    return fd, st


def _same_content(fd: int, size: int, data: bytes) -> bool:
    if size != len(data):
        return False
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks) == data


def write_atomic(dir_fd: int, name: str, data: bytes, mode: int | None = None, shown: str | None = None) -> bool:
    """Write `data` to the file `name` in the directory `dir_fd` unless it already holds exactly that.

    Returns True when the file was (re)written. An unchanged file keeps its
    mtime; only its mode is corrected (fchmod, never through a link) when
    `mode` differs. A symlink, directory or special file at `name` is refused
    (UnsafePath), never followed nor replaced. On any failure (a full disk, a
    signal) the old file is left as it was and no temp file remains.
    """
    shown = shown or name
    existing = _read_existing(dir_fd, name, shown)
    old_mode = None
    if existing is not None:
        fd, st = existing
        try:
            old_mode = stat.S_IMODE(st.st_mode)
            # A second hard link may be a file outside DEST: give this name a new inode instead of a chmod.
            if _same_content(fd, st.st_size, data) and (st.st_nlink == 1 or mode in (None, old_mode)):
                if mode is not None and old_mode != mode:
                    os.fchmod(fd, mode)
                return False
        finally:
            os.close(fd)
    if mode is None:
        mode = old_mode if old_mode is not None else 0o644
    tmp = temp_name(name)
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
            os.fchmod(out, mode)
            os.fsync(out)
        finally:
            os.close(out)
        # rename replaces a symlink planted at `name` since the check above; it never follows it.
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return True


# ---- one file named by its full path (git-clone's --error-file and --touch-file) --------------------
# Such a file may sit in a volume the app shares, where any directory on its way may be a planted
# link (`vol/sub -> /etc`). Only "/" is trusted: every directory below it is opened with O_NOFOLLOW.


def _split(path: str) -> tuple[list[str], str]:
    """The directories of the absolute form of `path` below "/", and its name."""
    directory, name = os.path.split(os.path.abspath(path))
    return [part for part in directory.split("/") if part], name


def check_dirs(path: str) -> None:
    """Refuse (UnsafePath) a symlink or a file among the directories of `path` that exist already;
    missing ones are fine (the write creates them), other errors are left for the write to report."""
    dirs, _ = _split(path)
    try:
        with open_dir("/", dirs):
            pass
    except OSError:
        return


def write_path(path: str, data: bytes, mode: int | None = None) -> bool:
    """`write_atomic` for `path`, its missing directories created, none of them followed if a link."""
    dirs, name = _split(path)
    with open_dir("/", dirs, create=True) as dir_fd:
        return write_atomic(dir_fd, name, data, mode, shown=path)


def remove_path(path: str) -> bool:
    """Remove the file `path` (a link there is removed itself); False when there was none.
    A link among its directories is refused (UnsafePath), never followed to a file elsewhere."""
    dirs, name = _split(path)
    try:
        with open_dir("/", dirs) as dir_fd:
            os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def touch_path(path: str) -> None:
    """Create the file `path` (and its directories) or update its times; never through a link."""
    dirs, name = _split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    with open_dir("/", dirs, create=True) as dir_fd:
        try:
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise UnsafePath(path, "symlink", "file") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePath(path, "special", "file")
            os.utime(fd)
        finally:
            os.close(fd)


# ---- whole trees -----------------------------------------------------------------------------------
# `shutil.rmtree` recurses once per level (a tree 1,500 levels deep planted at a temp name ends in
# RecursionError) and, on the fd-based path, keeps one open descriptor per level (a deep tree exhausts
# RLIMIT_NOFILE). `remove_tree` walks with a single directory descriptor at a time and a stack of names,
# so its descriptors and Python stack stay flat however deep the tree is; it never follows a symlink,
# and climbing back up through `..` is checked against the (st_dev, st_ino) recorded on the way down,
# so a directory moved meanwhile makes it stop rather than delete elsewhere.

OLD = "old"  # the kind of temp name a replaced tree has between replace_tree's two renames


def replace_tree(tree: str, dest: str) -> None:
    """Put the directory `tree` at `dest` (both in the same, trusted, directory), replacing what is there.

    Two renames: what is at `dest` goes aside to a temp name of kind `old`, then
    `tree` to `dest`, and the directory is fsync'd, so `dest` is always the old
    tree or the new one, never half of either. When a step fails (or a signal
    stops it) the old tree is put back and the error raised; `tree` is left for
    the caller. A run killed between the two renames leaves no `dest`:
    `recover_tree` puts the old one back. The old tree is removed last; what of
    it cannot be removed is left for `sweep`."""
    parent, name = os.path.split(dest)
    tree_parent, tree_name = os.path.split(tree)
    if tree_parent != parent:
        raise ValueError(f"{tree} and {dest} are not in the same directory")
    with _dir_fd(parent or ".") as fd:
        old = None
        try:
            if _kind_at(name, fd) is not None:
                old = temp_name(name, OLD)
                os.rename(name, old, src_dir_fd=fd, dst_dir_fd=fd)
            os.rename(tree_name, name, src_dir_fd=fd, dst_dir_fd=fd)
            fsync_dir(fd)
        except BaseException:
            if old is not None and _kind_at(name, fd) is None:
                os.rename(old, name, src_dir_fd=fd, dst_dir_fd=fd)  # stopped between the renames: put it back
            raise
        if old is not None:
            with contextlib.suppress(OSError):
                remove_tree(old, dir_fd=fd)


def recover_tree(dest: str, accept: Callable[[str], bool]) -> str | None:
    """Put back the tree a run killed between `replace_tree`'s two renames left beside `dest`.

    Only when nothing is at `dest`, and only a directory with a temp name of
    kind `old` for it that `accept(path)` vouches for (a writer's own marker).
    Returns the path it was restored from, or None. Call it before `sweep`,
    which would remove it."""
    parent, name = os.path.split(dest)
    with os.scandir(parent or ".") as entries:
        found = [
            entry.path
            for entry in entries
            if temp_of(entry.name, (name,)) == (name, OLD) and entry.is_dir(follow_symlinks=False)
        ]
    for path in sorted(found):
        if os.path.lexists(dest):
            return None
        if accept(path):
            os.rename(path, dest)
            return path
    return None


def fsync_dir(directory: str | int) -> None:
    """Make renames in `directory` durable; a file system that refuses fsync on a directory is let be."""
    with _dir_fd(directory) as fd, contextlib.suppress(OSError):
        os.fsync(fd)


class TreeChanged(OSError):
    """A directory was replaced or moved while the tree was being removed."""


def remove_tree(path: str, dir_fd: int | None = None) -> None:
    """Remove `path` (relative to `dir_fd` when given) and everything below it, without following links.

    A path that is not a directory (a file, a symlink) is unlinked. Raises
    FileNotFoundError when nothing is there, and OSError on any other failure
    (what could not be removed stays)."""
    top = os.lstat(path, dir_fd=dir_fd)
    if not stat.S_ISDIR(top.st_mode):
        os.unlink(path, dir_fd=dir_fd)
        return
    fd = os.open(path, DIR_FLAGS, dir_fd=dir_fd)
    try:
        _check_same(fd, top, path)
        fd = _empty(fd)
    finally:
        os.close(fd)
    os.rmdir(path, dir_fd=dir_fd)


def _empty(fd: int) -> int:
    """Empty the directory open as `fd`; returns the descriptor of that same directory (the caller closes it).

    Descends one directory at a time: the stack holds the name of each directory
    entered and the identity of its parent, not a descriptor."""
    stack: list[tuple[str, int, int]] = []  # (name in its parent, parent's st_dev, parent's st_ino)
    while True:
        child = _clear_files(fd)
        if child is not None:
            name, expected = child
            sub = os.open(name, DIR_FLAGS, dir_fd=fd)
            try:
                _check_same(sub, expected, name)
            except BaseException:
                os.close(sub)
                raise
            here = os.fstat(fd)
            stack.append((name, here.st_dev, here.st_ino))
            os.close(fd)
            fd = sub
            continue
        if not stack:
            return fd
        name, dev, ino = stack.pop()
        parent = os.open("..", DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = parent
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino):
            raise TreeChanged(f"the directory above {name!r} changed during the removal")
        os.rmdir(name, dir_fd=fd)


def _clear_files(fd: int) -> tuple[str, os.stat_result] | None:
    """Unlink every non-directory in `fd`; the first subdirectory found (name, lstat), or None when empty."""
    while True:
        removed = False
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    return entry.name, entry.stat(follow_symlinks=False)
                with contextlib.suppress(FileNotFoundError):  # gone meanwhile: what was wanted
                    os.unlink(entry.name, dir_fd=fd)
                removed = True
        if not removed:
            return None  # a pass that found nothing: empty (entries unlinked during a scan may hide others)


def _check_same(fd: int, expected: os.stat_result, name: str) -> None:
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
        raise TreeChanged(f"{name!r} was replaced during the removal")
