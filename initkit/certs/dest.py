"""DEST's files: read without following links, written atomically, and told apart by owner.

The ledger, `.initkit-certs.json` in DEST, lists for every file initkit wrote
there the SHA-256 of its content. A file at one of initkit's names whose content
the ledger does not list was put there by someone else (a Secret mounted with
subPath, a file the operator copied in): initkit never writes over it. Before
a file is replaced, the ledger is written listing both its old and its new
content, so a run killed half-way leaves files that are still known as
initkit's; after the writes it lists only the new content.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from initkit import fs
from initkit.certs.pem import MAX_INPUT, TooBig, read_bounded
from initkit.errors import BadInput

LEDGER = ".initkit-certs.json"
_LEDGER_MAX = 64 << 10
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Owner:
    uid: int | None
    gid: int | None


@dataclass
class Dest:
    """A directory (DEST, or the CA's store) open by descriptor: reads and writes go through it."""

    path: str
    fd: int
    owner: Owner | None = None
    ledger: dict[str, list[str]] = field(default_factory=dict)

    def shown(self, name: str) -> str:
        return os.path.join(self.path, name)

    def read(self, name: str, limit: int = MAX_INPUT) -> bytes | None:
        """The content of the regular file `name`, or None when absent; a link there is refused."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BadInput(
                    f"{self.shown(name)} is a symlink: initkit never reads or writes through links"
                ) from None
            raise BadInput(f"cannot read {self.shown(name)}: {exc.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BadInput(f"{self.shown(name)} is not a regular file")
            return read_bounded(fd, self.shown(name), limit)
        finally:
            os.close(fd)

    # ---- the ledger ----

    def load_ledger(self) -> None:
        try:
            data = self.read(LEDGER, _LEDGER_MAX)
        except TooBig:
            return  # as unreadable: nothing counts as initkit's
        if data is None:
            return
        try:
            found = json.loads(data)
            files = found["files"]
            self.ledger = {
                str(name): [str(h) for h in hashes] for name, hashes in files.items() if isinstance(hashes, list)
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            # Unreadable: nothing counts as initkit's, so nothing is overwritten (the safe side).
            self.ledger = {}

    def is_ours(self, name: str, data: bytes) -> bool:
        return digest(data) in self.ledger.get(name, [])

    def _save_ledger(self) -> None:
        text = json.dumps({"initkit-certs": 1, "files": dict(sorted(self.ledger.items()))}, indent=1) + "\n"
        self._write(LEDGER, text.encode(), 0o644)

    # ---- writing ----

    def write_all(self, files: dict[str, tuple[bytes, int]], current: dict[str, bytes | None]) -> list[str]:
        """Write each `name: (data, mode)` whose content differs from `current[name]`; returns the names written.

        The ledger first lists old and new content, then the files are written, then it lists the new only."""
        changed = {name: spec for name, spec in files.items() if current.get(name) != spec[0]}
        final = {name: [digest(data)] for name, (data, _mode) in files.items()}
        start = dict(self.ledger)
        for name in changed:
            before = current.get(name)
            self.ledger[name] = final[name] + ([digest(before)] if before is not None else [])
        if changed:
            self._save_ledger()
        for name, (data, mode) in files.items():
            if name in changed:
                self._write(name, data, mode)
            else:
                self._settle(name, mode)
        self.ledger.update(final)
        if self.ledger != start:
            self._save_ledger()
        else:
            self._settle(LEDGER, 0o644)
        return list(changed)

    def create(self, name: str, data: bytes, mode: int) -> None:
        """Write a file that must not exist yet (the CA initkit creates, never replaced); --owner is not
        applied: the app needs the CA's certificate (ca.crt in DEST), never its key."""
        self._write(name, data, mode, chown=False)

    def _write(self, name: str, data: bytes, mode: int, chown: bool = True) -> None:
        try:
            fs.write_atomic(self.fd, name, data, mode, shown=self.shown(name))
        except fs.UnsafePath as exc:
            raise BadInput(str(exc)) from None
        if chown:
            self._chown(name)

    def _settle(self, name: str, mode: int) -> None:
        """An unchanged file: its mode and owner corrected when they differ, nothing else touched."""
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(name, dir_fd=self.fd)
            if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
                fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
                try:
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
            self._chown(name)

    def _chown(self, name: str) -> None:
        if self.owner is None:
            return
        st = os.lstat(name, dir_fd=self.fd)
        uid = -1 if self.owner.uid in (None, st.st_uid) else self.owner.uid
        gid = -1 if self.owner.gid in (None, st.st_gid) else self.owner.gid
        if (uid, gid) != (-1, -1):
            os.chown(name, uid, gid, dir_fd=self.fd, follow_symlinks=False)  # type: ignore[arg-type]


@contextlib.contextmanager
def opened(path: str, owner: Owner | None = None) -> Iterator[Dest]:
    """DEST (trusted: the operator named it; created when missing), with its ledger loaded
    and the temp files of a killed run swept."""
    try:
        os.makedirs(path, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BadInput(f"cannot open directory {path}: {exc.strerror}") from None
    try:
        fs.sweep(fd)
        dest = Dest(path, fd, owner)
        dest.load_ledger()
        yield dest
    finally:
        os.close(fd)
