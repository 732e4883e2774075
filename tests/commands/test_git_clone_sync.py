"""git-clone at parity with `git-sync --one-time` (issue 12): one test per option and defect,
against the real servers of tests/gitservers.py."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import gitservers
from tests.commands.test_git_clone import complete, head, processes_naming, tree
from tests.conftest import initkit_command, wait_until
from tests.gitservers import PASSWORD, USERNAME, AskpassServer, GitHTTPServer, GitHTTPSServer, add_repo, git
from tests.security.hostile_git import RecordingProxy

git_daemon = gitservers.git_daemon
git_repos = gitservers.git_repos
git_http = gitservers.git_http


@pytest.fixture(autouse=True)
def _served_repos(git_repos: gitservers.Repos) -> None:
    """Every test here clones the served repositories: made before any of them runs, alone or not."""


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture(scope="session")
def sub_repos(git_daemon, git_repos, tmp_path_factory) -> dict[str, list[str]]:
    """subrm.git: a submodule, then none. mid.git: a nested submodule, then none.
    nest.git: mid at its first commit, then at its second (the nested one gone)."""
    root, work = git_daemon.root, tmp_path_factory.mktemp("sync-work")
    sub = ("submodule", git_daemon.url("sub.git"), git_repos.shas["sub"])
    made = {"subrm": add_repo(root, work, "subrm.git", [{"top.txt": "1\n", "vendor/sub": sub}, {"vendor/sub": None}])}
    made["mid"] = add_repo(root, work, "mid.git", [{"mid.txt": "m\n", "inner": sub}, {"inner": None}])
    mid = git_daemon.url("mid.git")
    made["nest"] = add_repo(
        root, work, "nest.git",
        [{"n.txt": "n\n", "mid": ("submodule", mid, made["mid"][0])}, {"mid": ("submodule", mid, made["mid"][1])}],
    )  # fmt: skip
    return made


def clean_status(dest: Path) -> str:
    return git("-C", dest, "status", "--porcelain", "--ignore-submodules=none")


# --- defect: a removed submodule left its files behind ----------------------------


def test_a_removed_submodule_is_deleted_and_restored_on_the_way_back(run_cli, git_daemon, sub_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("subrm.git")
    first, second = sub_repos["subrm"]
    assert run_cli("git-clone", url, str(dest), "--ref", first, "--submodules").code == 0
    assert (dest / "vendor/sub/lib.txt").exists()
    moved = run_cli("git-clone", url, str(dest), "--ref", second, "--submodules")
    assert moved.code == 0, moved.stderr
    assert not (dest / "vendor").exists()
    assert clean_status(dest) == ""
    assert f"removed {dest / 'vendor/sub'}: a submodule the commit no longer has" in moved.stderr
    back = run_cli("git-clone", url, str(dest), "--ref", first, "--submodules")
    assert back.code == 0, back.stderr
    assert (dest / "vendor/sub/lib.txt").exists() and clean_status(dest) == ""


def test_a_removed_submodule_is_deleted_even_without_submodules(run_cli, git_daemon, sub_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("subrm.git")
    first, second = sub_repos["subrm"]
    assert run_cli("git-clone", url, str(dest), "--ref", first, "--submodules").code == 0
    moved = run_cli("git-clone", url, str(dest), "--ref", second)
    assert moved.code == 0, moved.stderr
    assert not (dest / "vendor").exists() and clean_status(dest) == ""


def test_a_removed_nested_submodule_is_deleted(run_cli, git_daemon, sub_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("nest.git")
    first, second = sub_repos["nest"]
    assert run_cli("git-clone", url, str(dest), "--ref", first, "--submodules").code == 0
    assert (dest / "mid/inner/lib.txt").exists()
    moved = run_cli("git-clone", url, str(dest), "--ref", second, "--submodules")
    assert moved.code == 0, moved.stderr
    assert (dest / "mid/mid.txt").exists() and not (dest / "mid/inner").exists()
    assert clean_status(dest) == "" and clean_status(dest / "mid") == ""


def test_a_removed_submodule_with_local_changes_is_kept(run_cli, git_daemon, sub_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("subrm.git")
    first, second = sub_repos["subrm"]
    assert run_cli("git-clone", url, str(dest), "--ref", first, "--submodules").code == 0
    (dest / "vendor/sub/lib.txt").write_text("edited\n")
    moved = run_cli("git-clone", url, str(dest), "--ref", second)
    assert moved.code == 0, moved.stderr
    assert "holds local changes" in moved.stderr
    assert (dest / "vendor/sub/lib.txt").read_text() == "edited\n"


# --- defect: SIGTERM during the first clone's checkout -----------------------------


def test_sigterm_during_the_first_checkout_leaves_it_marked_and_the_next_run_finishes(
    run_cli, git_daemon, git_repos, tmp_path
):
    """README: a clone stopped during its checkout (here: fetching its submodule) is left
    marked unfinished, and the next run finishes it."""
    slow = GitHTTPServer(git_repos.root, throttled=("/big.git/",), throttle_rate=8 << 20, open_access=True).start()
    try:
        name = f"superbig-{os.getpid()}-{time.monotonic_ns()}.git"
        add_repo(
            git_daemon.root, tmp_path / "work", name,
            [{"top.txt": "top\n", "big": ("submodule", slow.url("big.git"), git_repos.shas["big"])}],
        )  # fmt: skip
        dest = tmp_path / "site"
        error = tmp_path / "error"
        args = ["git-clone", git_daemon.url(name), str(dest), "--submodules", "--error-file", str(error)]
        proc = subprocess.Popen(initkit_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not (dest / ".git/modules/big").is_dir() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        wait_until(lambda: (dest / "top.txt").exists() or proc.poll() is not None, 20, "the checkout to begin")
        assert (dest / ".git").is_dir() and (dest / "top.txt").exists()  # past the rename, in the checkout
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 1, err
        assert proc.returncode == 143, err
        assert not processes_naming(dest)
        assert (dest / ".git").is_dir() and not complete(dest)  # marked unfinished, as the README says
        assert error.read_text() == "stopped by SIGTERM\n"
        again = run_cli(*args)
        assert again.code == 0, again.stderr
        assert "finishing an interrupted clone" in again.stderr
        assert not error.exists()
    finally:
        slow.stop()
    assert complete(dest) and len(list((dest / "big").glob("blob*.bin"))) == 64
    assert clean_status(dest) == ""


# --- --submodules recursive|shallow|off --------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "mid", "inner"),
    [
        (["--submodules"], {}, True, True),
        (["--submodules", "recursive"], {}, True, True),
        (["--submodules=shallow"], {}, True, False),
        (["--submodules", "off"], {}, False, False),
        ([], {}, False, False),
        ([], {"INITKIT_GIT_CLONE_SUBMODULES": "true"}, True, True),  # the env var of the old flag
        ([], {"INITKIT_GIT_CLONE_SUBMODULES": "shallow"}, True, False),
    ],
)
def test_submodules_modes(run_cli, git_daemon, sub_repos, tmp_path, args, env, mid, inner):
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("nest.git"), str(dest), *args, "--ref", sub_repos["nest"][0], env=env)
    assert result.code == 0, result.stderr
    assert (dest / "mid/mid.txt").exists() == mid
    assert (dest / "mid/inner/lib.txt").exists() == inner


def test_submodules_mode_is_checked(run_cli, git_daemon, tmp_path):
    result = run_cli("git-clone", git_daemon.url("nest.git"), str(tmp_path / "site"), "--submodules", "deep")
    assert result.code == 2 and "not one of recursive, shallow, off" in result.stderr


# --- --depth: default 1, 0 for the full history, a change applied on a re-run ------


def count(dest: Path) -> int:
    return int(git("-C", dest, "rev-list", "--count", "HEAD"))


def test_depth_default_zero_and_changes_on_rerun(run_cli, git_daemon, git_repos, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url("main.git")
    assert run_cli("git-clone", url, str(dest)).code == 0
    assert count(dest) == 1 and (dest / ".git/shallow").exists()  # git-sync's default: depth 1
    full = run_cli("git-clone", url, str(dest), "--depth", "0")
    assert full.code == 0, full.stderr
    assert "history complete" in full.stderr
    assert count(dest) == 2 and not (dest / ".git/shallow").exists()
    again = run_cli("git-clone", url, str(dest), "--depth", "0")
    assert again.code == 0 and "nothing to do" in again.stderr
    cut = run_cli("git-clone", url, str(dest), "--depth", "1", "--git-gc", "always")
    assert cut.code == 0 and "cut to depth 1" in cut.stderr, cut.stderr
    assert count(dest) == 1
    old = git("rev-parse", f"{git_repos.shas['c1']}:app/config.txt", cwd=git_repos.path("main.git"))
    missing = subprocess.run(["git", "-C", dest, "cat-file", "-e", old], capture_output=True)
    assert missing.returncode != 0  # the older history's objects were collected


def test_full_history_from_the_start(run_cli, git_daemon, tmp_path):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--depth", "0").code == 0
    assert count(dest) == 2 and not (dest / ".git/shallow").exists()


def test_a_checkout_without_a_recorded_depth_keeps_its_history(run_cli, git_daemon, tmp_path):
    """An older initkit's full clone is not cut by the new default; an explicit --depth cuts it."""
    dest, url = tmp_path / "site", git_daemon.url("main.git")
    assert run_cli("git-clone", url, str(dest), "--depth", "0").code == 0
    git("-C", dest, "config", "--unset", "initkit.depth")
    assert "nothing to do" in run_cli("git-clone", url, str(dest)).stderr
    assert count(dest) == 2
    assert run_cli("git-clone", url, str(dest), "--depth", "1").code == 0
    assert count(dest) == 1


