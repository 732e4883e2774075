"""The two configuration allow-lists of git-clone.

- `check_user_config`: what --git-config and --git-config-add may set (the tuning of a
  one-time clone; nothing that runs a program, reads other files, fetches from elsewhere,
  or beats a setting the runner forces).
- `checkout_config`: what an existing DEST/.git/config (and each submodule's) may hold.
  The app container may write it, so before git runs in it every key must be one git or
  initkit writes there. It is read by git itself (`git config --list`), not by GitPython's
  `GitConfigParser`: the check must see exactly the keys git will act on, and that parser
  reads some files otherwise (`[core] fsmonitor = cmd` on one line, or a bare `fsmonitor`
  key, are keys to git and nothing to it).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from initkit import redact
from initkit.errors import BadInput
from initkit.fs import is_within
from initkit.git.remote import SCP_LIKE, check_readable

if TYPE_CHECKING:
    from initkit.git.runner import Git

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
# `runner.FORCED_CONFIG` closes. Keys as git reads them: section and name case-insensitive.
USER_KEYS = frozenset(
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
URL_SCOPED = frozenset({"http.postbuffer", "http.lowspeedlimit", "http.lowspeedtime", "http.version"})
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
    elif sub is not None and plain not in URL_SCOPED and plain.startswith("http."):
        raise BadInput(
            f"{flag} may not set {key}: git prefers a URL-scoped http key to initkit's own settings (only "
            "postBuffer, lowSpeedLimit, lowSpeedTime and version may be URL-scoped)"
        )
    elif plain not in USER_KEYS or (sub is not None and plain not in URL_SCOPED):
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
    return bool(SCP_LIKE.match(base))  # user@host:path


def _register_password(url: str) -> None:
    with contextlib.suppress(ValueError):
        password = urlsplit(url.strip()).password
        if password:
            redact.register(password)


def user_config(text: str | None, added: list[str], ca_file: str | None, group_write: bool) -> list[tuple[str, str]]:
    """--git-config and --git-config-add, checked; then what --ca-file and --group-write set."""
    given = [("--git-config", text)] if text else []
    given += [("--git-config-add", item) for item in added]
    config = [
        check_user_config(key, value, flag) for flag, item in given for key, value in parse_git_configs(item, flag)
    ]
    if ca_file:
        check_readable(ca_file, "CA file")
        config.append(("http.sslCAInfo", os.path.abspath(ca_file)))
    if group_write:
        config.append(("core.sharedRepository", "group"))
    return config


# --- the untrusted checkout ---------------------------------------------------------

# What git itself writes into a checkout's config (clone, submodule init, initkit's own
# flag). Anything else in DEST/.git/config (core.fsmonitor, core.sshCommand, core.worktree,
# http.*, url.*, include.*, filter.*, submodule.*.update, remote.origin.uploadpack, ...) was
# put there by someone else and could run a command, move the work tree or leak credentials.
CHECKOUT_KEYS = re.compile(
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
    """Every (key, value) of one config file as git reads it, includes not followed."""
    from initkit.git.runner import reason

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
            if worktree is not None and not is_within(os.path.join(base, worktree), work_tree):
                raise BadInput(f"{base}/config sets core.worktree outside {work_tree}; refusing to use it")
    return config


def _no_redirection(git_dir: str) -> None:
    """Files that make git read config or objects from elsewhere; git-clone never writes them."""
    for name in ("commondir", "objects/info/alternates", "config.worktree"):
        if os.path.lexists(os.path.join(git_dir, name)):
            raise BadInput(f"{git_dir}/{name} exists: a checkout made by initkit has none; refusing to use it")


def _checked_config(git: Git, path: str, submodule: bool = False) -> dict[str, str | None]:
    if os.path.islink(path):
        raise BadInput(f"{path} is a symbolic link; refusing to use it")
    entries = read_config(git, path)
    for key, _ in entries:
        if not (CHECKOUT_KEYS.fullmatch(key) or (submodule and key == "core.worktree")):
            raise BadInput(
                f"{path} sets {key}, which initkit does not allow in a checkout (it may run commands "
                "or redirect git); remove it"
            )
    return dict(entries)


def check_submodule_links(work_tree: str, git_dir: str) -> None:
    """Each nested `.git` must be a gitfile into DEST/.git/modules (git would run in any repository)."""
    modules = os.path.realpath(os.path.join(git_dir, "modules"))
    for base, dirs, files in os.walk(work_tree):
        if base == work_tree:
            dirs[:] = [name for name in dirs if name != ".git"]
        for name in (n for n in dirs + files if n == ".git"):
            path = os.path.join(base, name)
            target = gitfile_target(path) if os.path.isfile(path) and not os.path.islink(path) else ""
            if not target or not is_within(target, modules):
                raise BadInput(f"{path} does not point into {modules}; refusing to update submodules")
        dirs[:] = [name for name in dirs if name != ".git"]


def gitfile_target(path: str) -> str:
    """Where a `.git` file points ("" when it is not a gitfile)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        line = handle.readline().strip()
    if not line.startswith("gitdir: "):
        return ""
    return os.path.realpath(os.path.join(os.path.dirname(path), line.removeprefix("gitdir: ")))
