"""`initkit fetch URL DEST --sha256 HEX`: a verified download, optionally extracted.

Replaces: wget -O- URL | tar xz -C /plugins
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from initkit import fs, log, options, urls
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.params import Octal, option

if TYPE_CHECKING:  # archive (tarfile, zipfile) loads only when there is something to extract
    from initkit.archive import Limits

MARKER = ".initkit-fetch.json"  # inside an extracted DEST: the archive's digest, written before DEST appears
PROGRESS_EVERY = 10.0
STALL_TIMEOUT = 30.0  # no byte for this long: the attempt failed (retried); --timeout bounds the whole
_HEX = re.compile(r"[0-9a-f]{64}")
_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_UNITS.update({"kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12})
_SIZE = re.compile(r"([0-9]{1,16})\s*([A-Za-z]*)")


class Size(click.ParamType):
    """A byte count: digits with an optional unit (B, KiB, MiB, GiB, TiB, or kB, MB, GB, TB); 0: no limit."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        match = _SIZE.fullmatch(str(value).strip())
        if not match or match.group(2) not in _UNITS:
            self.fail(f"{str(value)[:20]!r} is not a size such as 512MiB or 1GiB", param, ctx)
        return int(match.group(1)) * _UNITS[match.group(2)]


class _TooBig(Exception):
    """The download passed --max-size: not retried (raised from the write callback, so not an OSError)."""


