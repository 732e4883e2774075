"""File-system helpers for trees a hostile party may have shaped.

`shutil.rmtree` recurses once per level (a tree 1,500 levels deep planted at a
temp name ends in RecursionError) and, on the fd-based path, keeps one open
descriptor per level (a deep tree exhausts RLIMIT_NOFILE). `remove_tree` walks
with a single directory descriptor at a time and a stack of names, so its
descriptors and Python stack stay flat however deep the tree is; it never
follows a symlink, and climbing back up through `..` is checked against the
(st_dev, st_ino) recorded on the way down, so a directory moved meanwhile
makes it stop rather than delete elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
    fd = os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
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
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
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
        parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
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