# --- --git-gc ---------------------------------------------------------------------


def objects(dest: Path) -> dict[str, int]:
    lines = git("-C", dest, "count-objects", "-v").splitlines()
    return {key: int(value) for key, value in (line.split(": ") for line in lines) if value.isdigit()}


@pytest.mark.parametrize(("mode", "collected"), [("always", True), ("aggressive", True), ("off", False)])
def test_git_gc_after_a_move(run_cli, git_daemon, tmp_path, mode, collected):
    dest, url = tmp_path / "site", git_daemon.url("main.git")
    assert run_cli("git-clone", url, str(dest), "--ref", "v1", "--depth", "0").code == 0
    result = run_cli("git-clone", url, str(dest), "--ref", "main", "--depth", "0", "--git-gc", mode)
    assert result.code == 0, result.stderr
    found = objects(dest)
    assert (found["count"] == 0 and found["packs"] == 1) == collected, found


# --- --group-write ----------------------------------------------------------------


def test_group_write(run_cli, git_daemon, tmp_path):
    umask = os.umask(0o022)
    try:
        plain, shared = tmp_path / "plain", tmp_path / "shared"
        assert run_cli("git-clone", git_daemon.url("main.git"), str(plain)).code == 0
        result = run_cli("git-clone", git_daemon.url("main.git"), str(shared), "--group-write")
        assert result.code == 0, result.stderr
        assert os.umask(0o022) == 0o022  # restored for whatever runs next in this process
    finally:
        os.umask(umask)
    for path in ("app/config.txt", "app", ".git/index", ".git/objects", ".git/HEAD"):
        assert not stat.S_IMODE((plain / path).stat().st_mode) & 0o020, path
        assert stat.S_IMODE((shared / path).stat().st_mode) & 0o020, path
    # the next run accepts what --group-write left in .git/config
    assert run_cli("git-clone", git_daemon.url("main.git"), str(shared), "--ref", "v1").code == 0


