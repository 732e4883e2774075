"""Safe extraction of tar (plain, gz, xz, bz2) and zip archives into a fresh directory.

An archive is untrusted input: it may hold `../` names, absolute names, links
pointing out of the target (directly, or through a chain of links long enough
to defeat `os.path.realpath`, as in CVE-2025-4517), device files, setuid bits,
and more bytes or entries than any volume holds. Every such entry makes the
whole extraction fail instead of being skipped or rewritten, so a hostile
archive never yields half a tree: the caller extracts into a temp directory
and removes it on failure.

initkit judges every entry itself, whatever the Python version (3.11.0 to
3.11.12 have a bypassable `tarfile.data_filter`, Debian 12's 3.11.2 none at
all), and writes entries itself; `tarfile.extract` and `zipfile.extract` are
never called:

- names: no absolute path, no `..` component, at most PATH_MAX bytes;
- types: regular files, directories, symlinks and hard links only;
- modes: no setuid, setgid, sticky, nor group/other write; owner read-write;
  owned by the running user (never the archive's uid);
- links: every entry's path and every link's target is resolved against a
  model of the tree built from the entries so far (`_Tree`), with at most
  MAX_HOPS links followed and never the file system; a link that ends outside
  the target, or takes too many hops, is refused, and after the last entry
  every symlink is resolved again (a later entry may have changed the way);
- writes: each directory on the way is opened with O_NOFOLLOW relative to its
  parent's descriptor, files are created with O_EXCL|O_NOFOLLOW, links with
  symlinkat/linkat: the file system is made to match the model, never trusted;
- bounds (`Limits`): bytes actually written, entries, and a deadline checked
  between chunks; the decompressed stream is read in bounded pieces.

Only the standard library is imported, so any Python 3.11 can run it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

MAX_HOPS = 40  # links followed resolving one path, as the Linux kernel's MAXSYMLINKS
MAX_NAME = 4096  # bytes in an entry's name or a link's target (PATH_MAX): nothing longer can be opened whole
MAX_HEADER_READ = 1 << 20  # one read tarfile asks for beyond this is a hostile long-name or pax header
HEADER_ALLOWANCE = 8192  # decompressed bytes per entry allowed beyond file data (headers, long names, padding)
CHUNK = 1 << 16
_MODE_MASK = 0o755  # no setuid, setgid, sticky, nor group/other write (as tarfile's data filter)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR, _FILE, _LINK = "dir", "file", "link"


class UnsafeArchive(Exception):
    """An entry would escape the target or is not a plain file, directory or inside link."""


class NotAnArchive(Exception):
    """Neither a tar (plain, gz, xz, bz2) nor a zip archive, or a damaged or unreadable one."""


class LimitExceeded(Exception):
    """The archive holds more than a bound of Limits allows; `limit` names it ("bytes" or "entries")."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class TimedOut(Exception):
    """The deadline passed during the extraction."""


@dataclass
class Limits:
    max_bytes: int | None = None  # bytes written to files, all entries together
    max_entries: int | None = None  # entries of any kind, skipped ones (--strip-components) included
    deadline: float | None = None  # time.monotonic()

    def check_time(self) -> None:
        from initkit import cancel

        cancel.current().check()  # SIGTERM: Stopped, between two chunks
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TimedOut("the deadline passed during the extraction")


def extract(archive: str, target: str, strip_components: int = 0, limits: Limits | None = None) -> int:
    """Extract `archive` into the existing empty directory `target`; returns the number of entries written.

    Raises UnsafeArchive, NotAnArchive, LimitExceeded, TimedOut, or OSError when writing fails."""
    limits = limits or Limits()
    root = os.open(target, _DIR_FLAGS)
    try:
        tree = _Tree(root, limits)
        if zipfile.is_zipfile(archive):
            tree.kind = "zip"
            _extract_zip(archive, tree, strip_components)
        else:
            _extract_tar(archive, tree, strip_components)
        tree.check_links()
        return tree.written
    finally:
        os.close(root)


