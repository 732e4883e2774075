"""`initkit git-clone REPO DEST`: the `git clone` init container, idempotent.

How DEST is read, so that a re-run after any interruption does the right thing:

- empty, missing, or holding only `lost+found` (a volume's mount point): clone.
  The clone is fetched into DEST/.git.initkit-tmp, which is renamed to DEST/.git
  only once the commit is there; DEST itself is never renamed nor removed.
- DEST/.git with `initkit.cloning` set in its config: a clone that was stopped
  between that rename and the end of the checkout; finish it (forced checkout,
  untracked leftovers removed: nobody but initkit has used that tree yet).
- DEST/.git of REPO, complete: nothing to do when HEAD is the requested commit
  (no network at all when --ref is a full SHA); else a non-forced checkout, so
  local changes are never destroyed.
- anything else (other files, another repository): refused, nothing touched.

After a move, the work tree of a submodule the commit no longer has is deleted (git
cannot); a finished clone's submodules stopped half-way are cloned again. The depth
fetched is recorded (`initkit.depth`) so that a changed --depth applies on a re-run.
git-sync's one-time options keep its names and value formats (README has the table).

DEST/.git may have been written by the app container that shares the volume: before git
runs in it, its config is checked against an allow-list (gitrepo.checkout_config), and
git is always told --git-dir and --work-tree, never left to discover a repository.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from initkit import log, options, redact
from initkit.errors import EXIT_CODES_HELP, BadInput, InitkitError, JobFailed, Stopped
from initkit.fs import remove_tree
from initkit.params import Line, option

if TYPE_CHECKING:  # gitrepo itself loads only when the command runs
    from initkit.gitrepo import Git, Outcome, Remote

TMP_GIT_DIR = ".git.initkit-tmp"
CLONING_KEY = "initkit.cloning"
DEPTH_KEY = "initkit.depth"


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
    if not repo:
        raise BadInput("REPO is empty")
    if not dest:
        raise BadInput("DEST is empty")
    dest = os.path.abspath(dest)
    for flag, path in (("--error-file", error_file), ("--touch-file", touch_file)):
        if path is not None and (not path or _inside(path, dest)):
            raise BadInput(f"{flag} {path!r} must name a file outside DEST (DEST must hold the checkout only)")
        if path:
            _check_status_path(flag, path)
    try:
        explicit = click.get_current_context().get_parameter_source("depth") != ParameterSource.DEFAULT
        options = Options(ref, depth, explicit, submodules, git_gc, filter_spec, _read_sparse(sparse_checkout_file))
        umask = os.umask(0o002) if group_write else None
        try:
            access = Access(
                username, password_file, list(credential), askpass_url, list(ssh_key_file), known_hosts_file,
                ca_file, git_config, list(git_config_add), group_write,
            )  # fmt: skip
            changed = _run(repo, dest, options, access, timeout)
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


@dataclass(frozen=True)
class Options:
    ref: str | None
    depth: int  # 0: the full history
    depth_explicit: bool  # given, not the default: applied to a checkout that never recorded one
    submodules: str  # recursive, shallow or off
    gc: str  # auto, always, aggressive or off
    filter: str | None
    sparse: bytes | None  # the patterns of --sparse-checkout-file


@dataclass(frozen=True)
class Access:
    """How git reaches the repository: credentials, ssh, extra configuration."""

    username: str | None
    password_file: str | None
    credentials: list[list[Any]]  # each --credential, parsed: a list of JSON objects
    askpass_url: str | None
    key_files: list[str]
    known_hosts_file: str | None
    ca_file: str | None
    git_config: str | None
    git_config_add: list[str]
    group_write: bool


_FILTER = re.compile(
    r"blob:none|blob:limit=\d+[kmg]?|tree:\d+|object:type=(?:blob|tree|commit|tag)|sparse:oid=[\w./:^{}-]+"
    r"|combine:[\w.:=+%-]+"
)


def _run(repo: str, dest: str, options: Options, access: Access, timeout: float) -> bool:
    from initkit import gitrepo

    if shutil.which("git", path=os.environ.get("PATH", os.defpath)) is None:
        raise BadInput("git-clone needs git, which is not on PATH (initkit-slim has no git: use the initkit image)")
    remote = gitrepo.parse_remote(repo)
    if remote.kind == "ssh" and gitrepo.ssh_looks_like_option(remote.url):
        raise BadInput(f"invalid REPO {remote.url!r}: an ssh host or user cannot start with '-'")
    if options.filter is not None and not _FILTER.fullmatch(options.filter):
        raise BadInput(
            f"invalid --filter {options.filter!r}: expected blob:none, blob:limit=N, tree:N, object:type=T, ..."
        )
    user_config = _user_config(access.git_config, access.git_config_add, access.ca_file, access.group_write)
    started = time.monotonic()
    header = None
    if access.askpass_url:
        if access.username or access.password_file or remote.password or remote.username:
            raise BadInput("--askpass-url replaces --username, --password-file and credentials in REPO; give one")
        if remote.kind != "http":
            raise BadInput("--askpass-url applies to http(s) repositories only")
    else:
        header = _http_credentials(remote, access.username, access.password_file)
    per_url = _url_credentials(access.credentials, remote, bool(header or access.askpass_url))
    ssh = _ssh_options(remote, access.key_files, access.known_hosts_file)
    if access.askpass_url:  # all input checked: now the network
        username, secret = _ask_credentials(access.askpass_url, timeout, started)
        header = gitrepo.basic_auth_header(username, secret)
    gitrepo.scrub_environment()
    env = gitrepo.git_environment(
        header=header, scope=remote.scope, ssh=ssh, credentials=per_url, user_config=user_config
    )
    if access.ca_file:  # GIT_SSL_CAINFO, when the image sets it, would win over http.sslCAInfo
        env["GIT_SSL_CAINFO"] = os.path.abspath(access.ca_file)
    git = gitrepo.Git(env, credentials=bool(header or ssh or per_url), timeout=timeout, started=started)
    if options.ref is not None:
        gitrepo.check_ref(git, options.ref)
    return Clone(git, remote, dest, options).run()


def _user_config(text: str | None, added: list[str], ca_file: str | None, group_write: bool) -> list[tuple[str, str]]:
    """--git-config and --git-config-add, checked; then what --ca-file and --group-write set."""
    from initkit import gitrepo

    given = [("--git-config", text)] if text else []
    given += [("--git-config-add", item) for item in added]
    config = [
        gitrepo.check_user_config(key, value, flag)
        for flag, item in given
        for key, value in gitrepo.parse_git_configs(item, flag)
    ]
    if ca_file:
        try:
            with open(ca_file, "rb"):
                pass
        except OSError as exc:
            raise BadInput(f"cannot read CA file {ca_file}: {exc.strerror}") from None
        config.append(("http.sslCAInfo", os.path.abspath(ca_file)))
    if group_write:
        config.append(("core.sharedRepository", "group"))
    return config


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


ASKPASS_WAIT = 30.0  # the longest an askpass request may take, within --timeout
ASKPASS_LIMIT = 64 << 10  # bytes: two short lines are expected; more is not an answer


def _ask_credentials(url: str, timeout: float, started: float) -> tuple[str, str]:
    """git-sync's askpass protocol: GET the URL; a 200 answer holds `username=` and `password=` lines.

    One request through initkit's bounded client: a deadline over connecting, sending and
    every read (a server dripping its answer is cut off at it), at most ASKPASS_LIMIT bytes
    of the answer read, and no redirect followed."""
    from initkit import httpclient
    from initkit.durations import format_duration

    httpclient.check_url(url)
    shown = redact.redact(url)
    deadline = time.monotonic() + ASKPASS_WAIT
    if timeout and started + timeout < deadline:
        deadline, why = started + timeout, f"timed out after {format_duration(timeout)} (--timeout)"
    else:
        why = f"timed out (no answer within {format_duration(ASKPASS_WAIT)})"
    client = httpclient.Client()
    client.session.resolve_redirects = _no_redirects  # type: ignore[method-assign]
    try:
        answer = client.send(
            "GET", url, deadline=deadline, per_attempt=ASKPASS_WAIT,
            read_body=lambda status: status == 200, body_limit=ASKPASS_LIMIT + 1,
        )  # fmt: skip
    except httpclient.GaveUp:
        raise JobFailed(f"--askpass-url {shown} failed: {why}") from None
    except httpclient.RequestFailed as exc:
        raise JobFailed(f"--askpass-url {shown} failed: {exc}") from None
    if answer.status != 200:
        raise JobFailed(f"--askpass-url {shown} answered HTTP {answer.status}, not 200")
    if time.monotonic() >= deadline:  # the watchdog cut the body off: what came is not the answer
        raise JobFailed(f"--askpass-url {shown} failed: {why}")
    length = answer.headers.get("content-length", "")
    if len(answer.start.encode()) > ASKPASS_LIMIT or (length.isdigit() and int(length) > ASKPASS_LIMIT):
        raise JobFailed(f"--askpass-url {shown} answered with a body larger than {ASKPASS_LIMIT >> 10} KiB")
    fields: dict[str, str] = {}
    for line in answer.start.splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip() in ("username", "password"):
            fields[key.strip()] = value.strip("\r")
    if "password" in fields:
        redact.register(fields["password"])
    if not fields.get("password"):
        raise JobFailed(f"--askpass-url {shown} answered without a password= line")
    return fields.get("username", ""), fields["password"]


def _no_redirects(*args: Any, **kwargs: Any) -> Iterator[Any]:
    """requests' Session.resolve_redirects that follows nothing: the redirect itself is the answer
    (git-sync's askpass URL answers by itself; a redirect could lead anywhere)."""
    return iter(())


def _url_credentials(given: list[list[Any]], remote: Remote, for_remote: bool) -> list[tuple[str, str]]:
    """Each --credential as (URL scope, Authorization header); its password file read as a secret."""
    from urllib.parse import urlsplit, urlunsplit

    from initkit import gitrepo, secretfile

    scopes = {remote.scope} if for_remote else set()
    pairs = []
    for entry in (item for group in given for item in group):
        if not isinstance(entry, dict):
            raise BadInput("--credential must be a JSON object (or a list of them)")
        if "password" in entry:
            raise BadInput(
                '--credential: give "password-file", not "password" (a password on the command line '
                "is visible to anyone on the node)"
            )
        unknown = sorted(set(entry) - {"url", "username", "password-file"})
        if unknown:
            raise BadInput(f"--credential: unknown field {unknown[0]!r} (url, username, password-file)")
        url, user, password_file = (entry.get(name) for name in ("url", "username", "password-file"))
        if not all(isinstance(value, str) and value for value in (url, user, password_file)):
            raise BadInput("--credential needs url, username and password-file, each a non-empty string")
        for name, value in (("url", url), ("username", user), ("password-file", password_file)):
            if not value.isprintable():  # a NUL would reach open() or git's environment as a ValueError
                raise BadInput(f"--credential {name}: control or other non-printable characters are not allowed")
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise BadInput(f"--credential url {url!r}: an http(s) URL is needed (ssh uses --ssh-key-file)")
        if "@" in parts.netloc:
            raise BadInput("--credential url must not hold credentials (use username and password-file)")
        scope = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "", ""))
        if scope in scopes:
            raise BadInput(f"two credentials for {scope}")
        scopes.add(scope)
        password = secretfile.read(password_file, "password file")
        pairs.append((scope, gitrepo.basic_auth_header(user, password)))
    return pairs


