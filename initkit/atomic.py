"""Atomic, change-only file writes.

The temp file lives beside the destination (same directory, same file
system, so the rename is atomic), never in /tmp: images run with a read-only
root file system and only the destination volume is writable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def write_if_changed(path: str, data: bytes, mode: int | None = None) -> bool:
    """Write `data` to `path` unless it already holds exactly that.

    Returns True when the file was (re)written. An unchanged file keeps its
    mtime; only its mode is corrected when `mode` differs. On any failure
    (a full disk, a signal) the old file is left as it was and no temp file
    remains.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and st.st_size == len(data):
        with open(path, "rb") as existing:
            if existing.read() == data:
                if mode is not None and (st.st_mode & 0o7777) != mode:
                    os.chmod(path, mode)
                return False
    if mode is None:
        mode = (st.st_mode & 0o7777) if st is not None else 0o644
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".initkit-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True