# --- --git-config, --git-config-add, --ca-file --------------------------------------


def test_git_config_reaches_git_and_not_the_checkout(run_cli, git_http, git_repos, tmp_path, password_file):
    proxy = RecordingProxy()
    dest = tmp_path / "site"
    auth = ["--username", USERNAME, "--password-file", str(password_file)]
    try:
        quoted = f'"http.proxy":"{proxy.url}",http.lowSpeedTime:"7"'
        result = run_cli(
            "git-clone",
            git_http.url("main.git"),
            str(dest),
            "--git-config",
            quoted,
            "--timeout",
            "2s",
            *auth,
            env={"NO_PROXY": ""},
        )
        assert result.code == 1, result.stderr
        wait_until(lambda: proxy.received, 5, "the proxy to record git's request")
        assert proxy.received[0].startswith(b"GET http://127.0.0.1")
        assert PASSWORD not in result.stderr
    finally:
        proxy.stop()
    ok = run_cli(
        "git-clone", git_http.url("main.git"), str(dest), *auth,
        "--git-config-add", "http.lowSpeedTime:30", "--git-config-add", "core.quotePath:false",
    )  # fmt: skip
    assert ok.code == 0, ok.stderr
    config = (dest / ".git/config").read_text()
    assert "proxy" not in config and "lowSpeed" not in config and "quotePath" not in config
    assert head(dest) == git_repos.shas["c2"]


