"""The checkout in DEST, as named states and the steps between them (see State).

How DEST is read, so that a re-run after any interruption does the right thing:

- EMPTY: missing, empty, or holding only `lost+found` (a volume's mount point): clone.
  The clone is fetched into DEST/.git.HEX.initkit-tmp.d (fs's one temp scheme), which is renamed to DEST/.git
  only once the commit is there; DEST itself is never renamed nor removed.
- CLONING: DEST/.git with `initkit.cloning` set in its config: a clone that was stopped
  between that rename and the end of the checkout; finish it (forced checkout,
  untracked leftovers removed: nobody but initkit has used that tree yet).
- CHECKED_OUT: DEST/.git of REPO, complete: nothing to do when HEAD is the requested
  commit (no network at all when --ref is a full SHA); else a non-forced checkout, so
  local changes are never destroyed.
- anything else (other files, another repository): refused, nothing touched.

After a move, the work tree of a submodule the commit no longer has is deleted (git
cannot); a finished clone's submodules stopped half-way are cloned again. The depth
fetched is recorded (`initkit.depth`) so that a changed --depth applies on a re-run.

DEST/.git may have been written by the app container that shares the volume: before git
runs in it, its config is checked against an allow-list (`config.checkout_config`), and
git is always told --git-dir and --work-tree, never left to discover a repository.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import time
from dataclasses import dataclass

from initkit import cancel, fs, log, redact
from initkit.errors import BadInput, JobFailed
from initkit.fs import is_within, remove_tree
from initkit.git import config
from initkit.git.remote import Remote, same_repository
from initkit.git.runner import Git, Outcome, failure, reason

TMP_GIT = ("git", "d")  # fs.temp_name(*TMP_GIT): where a new clone is fetched before it becomes .git
CLONING_KEY = "initkit.cloning"
DEPTH_KEY = "initkit.depth"
FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class State(enum.Enum):
    """What DEST holds, as `Checkout.survey` reads it. The steps between them:

    EMPTY --clone--> CLONING --finish--> CHECKED_OUT --update--> CHECKED_OUT

    `clone` fetches into a temp directory beside .git (fs.temp_name) and renames it to DEST/.git only once the commit
    is there, so a run killed before the rename leaves EMPTY (the temp dir is removed and
    the clone starts over); `finish` checks out and then unsets CLONING_KEY, so a run
    killed before that leaves CLONING, which the next run finishes.
    """

    EMPTY = "empty"  # missing, empty, or only lost+found (and temps a killed clone left)
    CLONING = "cloning"  # DEST/.git with initkit.cloning set: fetched, the checkout unfinished
    CHECKED_OUT = "checked out"  # a complete checkout of REPO, maybe at another commit


@dataclass(frozen=True)
class Options:
    ref: str | None
    depth: int  # 0: the full history
    depth_explicit: bool  # given, not the default: applied to a checkout that never recorded one
    submodules: str  # recursive, shallow or off
    gc: str  # auto, always, aggressive or off
    filter: str | None
    sparse: bytes | None  # the patterns of --sparse-checkout-file


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


class Checkout:
    """DEST and the steps that bring it to the requested commit (see State)."""

    def __init__(self, git: Git, remote: Remote, dest: str, options: Options) -> None:
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
        self.sha = self.ref.lower() if self.ref and FULL_SHA.match(self.ref.lower()) else None
        self.fetched: str | None = None  # the commit `clone` fetched, for `finish`
        self.config: dict[str, str | None] = {}

    # --- what is in DEST --------------------------------------------------------------

    def run(self) -> bool:
        """Bring DEST to the requested commit; return whether anything in it changed."""
        state = self.survey()
        log.debug(f"{self.dest}: {state.value}")
        if state is State.CHECKED_OUT:
            return self.update()
        while state is not State.CHECKED_OUT:
            state = self.clone() if state is State.EMPTY else self.finish()
        return True

    def survey(self) -> State:
        dest = self.dest
        if os.path.lexists(dest) and not os.path.isdir(dest):
            raise BadInput(f"{dest} exists and is not a directory")
        try:
            entries = set(os.listdir(dest))
        except FileNotFoundError:
            return State.EMPTY
        except OSError as exc:
            raise JobFailed(f"cannot read {dest}: {exc.strerror}") from None
        entries = {name for name in entries if fs.temp_of(name, {TMP_GIT[0]}) is None}
        if os.path.isdir(os.path.join(dest, "lost+found")):
            entries.discard("lost+found")
        if ".git" not in entries:
            if entries:
                shown = ", ".join(sorted(entries)[:5]) + (", ..." if len(entries) > 5 else "")
                raise BadInput(
                    f"{dest} holds files that are not a checkout of {self.remote.url} ({shown}); refusing to touch them"
                )
            return State.EMPTY
        if os.path.islink(self.git_dir) or not os.path.isdir(self.git_dir):
            raise BadInput(f"{self.git_dir} is not a git directory; refusing to touch {dest}")
        if not os.path.isfile(os.path.join(self.git_dir, "config")):
            raise BadInput(f"{dest} holds a damaged or foreign .git (no config); refusing to touch it")
        values = config.checkout_config(self.git, self.git_dir, dest)
        self.config = values
        origin = values.get("remote.origin.url")
        if origin is None:
            raise BadInput(f"{dest} is a git checkout without an origin remote; refusing to touch it")
        if not same_repository(origin, self.remote.url):
            raise BadInput(
                f"{dest} is a checkout of {redact.redact(origin)}, not of {self.remote.url}; refusing to touch it"
            )
        if origin != self.remote.url:  # e.g. credentials stored by a plain `git clone`: drop them
            self.git.check(
                *self.repo, "remote", "set-url", "--end-of-options", "origin", self.remote.url, what="update"
            )
        return State.CLONING if values.get(CLONING_KEY) else State.CHECKED_OUT

    # --- a new clone ------------------------------------------------------------------

    def clone(self) -> State:
        """EMPTY -> CLONING: fetch into a temp directory in DEST, then rename it to DEST/.git."""
        created = not os.path.isdir(self.dest)
        try:
            os.makedirs(self.dest, exist_ok=True)
        except OSError as exc:
            raise JobFailed(f"cannot create {self.dest}: {exc.strerror}") from None
        for left in fs.sweep(self.dest, {TMP_GIT[0]}):  # kill -9 runs no clean-up: the next run does
            log.info(f"removed {os.path.join(self.dest, left)} left by an interrupted clone")
        tmp = os.path.join(self.dest, fs.temp_name(*TMP_GIT))
        log.info(f"cloning {self.remote.url} ({self.describe()}) into {self.dest}")
        try:
            git = ["--git-dir", tmp]
            # --template=: no template at all (its config and info/attributes would be the new .git's)
            self.git.check("init", "-q", "--bare", "--template=", tmp, what="clone")
            self.git.check(*git, "config", "core.bare", "false", what="clone")
            self.git.check(*git, "config", CLONING_KEY, "true", what="clone")
            self.git.check(*git, "remote", "add", "--end-of-options", "origin", self.remote.url, what="clone")
            self.fetched = self.fetch(git, what="clone")
            os.rename(tmp, self.git_dir)
        except BaseException:
            _remove(tmp)
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(self.dest)
            raise
        return State.CLONING

    def finish(self) -> State:
        """CLONING -> CHECKED_OUT: check out in a tree only initkit has written to, then
        unset CLONING_KEY. Resuming a run stopped in this state, the commit is fetched
        again (it may be missing) and whatever that run left in the tree is cleaned."""
        sha, resumed = self.fetched, self.fetched is None
        if sha is None:
            log.info(f"finishing an interrupted clone of {self.remote.url} in {self.dest}")
            self.remove_stale_lock()
            sha = self.fetch(self.repo)
        wt = self.tree
        self.configure_sparse()
        self.git.check(*wt, "checkout", "-q", "--force", "--detach", sha, "--", what="checkout")
        if resumed:
            self.git.check(*wt, "clean", "-q", "-ffdx", "-e", "/lost+found", what="checkout")
            self.reset_submodules()
        if self.options.submodules != "off":
            self.update_submodules()
        self.git.check(*self.repo, "config", "--unset", CLONING_KEY, what="checkout")
        log.info(
            f"cloned {self.remote.url} at {sha} into {self.dest} in {time.monotonic() - self.started:.1f}s",
            commit=sha,
        )
        return State.CHECKED_OUT

    # --- an existing checkout ---------------------------------------------------------

    def update(self) -> bool:
        """CHECKED_OUT -> CHECKED_OUT: move to the requested commit, never destroying local
        changes; return whether anything changed."""
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
        return failure(f"checkout of {target}", outcome)

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
            raise failure(what, fetched, self.git.credentials)
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
            log.warning(f"git gc failed ({reason(done.err.splitlines())}); the checkout is complete")

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
        try:
            with fs.open_dir(self.git_dir, ["info"], create=True) as info:
                written = fs.write_atomic(
                    info, "sparse-checkout", self.options.sparse, shown=f"{self.git_dir}/info/sparse-checkout"
                )
        except fs.UnsafePath as exc:
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
        config.check_submodule_links(self.dest, self.git_dir)
        self.git.check(
            *self.tree, "-C", self.dest, "submodule", "update", "-q", "--init", *recursive, *history,
            what="submodule update",
        )  # fmt: skip

    def submodules_stale(self) -> bool:
        config.check_submodule_links(self.dest, self.git_dir)
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
            sub_git_dir = config.gitfile_target(gitfile)
            if not sub_git_dir or not is_within(
                sub_git_dir, modules
            ):  # not a submodule initkit made: not ours to judge
                continue
            owner = max((tree for tree in owners if is_within(base, tree) and tree != base), key=len)
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


def _remove(path: str) -> None:
    """Remove a temp git dir, even while a killed git's last writes land in it."""
    for _ in range(5):
        try:
            remove_tree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            cancel.current().wait(0.05)
    with contextlib.suppress(OSError):
        remove_tree(path)
