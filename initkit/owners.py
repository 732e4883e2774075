"""Numeric owners (`UID`, `UID:GID`, `:GID`), as permissions and copy take them.

Numeric only: an image has no passwd entry for the app's user, and a name
resolved here could mean another number in the app's image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MAX_ID = 2**32 - 2  # (uid_t)-1 means "leave unchanged" to chown(2)


class OwnerError(ValueError):
    """Not UID, UID:GID nor :GID."""


@dataclass(frozen=True)
class Owner:
    uid: int | None
    gid: int | None

    def __str__(self) -> str:
        return f"{'' if self.uid is None else self.uid}{'' if self.gid is None else f':{self.gid}'}"

    def chown_args(self, st: os.stat_result) -> tuple[int, int] | None:
        """(uid, gid) for chown, -1 where nothing changes; None when `st` has this owner already."""
        uid = self.uid if self.uid is not None and self.uid != st.st_uid else -1
        gid = self.gid if self.gid is not None and self.gid != st.st_gid else -1
        return None if uid == gid == -1 else (uid, gid)


def parse_owner(text: str) -> Owner:
    user, sep, group = text.partition(":")
    if not user and not group:
        raise OwnerError(f"{text!r} is not UID[:GID] or :GID")
    if sep and not group:
        raise OwnerError(f"{text!r}: give the group as a number too (UID:GID); no passwd entry names a login group")
    uid, gid = (_id(part, text) if part else None for part in (user, group))
    return Owner(uid, gid)


def _id(part: str, text: str) -> int:
    if not part.isdecimal() or not part.isascii():
        raise OwnerError(
            f"{text!r}: give numeric ids such as 1001:1001 (images have no passwd entries to look names up)"
        )
    number = int(part)
    if number > MAX_ID:
        raise OwnerError(f"{text!r}: {number} is not a valid id (0 to {MAX_ID})")
    return number