# ---- names ----------------------------------------------------------------------------------------------


def shown(name: str) -> str:
    """An entry's name for a message: quoted, control characters escaped, at most 200 characters."""
    text = repr(name)
    return text if len(text) <= 200 else text[:200] + "..."


def _check_name(name: str) -> None:
    """Refuse names that are absolute, climb out, or are longer than any path can be, rather than rewrite them."""
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise UnsafeArchive(f"entry {shown(name)} has a name longer than {MAX_NAME} bytes")
    if "\0" in name:
        raise UnsafeArchive(f"entry {shown(name)} has a NUL byte in its name")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"entry {shown(name)} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchive(f"entry {shown(name)} climbs out of the target with '..'")


def _strip(name: str, count: int) -> list[str] | None:
    """NAME's components without the first `count`, as tar --strip-components; None when nothing is left."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if len(parts) <= count:
        return None
    return parts[count:]


# ---- the model of the tree, and the writes that follow it ---------------------------------------------


class _Source(Protocol):
    def read(self, size: int) -> bytes: ...


@dataclass
class _Tree:
    """The target as the entries so far made it: every path that exists, and what each link says.

    Paths are tuples of components below the target. Nothing on disk is
    consulted to resolve a path; the disk is written to match this model."""

    root: int  # descriptor of the target directory
    limits: Limits
    kind: str = "tar"  # for messages: "tar" or "zip"
    nodes: dict[tuple[str, ...], str] = field(default_factory=lambda: {(): _DIR})
    links: dict[tuple[str, ...], str] = field(default_factory=dict)  # symlink path -> its target text
    entries: int = 0  # seen, skipped ones included
    written: int = 0  # entries written
    size: int = 0  # bytes written to files

    def count(self) -> None:
        self.entries += 1
        if self.limits.max_entries is not None and self.entries > self.limits.max_entries:
            raise LimitExceeded(f"more than {self.limits.max_entries} entries", "entries")
        self.limits.check_time()

    def claim(self, size: int) -> None:
        """Refuse before writing when an entry's announced size alone passes the bound."""
        limit = self.limits.max_bytes
        if limit is not None and self.size + size > limit:
            raise LimitExceeded(f"more than {limit} bytes of files", "bytes")

    def resolve(self, parts: tuple[str, ...] | list[str], entry: str, follow_last: bool) -> tuple[str, ...]:
        """Where `parts` (from the target) really leads, links followed; refused when it leaves the target."""
        done: list[str] = []
        todo = list(reversed(parts))
        hops = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise UnsafeArchive(f"entry {shown(entry)} leads outside the target")
                done.pop()
                continue
            here = (*done, part)
            kind = self.nodes.get(here)
            if kind == _LINK and (todo or follow_last):
                hops += 1
                if hops > MAX_HOPS:
                    raise UnsafeArchive(f"entry {shown(entry)} goes through more than {MAX_HOPS} links")
                todo.extend(reversed(self.links[here].split("/")))  # relative to `done`, the link's directory
                continue
            if kind == _FILE and todo:
                raise UnsafeArchive(f"entry {shown(entry)} goes through a file as if it were a directory")
            done.append(part)
        return tuple(done)

    def place(self, parts: list[str], entry: str) -> tuple[tuple[str, ...], int]:
        """(path, descriptor of its directory) for a new entry named `parts`; the caller closes the descriptor.

        The directories on the way are resolved in the model, made when missing, and opened without
        following links; a path that is already there is refused (unless both are directories)."""
        parent = self.resolve(parts[:-1], entry, follow_last=True)
        path = (*parent, parts[-1])
        return path, self._open_dir(parent)

    def _open_dir(self, parent: tuple[str, ...]) -> int:
        fd = os.dup(self.root)
        try:
            for depth, part in enumerate(parent, 1):
                if self.nodes.get(parent[:depth]) is None:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    self.nodes[parent[:depth]] = _DIR
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = sub
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _claim_path(self, path: tuple[str, ...], kind: str, entry: str) -> bool:
        """False when `path` is a directory already and `kind` one too (tar lists directories again)."""
        existing = self.nodes.get(path)
        if existing is None:
            self.nodes[path] = kind
            return True
        if existing == _DIR and kind == _DIR:
            return False
        raise UnsafeArchive(f"entry {shown(entry)}: the archive holds this path twice (or a link and a file at it)")

    def add_dir(self, parts: list[str], entry: str) -> None:
        path, fd = self.place(parts, entry)
        try:
            if self._claim_path(path, _DIR, entry):
                os.mkdir(path[-1], 0o755, dir_fd=fd)
                self.written += 1
        finally:
            os.close(fd)

    def add_file(self, parts: list[str], entry: str, mode: int, source: _Source, mtime: float | None = None) -> None:
        path, fd = self.place(parts, entry)
        try:
            self._claim_path(path, _FILE, entry)
            out = os.open(path[-1], _FILE_FLAGS, 0o600, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            self._copy(source, out, entry)
            os.fchmod(out, _file_mode(mode))
            if mtime is not None:
                with contextlib.suppress(OverflowError, ValueError, OSError):
                    os.utime(out, (mtime, mtime))
        finally:
            os.close(out)
        self.written += 1

    def _copy(self, source: _Source, out: int, entry: str) -> None:
        limit = self.limits.max_bytes
        while True:
            self.limits.check_time()
            chunk = _read(source, CHUNK, self.kind)
            if not chunk:
                return
            self.size += len(chunk)
            if limit is not None and self.size > limit:
                raise LimitExceeded(f"more than {limit} bytes of files", "bytes")
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]

    def add_symlink(self, parts: list[str], entry: str, text: str) -> None:
        if not text:
            raise UnsafeArchive(f"entry {shown(entry)} is a link to nothing")
        if len(text.encode("utf-8", "surrogateescape")) >= MAX_NAME or "\0" in text:
            raise UnsafeArchive(f"entry {shown(entry)} has a link target longer than any path")
        if text.startswith("/"):
            raise UnsafeArchive(f"entry {shown(entry)} links to the absolute path {shown(text)}")
        path, fd = self.place(parts, entry)
        try:
            self._claim_path(path, _LINK, entry)
            self.links[path] = text
            self.resolve(path, entry, follow_last=True)  # where it leads now: inside, in few hops
            os.symlink(text, path[-1], dir_fd=fd)
        finally:
            os.close(fd)
        self.written += 1

    def add_hardlink(self, parts: list[str], entry: str, target: list[str]) -> None:
        """A hard link names an earlier regular file by its path in the archive."""
        source = self.resolve(target, entry, follow_last=False)
        if self.nodes.get(source) != _FILE:
            # Not a link to a symlink either: the copy would be read from its new directory.
            raise UnsafeArchive(f"entry {shown(entry)} is a hard link to something not an earlier regular file")
        path, fd = self.place(parts, entry)
        try:
            self._claim_path(path, _FILE, entry)
            src_fd = self._open_dir(source[:-1])
            try:
                os.link(source[-1], path[-1], src_dir_fd=src_fd, dst_dir_fd=fd, follow_symlinks=False)
            finally:
                os.close(src_fd)
        finally:
            os.close(fd)
        self.written += 1

    def check_links(self) -> None:
        """Every symlink, resolved in the finished tree: a later entry may have changed where one leads."""
        for path in self.links:
            self.resolve(path, "/".join(path), follow_last=True)


