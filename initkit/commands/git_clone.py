"""`initkit git-clone REPO DEST`: the `git clone` init container, idempotent.

This module parses and checks the options; the mechanism is the `initkit.git` package
(`initkit.git.checkout` documents how DEST is read on every run, `initkit.git.runner`
how git runs). git-sync's one-time options keep its names and value formats (README
has the table).
"""

from __future__ import annotations

import os
import re
from typing import Any

import click
from click.core import ParameterSource

from initkit import fs, log, options, redact
from initkit.errors import EXIT_CODES_HELP, BadInput, InitkitError, Stopped
from initkit.params import Line, option

SUBMODULES = ("recursive", "shallow", "off")
_SUBMODULE_FLAGS = {"true": "recursive", "1": "recursive", "yes": "recursive", "false": "off", "0": "off", "no": "off"}
GIT_GC = ("auto", "always", "aggressive", "off")


class SubmodulesMode(click.ParamType):
    """recursive, shallow or off; a bare --submodules is recursive. The environment variable
    also takes the booleans it took when --submodules was a flag (true: recursive)."""

    name = "[recursive|shallow|off]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        text = _SUBMODULE_FLAGS.get(text, text) if text else "off"
        if text not in SUBMODULES:
            self.fail(f"{value!r} is not one of recursive, shallow, off", param, ctx)
        return text


class CredentialList(click.ParamType):
    """git-sync's --credential: a JSON object {url, username, password-file}, or a list of them.
    From the environment the whole value is one JSON document (not split)."""

    name = "json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        import json

        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f"not JSON ({exc.msg} at column {exc.colno})", param, ctx)
        return parsed if isinstance(parsed, list) else [parsed]

    def split_envvar_value(self, rv: str) -> list[str]:
        return [rv] if rv.strip() else []


@click.command("git-clone", epilog=EXIT_CODES_HELP)
@click.argument("repo", envvar="INITKIT_GIT_CLONE_REPO")
@click.argument("dest", envvar="INITKIT_GIT_CLONE_DEST")
@option("--ref", metavar="REF", help="Branch, tag or full commit SHA.  [default: the remote's HEAD]")
@option(
    "--depth",
    metavar="N",
    type=click.IntRange(min=0, max=2**31 - 1),
    default=1,
    help="Fetch only the last N commits (submodules too); 0: the full history. A new value applies on a re-run.",
)
@option(
    "--submodules",
    type=SubmodulesMode(),
    metavar="[recursive|shallow|off]",
    is_flag=False,
    flag_value="recursive",
    default="off",
    help="Check out submodules: recursive (also a bare --submodules), shallow (top level only) or off.",
)
@option("--username", metavar="USER", help="User name for http(s) basic authentication.")
@option("--password-file", metavar="FILE", help="File holding the http(s) password or token.")
@option(
    "--credential",
    type=CredentialList(),
    multiple=True,
    help="Credentials for one URL (submodules on other hosts), as git-sync takes them: "
    '{"url": ..., "username": ..., "password-file": ...} or a list of them; repeatable.',
)
@option(
    "--askpass-url",
    metavar="URL",
    help="Ask this URL for the http(s) credentials (answer: username=... and password=... lines).",
)
@option(
    "--ssh-key-file",
    metavar="FILE",
    type=Line(),
    multiple=True,
    help="Private key for ssh (instead of anything in ~/.ssh); repeat for several (env: one per line).",
)
@option(
    "--known-hosts-file",
    "--ssh-known-hosts-file",
    "known_hosts_file",
    metavar="FILE",
    help="known_hosts file for ssh; host keys are always checked.",
)
@options.ca_file("https (git's http.sslCAInfo)")
@option(
    "--git-config",
    metavar="KEY:VALUE,...",
    help="Extra git configuration, as git-sync takes it (quote a key holding ':'; values may be quoted).",
)
@option(
    "--git-config-add",
    metavar="KEY:VALUE",
    type=Line(),
    multiple=True,
    help="One extra git configuration pair; repeatable (env: one per line).",
)
@option("--sparse-checkout-file", metavar="FILE", help="Check out only the paths this file's patterns match.")
@option(
    "--filter",
    "filter_spec",
    metavar="SPEC",
    envvar="INITKIT_GIT_CLONE_FILTER",
    help="Partial clone: fetch with this filter (e.g. blob:none).",
)
@option("--group-write", is_flag=True, help="Make what is written group-writable (for an app sharing the fsGroup).")
@option(
    "--git-gc",
    type=click.Choice(GIT_GC),
    default="auto",
    help="Garbage collection after a move or a depth change.",
)
@option("--error-file", metavar="FILE", help="Write the last error here (removed on success).")
@option("--touch-file", metavar="FILE", help="Touch this file whenever DEST changed.")
@options.timeout("10m", covers="every git call", note="a stalled http server fails sooner")
def command(
    repo: str,
    dest: str,
    ref: str | None,
    depth: int,
    submodules: str,
    username: str | None,
    password_file: str | None,
    credential: tuple[list[Any], ...],
    askpass_url: str | None,
    ssh_key_file: tuple[str, ...],
    known_hosts_file: str | None,
    ca_file: str | None,
    git_config: str | None,
    git_config_add: tuple[str, ...],
    sparse_checkout_file: str | None,
    filter_spec: str | None,
    group_write: bool,
    git_gc: str,
    error_file: str | None,
    touch_file: str | None,
    timeout: float,
) -> None:
    """Clone REPO into DEST, or move DEST to the requested commit.

    \b
    Replaces: [ -d /work/.git ] || git clone --depth 1 -b main https://... /work
    Example:  initkit git-clone https://git.example.com/site.git /usr/share/nginx/html \\
                --ref v1.2.0 --username deploy --password-file /secrets/git/password

    DEST may be a volume's mount point holding only lost+found. DEST holding any
    other files, or a checkout of another repository, is refused (exit 2).
    REPO and DEST may also come from INITKIT_GIT_CLONE_REPO and INITKIT_GIT_CLONE_DEST.
    """
    import initkit.git
    from initkit.git.checkout import Options
    from initkit.git.remote import Access

    if not repo:
        raise BadInput("REPO is empty")
    if not dest:
        raise BadInput("DEST is empty")
    dest = os.path.abspath(dest)
    for flag, path in (("--error-file", error_file), ("--touch-file", touch_file)):
        if path is not None and (not path or fs.is_within(path, dest)):
            raise BadInput(f"{flag} {path!r} must name a file outside DEST (DEST must hold the checkout only)")
        if path:
            _check_status_path(flag, path)
    try:
        if filter_spec is not None and not _FILTER.fullmatch(filter_spec):
            raise BadInput(
                f"invalid --filter {filter_spec!r}: expected blob:none, blob:limit=N, tree:N, object:type=T, ..."
            )
        explicit = click.get_current_context().get_parameter_source("depth") != ParameterSource.DEFAULT
        options = Options(ref, depth, explicit, submodules, git_gc, filter_spec, _read_sparse(sparse_checkout_file))
        umask = os.umask(0o002) if group_write else None
        try:
            access = Access(
                username, password_file, list(credential), askpass_url, list(ssh_key_file), known_hosts_file,
                ca_file, git_config, list(git_config_add), group_write,
            )  # fmt: skip
            changed = initkit.git.clone(repo, dest, options, access, timeout)
        finally:
            if umask is not None:
                os.umask(umask)
    except (InitkitError, Stopped) as exc:
        if error_file:
            _write_error(error_file, str(exc))
        raise
    if error_file:
        _remove_error(error_file)
    if changed and touch_file:
        _touch(touch_file)