def test_git_config_from_the_environment(run_cli, git_daemon, tmp_path):
    env = {"INITKIT_GIT_CLONE_GIT_CONFIG_ADD": "core.fsmonitor:true\n"}
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), env=env)
    assert result.code == 2 and "--git-config-add may not set core.fsmonitor" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [("novalue", "expected key:value"), ('"k.v', "unexpected end of quoted string"), ("k.v:a\\q", "escape")],
)
def test_malformed_git_config(run_cli, git_daemon, tmp_path, value, message):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--git-config", value)
    assert result.code == 2 and message in result.stderr and len(result.lines) == 1


def test_git_config_parsing_as_git_sync_does():
    from initkit.git.config import parse_git_configs

    assert parse_git_configs('a.b:c,"url.https://x/.insteadOf":"git@x:",d.e:f\\,g,h.i:"j,k",l.m:n\\tn') == [
        ("a.b", "c"), ("url.https://x/.insteadOf", "git@x:"), ("d.e", "f,g"), ("h.i", "j,k"), ("l.m", "n\tn"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def git_https(git_repos, tmp_path_factory):
    server = GitHTTPSServer(git_repos.root, tmp_path_factory.mktemp("tls"), open_access=True).start()
    yield server
    server.stop()


def test_ca_file(run_cli, git_https, git_repos, tmp_path):
    refused = run_cli("git-clone", git_https.url("main.git"), str(tmp_path / "a"))
    assert refused.code == 1 and "certificate" in refused.stderr.lower()
    result = run_cli("git-clone", git_https.url("main.git"), str(tmp_path / "b"), "--ca-file", str(git_https.ca_file))
    assert result.code == 0, result.stderr
    assert head(tmp_path / "b") == git_repos.shas["c2"]
    assert "sslcainfo" not in (tmp_path / "b/.git/config").read_text().lower()
    missing = run_cli("git-clone", git_https.url("main.git"), str(tmp_path / "c"), "--ca-file", str(tmp_path / "no"))
    assert missing.code == 2 and "cannot read CA file" in missing.stderr


# --- --credential: per URL, for submodules on other hosts ---------------------------


def test_credential_per_url_for_a_submodule_on_another_host(run_cli, git_http, git_repos, tmp_path, password_file):
    other = GitHTTPServer(git_repos.root, address="127.0.0.2")
    other.expected_auth = "Basic " + __import__("base64").b64encode(b"bob:bobs-Secret-42").decode()
    other.start()
    try:
        name = f"http-super-{time.monotonic_ns()}.git"
        add_repo(
            git_repos.root, tmp_path / "work", name,
            [{"top.txt": "t\n", "lib": ("submodule", git_repos.path("sub.git").as_uri(), git_repos.shas["sub"])}],
        )  # fmt: skip
        git("config", "--file", git_repos.path(name) / "config", "uploadpack.allowAnySHA1InWant", "true")
        work = tmp_path / "rewrite"
        git("clone", "-q", git_repos.path(name), work)
        git("config", "-f", ".gitmodules", "submodule.lib.url", other.url("sub.git"), cwd=work)
        git("commit", "-q", "-am", "lib over http on another host", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        bob = tmp_path / "bob"
        bob.write_text("bobs-Secret-42\n")
        auth = ["--username", USERNAME, "--password-file", str(password_file), "--submodules"]
        without = run_cli("git-clone", git_http.url(name), str(tmp_path / "a"), *auth)
        assert without.code == 1 and "authentication failed" in without.stderr
        assert f"authentication failed for http://127.0.0.2:{other.port}" in without.stderr  # the host wanting them
        cred = json.dumps({"url": f"http://127.0.0.2:{other.port}", "username": "bob", "password-file": str(bob)})
        result = run_cli("--debug", "git-clone", git_http.url(name), str(tmp_path / "b"), *auth, "--credential", cred)
        assert result.code == 0, result.stderr
        assert (tmp_path / "b/lib/lib.txt").exists()
        assert "bobs-Secret-42" not in result.stderr and PASSWORD not in result.stderr
        alice = __import__("base64").b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        assert all(alice not in headers.get("Authorization", "") for headers in other.seen)  # scoped per host
        for config in (tmp_path / "b/.git").rglob("config"):
            assert "bobs-Secret" not in config.read_text() and "extraheader" not in config.read_text().lower()
    finally:
        other.stop()


def test_the_most_specific_credential_wins(run_cli, git_http, git_repos, tmp_path, password_file):
    """A credential for the host with a wrong password, one for the repository with the right
    one, from the environment as one JSON list: only the repository's is sent."""
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it-123\n")
    creds = [
        {"url": git_http.url(""), "username": USERNAME, "password-file": str(wrong)},
        {"url": git_http.url("main.git"), "username": USERNAME, "password-file": str(password_file)},
    ]
    env = {"INITKIT_GIT_CLONE_CREDENTIAL": json.dumps(creds, indent=2)}
    result = run_cli("git-clone", git_http.url("main.git"), str(tmp_path / "site"), env=env)
    assert result.code == 0, result.stderr
    assert head(tmp_path / "site") == git_repos.shas["c2"]
    other = run_cli("git-clone", git_http.url("other.git"), str(tmp_path / "other"), env=env)
    assert other.code == 1 and "authentication failed" in other.stderr  # the host's (wrong) one
    assert "not-it-123" not in other.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"url": "https://x.example", "username": "u", "password": "p"}', 'give "password-file"'),
        ('{"url": "https://x.example", "username": "u"}', "needs url, username and password-file"),
        ('{"url": "ssh://x.example/r", "username": "u", "password-file": "/dev/null"}', "http(s) URL"),
        ("{nope", "not JSON"),
    ],
)
def test_bad_credentials(run_cli, git_daemon, tmp_path, value, message):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--credential", value)
    assert result.code == 2 and message in result.stderr and len(result.lines) == 1
    assert not (tmp_path / "site").exists()


