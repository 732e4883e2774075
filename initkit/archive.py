"""Safe extraction of tar (plain, gz, xz, bz2) and zip archives into a fresh directory.

An archive is untrusted input: it may hold `../` names, absolute names, links
pointing out of the target, device files, setuid bits. Every such entry makes
the whole extraction fail (UnsafeArchive) instead of being skipped or
rewritten, so a hostile archive never yields half a tree: the caller extracts
into a temp directory and removes it on failure.

tar: Python's `tarfile.data_filter` judges every member (links out, devices,
modes); before it, initkit refuses absolute names, which the filter would
merely strip. zip: zipfile never creates links nor devices, and rewrites
hostile names instead of refusing them; initkit checks every name and the
Unix file type in `external_attr` first, and creates symlinks itself (only
those pointing inside).
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile
from collections.abc import Callable

# Bits a zip entry's mode may keep: no setuid, setgid, sticky, nor group/other write (as data_filter).
_ZIP_MODE_MASK = 0o755


class UnsafeArchive(Exception):
    """An entry would escape the target or is not a plain file, directory or inside link."""


class NotAnArchive(Exception):
    """Neither a tar (plain, gz, xz, bz2) nor a zip archive."""


def extract(archive: str, target: str, strip_components: int = 0) -> int:
    """Extract `archive` into the existing empty directory `target`; returns the number of entries."""
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, target, strip_components)
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 (closed below; the open itself is what may fail)
    except (tarfile.TarError, EOFError, OSError) as exc:
        missing = _missing_codec(archive)
        if missing:
            raise NotAnArchive(f"{missing}, and this Python has none (the image must ship it)") from None
        raise NotAnArchive(f"not a tar (gz, xz, bz2) or zip archive ({type(exc).__name__})") from None
    with tar:
        return _extract_tar(tar, target, strip_components)


_MAGIC = {b"\xfd7zXZ\x00": ("xz", "lzma"), b"BZh": ("bz2", "bz2"), b"\x1f\x8b": ("gzip", "zlib")}


def _missing_codec(archive: str) -> str | None:
    """What ARCHIVE's compression needs when that module is missing (slim Pythons drop lzma and bz2)."""
    import importlib.util

    with open(archive, "rb") as handle:
        head = handle.read(6)
    for magic, (name, module) in _MAGIC.items():
        if head.startswith(magic) and importlib.util.find_spec(module) is None:
            return f"the archive is {name}-compressed: that needs Python's {module} module"
    return None


def _strip(name: str, count: int) -> str | None:
    """NAME without its first `count` components, as tar --strip-components; None when nothing is left."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if len(parts) <= count:
        return None
    return "/".join(parts[count:])


def _check_name(name: str) -> None:
    """Refuse names that are absolute or climb out, rather than rewriting them."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"entry {name!r} has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise UnsafeArchive(f"entry {name!r} climbs out of the target with '..'")