_FILTER = re.compile(
    r"blob:none|blob:limit=\d+[kmg]?|tree:\d+|object:type=(?:blob|tree|commit|tag)|sparse:oid=[\w./:^{}-]+"
    r"|combine:[\w.:=+%-]+"
)


SPARSE_LIMIT = 1 << 20  # bytes of --sparse-checkout-file: patterns, not data


def _read_sparse(path: str | None) -> bytes | None:
    """The patterns of --sparse-checkout-file, read before the deadline starts: so never
    waiting (a FIFO would block the open until a writer came) and never more than SPARSE_LIMIT.
    A symbolic link is followed: a ConfigMap's files are links into its ..data directory."""
    import stat

    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise BadInput(f"cannot read sparse-checkout file {path}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"sparse-checkout file {path} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= SPARSE_LIMIT and (chunk := os.read(fd, SPARSE_LIMIT + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise BadInput(f"cannot read sparse-checkout file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > SPARSE_LIMIT:
        raise BadInput(f"sparse-checkout file {path} is larger than {SPARSE_LIMIT >> 20} MiB")
    if not data.strip():
        raise BadInput(f"sparse-checkout file {path} holds no pattern")
    return data if data.endswith(b"\n") else data + b"\n"


def _check_status_path(flag: str, path: str) -> None:
    """A link among the file's directories (planted in a shared volume) is exit 2 before anything runs."""
    from initkit.urls import printable

    try:
        fs.check_dirs(path)
    except fs.UnsafePath as exc:
        raise BadInput(f"{flag} {path!r}: {printable(str(exc))}") from None


def _write_error(path: str, message: str) -> None:
    """The error for an app or a probe to read: atomic, and never through a symlink."""
    try:
        fs.write_path(path, (redact.redact(message) + "\n").encode(), 0o644)
    except (OSError, fs.UnsafePath) as exc:
        log.warning(f"cannot write --error-file: {_why(exc, path)}")


def _remove_error(path: str) -> None:
    try:
        fs.remove_path(path)  # a symlink is removed itself; one among its directories is refused
    except (OSError, fs.UnsafePath) as exc:
        log.warning(f"cannot remove --error-file: {_why(exc, path)}")


def _touch(path: str) -> None:
    """Create the file or update its times, never through a symlink (git-sync's --touch-file)."""
    try:
        fs.touch_path(path)
    except (OSError, fs.UnsafePath) as exc:
        log.warning(f"cannot touch --touch-file: {_why(exc, path)}")


def _why(exc: BaseException, path: str) -> str:
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror}"
    return str(exc)