def _http_credentials(remote: Remote, username: str | None, password_file: str | None) -> str | None:
    from initkit import gitrepo, secretfile

    if remote.password:
        redact.register(remote.password)
    if remote.kind != "http":
        if username or password_file:
            raise BadInput("--username and --password-file apply to http(s) repositories only")
        return None
    password = remote.password
    if password_file:
        password = secretfile.read(password_file, "password file")
    user = username or remote.username
    if password is None and user is None:
        return None
    if password is None:
        if username:
            raise BadInput("--username needs --password-file")
        redact.register(user)  # https://TOKEN@host/...: the user name is the secret
        password = ""
    if user is None:
        raise BadInput("--password-file needs --username (or a user name in the URL)")
    return gitrepo.basic_auth_header(user, password)


def _ssh_options(remote: Remote, key_files: list[str], known_hosts_file: str | None) -> list[str] | None:
    from initkit import gitrepo

    if remote.kind != "ssh":
        if not key_files and not known_hosts_file:
            return None
        raise BadInput("--ssh-key-file and --known-hosts-file apply to ssh repositories only")
    files = [(key, "ssh key file") for key in key_files] + [(known_hosts_file, "known hosts file")]
    for path, what in files:
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
    if key_files and not known_hosts_file:
        raise BadInput("--ssh-key-file needs --known-hosts-file (host keys are always checked)")
    return gitrepo.ssh_options(key_files, known_hosts_file)


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _check_status_path(flag: str, path: str) -> None:
    """A link among the file's directories (planted in a shared volume) is exit 2 before anything runs."""
    from initkit import atomic
    from initkit.urls import printable

    try:
        atomic.check_dirs(path)
    except atomic.UnsafePath as exc:
        raise BadInput(f"{flag} {path!r}: {printable(str(exc))}") from None


