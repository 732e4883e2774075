"""The repository's location and how git reaches it: URLs, credentials, ssh, askpass.

- Credentials never reach argv nor .git/config: http(s) credentials (in REPO, from
  --username/--password-file, --credential or --askpass-url) become an `Authorization`
  header scoped to one origin (scheme, host, port), which the runner puts in git's
  environment as `http.<scope>.extraHeader`.
- A REPO whose query holds a credential (`?token=...`, `X-Amz-Signature`: any key
  `redact.is_secret_name` names) is refused: git hands the URL, query and all, to its
  remote helper on the command line (`git-remote-https origin URL`), where every
  process of the node can read it, whatever initkit passes git itself (an insteadOf
  rewrite happens before that call). git could not use such a URL anyway: it appends
  its own path (`/info/refs`) after the query.
- ssh needs nothing from ~/.ssh nor /etc/ssh: its options go to `initkit-ssh`.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from initkit import redact
from initkit.errors import BadInput, JobFailed

SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?:\[[^\]/]+\]|[^:/]+):")


@dataclass(frozen=True)
class Remote:
    """A repository location, split into what may be stored and what may not."""

    url: str  # stored as origin and printed: no credentials
    kind: str  # "http", "ssh", "git" or "file"
    username: str | None = None
    password: str | None = None
    scope: str | None = None  # http(s): "scheme://host[:port]/", what a header is scoped to


@dataclass(frozen=True)
class Access:
    """How git reaches the repository, as the options gave it: credentials, ssh, configuration."""

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


@dataclass(frozen=True)
class Transport:
    """What the runner's environment needs, once every secret has been read."""

    header: str | None  # the Authorization header for the repository's origin
    per_url: list[tuple[str, str]]  # (URL scope, Authorization header) of each --credential
    ssh: list[str] | None  # ssh's options (ssh repositories only)

    @property
    def credentials(self) -> bool:
        """Whether a refused login means wrong credentials (rather than none)."""
        return bool(self.header or self.ssh or self.per_url)


def parse_remote(repo: str) -> Remote:
    if "://" not in repo:
        if SCP_LIKE.match(repo):  # user@host:path, as git reads it
            return Remote(repo, "ssh")
        return Remote(os.path.abspath(repo), "file")
    try:
        parts = urlsplit(repo)
        parts.port  # noqa: B018 - parsed here: a bad port is a ValueError too
    except ValueError as exc:  # http://[::1/x: an unclosed IPv6 bracket
        raise BadInput(f"invalid REPO {redact.redact(repo)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        userinfo, at, hostport = parts.netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = userinfo.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if colon else None
        url = urlunsplit((scheme, hostport, parts.path, parts.query, ""))
        return Remote(url, "http", username, password, f"{scheme}://{hostport.lower()}/")
    if scheme in ("ssh", "git+ssh", "ssh+git"):
        return Remote(repo, "ssh")
    if scheme == "file":
        return Remote(repo, "file")
    return Remote(repo, scheme)


def check_remote(remote: Remote) -> None:
    """Refuse (exit 2) a location git must not be given."""
    if remote.kind == "ssh" and ssh_looks_like_option(remote.url):
        raise BadInput(f"invalid REPO {remote.url!r}: an ssh host or user cannot start with '-'")
    secret = secret_query_key(remote.url)
    if secret is not None:
        raise BadInput(
            f"invalid REPO {redact.redact(remote.url)}: its query holds a credential ({secret}); git would "
            "show it on its command line to every process of the node, and cannot fetch from a URL with a "
            "query (it appends its own path after it): give it with --password-file or --credential"
        )


def secret_query_key(url: str) -> str | None:
    """The first query key of a URL that names a credential (redact's rule), if any."""
    if "://" not in url:
        return None
    query = urlsplit(url).query
    for key, _ in parse_qsl(query.replace(";", "&"), keep_blank_values=True):
        if redact.is_secret_name(key):
            return key
    return None


def ssh_looks_like_option(url: str) -> bool:
    """Whether the user or host of an ssh location (URL or scp-like) starts with `-`,
    which ssh would read as an option (git refuses it too, with exit 1)."""
    netloc = urlsplit(url).netloc if "://" in url else url.split(":", 1)[0]
    user, _, host = netloc.rpartition("@")
    return user.startswith("-") or host.startswith("-")


def same_repository(a: str, b: str) -> bool:
    """Whether two locations name the same repository (credentials, case of the
    host, a trailing slash or `.git` do not matter)."""
    return _normal(a) == _normal(b)


def _normal(location: str) -> str:
    try:
        url = parse_remote(location).url
    except BadInput:  # an origin that is no URL names no repository REPO could be
        return location
    if "://" in url:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2].lower()
        url = f"{parts.scheme.lower()}://{host}{parts.path}"
    elif SCP_LIKE.match(url):
        url = url.split("@", 1)[-1] if "@" in url.split(":", 1)[0] else url
    url = url.rstrip("/")
    return url.removesuffix(".git").rstrip("/")