class _WriteFailed(Exception):
    """Writing the download failed locally (a full volume): not retried, unlike a network error."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(exc.strerror)
        self.errno = exc.errno
        self.strerror = exc.strerror


@click.command("fetch", epilog=EXIT_CODES_HELP)
@click.argument("url", envvar="INITKIT_FETCH_URL")
@click.argument("dest", envvar="INITKIT_FETCH_DEST", type=click.Path())
@option("--sha256", "sha256", required=True, metavar="HEX", help="Expected SHA-256 of the download (64 hex digits).")
@option("--extract", is_flag=True, help="DEST is a directory: extract the tar (gz, xz, bz2) or zip archive into it.")
@option(
    "--strip-components",
    type=click.IntRange(min=0, max=100),
    default=0,
    help="With --extract: drop this many leading path components of every entry (as tar's).",
)
@option("--mode", type=Octal(), default="0644", help="Mode of DEST (without --extract), e.g. 0755 for a binary.")
@options.headers("fetch")
@options.token_file()
@options.ca_file()
@options.attempts(default=5)
@options.timeout("10m", covers="retries and extraction")
@option(
    "--max-size",
    type=Size(),
    default="1GiB",
    help="Largest download accepted; a larger one fails at once, not retried (0: none).",
)
@option(
    "--max-extracted-size",
    type=Size(),
    default="4GiB",
    help="With --extract: most bytes the archive's files may hold once extracted, counted as written (0: none).",
)
@option(
    "--max-entries",
    type=click.IntRange(min=0),
    default=100_000,
    help="With --extract: most entries (files, directories, links) the archive may hold (0: none).",
)
def command(
    url: str,
    dest: str,
    sha256: str,
    extract: bool,
    strip_components: int,
    mode: int,
    headers: Sequence[str],
    token_file: str | None,
    ca_file: str | None,
    attempts: int,
    timeout: float,
    max_size: int,
    max_extracted_size: int,
    max_entries: int,
) -> None:
    """Download URL, check its SHA-256, and put it at DEST (or extract it into DEST).

    The body is streamed to a temp file beside DEST and renamed into place only
    once its digest matches, so DEST is either the old content or the verified
    new one, never half a file or half a tree. A re-run where DEST already
    matches uses no network. With --extract the archive's digest is kept in
    DEST/.initkit-fetch.json; entries that would escape DEST (../, absolute
    paths, links pointing out, devices) fail the whole extraction, and so do
    archives past --max-extracted-size or --max-entries. --timeout covers the
    download and the extraction.

    DEST's parent directory must be writable (the temp file lives there): with a
    volume mounted at /plugins, use DEST=/plugins/NAME, not /plugins itself.

    \b
    Replaces: wget -O- URL | tar xz -C /plugins
    Example:  initkit fetch https://example.org/plugin-1.2.tar.gz /plugins/plugin \\
                --sha256 9f86d08... --extract --strip-components 1
    """
    from initkit import headers as headers_module
    from initkit.urls import check_http_url

    expected = sha256.strip().lower()
    if not _HEX.fullmatch(expected):
        raise BadInput("--sha256 must be 64 hex digits (the output of sha256sum)")
    if strip_components and not extract:
        raise BadInput("--strip-components needs --extract")
    check_http_url(url)  # the standard library's check: a re-run with nothing to fetch loads no requests
    shown = urls.shown(url)  # no user:password@, no ?X-Amz-Signature= value
    request_headers = headers_module.parse(headers, token_file)
    dest = os.path.abspath(dest)
    parent, name = os.path.split(dest)
    if not name:
        raise BadInput("DEST must name a file or directory, not /")
    target = Target(dest, parent, name, expected, strip_components, mode, max_size)
    _make_parent(parent)
    _remove_stale_temps(parent, name)
    _check_dest(target, extract)
    if target.is_current_tree() if extract else target.is_current_file():
        log.info(f"{dest} already matches sha256 {expected}; nothing to fetch")
        return
    from initkit import httpclient

    httpclient.check_url(url)
    httpclient.check_headers(request_headers)
    started = time.monotonic()
    download = _download(url, shown, target, request_headers, ca_file=ca_file, attempts=attempts, timeout=timeout)
    try:
        if extract:
            from initkit.archive import Limits

            limits = Limits(
                max_bytes=max_extracted_size or None,
                max_entries=max_entries or None,
                deadline=started + timeout if timeout else None,
            )
            _install_tree(download, target, shown, limits, timeout)
        else:
            _install_file(download, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(download)


@dataclass
class Target:
    dest: str
    parent: str
    name: str
    sha256: str
    strip_components: int
    mode: int
    max_size: int = 0  # 0: none

    def temp(self, kind: str = "") -> str:
        return os.path.join(self.parent, fs.temp_name(self.name, kind))

    def is_current_file(self) -> bool:
        """DEST holds exactly the expected bytes (its mode corrected if needed)."""
        try:
            fd = os.open(self.dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return False
        try:
            digest = hashlib.sha256()
            while chunk := os.read(fd, 1 << 20):
                digest.update(chunk)
            if digest.hexdigest() != self.sha256:
                return False
            if stat.S_IMODE(os.fstat(fd).st_mode) != self.mode:
                os.fchmod(fd, self.mode)
            return True
        finally:
            os.close(fd)

    def is_current_tree(self) -> bool:
        """DEST was extracted by fetch from an archive with the expected digest (and the same options)."""
        marker = _read_marker(self.dest)
        return marker is not None and marker == self.marker()

    def marker(self) -> dict[str, object]:
        return {"sha256": self.sha256, "strip_components": self.strip_components}


def _check_dest(target: Target, extract: bool) -> None:
    """What is at DEST must be what fetch makes, or nothing: never a link, never foreign data."""
    try:
        st = os.lstat(target.dest)
    except FileNotFoundError:
        st = None
    if st is None:
        return
    if stat.S_ISLNK(st.st_mode):
        raise BadInput(f"{target.dest} is a symlink: initkit never writes through links")
    if extract:
        if not stat.S_ISDIR(st.st_mode):
            raise BadInput(f"{target.dest} exists and is not a directory")
        if _read_marker(target.dest) is None and os.listdir(target.dest):
            # Replacing it would delete data fetch did not make (or DEST is a volume's mount point).
            raise BadInput(f"{target.dest} is a non-empty directory that initkit fetch did not make (no {MARKER})")
    elif not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{target.dest} exists and is not a regular file")


def _read_marker(directory: str) -> dict[str, object] | None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = os.open(MARKER, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as handle:
            data = json.loads(handle.read(4096))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(dir_fd)


def _make_parent(parent: str) -> None:
    """DEST's missing parent directories, owned like its volume's root (fs.make_parents)."""
    try:
        fs.make_parents(parent)
    except fs.UnsafePath as exc:
        raise BadInput(str(exc)) from None
    except NotADirectoryError:
        raise BadInput(f"{parent} (the parent of DEST) is not a directory") from None
    except OSError as exc:
        raise JobFailed(f"cannot create {parent} (the parent of DEST): {exc.strerror}") from None


def _remove_stale_temps(parent: str, name: str) -> None:
    """Temp files and trees a killed run left beside DEST (kill -9 runs no cleanup).

    A run killed between moving the old tree aside and renaming the new one in
    left no DEST: its old tree (one with fetch's marker) is put back first, so
    DEST is never lost."""
    dest = os.path.join(parent, name)
    restored = fs.recover_tree(dest, lambda path: _read_marker(path) is not None)
    if restored is not None:
        log.info(f"restoring {dest} from {restored}, left by an earlier run")
    for entry in fs.sweep(parent, (name,)):
        log.debug(f"removed {os.path.join(parent, entry)}, left by an earlier run")


def _remove_quietly(path: str) -> None:
    """Remove a temp file or tree of fetch's, however deep, never following a link; what fails stays."""
    with contextlib.suppress(OSError):
        fs.remove_tree(path)


def _download(
    url: str,
    shown: str,
    target: Target,
    headers: dict[str, str],
    *,
    ca_file: str | None,
    attempts: int,
    timeout: float,
) -> str:
    """The verified download, in a temp file beside DEST; the caller renames or removes it."""
    from initkit import httpclient
    from initkit.durations import format_duration

    def on_retry(reason: str, delay: float, attempt: int) -> None:
        log.warning(f"GET {shown}: {reason}; retrying in {format_duration(delay)} (attempt {attempt} of {attempts})")

    client = httpclient.Client(ca_file, policy=httpclient.RetryPolicy(attempts=attempts, on_retry=on_retry))
    path = target.temp()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise JobFailed(f"cannot create a temp file in {target.parent}: {exc.strerror}") from None
    progress = _Progress(shown)
    digest = hashlib.sha256()

    def restart(length: int | None) -> None:
        nonlocal digest
        if target.max_size and length is not None and length > target.max_size:
            raise _TooBig(f"its Content-Length is {length} bytes")
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
        except OSError as exc:
            raise _WriteFailed(exc) from None
        digest = hashlib.sha256()
        progress.start(length)

    def write(chunk: bytes) -> None:
        if target.max_size and progress.done + len(chunk) > target.max_size:
            raise _TooBig(f"its body passed {target.max_size} bytes")
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:  # not the network's fault: raised as no OSError, so never retried
            raise _WriteFailed(exc) from None
        digest.update(chunk)
        progress.add(len(chunk))

    started = time.monotonic()
    try:
        try:
            client.download(
                url,
                headers=headers,
                deadline=started + timeout if timeout else None,
                stall=min(STALL_TIMEOUT, timeout) if timeout else STALL_TIMEOUT,
                restart=restart,
                write=write,
            )
        except (httpclient.BadStatus, httpclient.GaveUp, httpclient.RequestFailed) as exc:
            raise JobFailed(httpclient.failure(f"GET {shown}", exc, attempts=attempts, timeout=timeout)) from None
        except _TooBig as exc:
            raise JobFailed(
                f"GET {shown} is larger than --max-size ({_size(target.max_size)}): {exc}; nothing written"
            ) from None
        except _WriteFailed as exc:
            raise JobFailed(f"cannot write the download beside {target.dest}: {_write_error(exc, target)}") from None
        except OSError as exc:
            raise JobFailed(f"cannot write the download beside {target.dest}: {_write_error(exc, target)}") from None
        got = digest.hexdigest()
        if got != target.sha256:
            raise JobFailed(
                f"sha256 mismatch for {shown}: expected {target.sha256}, got {got} "
                f"({progress.done} bytes); nothing written"
            )
        try:
            os.fsync(fd)
        except OSError as exc:
            raise JobFailed(f"cannot write the download beside {target.dest}: {_write_error(exc, target)}") from None
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    os.close(fd)
    elapsed = time.monotonic() - started
    log.info(f"downloaded {shown}: {_size(progress.done)} in {format_duration(elapsed)}, sha256 verified")
    return path


def _install_file(download: str, target: Target) -> None:
    os.chmod(download, target.mode)
    # rename replaces a file at DEST (or a link planted since the check), never writes through it.
    os.rename(download, target.dest)
    fs.fsync_dir(target.parent)
    log.info(f"wrote {target.dest} (sha256 {target.sha256})")


def _install_tree(download: str, target: Target, shown: str, limits: Limits, timeout: float) -> None:
    from initkit import archive
    from initkit.durations import format_duration

    tree = target.temp("d")
    try:
        os.mkdir(tree, 0o755)
    except OSError as exc:
        raise JobFailed(f"cannot extract {shown} beside {target.dest}: {_write_error(exc, target)}") from None
    try:
        try:
            count = archive.extract(download, tree, target.strip_components, limits)
        except archive.UnsafeArchive as exc:
            raise JobFailed(f"refusing the archive from {shown}: {exc}; nothing written") from None
        except archive.LimitExceeded as exc:
            option = "--max-entries" if exc.limit == "entries" else "--max-extracted-size"
            raise JobFailed(f"refusing the archive from {shown}: it holds {exc} ({option}); nothing written") from None
        except archive.TimedOut:
            raise JobFailed(
                f"extracting {shown} timed out: the {format_duration(timeout)} timeout passed; nothing written"
            ) from None
        except archive.NotAnArchive as exc:
            raise JobFailed(f"cannot extract {shown}: {exc}; nothing written") from None
        except OSError as exc:
            raise JobFailed(
                f"cannot extract {shown} beside {target.dest}: {_write_error(exc, target)}; nothing written"
            ) from None
        if os.path.lexists(os.path.join(tree, MARKER)):
            raise JobFailed(f"refusing the archive from {shown}: it holds {MARKER}, initkit's own marker")
        try:
            _write_marker(tree, target)
        except OSError as exc:
            raise JobFailed(
                f"cannot extract {shown} beside {target.dest}: {_write_error(exc, target)}; nothing written"
            ) from None
        # The marker is in place before the tree appears at DEST: a tree at DEST is always complete.
        fs.replace_tree(tree, target.dest)
    except BaseException:
        _remove_quietly(tree)
        raise
    log.info(f"extracted {count} {'entry' if count == 1 else 'entries'} into {target.dest} (sha256 {target.sha256})")


def _write_marker(tree: str, target: Target) -> None:
    fd = os.open(os.path.join(tree, MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(target.marker(), handle)
        handle.write("\n")


def _write_error(exc: OSError | _WriteFailed, target: Target) -> str:
    """Why a local write failed, naming a full volume plainly."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on {target.dest}'s file system"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded on {target.dest}'s file system"
    return exc.strerror or type(exc).__name__


class _Progress:
    """A line every PROGRESS_EVERY seconds of a download: bytes so far, of how many, and the rate."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.done = 0
        self.length: int | None = None
        self.began = self.last = time.monotonic()

    def start(self, length: int | None) -> None:
        self.done, self.length = 0, length
        self.began = self.last = time.monotonic()

    def add(self, size: int) -> None:
        self.done += size
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        rate = self.done / max(now - self.began, 1e-6)
        of = f" of {_size(self.length)} ({100 * self.done // self.length}%)" if self.length else ""
        log.info(f"GET {self.shown}: {_size(self.done)}{of}, {_size(rate)}/s", bytes=self.done, rate=round(rate))


def _size(count: float | None) -> str:
    value = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