def _write_error(path: str, message: str) -> None:
    """The error for an app or a probe to read: atomic, and never through a symlink."""
    from initkit import atomic

    try:
        atomic.write_path(path, (redact.redact(message) + "\n").encode(), 0o644)
    except (OSError, atomic.UnsafePath) as exc:
        log.warning(f"cannot write --error-file: {_why(exc, path)}")


def _remove_error(path: str) -> None:
    from initkit import atomic

    try:
        atomic.remove_path(path)  # a symlink is removed itself; one among its directories is refused
    except (OSError, atomic.UnsafePath) as exc:
        log.warning(f"cannot remove --error-file: {_why(exc, path)}")


def _touch(path: str) -> None:
    """Create the file or update its times, never through a symlink (git-sync's --touch-file)."""
    from initkit import atomic

    try:
        atomic.touch_path(path)
    except (OSError, atomic.UnsafePath) as exc:
        log.warning(f"cannot touch --touch-file: {_why(exc, path)}")


def _why(exc: BaseException, path: str) -> str:
    if isinstance(exc, OSError):
        return f"{path}: {exc.strerror}"
    return str(exc)


class Clone:
    def __init__(self, git: Git, remote: Remote, dest: str, options: Options) -> None:
        from initkit import gitrepo

        self.gitrepo = gitrepo
        self.git = git
        self.remote = remote
        self.dest = dest
        self.git_dir = os.path.join(dest, ".git")
        # git is never left to discover a repository: DEST/.git is named, or nothing is
        self.repo = ["--git-dir", self.git_dir]
        self.tree = ["--git-dir", self.git_dir, "--work-tree", dest]
        self.options = options
        self.ref = options.ref
        self.depth = options.depth
        self.started = time.monotonic()
        self.sha = self.ref.lower() if self.ref and gitrepo.FULL_SHA.match(self.ref.lower()) else None
        self.config: dict[str, str | None] = {}

    # --- what is in DEST --------------------------------------------------------------

    def run(self) -> bool:
        """Bring DEST to the requested commit; return whether anything in it changed."""
        state = self.survey()
        if state == "empty":
            self.clone()
        elif state == "cloning":
            log.info(f"finishing an interrupted clone of {self.remote.url} in {self.dest}")
            self.remove_stale_lock()
            self.finish(self.fetch(self.repo), clean=True, verb="cloned")
        else:
            return self.update()
        return True

    def survey(self) -> str:
        dest = self.dest
        if os.path.lexists(dest) and not os.path.isdir(dest):
            raise BadInput(f"{dest} exists and is not a directory")
        try:
            entries = set(os.listdir(dest))
        except FileNotFoundError:
            return "empty"
        except OSError as exc:
            raise JobFailed(f"cannot read {dest}: {exc.strerror}") from None
        entries.discard(TMP_GIT_DIR)
        if os.path.isdir(os.path.join(dest, "lost+found")):
            entries.discard("lost+found")
        if ".git" not in entries:
            if entries:
                shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
                raise BadInput(
                    f"{dest} holds files that are not a checkout of {self.remote.url} ({shown}); refusing to touch them"
                )
            return "empty"
        if os.path.islink(self.git_dir) or not os.path.isdir(self.git_dir):
            raise BadInput(f"{self.git_dir} is not a git directory; refusing to touch {dest}")
        if not os.path.isfile(os.path.join(self.git_dir, "config")):
            raise BadInput(f"{dest} holds a damaged or foreign .git (no config); refusing to touch it")
        values = self.gitrepo.checkout_config(self.git, self.git_dir, dest)
        self.config = values
        origin = values.get("remote.origin.url")
        if origin is None:
            raise BadInput(f"{dest} is a git checkout without an origin remote; refusing to touch it")
        if not self.gitrepo.same_repository(origin, self.remote.url):
            raise BadInput(
                f"{dest} is a checkout of {redact.redact(origin)}, not of {self.remote.url}; refusing to touch it"
            )
        if origin != self.remote.url:  # e.g. credentials stored by a plain `git clone`: drop them
            self.git.check(
                *self.repo, "remote", "set-url", "--end-of-options", "origin", self.remote.url, what="update"
            )
        return "cloning" if values.get(CLONING_KEY) else "checkout"

    # --- a new clone ------------------------------------------------------------------

    def clone(self) -> None:
        created = not os.path.isdir(self.dest)
        try:
            os.makedirs(self.dest, exist_ok=True)
        except OSError as exc:
            raise JobFailed(f"cannot create {self.dest}: {exc.strerror}") from None
        tmp = os.path.join(self.dest, TMP_GIT_DIR)
        if os.path.lexists(tmp):
            log.info(f"removing {tmp} left by an interrupted clone")
            _remove(tmp)
        log.info(f"cloning {self.remote.url} ({self.describe()}) into {self.dest}")
        try:
            git = ["--git-dir", tmp]
            # --template=: no template at all (its config and info/attributes would be the new .git's)
            self.git.check("init", "-q", "--bare", "--template=", tmp, what="clone")
            self.git.check(*git, "config", "core.bare", "false", what="clone")
            self.git.check(*git, "config", CLONING_KEY, "true", what="clone")
            self.git.check(*git, "remote", "add", "--end-of-options", "origin", self.remote.url, what="clone")
            sha = self.fetch(git, what="clone")
            os.rename(tmp, self.git_dir)
        except BaseException:
            _remove(tmp)
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(self.dest)
            raise
        self.finish(sha, clean=False, verb="cloned")

    def finish(self, sha: str, *, clean: bool, verb: str) -> None:
        """Check out in a tree only initkit has written to, then mark the clone complete."""
        wt = self.tree
        self.configure_sparse()
        self.git.check(*wt, "checkout", "-q", "--force", "--detach", sha, "--", what="checkout")
        if clean:
            self.git.check(*wt, "clean", "-q", "-ffdx", "-e", "/lost+found", what="checkout")
            self.reset_submodules()
        if self.options.submodules != "off":
            self.update_submodules()
        self.git.check(*self.repo, "config", "--unset", CLONING_KEY, what="checkout")
        log.info(
            f"{verb} {self.remote.url} at {sha} into {self.dest} in {time.monotonic() - self.started:.1f}s",
            commit=sha,
        )

    # --- an existing checkout ---------------------------------------------------------

    def update(self) -> bool:
        wt = self.tree
        head = self.git.run(*self.repo, "rev-parse", "--verify", "-q", "HEAD^{commit}").out.strip() or None
        target = self.sha or self.resolve_remote()
        reshape = self.depth_changed()
        if reshape or (target != head and not self.present(target)):
            target = self.fetch(self.repo)
        sparse = self.configure_sparse()
        if target == head:
            done = []
            if reshape:
                done.append(f"history {'complete' if not self.depth else f'cut to depth {self.depth}'}")
            if sparse:
                self.apply_sparse(sparse)
                done.append("sparse checkout " + ("turned off" if sparse == "off" else "applied"))
            if self.options.submodules != "off" and self.submodules_stale():
                self.update_submodules()
                done.append("submodules updated")
            if self.prune_removed_submodules():
                done.append("removed submodules deleted")
            if reshape:
                self.collect_garbage()
            if done:
                log.info(f"{self.dest} at {head}: {', '.join(done)}", commit=head)
            else:
                log.info(f"{self.dest} already at {head}: nothing to do", commit=head)
            return bool(done)
        moved = self.git.run(*wt, "checkout", "-q", "--detach", target, "--")
        if not moved.ok:
            raise self.refused(head, target, moved)
        if sparse or self.options.sparse is not None:  # a checkout refused earlier may have left it pending
            self.apply_sparse(sparse or "on")
        self.prune_removed_submodules()
        if self.options.submodules != "off":
            self.update_submodules()
            self.prune_removed_submodules()  # nested ones a submodule's move dropped
        self.collect_garbage()
        origin = f"from {head}" if head else "from an unreadable HEAD"
        log.info(f"moved {self.dest} {origin} to {target}", commit=target, previous=head)
        return True

    def refused(self, head: str | None, target: str, outcome: Outcome) -> JobFailed:
        lines = outcome.err.splitlines()
        if any("would be overwritten" in line for line in lines):
            files = [line.strip() for line in lines if line.startswith("\t")]
            shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
            kind = "untracked files" if any("untracked" in line for line in lines) else "local changes to"
            origin = head or "an unreadable HEAD"
            return JobFailed(
                f"cannot move {self.dest} from {origin} to {target}: {kind} {shown} would be overwritten; "
                "commit, stash or remove them (nothing was changed)"
            )
        return self.gitrepo.failure(f"checkout of {target}", outcome)

    def resolve_remote(self) -> str:
        """The commit the remote's ref names now, without fetching anything."""
        pattern = self.ref or "HEAD"
        # an annotated tag is listed peeled (NAME^{}) only when asked for by that name too
        patterns = [pattern] if pattern == "HEAD" else [pattern, f"{pattern}^{{}}"]
        listing = self.git.check(
            *self.repo, "ls-remote", "--end-of-options", self.remote.url, *patterns, what="ls-remote"
        )
        refs: dict[str, str] = {}
        for line in listing.out.splitlines():
            sha, _, name = line.partition("\t")
            refs[name] = sha
        candidates = [pattern] if pattern.startswith("refs/") or pattern == "HEAD" else [
            pattern, f"refs/{pattern}", f"refs/tags/{pattern}", f"refs/heads/{pattern}",
        ]  # fmt: skip
        for name in candidates:
            if name in refs:
                return refs.get(f"{name}^{{}}", refs[name])
        raise JobFailed(f"ref {pattern!r} not found in {self.remote.url}" + self.sha_hint())

    # --- history: depth and partial clone ---------------------------------------------

    def depth_changed(self) -> bool:
        """Whether the checkout's history has another depth than the one asked for. A
        checkout that never recorded its depth (made by an older initkit or by git) is
        reshaped only when --depth is given explicitly."""
        recorded = self.config.get(DEPTH_KEY)
        if recorded is not None and recorded.isdigit():
            return int(recorded) != self.depth
        if not self.options.depth_explicit:
            return False
        shallow = os.path.exists(os.path.join(self.git_dir, "shallow"))
        return shallow or self.depth != 0

    def fetch(self, git: list[str], what: str = "fetch") -> str:
        """Fetch the requested commit (with the requested depth); return its SHA."""
        git_dir = git[git.index("--git-dir") + 1]
        if self.depth:
            history = ["--depth", str(self.depth)]
        else:
            history = ["--unshallow"] if os.path.exists(os.path.join(git_dir, "shallow")) else []
        if self.options.filter:
            history.append(f"--filter={self.options.filter}")
        if self.sha:
            if self.present(self.sha, git) and not self.depth_changed():
                return self.sha
            direct = self.git.run(*git, "fetch", "-q", "--no-tags", *history, "--end-of-options", "origin", self.sha)
            if not direct.ok:  # a server that refuses to serve unadvertised commits
                log.debug("fetching the commit directly failed; fetching all branches and tags")
                self.git.check(*git, "fetch", "-q", "--tags", *history, "--end-of-options", "origin", what=what)
            if not self.present(self.sha, git):
                raise JobFailed(f"{what} failed: commit {self.sha} not found in {self.remote.url}")
            self.record_depth(git)
            return self.sha
        ref = self.ref or "HEAD"
        fetched = self.git.run(*git, "fetch", "-q", "--no-tags", *history, "--end-of-options", "origin", ref)
        if not fetched.ok:
            if "couldn't find remote ref" in fetched.err:
                raise JobFailed(f"{what} failed: ref {ref!r} not found in {self.remote.url}" + self.sha_hint())
            raise self.gitrepo.failure(what, fetched, self.git.credentials)
        self.record_depth(git)
        return self.git.check(*git, "rev-parse", "--verify", "FETCH_HEAD^{commit}", what=what).out.strip()

    def record_depth(self, git: list[str]) -> None:
        """What the next run compares --depth with (git does not keep it)."""
        self.git.check(*git, "config", DEPTH_KEY, str(self.depth), what="fetch")
        self.config[DEPTH_KEY] = str(self.depth)

    def collect_garbage(self) -> None:
        """--git-gc after a move: what the old commits (or a cut history) held goes at once."""
        mode = self.options.gc
        if mode == "off":
            return
        # initkit's environment turns automatic gc off for every other call (gc.auto=0); -c wins over it
        settings = ["-c", "gc.autoDetach=false", "-c", "gc.pruneExpire=now", "-c", "gc.reflogExpireUnreachable=now"]
        if mode == "auto":
            settings += ["-c", "gc.auto=6700", "-c", "gc.autoPackLimit=50"]
        args = {"auto": ["--auto"], "always": [], "aggressive": ["--aggressive"]}[mode]
        self.git.run(*self.repo, "reflog", "expire", "--expire-unreachable=now", "--all")
        done = self.git.run(*settings, *self.repo, "gc", "--quiet", *args)
        if not done.ok:
            log.warning(f"git gc failed ({self.gitrepo.reason(done.err.splitlines())}); the checkout is complete")

    def present(self, sha: str, git: list[str] | None = None) -> bool:
        return self.git.run(*(git or self.repo), "cat-file", "-e", f"{sha}^{{commit}}").ok

    def sha_hint(self) -> str:
        ref = self.ref or ""
        if 4 <= len(ref) < 40 and all(c in "0123456789abcdefABCDEF" for c in ref):
            return " (a commit must be given as its full SHA)"
        return ""

    def describe(self) -> str:
        return f"ref {self.ref}" if self.ref else "the remote's HEAD"

    # --- sparse checkout --------------------------------------------------------------

    def configure_sparse(self) -> str | None:
        """Write --sparse-checkout-file's patterns (or turn sparse checkout off when it is no
        longer given); return "on" or "off" when that changed something, else None."""
        enabled = (self.config.get("core.sparsecheckout") or "").lower() in ("true", "1", "yes", "on")
        if self.options.sparse is None:
            return "off" if enabled else None
        from initkit import atomic

        try:
            with atomic.open_dir(self.git_dir, ["info"], create=True) as info:
                written = atomic.write_at(
                    info, "sparse-checkout", self.options.sparse, shown=f"{self.git_dir}/info/sparse-checkout"
                )
        except atomic.UnsafePath as exc:
            raise BadInput(f"{exc}; refusing to use {self.git_dir}") from None
        if enabled and not written:
            return None
        self.git.check(*self.repo, "config", "core.sparseCheckout", "true", what="sparse checkout")
        self.git.check(*self.repo, "config", "core.sparseCheckoutCone", "false", what="sparse checkout")
        self.config["core.sparsecheckout"] = "true"
        return "on"

    def apply_sparse(self, change: str) -> None:
        """Patterns changed (or were dropped) on a checkout: git adds and removes files to
        match; a file with local changes is kept (git warns)."""
        command = "reapply" if change == "on" else "disable"
        self.git.check(*self.tree, "-C", self.dest, "sparse-checkout", command, what="sparse checkout")

    # --- submodules and leftovers -----------------------------------------------------

    def update_submodules(self) -> None:
        history = ["--depth", str(self.depth)] if self.depth else []
        if self.options.filter:
            history.append(f"--filter={self.options.filter}")
        recursive = ["--recursive"] if self.options.submodules == "recursive" else []
        self.gitrepo.check_submodule_links(self.dest, self.git_dir)
        self.git.check(
            *self.tree, "-C", self.dest, "submodule", "update", "-q", "--init", *recursive, *history,
            what="submodule update",
        )  # fmt: skip

    def submodules_stale(self) -> bool:
        self.gitrepo.check_submodule_links(self.dest, self.git_dir)
        recursive = ["--recursive"] if self.options.submodules == "recursive" else []
        status = self.git.check(*self.tree, "-C", self.dest, "submodule", "status", *recursive, what="submodule status")
        return any(line[:1] in ("-", "+", "U") for line in status.out.splitlines())

    def prune_removed_submodules(self) -> bool:
        """Delete the work tree of each submodule the checked-out commit no longer has.

        `git checkout` cannot remove a populated submodule directory (it holds a `.git`
        file), so after a move DEST would not match the commit. A removed submodule with
        local changes is kept, with a warning: initkit never destroys work. Its
        repository stays in .git/modules, as git keeps it, for a later move back."""
        modules = os.path.realpath(os.path.join(self.git_dir, "modules"))
        if not os.path.isdir(modules):
            return False
        removed = False
        owners = {self.dest: self.git_dir}  # work tree -> its git dir, for the trees seen so far
        for base, dirs, files in os.walk(self.dest):
            if base == self.dest:
                dirs[:] = [name for name in dirs if name != ".git"]
                continue
            gitfile = os.path.join(base, ".git")
            if ".git" not in files or os.path.islink(gitfile):
                continue
            sub_git_dir = _gitfile_target(gitfile)
            if not sub_git_dir or not _inside(sub_git_dir, modules):  # not a submodule initkit made: not ours to judge
                continue
            owner = max((tree for tree in owners if _inside(base, tree) and tree != base), key=len)
            listed = self.git.run(
                "--literal-pathspecs", "--git-dir", owners[owner], "--work-tree", owner,
                "ls-files", "--stage", "--", os.path.relpath(base, owner),
            )  # fmt: skip
            if listed.ok and listed.out.startswith("160000 "):
                owners[base] = sub_git_dir
                continue
            dirs[:] = []
            status = self.git.run("--git-dir", sub_git_dir, "--work-tree", base, "status", "--porcelain")
            if not status.ok or status.out.strip():
                log.warning(f"kept {base}: a submodule the commit no longer has, but it holds local changes")
                continue
            remove_tree(base)
            parent = os.path.dirname(base)
            while parent != owner and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)
            log.info(f"removed {base}: a submodule the commit no longer has")
            removed = True
        return removed

    def reset_submodules(self) -> None:
        """Resuming a clone: a submodule stopped half-way cannot be updated (git finds no
        revision in it); nobody but initkit has used them yet, so they are cloned again."""
        listed = self.git.check(*self.repo, "ls-files", "--stage", "-z", what="checkout").out
        for entry in filter(None, listed.split("\0")):
            info, _, path = entry.partition("\t")
            if info.startswith("160000 "):
                where = os.path.join(self.dest, path)
                if os.path.islink(where) or not os.path.isdir(where):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(where)
                else:
                    _remove(where)
                os.makedirs(where, exist_ok=True)
        _remove(os.path.join(self.git_dir, "modules"))

    def remove_stale_lock(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.git_dir, "index.lock"))


def _gitfile_target(path: str) -> str:
    """Where a submodule's `.git` file points ("" when it is not a gitfile)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        line = handle.readline().strip()
    if not line.startswith("gitdir: "):
        return ""
    return os.path.realpath(os.path.join(os.path.dirname(path), line.removeprefix("gitdir: ")))


def _remove(path: str) -> None:
    """Remove a temp git dir, even while a killed git's last writes land in it."""
    for _ in range(5):
        try:
            remove_tree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    with contextlib.suppress(OSError):
        remove_tree(path)