def _file_mode(mode: int) -> int:
    """Permission bits kept for a file: owner read-write, no special bits, execute only if the owner's is set."""
    mode = (mode & _MODE_MASK) | 0o600
    if not mode & 0o100:
        mode &= ~0o111
    return mode


_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    OSError,  # gzip's BadGzipFile, bz2's "Invalid data stream": reading, never writing
    ValueError,
    NotImplementedError,
    RuntimeError,  # zipfile: an encrypted entry
)


def _read_errors() -> tuple[type[BaseException], ...]:
    extra: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        import zlib

        extra.append(zlib.error)
    with contextlib.suppress(ImportError):
        import lzma

        extra.append(lzma.LZMAError)
    return (*_READ_ERRORS, *extra)


def _damaged(kind: str, exc: BaseException) -> NotAnArchive:
    reason = "".join(c if c.isprintable() else "?" for c in str(exc))[:200]
    return NotAnArchive(f"damaged {kind} archive ({type(exc).__name__}{': ' + reason if reason else ''})")


def _read(source: _Source, size: int, kind: str) -> bytes:
    try:
        return source.read(size)
    except (UnsafeArchive, LimitExceeded, TimedOut):
        raise
    except _read_errors() as exc:
        raise _damaged(kind, exc) from None


# ---- tar ------------------------------------------------------------------------------------------------