# --- --askpass-url ------------------------------------------------------------------


def test_askpass_url(run_cli, git_http, git_repos, tmp_path):
    askpass = AskpassServer(f"username={USERNAME}\npassword={PASSWORD}\n")
    try:
        result = run_cli(
            "--debug", "git-clone", git_http.url("main.git"), str(tmp_path / "site"), "--askpass-url", askpass.url
        )
    finally:
        askpass.stop()
    assert result.code == 0, result.stderr
    assert askpass.requests == 1 and PASSWORD not in result.stderr
    assert head(tmp_path / "site") == git_repos.shas["c2"]
    assert PASSWORD not in (tmp_path / "site/.git/config").read_text()


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [("nope", 500, "answered HTTP 500"), ("username=x\n", 200, "without a password= line")],
)
def test_askpass_url_failures(run_cli, git_http, tmp_path, answer, status, message):
    askpass = AskpassServer(answer, status)
    try:
        result = run_cli("git-clone", git_http.url("main.git"), str(tmp_path / "site"), "--askpass-url", askpass.url)
    finally:
        askpass.stop()
    assert result.code == 1 and message in result.stderr
    assert not (tmp_path / "site").exists()


def test_askpass_wrong_password_is_redacted(run_cli, git_http, tmp_path):
    askpass = AskpassServer("username=alice\npassword=wrong-Secret-991\n")
    try:
        result = run_cli("git-clone", git_http.url("main.git"), str(tmp_path / "site"), "--askpass-url", askpass.url)
        both = run_cli(
            "git-clone", git_http.url("main.git"), str(tmp_path / "s2"), "--askpass-url", askpass.url, "--username", "x"
        )
    finally:
        askpass.stop()
    assert result.code == 1 and "authentication failed" in result.stderr
    assert "wrong-Secret-991" not in result.stderr
    assert both.code == 2 and "--askpass-url replaces" in both.stderr