def _tar_filter(strip_components: int) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:  # Python before 3.11.4 / 3.12: no extraction filters at all
        raise UnsafeArchive("this Python has no tarfile.data_filter (3.11.4+ needed); refusing to extract a tar")

    def judge(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        _check_name(member.name)
        if (member.islnk() or member.issym()) and member.linkname.startswith("/"):
            raise UnsafeArchive(f"entry {member.name!r} links to the absolute path {member.linkname!r}")
        name = _strip(member.name, strip_components)
        if name is None:
            return None
        changes: dict[str, str] = {"name": name}
        if member.islnk():
            # A hard link names another member by its archive path: strip it the same way.
            target = _strip(member.linkname, strip_components)
            if target is None:
                raise UnsafeArchive(
                    f"entry {member.name!r} links to {member.linkname!r}, removed by --strip-components"
                )
            changes["linkname"] = target
        try:
            return data_filter(member.replace(**changes, deep=False), dest)
        except tarfile.FilterError as exc:
            raise UnsafeArchive(f"entry {member.name!r} {_filter_reason(exc)}") from None

    return judge


def _filter_reason(exc: tarfile.FilterError) -> str:
    """tarfile's message, which names the member and the destination, as a short reason."""
    reasons = {
        "OutsideDestinationError": "would be written outside the target",
        "LinkOutsideDestinationError": "links outside the target",
        "AbsoluteLinkError": "links to an absolute path",
        "AbsolutePathError": "has an absolute path",
        "SpecialFileError": "is a device, FIFO or other special file",
    }
    return reasons.get(type(exc).__name__, type(exc).__name__)


def _extract_tar(tar: tarfile.TarFile, target: str, strip_components: int) -> int:
    judge = _tar_filter(strip_components)
    count = 0
    try:
        # One pass: the filter judges each member before it is written; a refusal aborts the
        # extraction and the caller removes the temp directory, so nothing of it is kept.
        for member in tar:
            kept = judge(member, target)
            if kept is None:
                continue
            tar.extract(kept, target, set_attrs=not kept.isdir(), filter="fully_trusted")
            count += 1
    except (tarfile.TarError, EOFError) as exc:
        raise NotAnArchive(f"damaged tar archive ({type(exc).__name__}: {exc})") from None
    return count


def _extract_zip(archive: str, target: str, strip_components: int) -> int:
    with zipfile.ZipFile(archive) as zf:
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        # All entries are judged before any is written: zip has its directory up front.
        for info in zf.infolist():
            _check_name(info.filename)
            name = _strip(info.filename, strip_components)
            if name is None:
                continue
            kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0  # 3: Unix
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
                raise UnsafeArchive(f"entry {info.filename!r} is a device, FIFO or other special file")
            if kind == stat.S_IFLNK:
                link = _link_of(zf, info)
                _check_link(info.filename, name, link)
            plan.append((info, name))
        try:
            return _write_zip(zf, plan, target)
        except FileExistsError:
            raise UnsafeArchive("the zip holds the same path twice (or a link and a file at one path)") from None


def _link_of(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    with zf.open(info) as src:
        return src.read(4096).decode("utf-8", errors="replace")


def _write_zip(zf: zipfile.ZipFile, plan: list[tuple[zipfile.ZipInfo, str]], target: str) -> int:
    links: list[tuple[str, str]] = []  # (link text, name)
    for info, name in plan:
        mode = (info.external_attr >> 16) if info.create_system == 3 else 0
        if stat.S_IFMT(mode) == stat.S_IFLNK:
            links.append((_link_of(zf, info), name))
            continue
        path = _inside(target, name)
        if info.is_dir():
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # O_EXCL|O_NOFOLLOW: a duplicate name is refused, never written through.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(1 << 16):
                out.write(chunk)
            os.fchmod(out.fileno(), (stat.S_IMODE(mode) & _ZIP_MODE_MASK) or 0o644)
    # Links last, so no file above was written through one.
    for link, name in links:
        path = _inside(target, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _inside(target, name)  # the directories just made: still no link on the way
        os.symlink(link, path)
    # A link may climb through another link (`m -> .`, then `l -> m/../x`): judge where each really ends.
    root = os.path.realpath(target)
    for _, name in links:
        end = os.path.realpath(os.path.join(target, *name.split("/")))
        if end != root and not end.startswith(root + os.sep):
            raise UnsafeArchive(f"entry {name!r} links outside the target")
    return len(plan)


def _inside(target: str, name: str) -> str:
    """target/name, refused when an existing directory on the way is a link (a link entry made earlier)."""
    parts = name.split("/")
    path = os.path.join(target, *parts)
    parent = os.path.dirname(path)
    if os.path.lexists(parent) and os.path.realpath(parent) != os.path.join(os.path.realpath(target), *parts[:-1]):
        raise UnsafeArchive(f"entry {name!r} would be written through a link")
    return path


def _check_link(entry: str, name: str, link: str) -> None:
    if link.startswith("/"):
        raise UnsafeArchive(f"entry {entry!r} links to the absolute path {link!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchive(f"entry {entry!r} links outside the target")
