"""git-clone against real servers: git daemon, smart HTTP with Basic auth, sshd."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import gitservers
from tests.conftest import initkit_command
from tests.gitservers import PASSWORD, USERNAME, GitDaemon, git

# the servers' fixtures, session-scoped (started once, stopped at the end)
git_daemon = gitservers.git_daemon
git_repos = gitservers.git_repos
git_http = gitservers.git_http
git_sshd = gitservers.git_sshd


def temps(dest):
    return sorted(dest.glob(".git.*.initkit-tmp.d"))


def tree(dest: Path) -> dict[str, int]:
    """Every path under dest (.git included) with its mtime."""
    found = {}
    for base, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(base, name)
            found[os.path.relpath(path, dest)] = os.lstat(path).st_mtime_ns
    return found


def head(dest: Path) -> str:
    return git("-C", dest, "rev-parse", "HEAD")


def complete(dest: Path) -> bool:
    """What a user (or a later run) sees as a finished checkout."""
    if not (dest / ".git").is_dir():
        return False
    flag = subprocess.run(["git", "-C", dest, "config", "initkit.cloning"], capture_output=True, text=True)
    return flag.returncode == 1


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def http_auth(password_file: Path) -> list[str]:
    return ["--username", USERNAME, "--password-file", str(password_file)]


def no_secret(result) -> None:
    assert PASSWORD not in result.stdout + result.stderr


# --- each transport -----------------------------------------------------------------


def test_clone_over_git_daemon_then_rerun_changes_nothing(run_cli, git_daemon, git_repos, tmp_path):
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest))
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas["c2"]
    assert (dest / "app/config.txt").read_text() == "version=2\n"
    assert f"cloned {git_daemon.url('main.git')} at {git_repos.shas['c2']}" in result.stderr
    assert not temps(dest) and complete(dest)
    before = tree(dest)
    time.sleep(0.01)
    again = run_cli("git-clone", git_daemon.url("main.git"), str(dest))
    assert again.code == 0, again.stderr
    assert "nothing to do" in again.stderr
    assert tree(dest) == before


def test_clone_over_http_with_basic_auth_keeps_password_out(run_cli, git_http, git_repos, tmp_path, http_auth):
    dest = tmp_path / "site"
    result = run_cli("--debug", "git-clone", git_http.url("main.git"), str(dest), *http_auth)
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas["c2"]
    config = (dest / ".git/config").read_text()
    assert PASSWORD not in config and "extraHeader" not in config
    assert f"url = {git_http.url('main.git')}" in config
    no_secret(result)
    before = tree(dest)
    again = run_cli("git-clone", git_http.url("main.git"), str(dest), *http_auth)
    assert again.code == 0, again.stderr
    assert tree(dest) == before


def test_credentials_in_the_url_are_stripped_and_redacted(run_cli, git_http, git_repos, tmp_path):
    dest = tmp_path / "site"
    url = git_http.url("main.git", f"{USERNAME}:{PASSWORD}@")
    result = run_cli("--debug", "git-clone", url, str(dest))
    assert result.code == 0, result.stderr
    no_secret(result)
    assert PASSWORD not in (dest / ".git/config").read_text()
    assert head(dest) == git_repos.shas["c2"]


@pytest.mark.parametrize("flag", ["--known-hosts-file", "--ssh-known-hosts-file"])  # the second: git-sync's name
def test_clone_over_ssh_with_key_and_known_hosts(run_cli, git_sshd, git_repos, tmp_path, flag):
    dest = tmp_path / "site"
    keys = ["--ssh-key-file", str(git_sshd.key_file), flag, str(git_sshd.known_hosts_file)]
    result = run_cli("git-clone", git_sshd.url("main.git"), str(dest), "--ref", "feature", *keys)
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas["c3"]
    assert (dest / "feature.txt").exists()


def test_ssh_unknown_host_key_fails(run_cli, git_sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    keys = ["--ssh-key-file", str(git_sshd.key_file), "--known-hosts-file", str(empty)]
    result = run_cli("git-clone", git_sshd.url("main.git"), str(tmp_path / "site"), *keys)
    assert result.code == 1
    assert "host key verification failed" in result.stderr
    assert not (tmp_path / "site").exists()


# --- refs, moves, depth, submodules -------------------------------------------------


@pytest.mark.parametrize(("ref", "expected"), [("main", "c2"), ("feature", "c3"), ("v1", "c1"), ("light", "c1")])
def test_branch_and_tag_refs(run_cli, git_daemon, git_repos, tmp_path, ref, expected):
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", ref)
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas[expected]


def test_full_sha_present_needs_no_network(run_cli, git_repos, tmp_path):
    daemon = GitDaemon(git_repos.root).start()
    dest, sha = tmp_path / "site", git_repos.shas["c1"]
    try:
        result = run_cli("git-clone", daemon.url("main.git"), str(dest), "--ref", sha, "--depth", "1")
        assert result.code == 0, result.stderr
    finally:
        daemon.stop()
    assert head(dest) == sha
    before = tree(dest)
    again = run_cli("git-clone", daemon.url("main.git"), str(dest), "--ref", sha)
    assert again.code == 0, again.stderr
    assert "nothing to do" in again.stderr
    assert tree(dest) == before
    # with the server gone, a branch cannot be resolved: proof the run above used no network
    offline = run_cli("git-clone", daemon.url("main.git"), str(dest), "--ref", "main")
    assert offline.code == 1 and "ls-remote failed" in offline.stderr


def test_ref_moves_and_back(run_cli, git_daemon, git_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("main.git")
    assert run_cli("git-clone", url, str(dest), "--ref", "v1", "--depth", "1").code == 0
    assert head(dest) == git_repos.shas["c1"]
    (dest / "untracked-note").write_text("kept\n")
    moved = run_cli("git-clone", url, str(dest), "--ref", "main", "--depth", "1")
    assert moved.code == 0, moved.stderr
    assert f"moved {dest} from {git_repos.shas['c1']} to {git_repos.shas['c2']}" in moved.stderr
    assert (dest / "app/config.txt").read_text() == "version=2\n"
    assert (dest / "untracked-note").read_text() == "kept\n"
    back = run_cli("git-clone", url, str(dest), "--ref", git_repos.shas["c3"])
    assert back.code == 0, back.stderr
    assert head(dest) == git_repos.shas["c3"] and not (dest / "notes.txt").exists()


def test_local_changes_block_a_move(run_cli, git_daemon, git_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("main.git")
    assert run_cli("git-clone", url, str(dest), "--ref", "main").code == 0
    (dest / "app/config.txt").write_text("edited by hand\n")
    result = run_cli("git-clone", url, str(dest), "--ref", "v1")
    assert result.code == 1
    assert "local changes to app/config.txt would be overwritten" in result.stderr
    assert (dest / "app/config.txt").read_text() == "edited by hand\n"
    assert head(dest) == git_repos.shas["c2"]


def test_depth_gives_a_shallow_clone(run_cli, git_daemon, git_repos, tmp_path):
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--depth", "1")
    assert result.code == 0, result.stderr
    assert git("-C", dest, "rev-list", "--count", "HEAD") == "1"
    assert (dest / ".git/shallow").exists()


def test_unknown_ref_fails(run_cli, git_daemon, tmp_path):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--ref", "abc1234")
    assert result.code == 1
    assert "ref 'abc1234' not found" in result.stderr and "full SHA" in result.stderr
    assert not (tmp_path / "site").exists()


def test_submodules_over_git_daemon(run_cli, git_daemon, git_repos, tmp_path):
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules", "--depth", "1")
    assert result.code == 0, result.stderr
    assert (dest / "vendor/sub/lib.txt").read_text() == "library\n"
    assert head(dest / "vendor/sub") == git_repos.shas["sub"]
    before = tree(dest)
    again = run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules")
    assert again.code == 0 and "nothing to do" in again.stderr
    assert tree(dest) == before


def test_submodules_added_on_a_later_run(run_cli, git_daemon, tmp_path):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("super.git"), str(dest)).code == 0
    assert not (dest / "vendor/sub/lib.txt").exists()
    result = run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules")
    assert result.code == 0 and "submodules updated" in result.stderr
    assert (dest / "vendor/sub/lib.txt").exists()


# --- what DEST may hold -------------------------------------------------------------


def test_tmpfs_mount_point_with_lost_and_found(run_cli, git_daemon, git_repos, tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", volume], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        (volume / "lost+found").mkdir()
        result = run_cli("git-clone", git_daemon.url("main.git"), str(volume))
        assert result.code == 0, result.stderr
        assert head(volume) == git_repos.shas["c2"]
        assert sorted(os.listdir(volume)) == [".git", "README.md", "app", "lost+found", "notes.txt"]
        moved = run_cli("git-clone", git_daemon.url("main.git"), str(volume), "--ref", "v1")
        assert moved.code == 0, moved.stderr
        assert (volume / "lost+found").is_dir()
    finally:
        subprocess.run(["umount", volume], check=True)


def test_foreign_dest_is_refused_untouched(run_cli, git_daemon, tmp_path):
    dest = tmp_path / "site"
    dest.mkdir()
    (dest / "index.html").write_text("someone else's\n")
    before = tree(dest)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest))
    assert result.code == 2
    assert "not a checkout" in result.stderr and "index.html" in result.stderr
    assert tree(dest) == before


def test_checkout_of_another_repo_is_refused(run_cli, git_daemon, tmp_path):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("other.git"), str(dest)).code == 0
    before = tree(dest)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest))
    assert result.code == 2
    assert f"is a checkout of {git_daemon.url('other.git')}" in result.stderr
    assert tree(dest) == before


def test_plain_git_clone_is_adopted_and_its_stored_password_dropped(run_cli, git_http, git_repos, tmp_path):
    dest = tmp_path / "site"
    url = git_http.url("main.git", f"{USERNAME}:{PASSWORD}@")
    subprocess.run(["git", "clone", "-q", "-b", "feature", url, dest], check=True, capture_output=True)
    result = run_cli("git-clone", url, str(dest), "--ref", "main")
    assert result.code == 0, result.stderr
    no_secret(result)
    assert head(dest) == git_repos.shas["c2"]
    assert PASSWORD not in (dest / ".git/config").read_text()


# --- failures and input -------------------------------------------------------------


def test_wrong_password_fails_without_showing_it(run_cli, git_http, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password-123\n")
    dest = tmp_path / "site"
    result = run_cli(
        "git-clone", git_http.url("main.git"), str(dest), "--username", USERNAME, "--password-file", str(wrong)
    )
    assert result.code == 1
    assert "authentication failed" in result.stderr
    assert "not-the-password-123" not in result.stderr + result.stdout
    assert not dest.exists()


def test_missing_password_file_is_bad_input(run_cli, git_http, tmp_path):
    result = run_cli(
        "git-clone", git_http.url("main.git"), str(tmp_path / "site"),
        "--username", USERNAME, "--password-file", str(tmp_path / "missing"),
    )  # fmt: skip
    assert result.code == 2
    assert f"password file {tmp_path / 'missing'} does not exist" in result.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ssh-key-file", "/nonexistent/key", "--known-hosts-file", "/dev/null"], "cannot read ssh key file"),
        (["--username", "u"], "apply to http(s) repositories only"),
    ],
)
def test_bad_ssh_input(run_cli, git_sshd, tmp_path, args, message):
    result = run_cli("git-clone", git_sshd.url("main.git"), str(tmp_path / "site"), *args)
    assert result.code == 2 and message in result.stderr


def test_missing_repository_fails_with_gits_reason(run_cli, git_http, tmp_path, http_auth):
    result = run_cli("git-clone", git_http.url("nope.git"), str(tmp_path / "site"), *http_auth)
    assert result.code == 1
    assert f"clone failed: fatal: repository '{git_http.url('nope.git')}/' not found" in result.stderr


def test_arguments_and_options_from_environment(run_cli, git_daemon, git_repos, tmp_path):
    dest = tmp_path / "site"
    env = {
        "INITKIT_GIT_CLONE_REPO": git_daemon.url("main.git"),
        "INITKIT_GIT_CLONE_DEST": str(dest),
        "INITKIT_GIT_CLONE_REF": "feature",
        "INITKIT_GIT_CLONE_DEPTH": "1",
    }
    result = run_cli("git-clone", env=env)
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas["c3"]


def test_help_names_env_vars_and_exit_codes(run_cli):
    result = run_cli("git-clone", "--help")
    assert result.code == 0
    for text in ("INITKIT_GIT_CLONE_REF", "INITKIT_GIT_CLONE_PASSWORD_FILE", "Exit codes", "Replaces:"):
        assert text in result.stdout


# --- interruptions: kill -9 and SIGTERM in the middle of a large clone --------------


def processes_naming(path: Path) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(path) in cmdline:
                found.append(cmdline)
    return found


def start_big_clone(git_http, dest: Path, password_file: Path) -> subprocess.Popen:
    """Start cloning big.git (throttled) in a child; return once the pack is arriving."""
    args = [
        "git-clone",
        git_http.url("big.git"),
        str(dest),
        "--username",
        USERNAME,
        "--password-file",
        str(password_file),
    ]
    proc = subprocess.Popen(initkit_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        arrived = 0
        for base, _, files in (w for t in temps(dest) for w in os.walk(t / "objects")):  # loose or tmp_pack_*
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    arrived += os.stat(os.path.join(base, name)).st_size
        if arrived > 4 << 20:
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the big clone never started")


def test_kill_9_mid_clone_then_rerun_completes(run_cli, git_http, git_repos, tmp_path, password_file):
    dest = tmp_path / "site"
    proc = start_big_clone(git_http, dest, password_file)
    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    running = processes_naming(git_http.url("big.git"))
    assert any("git" in cmdline for cmdline in running)  # git's argv is visible to anyone on the node ...
    assert not any(PASSWORD in cmdline or token in cmdline for cmdline in processes_naming(""))  # ... no secret
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert len(temps(dest)) == 1 and not (dest / ".git").exists()  # killed mid-fetch
    assert not complete(dest)
    deadline = time.monotonic() + 2
    while processes_naming(dest) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes_naming(dest), "the child git outlived initkit"
    result = run_cli(
        "git-clone", git_http.url("big.git"), str(dest), "--username", USERNAME, "--password-file", str(password_file)
    )
    assert result.code == 0, result.stderr
    no_secret(result)
    assert head(dest) == git_repos.shas["big"] and complete(dest)
    assert not temps(dest)
    assert len(list(dest.glob("blob*.bin"))) == 64
    assert git("-C", dest, "status", "--porcelain") == ""


def test_sigterm_mid_clone_exits_143_within_a_second_leaving_nothing(git_http, tmp_path, password_file):
    dest = tmp_path / "volume"
    dest.mkdir()
    (dest / "lost+found").mkdir()
    proc = start_big_clone(git_http, dest, password_file)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 1, err
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err
    assert PASSWORD not in err
    assert os.listdir(dest) == ["lost+found"]


def test_interrupted_checkout_is_finished_by_the_next_run(run_cli, git_daemon, git_repos, tmp_path):
    """Stopped after the rename, before the end of the checkout: not complete; resumed."""
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "v1").code == 0
    git("-C", dest, "config", "initkit.cloning", "true")
    (dest / "README.md").unlink()
    (dest / "leftover.tmp").write_text("partial\n")
    assert not complete(dest)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "main")
    assert result.code == 0, result.stderr
    assert "finishing an interrupted clone" in result.stderr
    assert head(dest) == git_repos.shas["c2"] and complete(dest)
    assert (dest / "README.md").exists() and not (dest / "leftover.tmp").exists()


def test_token_in_url_is_redacted(run_cli, git_http, tmp_path):
    result = run_cli("git-clone", git_http.url("main.git", "tok-SECRET-123@"), str(tmp_path / "site"))
    assert result.code == 1 and "authentication failed" in result.stderr
    assert "tok-SECRET-123" not in result.stderr


def test_unknown_full_sha_fails(run_cli, git_daemon, tmp_path):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--ref", "ab" * 20)
    assert result.code == 1
    assert f"commit {'ab' * 20} not found" in result.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--username", USERNAME], "--username needs --password-file"),
        (["--password-file", "PASSWORD_FILE"], "--password-file needs --username"),
        (["--ssh-key-file", "/dev/null"], "apply to ssh repositories only"),
    ],
)
def test_bad_http_input(run_cli, git_http, tmp_path, password_file, args, message):
    args = [str(password_file) if arg == "PASSWORD_FILE" else arg for arg in args]
    result = run_cli("git-clone", git_http.url("main.git"), str(tmp_path / "site"), *args)
    assert result.code == 2 and message in result.stderr


def test_ssh_key_needs_known_hosts(run_cli, git_sshd, tmp_path):
    result = run_cli(
        "git-clone", git_sshd.url("main.git"), str(tmp_path / "site"), "--ssh-key-file", str(git_sshd.key_file)
    )
    assert result.code == 2 and "--ssh-key-file needs --known-hosts-file" in result.stderr


def test_dest_that_is_not_a_checkout_directory(run_cli, git_daemon, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    assert run_cli("git-clone", git_daemon.url("main.git"), str(afile)).code == 2
    gitfile = tmp_path / "worktree"
    gitfile.mkdir()
    (gitfile / ".git").write_text("gitdir: /elsewhere\n")
    result = run_cli("git-clone", git_daemon.url("main.git"), str(gitfile))
    assert result.code == 2 and "is not a git directory" in result.stderr
    bare = tmp_path / "no-origin"
    git("init", "-q", bare)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(bare))
    assert result.code == 2 and "without an origin remote" in result.stderr


def test_locations_naming_the_same_repository():
    from initkit.git.remote import parse_remote, same_repository, ssh_options

    assert same_repository("https://u:p@Git.Example.com/x.git", "https://git.example.com/x/")
    assert not same_repository("https://git.example.com/x", "https://git.example.com/y")
    assert same_repository("git@host:team/x.git", "host:team/x")
    assert parse_remote("git@host:team/x.git").kind == "ssh"
    assert parse_remote("./local/repo").kind == "file"
    remote = parse_remote("https://a%40b:p%3Aw@host:8443/r.git")
    assert (remote.username, remote.password, remote.url) == ("a@b", "p:w", "https://host:8443/r.git")
    assert remote.scope == "https://host:8443/"
    options = ssh_options(["/keys/my key"], "/k/known_hosts%")
    assert 'IdentityFile="/keys/my key"' in options and 'UserKnownHostsFile="/k/known_hosts%%"' in options


# --- GitPython, several keys, odd states ---------------------------------------------


def test_git_runs_through_gitpython(git_daemon, git_repos, tmp_path):
    code = "import sys\nfrom initkit.cli import run\ncode = run(sys.argv[1:])\nprint(code, 'git.cmd' in sys.modules)"
    args = ["git-clone", git_daemon.url("main.git"), str(tmp_path / "site")]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["0", "True"], proc.stderr


def test_without_git_on_path_is_exit_2_not_an_import_error(run_proc, tmp_path):
    env = {"PATH": str(tmp_path), "GIT_PYTHON_REFRESH": ""}
    result = run_proc("git-clone", "git://127.0.0.1:9/x.git", str(tmp_path / "site"), env=env)
    assert result.code == 2
    assert result.lines == [
        "initkit git-clone: error: git-clone needs git, which is not on PATH "
        "(initkit-slim has no git: use the initkit image)"
    ]


def test_several_ssh_keys_are_tried_in_turn(run_cli, git_sshd, git_repos, tmp_path):
    wrong = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrong], check=True)
    dest = tmp_path / "site"
    keys = ["--known-hosts-file", str(git_sshd.known_hosts_file)]
    only_wrong = run_cli("git-clone", git_sshd.url("main.git"), str(dest), "--ssh-key-file", str(wrong), *keys)
    assert only_wrong.code == 1 and "authentication failed" in only_wrong.stderr
    keys += ["--ssh-key-file", str(wrong), "--ssh-key-file", str(git_sshd.key_file)]
    result = run_cli("git-clone", git_sshd.url("main.git"), str(dest), *keys)
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas["c2"]


def test_several_ssh_keys_from_the_environment(run_cli, git_sshd, git_repos, tmp_path):
    wrong = tmp_path / "wrong key"  # a blank in the path: one key per line
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrong], check=True)
    env = {
        "INITKIT_GIT_CLONE_SSH_KEY_FILE": f"{wrong}\n{git_sshd.key_file}\n",
        "INITKIT_GIT_CLONE_KNOWN_HOSTS_FILE": str(git_sshd.known_hosts_file),
    }
    result = run_cli("git-clone", git_sshd.url("main.git"), str(tmp_path / "site"), env=env)
    assert result.code == 0, result.stderr


def test_a_broken_head_is_named_as_such(run_cli, git_daemon, git_repos, tmp_path):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "v1").code == 0
    (dest / ".git/HEAD").write_text("ref: refs/heads/gone\n")
    refused = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "main")
    assert refused.code == 1 and f"cannot move {dest} from an unreadable HEAD to" in refused.stderr
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "v1")
    assert result.code == 0, result.stderr
    assert f"moved {dest} from an unreadable HEAD to {git_repos.shas['c1']}" in result.stderr
    assert "None" not in refused.stderr + result.stderr
    assert head(dest) == git_repos.shas["c1"]


def test_rerun_at_an_annotated_tag_changes_nothing(run_cli, git_daemon, git_repos, tmp_path):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "v1").code == 0
    again = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "v1")
    assert again.code == 0 and f"already at {git_repos.shas['c1']}: nothing to do" in again.stderr, again.stderr