# --- --error-file and --touch-file ------------------------------------------------


def test_error_file_written_then_removed(run_cli, git_daemon, tmp_path):
    error, dest = tmp_path / "status/error", tmp_path / "site"
    failed = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "nope", "--error-file", str(error))
    assert failed.code == 1
    assert error.read_text() == "clone failed: ref 'nope' not found in " + git_daemon.url("main.git") + "\n"
    assert not list(error.parent.glob("*.initkit-tmp"))
    ok = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--error-file", str(error))
    assert ok.code == 0, ok.stderr
    assert not error.exists()


def test_error_file_is_never_written_through_a_symlink(run_cli, git_daemon, tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep\n")
    link = tmp_path / "error"
    link.symlink_to(target)
    result = run_cli(
        "git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--ref", "nope", "--error-file", str(link)
    )
    assert result.code == 1 and "symlink" in result.stderr
    assert target.read_text() == "keep\n"


def test_touch_file_when_dest_changed(run_cli, git_daemon, tmp_path):
    touch, dest, url = tmp_path / "touched", tmp_path / "site", git_daemon.url("main.git")
    assert run_cli("git-clone", url, str(dest), "--ref", "v1", "--touch-file", str(touch)).code == 0
    assert touch.exists()
    os.utime(touch, (1, 1))
    assert run_cli("git-clone", url, str(dest), "--ref", "v1", "--touch-file", str(touch)).code == 0
    assert touch.stat().st_mtime == 1  # nothing changed: not touched
    assert run_cli("git-clone", url, str(dest), "--ref", "main", "--touch-file", str(touch)).code == 0
    assert touch.stat().st_mtime > 1
    target = tmp_path / "target"
    target.write_text("x")
    os.utime(target, (1, 1))
    touch.unlink()
    touch.symlink_to(target)
    result = run_cli("git-clone", url, str(dest), "--ref", "v1", "--touch-file", str(touch))
    assert result.code == 0 and "symlink" in result.stderr
    assert target.stat().st_mtime == 1


def test_error_and_touch_files_cannot_be_inside_dest(run_cli, git_daemon, tmp_path):
    dest = tmp_path / "site"
    for flag in ("--error-file", "--touch-file"):
        result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), flag, str(dest / "status"))
        assert result.code == 2 and "outside DEST" in result.stderr
    assert not dest.exists()


# --- --sparse-checkout-file and --filter ------------------------------------------


def test_sparse_checkout_applied_changed_and_dropped(run_cli, git_repos, git_daemon, tmp_path):
    dest, url, patterns = tmp_path / "site", git_daemon.url("main.git"), tmp_path / "sparse"
    patterns.write_text("/app/\n")
    result = run_cli("git-clone", url, str(dest), "--sparse-checkout-file", str(patterns))
    assert result.code == 0, result.stderr
    assert sorted(os.listdir(dest)) == [".git", "app"]
    patterns.write_text("/README.md\n")
    changed = run_cli("git-clone", url, str(dest), "--sparse-checkout-file", str(patterns))
    assert changed.code == 0 and "sparse checkout applied" in changed.stderr, changed.stderr
    assert sorted(os.listdir(dest)) == [".git", "README.md"]
    before = tree(dest)
    assert "nothing to do" in run_cli("git-clone", url, str(dest), "--sparse-checkout-file", str(patterns)).stderr
    assert tree(dest) == before
    dropped = run_cli("git-clone", url, str(dest))
    assert dropped.code == 0 and "sparse checkout turned off" in dropped.stderr, dropped.stderr
    assert sorted(os.listdir(dest)) == [".git", "README.md", "app", "notes.txt"]


