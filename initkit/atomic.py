"""Atomic, change-only file writes that never follow a symlink below a trusted directory.

The temp file lives beside the destination (same directory, same file
system, so the rename is atomic), never in /tmp: images run with a read-only
root file system and only the destination volume is writable.

DEST is often a volume the app container can write too, so anything below the
directory the operator named may have been planted: `etc -> /`, or
`app.conf -> /etc/shadow`. Every step below that directory works on file
descriptors (openat with O_NOFOLLOW, renameat, fchmod), so a symlink is
refused where it is found, even one swapped in while initkit runs, instead of
being followed out of DEST.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO planted where a file goes must not hang.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


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
        os.makedirs(root, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walked = root
        for part in parts:
            walked = os.path.join(walked, part)
            try:
                child = _open_subdir(part, fd, walked)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile: opened (and checked) below
                    os.mkdir(part, 0o777, dir_fd=fd)  # less the umask, as os.makedirs
                child = _open_subdir(part, fd, walked)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_subdir(part: str, dir_fd: int, shown: str) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
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
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
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
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
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


def write_at(dir_fd: int, name: str, data: bytes, mode: int | None = None, shown: str | None = None) -> bool:
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
    tmp = f".{name}.{secrets.token_hex(4)}.initkit-tmp"
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


def write_if_changed(path: str, data: bytes, mode: int | None = None) -> bool:
    """`write_at` for a path whose directory is trusted; only its last component is never followed."""
    directory, name = os.path.split(path)
    with open_dir(directory or ".") as dir_fd:
        return write_at(dir_fd, name, data, mode, shown=path)


# ---- one file named by its full path (git-clone's --error-file and --touch-file) ----------------
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
    """`write_at` for `path`, its missing directories created, none of them followed if a link."""
    dirs, name = _split(path)
    with open_dir("/", dirs, create=True) as dir_fd:
        return write_at(dir_fd, name, data, mode, shown=path)


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
