"""The copy behind `initkit copy SRC... DEST`: files out of an image volume or a ConfigMap into
a volume the app writes, idempotently, never following a link on either side.

SRC is the operator's (an image mounted read-only, a ConfigMap); DEST is hostile:
the app can write it, plant links, FIFOs, hard links, and rewrite the manifest.

- Walk: each SRC directory is listed, and each entry lstat'ed, relative to its
  directory's descriptor; a subdirectory is opened with O_NOFOLLOW and checked
  to be the inode listed. Links are copied as links (their target as it is,
  never followed, even when it points out of SRC); FIFOs, sockets and devices
  are skipped with a warning. At most `MAX_DEPTH` levels: two descriptors a level.
- DEST: every directory is opened with O_NOFOLLOW relative to its parent's
  descriptor, so a link the app planted is never followed; a file is written
  to a temp name beside it (`fs.temp_name`, O_EXCL|O_NOFOLLOW), given its owner
  and mode by descriptor, fsync'd and renamed over the old one, so it is the
  old file or the new one, never half. Temps a killed run left are swept
  (`fs.sweep`) in each directory before it is written.
- Idempotent: a file whose content is SRC's is not rewritten (its owner and
  mode are corrected by descriptor; one with a second hard link gets a new
  inode instead). The manifest `DEST/.initkit-copy.json` records the SHA-256
  of each file and the target of each link initkit wrote: an entry that
  differs from both SRC and that record was changed by the app, and is kept
  (one warning line) unless `overwrite`.
- Bounded: `max_entries` entries of SRC, `max_size` bytes of its files, the
  run's token checked between entries and between chunks (SIGTERM, --timeout).
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
from typing import Any

from initkit import cancel, fs, log
from initkit.errors import BadInput, JobFailed
from initkit.modes import ModeSpec
from initkit.owners import Owner

MANIFEST = ".initkit-copy.json"
MAX_DEPTH = 128  # levels below SRC: each holds a descriptor on each side
MAX_MANIFEST = 64 << 20  # bytes read of DEST's manifest (the app can write it)
# JSON values the manifest may hold (4 a record): 64 MiB of `[],` is 22 million lists to json.loads, 1.7 GiB
MAX_MANIFEST_RECORDS = 250_000
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO planted there: no hang
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


@dataclass(frozen=True)
class Settings:
    owner: Owner | None = None
    mode: ModeSpec | None = None
    overwrite: bool = False
    max_entries: int = 100_000  # 0: none
    max_size: int = 4 << 30  # 0: none
    umask: int = 0o022


@dataclass
class Counts:
    entries: int = 0
    written: int = 0
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    size: int = 0


class LimitExceeded(JobFailed):
    """SRC holds more than --max-entries entries or --max-size bytes."""


class TimedOut(JobFailed):
    """The run's deadline passed."""


@dataclass(frozen=True)
class _Source:
    """An open SRC entry: its descriptor and the lstat it was listed with."""

    fd: int
    st: os.stat_result


