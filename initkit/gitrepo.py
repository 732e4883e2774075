"""Running git for `git-clone`, through GitPython's `git.cmd.Git`.

- A child git dies with us: it runs in its own session (its own process group);
  any BaseException (Stopped by SIGTERM, KeyboardInterrupt) or the job's deadline
  interrupting the wait terminates that group, then kills it after 0.5 s;
  PR_SET_PDEATHSIG kills git when initkit itself is killed with -9. (GitPython's own
  `kill_after_timeout` finds descendants with pgrep or ps, which the image lacks,
  and nothing of it acts on a signal; hence `as_process` and the group kill here.)
- An environment that needs no HOME and no ~/.ssh: settings go in through
  GIT_CONFIG_COUNT/KEY/VALUE, ssh through GIT_SSH_COMMAND=initkit-ssh (no shell needed).
- Credentials never reach argv nor .git/config: http(s) credentials become an
  `Authorization` header scoped to the repository's origin (scheme, host, port),
  and redirects are not followed while it is set (git would send it to the new host).
- The checkout's own config is untrusted (the app may write it): `checkout_config`
  refuses anything but an allow-list, and every call overrides what could run code.
- --git-config is an allow-list too (`check_user_config`): tuning only, and no
  URL-scoped http key that would beat one initkit forces.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from initkit import log, redact
from initkit.errors import BadInput, JobFailed

# Variables that would point git at another repository than the one named on its command line.
_REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
)

# On every call. The last group wins over the same keys in DEST/.git/config, which the app
# container can write: no fsmonitor hook, no hooks, no credential helper, no ext:: transport,
# no recursion into submodules behind our back; and a stalled http server fails.
LOW_SPEED_LIMIT = 1000  # bytes/s ...
LOW_SPEED_TIME = 60  # ... over this many seconds
_BASE_CONFIG = (
    ("advice.detachedHead", "false"),
    ("init.defaultBranch", "main"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("credential.helper", ""),  # the empty value empties the list of helpers
    ("protocol.ext.allow", "never"),
    ("submodule.recurse", "false"),
    ("http.sslVerify", "true"),
)

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?:\[[^\]/]+\]|[^:/]+):")
_LONGEST_WAIT = 86400.0
FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


@dataclass(frozen=True)
class Remote:
    """A repository location, split into what may be stored and what may not."""

    url: str  # stored as origin and printed: no credentials
    kind: str  # "http", "ssh", "git" or "file"
    username: str | None = None
    password: str | None = None
    scope: str | None = None  # http(s): "scheme://host[:port]/", what a header is scoped to


def parse_remote(repo: str) -> Remote:
    if "://" not in repo:
        if _SCP_LIKE.match(repo):  # user@host:path, as git reads it
            return Remote(repo, "ssh")
        return Remote(os.path.abspath(repo), "file")
    parts = urlsplit(repo)
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
    url = parse_remote(location).url
    if "://" in url:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2].lower()
        url = f"{parts.scheme.lower()}://{host}{parts.path}"
    elif _SCP_LIKE.match(url):
        url = url.split("@", 1)[-1] if "@" in url.split(":", 1)[0] else url
    url = url.rstrip("/")
    return url.removesuffix(".git").rstrip("/")


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    redact.register(token)
    return f"Authorization: Basic {token}"


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
    """Path of `initkit-ssh`, which git runs as GIT_SSH without a shell."""
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


def git_environment(
    header: str | None = None,
    scope: str | None = None,
    ssh: list[str] | None = None,
    credentials: list[tuple[str, str]] | None = None,
    user_config: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """What git-clone adds to the environment of every git it runs.

    `credentials` are (scope URL, Authorization header) pairs; `user_config` is what
    --git-config asked for (checked by `check_user_config`). The user's keys come
    before initkit's own, so that for a key set twice initkit's value wins.
    GitPython starts each child from os.environ plus these, so `scrub_environment`
    removes what must not reach git from this process first.
    """
    env: dict[str, str] = {}
    config = [("http.lowSpeedLimit", str(LOW_SPEED_LIMIT)), ("http.lowSpeedTime", str(LOW_SPEED_TIME))]
    config += list(user_config or ())
    config += _BASE_CONFIG
    pairs = list(credentials or ())
    if header and scope:
        pairs.insert(0, (scope, header))
    # git sends every http.<url>.extraHeader whose URL matches, the less specific ones first.
    # Where a credential's URL lies below another's, an empty value first clears the list, so
    # the most specific credential alone is sent (the user's own unscoped headers are re-added).
    own = [value for key, value in user_config or () if key.lower() == "http.extraheader"]
    for url, value in sorted(pairs, key=lambda pair: len(pair[0])):
        if any(other != url and url.startswith(other.rstrip("/") + "/") for other, _ in pairs):
            config += [(f"http.{url}.extraHeader", item) for item in ("", *own)]
        config.append((f"http.{url}.extraHeader", value))
    if pairs or own:
        # git follows a redirect of its first request and sends every later one, header and
        # all, to the new host; curl would drop the header, git does not. Refuse redirects
        # (a user's own header may be a token too, whatever its name).
        config.append(("http.followRedirects", "false"))
    try:
        first = max(int(os.environ.get("GIT_CONFIG_COUNT", "0")), 0)
    except ValueError:
        first = 0
    for index, (key, value) in enumerate(config, start=first):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(first + len(config))
    env["GIT_TERMINAL_PROMPT"] = "0"
    # Set and empty, these win over core.askPass and core.gitProxy of an untrusted checkout.
    env["GIT_ASKPASS"] = ""
    env["SSH_ASKPASS"] = ""
    env["GIT_PROXY_COMMAND"] = os.environ.get("GIT_PROXY_COMMAND", "")
    env["LC_ALL"] = "C"
    if ssh is not None:
        import json

        from initkit.gitssh import OPTIONS_VAR

        # GIT_SSH_COMMAND wins over core.sshCommand (GIT_SSH would not); a path without
        # blanks or shell characters is executed directly, so no shell is needed.
        env["GIT_SSH_COMMAND"] = shlex.quote(ssh_wrapper())
        env["GIT_SSH_VARIANT"] = "ssh"
        env[OPTIONS_VAR] = json.dumps(ssh)
    return env


# --- --git-config ---------------------------------------------------------------------


def parse_git_configs(text: str, flag: str = "--git-config") -> list[tuple[str, str]]:
    """git-sync's format: `key:value,key:value`. A key holding ':' (a URL) must be quoted;
    values may be quoted; escapes \\n \\t \\" \\, and \\\\ in quoted keys and in all values;
    an unquoted value ends at an unescaped ','."""
    pairs: list[tuple[str, str]] = []
    chars = list(text)
    pos = 0

    def fail(why: str) -> BadInput:
        return BadInput(f"invalid {flag}: {why}")

    def unescape() -> str:
        nonlocal pos
        if pos >= len(chars):
            raise fail("unexpected end of escape sequence")
        found = chars[pos]
        pos += 1
        escapes = {"n": "\n", "t": "\t", '"': '"', ",": ",", "\\": "\\"}
        if found not in escapes:
            raise fail(f"unsupported escape character {found!r}")
        return escapes[found]

    def quoted() -> str:
        nonlocal pos
        out = []
        while pos < len(chars):
            char = chars[pos]
            pos += 1
            if char == "\\":
                out.append(unescape())
            elif char == '"':
                return "".join(out)
            else:
                out.append(char)
        raise fail(f"unexpected end of quoted string {''.join(out)!r}")

    while pos < len(chars):
        if chars[pos] == '"':
            pos += 1
            key = quoted()
            if pos >= len(chars) or chars[pos] != ":":
                raise fail(f"expected ':' after quoted key {key!r}")
            pos += 1
        else:
            end = text.find(":", pos)
            if end < 0:
                raise fail(f"unexpected end of key {text[pos:]!r} (expected key:value)")
            key, pos = text[pos:end], end + 1
        if pos >= len(chars):
            raise fail(f"key {key!r}: no value")
        if chars[pos] == '"':
            pos += 1
            value = quoted()
            if pos < len(chars):
                if chars[pos] != ",":
                    raise fail(f"unexpected character after quoted value of {key!r}")
                pos += 1
        else:
            out = []
            while pos < len(chars):
                char = chars[pos]
                pos += 1
                if char == "\\":
                    out.append(unescape())
                elif char == ",":
                    break
                else:
                    out.append(char)
            value = "".join(out)
        pairs.append((key, value))
    return pairs


# What --git-config and --git-config-add may set: the tuning of a one-time clone. Nothing
# that runs a program, reads configuration, attributes, cookies or keys from another file
# (init.templateDir copies a template's config and info/attributes into the new .git: a
# filter there runs at the checkout), fetches from another place, or re-opens what
# `_BASE_CONFIG` closes. Keys as git reads them: section and name case-insensitive.
_USER_KEYS = frozenset(
    {
        # http: transfer tuning, a proxy, a CA bundle, the user's own headers
        "http.postbuffer", "http.lowspeedlimit", "http.lowspeedtime", "http.version", "http.maxrequests",
        "http.minsessions", "http.sslversion", "http.sslcipherlist", "http.sslcainfo", "http.sslcapath",
        "http.proxy", "http.proxyauthmethod", "http.extraheader", "http.useragent",
        # the object store and the checkout
        "core.compression", "core.loosecompression", "core.bigfilethreshold", "core.packedgitlimit",
        "core.packedgitwindowsize", "core.deltabasecachelimit", "core.autocrlf", "core.eol", "core.safecrlf",
        "core.filemode", "core.symlinks", "core.quotepath", "core.preloadindex", "core.checkstat",
        "core.trustctime", "checkout.workers", "checkout.thresholdforparallelism",
        "pack.window", "pack.depth", "pack.windowmemory", "pack.threads", "pack.deltacachesize",
        "pack.deltacachelimit", "pack.compression",
        # fetching
        "fetch.negotiationalgorithm", "fetch.unpacklimit", "fetch.fsckobjects", "fetch.writecommitgraph",
        "fetch.showforcedupdates", "fetch.parallel", "transfer.fsckobjects", "transfer.unpacklimit",
        "protocol.version", "submodule.fetchjobs",
        "user.name", "user.email",
    }
)  # fmt: skip
# git prefers http.<url>.NAME to http.NAME, so a URL-scoped followRedirects, sslVerify,
# extraHeader or proxy would beat what initkit forces: only these may be scoped.
_URL_SCOPED = frozenset({"http.postbuffer", "http.lowspeedlimit", "http.lowspeedtime", "http.version"})
# url.<base>.insteadOf: git then fetches from <base>, which must be a network location;
# never file:// or a path (other repositories on the node), nor <transport>::<address>.
_INSTEAD_OF_SCHEMES = ("http", "https", "ssh", "git", "git+ssh", "ssh+git")
_CONFIG_KEY = re.compile(r"^(?P<section>[A-Za-z0-9-]+)(?:\.(?P<sub>.*))?\.(?P<name>[A-Za-z][A-Za-z0-9-]*)$", re.S)


def check_user_config(key: str, value: str, flag: str = "--git-config") -> tuple[str, str]:
    """Refuse (exit 2) a key off the allow-list; return the pair otherwise."""
    match = _CONFIG_KEY.match(key)
    if not match or "\n" in key or "\0" in key + value:
        raise BadInput(f"invalid {flag} key {key!r}: expected section.name or section.subsection.name")
    plain, sub = f"{match['section']}.{match['name']}".lower(), match["sub"]
    if plain == "url.insteadof" and sub is not None:
        if not _network_location(sub):
            raise BadInput(f"{flag} may not set {key}: insteadOf may only lead to an http(s), ssh or git:// URL")
        _register_password(sub)
    elif sub is not None and plain not in _URL_SCOPED and plain.startswith("http."):
        raise BadInput(
            f"{flag} may not set {key}: git prefers a URL-scoped http key to initkit's own settings (only "
            "postBuffer, lowSpeedLimit, lowSpeedTime and version may be URL-scoped)"
        )
    elif plain not in _USER_KEYS or (sub is not None and plain not in _URL_SCOPED):
        raise BadInput(
            f"{flag} may not set {key}: it is not among the keys a one-time clone may tune "
            "(it could run a command, read other files or undo a safeguard; see the README)"
        )
    if plain == "http.extraheader":  # a header is usually a credential: never print it
        redact.register(value)
        redact.register(value.partition(":")[2])
    elif plain == "http.proxy":
        _register_password(value)
    return key, value


def _network_location(base: str) -> bool:
    if "::" in base or base.startswith("-"):  # a remote helper (ext::, fd::), or an option to ssh
        return False
    if "://" in base:
        parts = urlsplit(base)
        return parts.scheme.lower() in _INSTEAD_OF_SCHEMES and bool(parts.netloc)
    return bool(_SCP_LIKE.match(base))  # user@host:path


def _register_password(url: str) -> None:
    with contextlib.suppress(ValueError):
        password = urlsplit(url.strip()).password
        if password:
            redact.register(password)


def scrub_environment() -> None:
    """Remove from this process what would point git at another repository (see git_environment)."""
    for key in _REPO_ENV:
        os.environ.pop(key, None)


# --- refs ---------------------------------------------------------------------------


def check_ref(git: Git, ref: str) -> None:
    """The one check of --ref: a full SHA, or a name `git check-ref-format` accepts (exit 2 else).

    A ref is passed after --end-of-options as well; refusing `-` here gives a clear
    message and protects commands that lack that option."""
    if not ref:
        raise BadInput("--ref is empty")
    if ref.startswith("-"):
        raise BadInput(f"invalid --ref {ref!r}: a ref cannot start with '-'")
    if FULL_SHA.match(ref.lower()):
        return
    if not ref.isprintable():  # controls (NUL would not even reach git), line and format characters
        raise BadInput(f"invalid --ref {ref!r}: control or other non-printable characters are not allowed")
    if not git.run("check-ref-format", "--allow-onelevel", ref).ok:
        raise BadInput(f"invalid --ref {ref!r}: not a branch, tag or full commit SHA (see git check-ref-format)")


# --- the untrusted checkout ---------------------------------------------------------

# What git itself writes into a checkout's config (clone, submodule init, initkit's own
# flag). Anything else in DEST/.git/config (core.fsmonitor, core.sshCommand, core.worktree,
# http.*, url.*, include.*, filter.*, submodule.*.update, remote.origin.uploadpack, ...) was
# put there by someone else and could run a command, move the work tree or leak credentials.
_ALLOWED_KEYS = re.compile(
    r"core\.(?:repositoryformatversion|filemode|bare|logallrefupdates|symlinks|ignorecase|precomposeunicode)"
    r"|remote\.origin\.(?:url|fetch|tagopt|promisor|partialclonefilter)"
    r"|branch\.[^\n]+\.(?:remote|merge)"
    r"|submodule\.[^\n]+\.(?:url|active)"
    r"|extensions\.(?:objectformat|partialclone)"
    r"|core\.(?:sparsecheckout|sparsecheckoutcone|sharedrepository)"  # --sparse-checkout-file, --group-write
    r"|initkit\.(?:cloning|depth)"
    r"|receive\.denynonfastforwards"  # git init writes it with core.sharedRepository
)


def read_config(git: Git, path: str) -> list[tuple[str, str | None]]:
    """Every (key, value) of one config file, includes not followed."""
    listed = git.run("config", "--file", path, "--no-includes", "--list", "-z")
    if not listed.ok:
        raise BadInput(f"{path} is damaged ({reason(listed.err.splitlines()) or 'unreadable'}); refusing to use it")
    entries: list[tuple[str, str | None]] = []
    for item in listed.out.split("\0"):
        if item:
            key, newline, value = item.partition("\n")
            entries.append((key, value if newline else None))
    return entries


def checkout_config(git: Git, git_dir: str, work_tree: str) -> dict[str, str | None]:
    """Check an existing DEST/.git before any git runs in it; return its config.

    This replaces git's ownership check (safe.directory), which initkit does not use: on
    a volume the mount point belongs to root or an fsGroup, not to initkit's uid, so git
    would refuse every existing checkout. initkit never lets git discover a repository
    (it always names --git-dir), and what git would read from this one is checked here.
    """
    _no_redirection(git_dir)
    config = _checked_config(git, os.path.join(git_dir, "config"))
    modules = os.path.join(git_dir, "modules")
    for base, dirs, files in os.walk(modules):
        for name in dirs:
            if os.path.islink(os.path.join(base, name)):
                raise BadInput(f"{os.path.join(base, name)} is a symbolic link; refusing to use {git_dir}")
        if "config" in files:
            _no_redirection(base)
            module = _checked_config(git, os.path.join(base, "config"), submodule=True)
            worktree = module.get("core.worktree")
            if worktree is not None and not _inside(os.path.join(base, worktree), work_tree):
                raise BadInput(f"{base}/config sets core.worktree outside {work_tree}; refusing to use it")
    return config


def _no_redirection(git_dir: str) -> None:
    """Files that make git read config or objects from elsewhere; git-clone never writes them."""
    for name in ("commondir", "objects/info/alternates", "config.worktree"):
        if os.path.lexists(os.path.join(git_dir, name)):
            raise BadInput(f"{git_dir}/{name} exists: a checkout made by initkit has none; refusing to use it")


def check_submodule_links(work_tree: str, git_dir: str) -> None:
    """Each nested `.git` must be a gitfile into DEST/.git/modules (git would run in any repository)."""
    modules = os.path.realpath(os.path.join(git_dir, "modules"))
    for base, dirs, files in os.walk(work_tree):
        if base == work_tree:
            dirs[:] = [name for name in dirs if name != ".git"]
        for name in (n for n in dirs + files if n == ".git"):
            path = os.path.join(base, name)
            target = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    line = handle.readline().strip()
                if line.startswith("gitdir: "):
                    target = os.path.realpath(os.path.join(base, line[len("gitdir: ") :]))
            if target is None or not _inside(target, modules):
                raise BadInput(f"{path} does not point into {modules}; refusing to update submodules")
        dirs[:] = [name for name in dirs if name != ".git"]


def _checked_config(git: Git, path: str, submodule: bool = False) -> dict[str, str | None]:
    if os.path.islink(path):
        raise BadInput(f"{path} is a symbolic link; refusing to use it")
    entries = read_config(git, path)
    for key, _ in entries:
        if not (_ALLOWED_KEYS.fullmatch(key) or (submodule and key == "core.worktree")):
            raise BadInput(
                f"{path} sets {key}, which initkit does not allow in a checkout (it may run commands "
                "or redirect git); remove it"
            )
    return dict(entries)


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# --- running git --------------------------------------------------------------------


def _death_signal() -> Any:
    """A preexec_fn asking the kernel to SIGKILL the child when initkit dies (even by -9)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None

    def die_with_parent() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return die_with_parent


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class Git:
    """Runs `git ARGS` through GitPython with the environment built for one repository,
    within one deadline for the whole job."""

    def __init__(
        self, env: dict[str, str], credentials: bool = False, timeout: float = 0, started: float | None = None
    ) -> None:
        # GitPython checks for git when imported; quiet, so that a missing git is the
        # "needs git" exit 2 below rather than an ImportError.
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        import git.cmd

        self.cmd = git.cmd.Git("/")  # no repository is ever discovered from the working directory
        self.env = env
        self.credentials = credentials  # whether a failed login means wrong credentials
        self.preexec = _death_signal()
        self.timeout = timeout
        # `started`: when the job began (an askpass request may already have used some of it)
        self.deadline = (started or time.monotonic()) + timeout if timeout else None

    def run(self, *args: str) -> Outcome:
        import git.exc

        argv = ["git", *args]
        log.debug("running: " + " ".join(shlex.quote(arg) for arg in argv))
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self.expired()
        try:
            handle = self.cmd.execute(
                argv, as_process=True, env=self.env, start_new_session=True, preexec_fn=self.preexec
            )
        except git.exc.GitCommandNotFound:
            raise BadInput(
                "git-clone needs git, which is not on PATH (initkit-slim has no git: use the initkit image)"
            ) from None
        proc: subprocess.Popen = handle.proc
        try:
            out, err = self._wait(proc)
        except BaseException:
            stop(proc)
            raise
        text = err.decode(errors="replace")
        for line in text.splitlines():
            if line.strip():
                log.debug(f"git: {line.rstrip()}")
        return Outcome(proc.returncode, out.decode(errors="replace"), text)

    def _wait(self, proc: subprocess.Popen) -> tuple[bytes, bytes]:
        """Read git's output until it exits, or raise the timeout. Each wait is at most a
        day: a deadline of 10**20 s must not overflow the clock (communicate may resume)."""
        while True:
            left = None if self.deadline is None else self.deadline - time.monotonic()
            try:
                return proc.communicate(timeout=None if left is None else min(max(left, 0), _LONGEST_WAIT))
            except subprocess.TimeoutExpired:
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise self.expired() from None

    def check(self, *args: str, what: str) -> Outcome:
        outcome = self.run(*args)
        if not outcome.ok:
            raise failure(what, outcome, self.credentials)
        return outcome

    def expired(self) -> JobFailed:
        from initkit.durations import format_duration

        return JobFailed(f"timed out after {format_duration(self.timeout)} (--timeout); git was stopped")