_MAGIC = {b"\xfd7zXZ\x00": ("xz", "lzma"), b"BZh": ("bz2", "bz2"), b"\x1f\x8b": ("gzip", "gzip")}


class _Bounded:
    """The decompressed tar stream as tarfile reads it: forward only, within the deadline and a byte bound.

    tarfile reads a GNU long name or a pax header whole, in one read: a single
    read larger than MAX_HEADER_READ is refused, so a hostile header cannot
    take memory; skipping an entry's data reads through it here, counted."""

    def __init__(self, raw: IO[bytes], limits: Limits, cap: int | None) -> None:
        self.raw = raw
        self.limits = limits
        self.cap = cap
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_HEADER_READ:
            raise UnsafeArchive("a tar header asks for more than 1 MiB (a hostile long name or pax header)")
        self.limits.check_time()
        data = self.raw.read(size)
        self.pos += len(data)
        if self.cap is not None and self.pos > self.cap:
            raise LimitExceeded(f"more than {self.cap} bytes once decompressed", "bytes")
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self.pos
        elif whence != os.SEEK_SET:
            raise OSError("tar stream: only forward seeks")
        if offset < self.pos:
            raise tarfile.ReadError("the tar needs to be read backwards")
        while self.pos < offset:
            if not self.read(min(CHUNK, offset - self.pos)):
                break  # past the end: tarfile notices at its next read
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def _open_stream(handle: IO[bytes]) -> IO[bytes]:
    """The decompressed stream of a tar, by its magic bytes (as tarfile's r:* would pick)."""
    head = handle.read(6)
    handle.seek(0)
    for magic, (name, module) in _MAGIC.items():
        if not head.startswith(magic):
            continue
        try:
            if module == "lzma":
                import lzma

                return lzma.LZMAFile(handle)  # type: ignore[return-value]
            if module == "bz2":
                import bz2

                return bz2.BZ2File(handle)  # type: ignore[return-value]
            import gzip

            return gzip.GzipFile(fileobj=handle)  # type: ignore[return-value]
        except ImportError:
            raise NotAnArchive(
                f"the archive is {name}-compressed: that needs Python's {module} module, "
                "and this Python has none (the image must ship it)"
            ) from None
    return handle


def _extract_tar(archive: str, tree: _Tree, strip_components: int) -> None:
    limits = tree.limits
    cap = None
    if limits.max_bytes is not None and limits.max_entries is not None:
        cap = limits.max_bytes + HEADER_ALLOWANCE * (limits.max_entries + 2)
    with open(archive, "rb") as handle:
        stream = _Bounded(_open_stream(handle), limits, cap)
        try:
            tar = tarfile.open(fileobj=stream, mode="r:")  # type: ignore[call-overload]  # noqa: SIM115
        except (UnsafeArchive, LimitExceeded, TimedOut):
            raise
        except _read_errors() as exc:
            raise NotAnArchive(f"not a tar (gz, xz, bz2) or zip archive ({type(exc).__name__})") from None
        with tar:
            for member in _members(tar):
                tree.count()
                _tar_member(tar, member, tree, strip_components)


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Each member in turn; tarfile's own list of them is emptied as it goes (memory stays flat)."""
    while True:
        try:
            member = tar.next()
        except (UnsafeArchive, LimitExceeded, TimedOut):
            raise
        except _read_errors() as exc:
            raise _damaged("tar", exc) from None
        if member is None:
            return
        tar.members.clear()
        yield member