class Copier:
    def __init__(self, dest: str, settings: Settings, token: cancel.Token | None = None) -> None:
        self.dest = dest
        self.settings = settings
        self.counts = Counts()
        self.token = token or cancel.current()
        self._old: dict[str, list[Any]] = {}  # the manifest found: relative path -> ["f", sha256] or ["l", target]
        self._new: dict[str, list[Any]] = {}
        self._seen: dict[str, tuple[int, bool]] = {}  # relative path -> the SRC that gave it, is a directory
        self._sources: list[str] = []
        self._index = 0

    # ---- the run ----------------------------------------------------------------------------------

    def run(self, sources: list[str], dest_fd: int) -> Counts:
        """Copy each SRC (a directory's content, or a file) into DEST, open as dest_fd."""
        self._sources = sources
        self._old = self._read_manifest(dest_fd)
        self._new = dict(self._old)  # no pruning: what SRC no longer holds is left as it is
        fs.sweep(dest_fd, (MANIFEST,))
        for index, source in enumerate(sources):
            self._index = index
            self._copy_source(source, dest_fd)
        data = json.dumps({"version": 1, "entries": self._new}, sort_keys=True, separators=(",", ":")).encode()
        try:
            fs.write_atomic(dest_fd, MANIFEST, data + b"\n", 0o644, shown=self._shown(MANIFEST))
        except fs.UnsafePath as exc:
            raise JobFailed(str(exc)) from None
        except OSError as exc:
            raise JobFailed(f"cannot write {self._shown(MANIFEST)}: {exc.strerror or exc}") from None
        return self.counts

    def _copy_source(self, source: str, dest_fd: int) -> None:
        # SRC itself was named by the operator: followed if it is a link (a ConfigMap's key is one).
        try:
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise JobFailed(f"cannot read {show(source)}: {exc.strerror or exc}") from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                self._copy_dir(source, _Source(fd, st), dest_fd, ())
            elif stat.S_ISREG(st.st_mode):
                name = os.path.basename(os.path.normpath(source))
                fs.sweep(dest_fd, (name,))
                self._entry(source, name, is_dir=False)
                self._file(source, _Source(fd, st), dest_fd, name, (name,))
            else:
                raise JobFailed(f"{show(source)} is neither a directory nor a file")
        finally:
            os.close(fd)

    def _copy_dir(self, source: str, src: _Source, dest_fd: int, rel: tuple[str, ...]) -> None:
        if len(rel) > MAX_DEPTH:
            raise LimitExceeded(f"{show(self._src_path(source, rel))}: deeper than {MAX_DEPTH} levels")
        try:
            names = sorted(os.listdir(src.fd))
        except OSError as exc:
            raise JobFailed(f"cannot read {show(self._src_path(source, rel))}: {exc.strerror or exc}") from None
        fs.sweep(dest_fd, names)
        for name in names:
            if fs.temp_of(name) is not None or (not rel and name == MANIFEST):
                self._skip(source, (*rel, name), "a name initkit keeps for itself")
                continue
            try:
                st = os.lstat(name, dir_fd=src.fd)
            except FileNotFoundError:
                continue
            kind = stat.S_IFMT(st.st_mode)
            self._entry(source, "/".join((*rel, name)), is_dir=kind == stat.S_IFDIR)
            if kind == stat.S_IFLNK:
                self._link(source, src.fd, name, st, dest_fd, (*rel, name))
            elif kind in (stat.S_IFREG, stat.S_IFDIR):
                child = self._open_source(source, src.fd, name, st, (*rel, name))
                if child is None:
                    continue
                try:
                    if kind == stat.S_IFDIR:
                        self._dir(source, child, dest_fd, name, (*rel, name))
                    else:
                        self._file(source, child, dest_fd, name, (*rel, name))
                finally:
                    os.close(child.fd)
            else:
                self._skip(
                    source, (*rel, name), f"{_KINDS.get(kind, 'not a file')} (only files, directories and links)"
                )

    def _entry(self, source: str, rel: str, is_dir: bool) -> None:
        """Count an entry against --max-entries and the deadline; two SRCs may share directories only."""
        self._check()
        counts, limit = self.counts, self.settings.max_entries
        counts.entries += 1
        if limit and counts.entries > limit:
            raise LimitExceeded(f"SRC holds more than {limit} entries (--max-entries); stopped at {show(source)}")
        earlier = self._seen.setdefault(rel, (self._index, is_dir))
        if earlier[0] != self._index and not (is_dir and earlier[1]):
            raise BadInput(
                f"{show(rel)} is in both {show(self._sources[earlier[0]])} and {show(source)}: one SRC per name"
            )

    def _check(self) -> None:
        """SIGTERM (Stopped) or the --timeout passed (exit 1): between two entries, two chunks."""
        self.token.check()
        if self.token.expired():
            raise TimedOut("the --timeout passed; what was copied so far stays, the next run goes on")

    def _open_source(
        self, source: str, dir_fd: int, name: str, listed: os.stat_result, rel: tuple[str, ...]
    ) -> _Source | None:
        flags = _DIR_FLAGS if stat.S_ISDIR(listed.st_mode) else _FILE_FLAGS
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                self._skip(source, rel, "replaced while copying")
                return None
            raise JobFailed(f"cannot read {show(self._src_path(source, rel))}: {exc.strerror or exc}") from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino):
            os.close(fd)
            self._skip(source, rel, "replaced while copying")
            return None
        return _Source(fd, st)

    # ---- one entry of each kind -------------------------------------------------------------------

    def _dir(self, source: str, src: _Source, parent_fd: int, name: str, rel: tuple[str, ...]) -> None:
        key = "/".join(rel)
        try:
            existing = os.lstat(name, dir_fd=parent_fd)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            if not (self.settings.overwrite or self._ours(parent_fd, name, existing, key)):
                self._keep(rel, "the app put something else than a directory there")
                return
            self._remove(parent_fd, name, rel)
            existing = None
        if existing is None:
            try:
                os.mkdir(name, 0o700, dir_fd=parent_fd)
            except FileExistsError:
                pass  # made meanwhile: opened (and checked) below
            except OSError as exc:
                raise self._write_error(rel, exc) from None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise JobFailed(f"{self._shown(key)}: replaced by a link or a file while copying (stopped)") from None
            raise self._write_error(rel, exc) from None
        try:
            self._copy_dir(source, src, fd, rel)
            # Its mode last: one without write permission must not stop its own content.
            self._settle(fd, os.fstat(fd), self._mode(src.st.st_mode, is_dir=True), rel)
        finally:
            os.close(fd)

    def _file(self, source: str, src: _Source, parent_fd: int, name: str, rel: tuple[str, ...]) -> None:
        key = "/".join(rel)
        counts, limit = self.counts, self.settings.max_size
        counts.size += src.st.st_size
        if limit and counts.size > limit:
            raise LimitExceeded(f"{show(source)} holds more than {limit} bytes of files (--max-size); stopped")
        mode = self._mode(src.st.st_mode, is_dir=False)
        try:
            existing = os.lstat(name, dir_fd=parent_fd)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISREG(existing.st_mode):
            same = self._same_file(parent_fd, name, src, mode, rel)
            if same is not None:
                self._new[key] = ["f", same]
                self.counts.unchanged += 1
                return
        if existing is not None and not (self.settings.overwrite or self._ours(parent_fd, name, existing, key)):
            self._keep(rel, "changed since the last copy")
            return
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            self._remove(parent_fd, name, rel)
        digest = self._write(src, parent_fd, name, mode, rel)
        self._new[key] = ["f", digest]
        self.counts.written += 1

    def _link(
        self, source: str, src_dir: int, name: str, st: os.stat_result, parent_fd: int, rel: tuple[str, ...]
    ) -> None:
        key = "/".join(rel)
        try:
            target = os.readlink(name, dir_fd=src_dir)
        except OSError as exc:
            raise JobFailed(f"cannot read {show(self._src_path(source, rel))}: {exc.strerror or exc}") from None
        try:
            existing = os.lstat(name, dir_fd=parent_fd)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISLNK(existing.st_mode) and os.readlink(name, dir_fd=parent_fd) == target:
            self._own_link(parent_fd, name, existing, rel)
            self._new[key] = ["l", target]
            self.counts.unchanged += 1
            return
        if existing is not None and not (self.settings.overwrite or self._ours(parent_fd, name, existing, key)):
            self._keep(rel, "changed since the last copy")
            return
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            self._remove(parent_fd, name, rel)
        tmp = fs.temp_name(name)
        try:
            os.symlink(target, tmp, dir_fd=parent_fd)
            if self.settings.owner is not None:
                os.chown(tmp, *self._ids(), dir_fd=parent_fd, follow_symlinks=False)
            os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)  # replaces a link, never follows it
        except OSError as exc:
            _discard(parent_fd, tmp)
            raise self._write_error(rel, exc) from None
        self._new[key] = ["l", target]
        self.counts.written += 1

    # ---- DEST: compare, write, keep ---------------------------------------------------------------

    def _same_file(self, parent_fd: int, name: str, src: _Source, mode: int, rel: tuple[str, ...]) -> str | None:
        """SRC's digest when DEST's file holds SRC's content (its owner and mode then corrected
        by descriptor), else None. A file with a second hard link is never changed in place."""
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent_fd)
        except OSError:
            return None  # replaced by a link or removed meanwhile: the caller decides on what it listed
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != src.st.st_size:
                return None
            digest = self._digest(src.fd)
            if self._digest(fd) != digest:
                return None
            needs = stat.S_IMODE(st.st_mode) != mode or self._chown_args(st) is not None
            if needs and st.st_nlink > 1:
                return None  # the other name may be a file outside DEST: a new inode instead
            if needs:
                self._settle(fd, st, mode, rel)
            return digest
        finally:
            os.close(fd)

    def _ours(self, parent_fd: int, name: str, existing: os.stat_result, key: str) -> bool:
        """Whether DEST's entry is what initkit wrote last (the manifest's record): SRC changed, not the app."""
        record = self._old.get(key)
        if record is None:
            return False
        if record[0] == "l" and stat.S_ISLNK(existing.st_mode):
            try:
                return os.readlink(name, dir_fd=parent_fd) == record[1]
            except OSError:
                return False
        if record[0] == "f" and stat.S_ISREG(existing.st_mode):
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=parent_fd)
            except OSError:
                return False
            try:
                return stat.S_ISREG(os.fstat(fd).st_mode) and self._digest(fd) == record[1]
            finally:
                os.close(fd)
        return False

    def _write(self, src: _Source, parent_fd: int, name: str, mode: int, rel: tuple[str, ...]) -> str:
        """SRC's content to a temp file beside `name`, renamed over it; returns its SHA-256."""
        tmp = fs.temp_name(name)
        digest = hashlib.sha256()
        try:
            out = os.open(tmp, _NEW_FLAGS, 0o600, dir_fd=parent_fd)
            try:
                os.lseek(src.fd, 0, os.SEEK_SET)
                for chunk in self._chunks(src.fd):
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
                if self.settings.owner is not None:
                    os.fchown(out, *self._ids())
                os.fchmod(out, mode)  # after the chown, which clears setuid bits (none are copied anyway)
                os.fsync(out)
            finally:
                os.close(out)
            os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)  # replaces a link, never follows it
        except OSError as exc:
            _discard(parent_fd, tmp)
            raise self._write_error(rel, exc) from None
        except BaseException:
            _discard(parent_fd, tmp)
            raise
        return digest.hexdigest()

    def _settle(self, fd: int, st: os.stat_result, mode: int, rel: tuple[str, ...]) -> None:
        """Owner and mode of an entry open as fd (never a link)."""
        try:
            chown = self._chown_args(st)
            if chown is not None:
                os.fchown(fd, *chown)
            if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                os.fchmod(fd, mode)
        except OSError as exc:
            raise self._write_error(rel, exc) from None

    def _own_link(self, parent_fd: int, name: str, st: os.stat_result, rel: tuple[str, ...]) -> None:
        chown = self._chown_args(st)
        if chown is not None:
            try:
                os.chown(name, *chown, dir_fd=parent_fd, follow_symlinks=False)
            except OSError as exc:
                raise self._write_error(rel, exc) from None

    def _remove(self, parent_fd: int, name: str, rel: tuple[str, ...]) -> None:
        try:
            fs.remove_tree(name, dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._write_error(rel, exc) from None

    def _keep(self, rel: tuple[str, ...], why: str) -> None:
        shown = self._shown("/".join(rel))
        self.counts.kept.append(shown)
        log.warning(f"kept {shown}: {why} (--overwrite replaces it)")

    def _skip(self, source: str, rel: tuple[str, ...], why: str) -> None:
        shown = show(self._src_path(source, rel))
        self.counts.skipped.append(shown)
        log.warning(f"skipped {shown}: {why}")

    # ---- small helpers ----------------------------------------------------------------------------

    def _chunks(self, fd: int) -> Iterator[bytes]:
        while True:
            self._check()  # SIGTERM or --timeout between two chunks of a large file
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return
            yield chunk

    def _digest(self, fd: int) -> str:
        digest = hashlib.sha256()
        os.lseek(fd, 0, os.SEEK_SET)
        for chunk in self._chunks(fd):
            digest.update(chunk)
        return digest.hexdigest()

    def _mode(self, src_mode: int, is_dir: bool) -> int:
        """SRC's permission bits (never setuid, setgid or sticky), then --mode's spec."""
        mode = stat.S_IMODE(src_mode) & 0o777
        spec = self.settings.mode
        return mode if spec is None else spec.apply(mode, is_dir, self.settings.umask) & 0o777

    def _ids(self) -> tuple[int, int]:
        owner = self.settings.owner
        assert owner is not None
        return (-1 if owner.uid is None else owner.uid, -1 if owner.gid is None else owner.gid)

    def _chown_args(self, st: os.stat_result) -> tuple[int, int] | None:
        return None if self.settings.owner is None else self.settings.owner.chown_args(st)

    def _read_manifest(self, dest_fd: int) -> dict[str, list[Any]]:
        """The manifest a previous run wrote, or {} (then every file that differs from SRC is kept).
        The app can write it: read without following a link, bounded, checked entry by entry."""
        try:
            fd = os.open(MANIFEST, _FILE_FLAGS, dir_fd=dest_fd)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise JobFailed(f"cannot read {self._shown(MANIFEST)}: {exc.strerror or exc}") from None
            return self._bad_manifest("a symlink", dest_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return self._bad_manifest("not a regular file", dest_fd)
            if st.st_size > MAX_MANIFEST:
                return self._bad_manifest("too large")
            data = os.read(fd, MAX_MANIFEST + 1)
        finally:
            os.close(fd)
        if _values_at_most(data) > 4 * max(MAX_MANIFEST_RECORDS, 2 * self.settings.max_entries) + 16:
            return self._bad_manifest("too many entries")
        try:
            entries = json.loads(data)["entries"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return self._bad_manifest("not initkit's JSON")
        if not isinstance(entries, dict):
            return self._bad_manifest("not initkit's JSON")
        return {
            key: value
            for key, value in entries.items()
            if isinstance(value, list) and len(value) == 2 and value[0] in ("f", "l") and isinstance(value[1], str)
        }

    def _bad_manifest(self, why: str, dest_fd: int | None = None) -> dict[str, list[Any]]:
        """No record: every file that differs from SRC is kept. A link, FIFO or directory at the
        manifest's name is removed (never followed), so that the new one can be written."""
        log.warning(f"ignored {self._shown(MANIFEST)} ({why}): files that differ from SRC are kept")
        if dest_fd is not None:
            try:
                fs.remove_tree(MANIFEST, dir_fd=dest_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise JobFailed(f"cannot remove {self._shown(MANIFEST)}: {exc.strerror or exc}") from None
        return {}

    def _shown(self, rel: str) -> str:
        return show(f"{self.dest.rstrip('/')}/{rel}")

    @staticmethod
    def _src_path(source: str, rel: tuple[str, ...]) -> str:
        return os.path.join(source, *rel) if rel else source

    def _write_error(self, rel: tuple[str, ...], exc: OSError) -> JobFailed:
        shown = self._shown("/".join(rel))
        if exc.errno == errno.ENOSPC:
            return JobFailed(f"cannot write {shown}: no space left on DEST's file system")
        if exc.errno == errno.EACCES:
            return JobFailed(
                f"cannot write {shown}: permission denied (run the step as the app's user, or as root "
                "with CAP_DAC_OVERRIDE to write into directories the app owns)"
            )
        if exc.errno == errno.EPERM:
            return JobFailed(f"not permitted to change {shown}: the container needs CAP_CHOWN (and CAP_FOWNER)")
        return JobFailed(f"cannot write {shown}: {exc.strerror or exc}")


def _values_at_most(data: bytes) -> int:
    """More than the JSON values in `data`, counted before any is built: each but the first follows
    a `[`, `,` or `:` (which may be in strings too, so this only over-counts)."""
    return data.count(b"[") + data.count(b",") + data.count(b":") + 1


def _discard(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def show(path: str) -> str:
    """A path on one line: a file name may hold a newline or an escape sequence."""
    return path if path.isprintable() else repr(path)[1:-1]