def stop(proc: subprocess.Popen) -> None:
    """Terminate the child's process group, kill it after 0.5 s, reap it."""
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


_AUTH = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "Permission denied (publickey",
    "HTTP 401",
    "returned error: 401",
    "returned error: 403",
)


def failure(what: str, outcome: Outcome, credentials: bool = False) -> JobFailed:
    """JobFailed naming git's most telling stderr line."""
    lines = [line.strip() for line in outcome.err.splitlines() if line.strip()]
    denied = [line for line in lines if any(marker in line for marker in _AUTH)]
    if denied and credentials and "could not read" in denied[0]:  # git asked again after a 401
        asked = re.search(r"for '([^']*)'", denied[0])
        where = f" for {redact.redact(asked.group(1))}" if asked else ""
        return JobFailed(
            f"{what} failed: authentication failed{where}: the server refused the credentials given, "
            "or none were given for that URL (see --credential)"
        )
    if denied:
        return JobFailed(f"{what} failed: authentication failed ({denied[0]})")
    if any(re.search(r"returned error: 30[12378]\b", line) for line in lines):
        return JobFailed(
            f"{what} failed: the server answered with a redirect ({reason(lines)}); with credentials, "
            "initkit follows no redirect (git would send them to the new host): give the final URL"
        )
    if any("Host key verification failed" in line for line in lines):
        return JobFailed(f"{what} failed: ssh host key verification failed (is the host in --known-hosts-file?)")
    return JobFailed(f"{what} failed: {reason(lines) or f'git exited with status {outcome.code}'}")


def reason(lines: list[str]) -> str:
    for prefix in ("fatal:", "error:"):
        found = [line for line in lines if line.startswith(prefix)]
        if found:
            return found[0] if prefix == "fatal:" else found[-1]
    return lines[-1] if lines else ""