def _tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, tree: _Tree, strip_components: int) -> None:
    _check_name(member.name)
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchive(f"entry {shown(member.name)} is a device, FIFO or other special file")
    parts = _strip(member.name, strip_components)
    if member.islnk():
        _check_name(member.linkname)
    if parts is None:
        return
    if member.isdir():
        tree.add_dir(parts, member.name)
    elif member.issym():
        tree.add_symlink(parts, member.name, member.linkname)
    elif member.islnk():
        # A hard link names another member by its archive path: stripped the same way.
        target = _strip(member.linkname, strip_components)
        if target is None:
            raise UnsafeArchive(
                f"entry {shown(member.name)} links to {shown(member.linkname)}, removed by --strip-components"
            )
        tree.add_hardlink(parts, member.name, target)
    else:
        tree.claim(member.size)
        source = tar.extractfile(member)
        if source is None:  # not for a regular file, but tarfile's signature allows it
            raise UnsafeArchive(f"entry {shown(member.name)} has no data")
        with source:
            tree.add_file(parts, member.name, member.mode, source, member.mtime)


# ---- zip ------------------------------------------------------------------------------------------------

_ZIP_METHODS = {
    zipfile.ZIP_STORED: None,
    zipfile.ZIP_DEFLATED: "zlib",
    zipfile.ZIP_BZIP2: "bz2",
    zipfile.ZIP_LZMA: "lzma",
}


def _extract_zip(archive: str, tree: _Tree, strip_components: int) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except _read_errors() as exc:
        raise _damaged("zip", exc) from None
    with zf:
        infos = zf.infolist()
        if tree.limits.max_entries is not None and len(infos) > tree.limits.max_entries:
            raise LimitExceeded(f"more than {tree.limits.max_entries} entries", "entries")
        # The whole directory is judged before anything is written: zip has it up front.
        total = 0
        for info in infos:
            _check_zip_entry(info)
            total += info.file_size
        tree.claim(total)
        for info in infos:
            tree.count()
            _zip_entry(zf, info, tree, strip_components)


def _check_zip_entry(info: zipfile.ZipInfo) -> None:
    _check_name(info.filename)
    kind = _zip_kind(info)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
        raise UnsafeArchive(f"entry {shown(info.filename)} is a device, FIFO or other special file")
    if info.flag_bits & 0x1:
        raise NotAnArchive(f"zip entry {shown(info.filename)} is encrypted (initkit reads no passwords)")
    if info.compress_type not in _ZIP_METHODS:
        raise NotAnArchive(
            f"zip entry {shown(info.filename)} uses compression method {info.compress_type}, which initkit cannot read"
        )
    module = _ZIP_METHODS[info.compress_type]
    if module is not None:
        import importlib.util

        if importlib.util.find_spec(module) is None:
            raise NotAnArchive(
                f"zip entry {shown(info.filename)} needs Python's {module} module, and this Python has none"
            )


def _zip_kind(info: zipfile.ZipInfo) -> int:
    """The Unix file type of a zip entry (0 when the zip was not made on Unix)."""
    return stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0


def _zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, tree: _Tree, strip_components: int) -> None:
    parts = _strip(info.filename, strip_components)
    if parts is None:
        return
    kind = _zip_kind(info)
    if info.is_dir() or kind == stat.S_IFDIR:
        tree.add_dir(parts, info.filename)
        return
    try:
        source = zf.open(info)
    except _read_errors() as exc:
        raise _damaged("zip", exc) from None
    with source:
        if kind == stat.S_IFLNK:
            text = _read(source, MAX_NAME + 1, "zip").decode("utf-8", "surrogateescape")
            tree.add_symlink(parts, info.filename, text)
        else:
            mode = stat.S_IMODE(info.external_attr >> 16) if kind else 0o644
            tree.add_file(parts, info.filename, mode, source)
