"""The mount points below a directory, from the kernel's mount table (`/proc/self/mountinfo`).

`st_dev` tells another file system apart, but not a bind mount of the same one: an emptyDir
or a hostPath volume shares the node's disk with what is mounted inside it. The table names
every mount point; each is then reached from the walked directory's descriptor one component
at a time without following a link, and known by the (st_dev, st_ino) of the mount's root,
which is what an entry of the walk shows when it is that mount point.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(rb"\\([0-7]{3})")  # the kernel escapes space, tab, newline and backslash so
_LOOKUP = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def unescape(field: bytes) -> bytes:
    r"""A mountinfo field as the path it names: `\040` is a space, `\134` a backslash."""
    return _OCTAL.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field)


def mount_points(table: bytes) -> list[bytes]:
    """The mount point (the fifth field) of every line of a mountinfo table."""
    points = []
    for line in table.split(b"\n"):  # not splitlines: the kernel leaves a \r in a name as it is
        fields = line.split(b" ")
        if len(fields) > 4:
            points.append(unescape(fields[4]))
    return points


def roots_below(top_fd: int) -> frozenset[tuple[int, int]]:
    """(st_dev, st_ino) of the root of every mount strictly below the directory open as top_fd.

    Raises OSError when the mount table cannot be read (no /proc).
    """
    table = Path(MOUNTINFO).read_bytes()
    # The kernel's own name for the directory, in the namespace the table uses: no realpath race.
    top = os.fsencode(os.readlink(f"/proc/self/fd/{top_fd}"))
    prefix = top if top.endswith(b"/") else top + b"/"
    roots = set()
    for point in mount_points(table):
        if point.startswith(prefix) and len(point) > len(prefix):
            found = _reach(top_fd, point[len(prefix) :].split(b"/"))
            if found is not None:
                roots.add(found)
    return frozenset(roots)


def _reach(top_fd: int, names: list[bytes]) -> tuple[int, int] | None:
    """Open each component below top_fd with O_NOFOLLOW: a link planted in the way leads nowhere.

    The last lookup crosses into the mount, as every lookup does, so fstat shows its root.
    """
    fd = top_fd
    try:
        for name in names:
            if not name:
                continue
            child = os.open(name, _LOOKUP, dir_fd=fd)
            if fd != top_fd:
                os.close(fd)
            fd = child
        st = os.fstat(fd)
    except OSError:  # gone, covered by a later mount, or behind a link: not where the walk goes
        return None
    finally:
        if fd != top_fd:
            os.close(fd)
    return st.st_dev, st.st_ino
