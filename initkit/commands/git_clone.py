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

DEST/.git may have been written by the app container that shares the volume: before git
runs in it, its config is checked against an allow-list (gitrepo.checkout_config), and
git is always told --git-dir and --work-tree, never left to discover a repository.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import TYPE_CHECKING

import click

from initkit import log, redact
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.params import Duration, Line, option

if TYPE_CHECKING:  # gitrepo itself loads only when the command runs
    from initkit.gitrepo import Git, Outcome, Remote

TMP_GIT_DIR = ".git.initkit-tmp"
CLONING_KEY = "initkit.cloning"


@click.command("git-clone", epilog=EXIT_CODES_HELP)
@click.argument("repo", envvar="INITKIT_GIT_CLONE_REPO")
@click.argument("dest", envvar="INITKIT_GIT_CLONE_DEST")
@option("--ref", metavar="REF", help="Branch, tag or full commit SHA.  [default: the remote's HEAD]")
@option(
    "--depth",
    metavar="N",
    type=click.IntRange(min=1, max=2**31 - 1),
    help="Fetch only the last N commits (submodules too).",
)
@option("--submodules", is_flag=True, help="Also check out submodules, recursively.")
@option("--username", metavar="USER", help="User name for http(s) basic authentication.")
@option("--password-file", metavar="FILE", help="File holding the http(s) password or token.")
@option(
    "--ssh-key-file",
    metavar="FILE",
    type=Line(),
    multiple=True,
    help="Private key for ssh (instead of anything in ~/.ssh); repeat for several (env: one per line).",
)
@option("--known-hosts-file", metavar="FILE", help="known_hosts file for ssh; host keys are always checked.")
@option(
    "--timeout",
    type=Duration(),
    default="10m",
    help="Give up after this long, for the whole job (0: none); a stalled http server fails sooner.",
)
def command(
    repo: str,
    dest: str,
    ref: str | None,
    depth: int | None,
    submodules: bool,
    username: str | None,
    password_file: str | None,
    ssh_key_file: tuple[str, ...],
    known_hosts_file: str | None,
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
    import shutil

    from initkit import gitrepo

    if not repo:
        raise BadInput("REPO is empty")
    if not dest:
        raise BadInput("DEST is empty")
    if shutil.which("git", path=os.environ.get("PATH", os.defpath)) is None:
        raise BadInput("git-clone needs git, which is not on PATH (initkit-slim has no git: use the initkit image)")
    remote = gitrepo.parse_remote(repo)
    if remote.kind == "ssh" and gitrepo.ssh_looks_like_option(remote.url):
        raise BadInput(f"invalid REPO {remote.url!r}: an ssh host or user cannot start with '-'")
    header = _http_credentials(remote, username, password_file)
    ssh = _ssh_options(remote, list(ssh_key_file), known_hosts_file)
    gitrepo.scrub_environment()
    env = gitrepo.git_environment(header=header, scope=remote.scope, ssh=ssh)
    git = gitrepo.Git(env, credentials=bool(header or ssh), timeout=timeout)
    if ref is not None:
        gitrepo.check_ref(git, ref)
    Clone(git, remote, os.path.abspath(dest), ref, depth, submodules).run()


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


class Clone:
    def __init__(
        self, git: Git, remote: Remote, dest: str, ref: str | None, depth: int | None, submodules: bool
    ) -> None:
        from initkit import gitrepo

        self.gitrepo = gitrepo
        self.git = git
        self.remote = remote
        self.dest = dest
        self.git_dir = os.path.join(dest, ".git")
        # git is never left to discover a repository: DEST/.git is named, or nothing is
        self.repo = ["--git-dir", self.git_dir]
        self.tree = ["--git-dir", self.git_dir, "--work-tree", dest]
        self.ref = ref
        self.depth = depth
        self.submodules = submodules
        self.started = time.monotonic()
        self.sha = ref.lower() if ref and gitrepo.FULL_SHA.match(ref.lower()) else None

    # --- what is in DEST --------------------------------------------------------------

    def run(self) -> None:
        state = self.survey()
        if state == "empty":
            self.clone()
        elif state == "cloning":
            log.info(f"finishing an interrupted clone of {self.remote.url} in {self.dest}")
            self.remove_stale_lock()
            self.finish(self.fetch(self.repo), clean=True, verb="cloned")
        else:
            self.update()

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
            self.git.check("init", "-q", "--bare", tmp, what="clone")
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
        self.git.check(*wt, "checkout", "-q", "--force", "--detach", sha, "--", what="checkout")
        if clean:
            self.git.check(*wt, "clean", "-q", "-ffdx", "-e", "/lost+found", what="checkout")
        if self.submodules:
            self.update_submodules()
        self.git.check(*self.repo, "config", "--unset", CLONING_KEY, what="checkout")
        log.info(
            f"{verb} {self.remote.url} at {sha} into {self.dest} in {time.monotonic() - self.started:.1f}s",
            commit=sha,
        )

    # --- an existing checkout ---------------------------------------------------------

    def update(self) -> None:
        wt = self.tree
        head = self.git.run(*self.repo, "rev-parse", "--verify", "-q", "HEAD^{commit}").out.strip() or None
        target = self.sha or self.resolve_remote()
        if target != head and not self.present(target):
            target = self.fetch(self.repo)
        if target == head:
            if self.submodules and self.submodules_stale():
                self.update_submodules()
                log.info(f"{self.dest} at {head}: submodules updated", commit=head)
            else:
                log.info(f"{self.dest} already at {head}: nothing to do", commit=head)
            return
        moved = self.git.run(*wt, "checkout", "-q", "--detach", target, "--")
        if not moved.ok:
            raise self.refused(head, target, moved)
        if self.submodules:
            self.update_submodules()
        origin = f"from {head}" if head else "from an unreadable HEAD"
        log.info(f"moved {self.dest} {origin} to {target}", commit=target, previous=head)

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

    def fetch(self, git: list[str], what: str = "fetch") -> str:
        """Fetch the requested commit; return its SHA."""
        depth = ["--depth", str(self.depth)] if self.depth else []
        if self.sha:
            if self.present(self.sha, git):
                return self.sha
            direct = self.git.run(*git, "fetch", "-q", "--no-tags", *depth, "--end-of-options", "origin", self.sha)
            if not direct.ok:  # a server that refuses to serve unadvertised commits
                log.debug("fetching the commit directly failed; fetching all branches and tags")
                self.git.check(*git, "fetch", "-q", "--tags", *depth, "--end-of-options", "origin", what=what)
            if not self.present(self.sha, git):
                raise JobFailed(f"{what} failed: commit {self.sha} not found in {self.remote.url}")
            return self.sha
        ref = self.ref or "HEAD"
        fetched = self.git.run(*git, "fetch", "-q", "--no-tags", *depth, "--end-of-options", "origin", ref)
        if not fetched.ok:
            if "couldn't find remote ref" in fetched.err:
                raise JobFailed(f"{what} failed: ref {ref!r} not found in {self.remote.url}" + self.sha_hint())
            raise self.gitrepo.failure(what, fetched, self.git.credentials)
        return self.git.check(*git, "rev-parse", "--verify", "FETCH_HEAD^{commit}", what=what).out.strip()

    def present(self, sha: str, git: list[str] | None = None) -> bool:
        return self.git.run(*(git or self.repo), "cat-file", "-e", f"{sha}^{{commit}}").ok

    def sha_hint(self) -> str:
        ref = self.ref or ""
        if 4 <= len(ref) < 40 and all(c in "0123456789abcdefABCDEF" for c in ref):
            return " (a commit must be given as its full SHA)"
        return ""

    def describe(self) -> str:
        return f"ref {self.ref}" if self.ref else "the remote's HEAD"

    # --- submodules and leftovers -----------------------------------------------------

    def update_submodules(self) -> None:
        depth = ["--depth", str(self.depth)] if self.depth else []
        self.gitrepo.check_submodule_links(self.dest, self.git_dir)
        self.git.check(
            *self.tree,
            "-C",
            self.dest,
            "submodule",
            "update",
            "-q",
            "--init",
            "--recursive",
            *depth,
            what="submodule update",
        )

    def submodules_stale(self) -> bool:
        self.gitrepo.check_submodule_links(self.dest, self.git_dir)
        status = self.git.check(
            *self.tree, "-C", self.dest, "submodule", "status", "--recursive", what="submodule status"
        )
        return any(line[:1] in ("-", "+", "U") for line in status.out.splitlines())

    def remove_stale_lock(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.git_dir, "index.lock"))


def _remove(path: str) -> None:
    """Remove a temp git dir, even while a killed git's last writes land in it."""
    for _ in range(5):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    shutil.rmtree(path, ignore_errors=True)