# --- credentials ---------------------------------------------------------------------


def transport(remote: Remote, access: Access, timeout: float, started: float) -> Transport:
    """Check the access options against REPO, read every secret (askpass last: all input
    is checked before the network), and return what the runner's environment needs."""
    header = None
    if access.askpass_url:
        if access.username or access.password_file or remote.password or remote.username:
            raise BadInput("--askpass-url replaces --username, --password-file and credentials in REPO; give one")
        if remote.kind != "http":
            raise BadInput("--askpass-url applies to http(s) repositories only")
    else:
        header = http_credentials(remote, access.username, access.password_file)
    per_url = url_credentials(access.credentials, remote, bool(header or access.askpass_url))
    ssh = ssh_access(remote, access.key_files, access.known_hosts_file)
    if access.askpass_url:
        username, secret = ask_credentials(access.askpass_url, timeout, started)
        header = basic_auth_header(username, secret)
    return Transport(header, per_url, ssh)


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    redact.register(token)
    return f"Authorization: Basic {token}"


def http_credentials(remote: Remote, username: str | None, password_file: str | None) -> str | None:
    """The Authorization header for REPO, from its userinfo or --username/--password-file."""
    from initkit import secretfile

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
    return basic_auth_header(user, password)


def url_credentials(given: list[list[Any]], remote: Remote, for_remote: bool) -> list[tuple[str, str]]:
    """Each --credential as (URL scope, Authorization header); its password file read as a secret."""
    from initkit import secretfile

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
        pairs.append((scope, basic_auth_header(user, password)))
    return pairs


# --- askpass -------------------------------------------------------------------------

ASKPASS_WAIT = 30.0  # the longest an askpass request may take, within --timeout
ASKPASS_LIMIT = 64 << 10  # bytes: two short lines are expected; more is not an answer


def ask_credentials(url: str, timeout: float, started: float) -> tuple[str, str]:
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


# --- ssh -----------------------------------------------------------------------------


def ssh_access(remote: Remote, key_files: list[str], known_hosts_file: str | None) -> list[str] | None:
    """ssh's options for an ssh REPO, once its files are readable; None for other kinds."""
    if remote.kind != "ssh":
        if not key_files and not known_hosts_file:
            return None
        raise BadInput("--ssh-key-file and --known-hosts-file apply to ssh repositories only")
    files = [(key, "ssh key file") for key in key_files] + [(known_hosts_file, "known hosts file")]
    for path, what in files:
        if path:
            check_readable(path, what)
    if key_files and not known_hosts_file:
        raise BadInput("--ssh-key-file needs --known-hosts-file (host keys are always checked)")
    return ssh_options(key_files, known_hosts_file)


def ssh_options(key_files: str | list[str] | tuple[str, ...] | None, known_hosts_file: str | None) -> list[str]:
    """ssh options that need nothing from ~/.ssh nor /etc/ssh/ssh_config; ssh tries each key in turn."""

    def ssh_path(path: str) -> str:  # ssh expands % tokens and splits on blanks
        path = os.path.abspath(path)
        if '"' in path:
            raise BadInput(f"unsupported character '\"' in {path}")
        return '"' + path.replace("%", "%%") + '"'

    keys = [key_files] if isinstance(key_files, str) else list(key_files or ())
    options = ["-F", os.devnull, "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"]
    options += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
    if keys:
        options += ["-o", "IdentitiesOnly=yes"]
        for key in keys:
            options += ["-o", f"IdentityFile={ssh_path(key)}"]
    if known_hosts_file:
        options += ["-o", f"UserKnownHostsFile={ssh_path(known_hosts_file)}"]
        options += ["-o", f"GlobalKnownHostsFile={os.devnull}"]
    options += ["-o", "StrictHostKeyChecking=yes"]
    return options


def ssh_wrapper() -> str:
    """Path of `initkit-ssh`, which git runs as GIT_SSH_COMMAND without a shell."""
    import shutil
    import sys

    beside = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "initkit-ssh")
    for candidate in (
        beside,
        os.path.join(os.path.dirname(sys.executable), "initkit-ssh"),
        shutil.which("initkit-ssh"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BadInput("initkit-ssh is not installed beside initkit; reinstall initkit")


def check_readable(path: str, what: str) -> None:
    """Exit 2 now, naming WHAT, when the operator's file cannot be opened: git would fail later, vaguer."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