@pytest.fixture(scope="module")
def filtered_repo(git_daemon, git_repos) -> str:
    """main.git, served with partial clone allowed (git daemon needs uploadpack.allowFilter)."""
    name = f"filtered-{time.monotonic_ns()}.git"
    git("clone", "-q", "--bare", git_repos.path("main.git"), git_daemon.root / name)
    git("config", "--file", git_daemon.root / name / "config", "uploadpack.allowFilter", "true")
    return name


def test_partial_clone_with_a_filter(run_cli, git_daemon, git_repos, filtered_repo, tmp_path):
    dest, url = tmp_path / "site", git_daemon.url(filtered_repo)
    result = run_cli("git-clone", url, str(dest), "--filter", "blob:none", "--depth", "0")
    assert result.code == 0, result.stderr
    assert git("-C", dest, "config", "remote.origin.promisor") == "true"
    missing = git("-C", dest, "rev-list", "--objects", "--all", "--missing=print")
    assert any(line.startswith("?") for line in missing.splitlines())  # c1's blobs were not fetched
    assert (dest / "app/config.txt").read_text() == "version=2\n" and clean_status(dest) == ""
    moved = run_cli("git-clone", url, str(dest), "--filter", "blob:none", "--depth", "0", "--ref", "v1")
    assert moved.code == 0, moved.stderr  # the blobs v1 needs are fetched on demand
    assert (dest / "app/config.txt").read_text() == "version=1\n"


def test_bad_filter_is_bad_input(run_cli, git_daemon, tmp_path):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--filter", "--upload-pack=x")
    assert result.code == 2 and "invalid --filter" in result.stderr


# --- --git-config's format, for any input ------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def _bare(text: str) -> str:
    """An unquoted value, as git-sync's manual says: commas (and backslashes) escaped.
    An empty value must be quoted (git-sync: "no value")."""
    if not text:
        return '""'
    escaped = text.replace("\\", "\\\\").replace(",", "\\,")
    return "\\" + escaped if escaped.startswith('"') else escaped


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(_text.filter(bool), _text), max_size=5), quoted=st.booleans())
def test_git_config_format_round_trips(pairs, quoted):
    from initkit.git.config import parse_git_configs

    text = ",".join(f"{_quote(key)}:{_quote(value) if quoted else _bare(value)}" for key, value in pairs)
    assert parse_git_configs(text) == pairs


@settings(max_examples=300, deadline=None)
@given(text=_text)
def test_any_git_config_text_parses_or_is_one_line_of_bad_input(text):
    from initkit.errors import BadInput
    from initkit.git.config import check_user_config, parse_git_configs

    try:
        for key, value in parse_git_configs(text):
            check_user_config(key, value)
    except BadInput as exc:
        assert "\n" not in str(exc) or "\n" in text


def test_a_users_extra_header_is_sent_beside_the_credentials(run_cli, git_http, tmp_path, password_file):
    dest = tmp_path / "site"
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it-123\n")
    creds = json.dumps({"url": git_http.url("main.git"), "username": USERNAME, "password-file": str(password_file)})
    host = json.dumps({"url": git_http.url(""), "username": USERNAME, "password-file": str(wrong)})
    before = len(git_http.seen)
    result = run_cli(
        "git-clone", git_http.url("main.git"), str(dest), "--credential", creds, "--credential", host,
        "--git-config-add", "http.extraHeader:X-Team: blue",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    sent = git_http.seen[before:]
    assert sent and all(headers.get("X-Team") == "blue" for headers in sent)
