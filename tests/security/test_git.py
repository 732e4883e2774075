"""git-clone against hostile input: refs that look like options, a poisoned shared volume
(the app container can write DEST/.git), servers that redirect across hosts or stall."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import gitservers
from tests.commands.test_git_clone import head, processes_naming, tree
from tests.conftest import initkit_command
from tests.gitservers import PASSWORD, USERNAME, GitHTTPServer, git
from tests.security.hostile_git import RecordingProxy, Redirector, StallingServer

git_daemon = gitservers.git_daemon
git_repos = gitservers.git_repos
git_http = gitservers.git_http
git_sshd = gitservers.git_sshd


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that exists only if a planted command ran."""
    return tmp_path / "pwned"


# --- #1: refs are validated in one place -------------------------------------------


@pytest.mark.parametrize("transport", ["file", "daemon"])
def test_ref_that_is_an_option_runs_nothing(run_cli, git_daemon, git_repos, tmp_path, marker, transport):
    repo = str(git_repos.path("main.git")) if transport == "file" else git_daemon.url("main.git")
    result = run_cli("git-clone", repo, str(tmp_path / "site"), "--ref", f"--upload-pack=touch {marker};")
    assert result.code == 2, result.stderr
    assert "cannot start with '-'" in result.stderr
    assert not marker.exists() and not (tmp_path / "site").exists()


@pytest.mark.parametrize("ref", ["-uX", "main:refs/heads/evil", "a..b", "main^{}", "x y", "", "refs/heads/"])
def test_malformed_refs_are_bad_input(run_cli, git_daemon, tmp_path, ref):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--ref", ref)
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "--ref" in result.stderr
    assert not (tmp_path / "site").exists()


def test_nested_and_odd_but_valid_refs_still_work(run_cli, git_daemon, git_repos, tmp_path):
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), "--ref", "refs/tags/v1")
    assert result.code == 0, result.stderr
    assert head(tmp_path / "site") == git_repos.shas["c1"]


# --- #7: a poisoned checkout ---------------------------------------------------------


@pytest.fixture
def checkout(run_cli, git_daemon, git_repos, tmp_path) -> Path:
    """A checkout initkit made of main.git at v1; the app container now writes into it."""
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--ref", "v1").code == 0
    return dest


def plant(dest: Path, key: str, value: str, config: str = ".git/config") -> None:
    git("config", "--file", dest / config, key, value)


def script(path: Path, marker: Path) -> str:
    """An executable that leaves the marker (and would serve as proxy, editor, helper...)."""
    path.write_text(f"#!/bin/sh\ntouch {marker}\n")
    path.chmod(0o755)
    return str(path)


POISON = {
    "core.fsmonitor": lambda tmp, marker: script(tmp / "fsmonitor", marker),
    "core.gitProxy": lambda tmp, marker: script(tmp / "proxy", marker),
    "core.sshCommand": lambda tmp, marker: script(tmp / "ssh", marker),
    "core.askPass": lambda tmp, marker: script(tmp / "askpass", marker),
    "core.worktree": lambda tmp, marker: str(tmp / "elsewhere"),
    "credential.helper": lambda tmp, marker: "!" + script(tmp / "helper", marker),
    "remote.origin.uploadpack": lambda tmp, marker: script(tmp / "upload", marker),
    "remote.origin.proxy": lambda tmp, marker: "http://127.0.0.1:9",
    "http.proxy": lambda tmp, marker: "http://127.0.0.1:9",
    "url.http://127.0.0.1:9/.insteadOf": lambda tmp, marker: "git://",
    "submodule.x.update": lambda tmp, marker: "!" + script(tmp / "update", marker),
    "extensions.worktreeConfig": lambda tmp, marker: "true",
    "core.pager": lambda tmp, marker: script(tmp / "pager", marker),
}


@pytest.mark.parametrize("key", list(POISON))
def test_planted_config_is_refused_and_never_runs(run_cli, git_daemon, git_repos, checkout, tmp_path, marker, key):
    plant(checkout, key, POISON[key](tmp_path, marker))
    before = tree(checkout)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 2, result.stderr
    assert f"sets {key.split('.')[0].lower()}." in result.stderr.lower()
    assert not marker.exists()
    assert tree(checkout) == before and head(checkout) == git_repos.shas["c1"]
    assert not (tmp_path / "elsewhere").exists()


def test_include_path_pulling_a_filter_driver_is_refused(run_cli, git_daemon, checkout, tmp_path, marker):
    """A filter (from config pulled in by include.path) would run at the checkout of a
    file its attribute names; .git/info/attributes is app-writable too."""
    included = tmp_path / "included.config"
    git("config", "--file", included, "filter.x.smudge", script(tmp_path / "smudge", marker))
    (checkout / ".git/info").mkdir(exist_ok=True)
    (checkout / ".git/info/attributes").write_text("* filter=x\n")
    plant(checkout, "include.path", str(included))
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 2 and "sets include.path" in result.stderr
    plant(checkout, "include.path", "/dev/null")
    git("config", "--file", checkout / ".git/config", "--unset-all", "include.path")
    git("config", "--file", checkout / ".git/config", "includeIf.gitdir:/.path", str(included))
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 2 and "sets includeif." in result.stderr.lower()
    assert not marker.exists()


def test_filter_driver_in_config_is_refused(run_cli, git_daemon, checkout, tmp_path, marker):
    (checkout / ".git/info").mkdir(exist_ok=True)
    (checkout / ".git/info/attributes").write_text("* filter=x\n")
    plant(checkout, "filter.x.smudge", script(tmp_path / "smudge", marker))
    plant(checkout, "filter.x.required", "true")
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 2 and "sets filter.x.smudge" in result.stderr
    assert not marker.exists()


def test_planted_proxy_never_sees_the_credentials(run_cli, git_http, git_repos, tmp_path):
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    auth = ["--username", USERNAME, "--password-file", str(password)]
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_http.url("main.git"), str(dest), "--ref", "v1", *auth).code == 0
    proxy = RecordingProxy()
    try:
        for key in ("http.proxy", f"http.{git_http.url('')}.proxy", "remote.origin.proxy"):
            plant(dest, key, proxy.url)
            result = run_cli("git-clone", git_http.url("main.git"), str(dest), "--ref", "main", *auth)
            assert result.code == 2 and f"sets {key.lower()}" in result.stderr.lower(), result.stderr
            git("config", "--file", dest / ".git/config", "--unset", key)
        time.sleep(0.2)
        assert proxy.received == []
    finally:
        proxy.stop()
    result = run_cli("git-clone", git_http.url("main.git"), str(dest), "--ref", "main", *auth)
    assert result.code == 0, result.stderr  # the cleaned checkout is usable again
    assert head(dest) == git_repos.shas["c2"]


def test_poisoned_submodule_config_is_refused(run_cli, git_daemon, tmp_path, marker):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules").code == 0
    plant(dest, "core.fsmonitor", script(tmp_path / "fsmonitor", marker), ".git/modules/vendor/sub/config")
    result = run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules")
    assert result.code == 2 and "modules/vendor/sub/config sets core.fsmonitor" in result.stderr
    git("config", "--file", dest / ".git/modules/vendor/sub/config", "--unset", "core.fsmonitor")
    plant(dest, "core.worktree", str(tmp_path / "elsewhere"), ".git/modules/vendor/sub/config")
    result = run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules")
    assert result.code == 2 and "core.worktree outside" in result.stderr
    assert not marker.exists()


def test_submodule_gitfile_pointing_elsewhere_is_refused(run_cli, git_daemon, tmp_path, marker):
    dest = tmp_path / "site"
    assert run_cli("git-clone", git_daemon.url("super.git"), str(dest)).code == 0
    evil = tmp_path / "evil"
    git("init", "-q", evil)
    plant(evil, "core.fsmonitor", script(tmp_path / "fsmonitor", marker))
    (dest / "vendor/sub").mkdir(parents=True, exist_ok=True)
    (dest / "vendor/sub/.git").write_text(f"gitdir: {evil / '.git'}\n")
    result = run_cli("git-clone", git_daemon.url("super.git"), str(dest), "--submodules")
    assert result.code == 2 and "does not point into" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("what", ["commondir", "alternates", "symlink", "gitfile", "config-symlink"])
def test_git_dir_that_leads_elsewhere_is_refused(run_cli, git_daemon, checkout, tmp_path, what):
    other = tmp_path / "other"
    git("init", "-q", "--bare", other)
    gitdir = checkout / ".git"
    if what == "commondir":
        (gitdir / "commondir").write_text(f"{other}\n")
    elif what == "alternates":
        (gitdir / "objects/info/alternates").write_text(f"{other / 'objects'}\n")
    elif what == "config-symlink":
        (gitdir / "config").unlink()
        (gitdir / "config").symlink_to(other / "config")
    else:
        subprocess.run(["rm", "-rf", gitdir], check=True)
        if what == "symlink":
            gitdir.symlink_to(other)
        else:
            gitdir.write_text(f"gitdir: {other}\n")
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the checkout to another uid")
def test_checkout_owned_by_another_uid_is_still_updated(run_cli, git_daemon, git_repos, checkout):
    """fsGroup volumes: DEST (and what the app wrote) belong to another uid. git's own
    ownership check would refuse; initkit checks the content instead."""
    subprocess.run(["chown", "-R", "65534:65534", checkout], check=True)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 0, result.stderr
    assert git("--git-dir", checkout / ".git", "rev-parse", "HEAD") == git_repos.shas["c2"]
    assert (checkout / "app/config.txt").read_text() == "version=2\n"


# --- #3: credentials never follow a redirect to another host ------------------------


@pytest.fixture
def other_host(git_repos):
    """A git server on 127.0.0.2 that serves anyone and records every request's headers."""
    server = GitHTTPServer(git_repos.root, address="127.0.0.2", open_access=True).start()
    yield server
    server.stop()


def test_credentials_do_not_follow_a_cross_host_redirect(run_cli, other_host, tmp_path):
    redirector = Redirector(f"http://127.0.0.2:{other_host.port}")
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    results = []
    try:
        for index, (url, auth) in enumerate(
            (
                (redirector.url("main.git"), ["--username", USERNAME, "--password-file", str(password)]),
                (redirector.url("main.git", f"{USERNAME}:{PASSWORD}@"), []),
            )
        ):
            results.append(run_cli("git-clone", url, str(tmp_path / f"site{index}"), *auth))
    finally:
        redirector.stop()
    assert redirector.seen and all("Authorization" in headers for headers in redirector.seen)
    assert all("Authorization" not in headers for headers in other_host.seen), other_host.seen
    for index, result in enumerate(results):
        assert result.code == 1, result.stderr
        assert "redirect" in result.stderr and PASSWORD not in result.stderr
        assert not (tmp_path / f"site{index}").exists()


def test_a_redirect_without_credentials_is_followed(run_cli, other_host, git_repos, tmp_path):
    redirector = Redirector(f"http://127.0.0.2:{other_host.port}")
    try:
        result = run_cli("git-clone", redirector.url("main.git"), str(tmp_path / "site"))
    finally:
        redirector.stop()
    assert result.code == 0, result.stderr
    assert head(tmp_path / "site") == git_repos.shas["c2"]


# --- #8: a deadline ------------------------------------------------------------------


def test_stalled_server_hits_the_timeout(run_cli, git_daemon, git_repos, tmp_path):
    server = StallingServer()
    dest = tmp_path / "site"
    try:
        started = time.monotonic()
        result = run_cli("git-clone", server.url("main.git"), str(dest), "--timeout", "2s")
        elapsed = time.monotonic() - started
        assert server.requests >= 1
    finally:
        server.stop()
    assert result.code == 1, result.stderr
    assert "timed out after 2s (--timeout)" in result.stderr and len(result.lines) <= 2
    assert 2 <= elapsed < 4
    assert not processes_naming(dest) and not processes_naming(f":{server.port}/")
    assert not dest.exists()  # nothing a re-run could mistake for a checkout


def test_timeout_from_environment_and_zero_means_none(run_cli, git_daemon, git_repos, tmp_path):
    server = StallingServer()
    try:
        result = run_cli("git-clone", server.url("x.git"), str(tmp_path / "a"), env={"INITKIT_GIT_CLONE_TIMEOUT": "1s"})
    finally:
        server.stop()
    assert result.code == 1 and "timed out after 1s" in result.stderr
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "b"), "--timeout", "0")
    assert result.code == 0, result.stderr
    huge = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "c"), "--timeout", "9" * 20)
    assert huge.code == 2 and "at most 365d" in huge.stderr  # one duration rule for every command
    assert not (tmp_path / "c").exists()


def test_timeout_mid_fetch_leaves_a_dest_a_rerun_finishes(run_cli, git_repos, tmp_path):
    slow = GitHTTPServer(git_repos.root, throttled=("/big.git/",), throttle_rate=8 << 20, open_access=True).start()
    dest = tmp_path / "site"
    try:
        result = run_cli("git-clone", slow.url("big.git"), str(dest), "--timeout", "2s")
        assert result.code == 1 and "timed out" in result.stderr, result.stderr
        assert not processes_naming(dest)
        again = run_cli("git-clone", slow.url("big.git"), str(dest), "--timeout", "1m")
        assert again.code == 0, again.stderr
    finally:
        slow.stop()
    assert head(dest) == git_repos.shas["big"]


def test_stalled_http_transfer_fails_on_the_low_speed_limit(run_cli, monkeypatch, tmp_path):
    from initkit.git import runner

    monkeypatch.setattr(runner, "LOW_SPEED_TIME", 2)
    server = StallingServer()
    try:
        started = time.monotonic()
        result = run_cli("git-clone", server.url("main.git"), str(tmp_path / "site"), "--timeout", "0")
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert result.code == 1, result.stderr
    assert "too slow" in result.stderr.lower() or "timed out" in result.stderr.lower()
    assert elapsed < 10


# --- low: empty arguments --------------------------------------------------------------


@pytest.mark.parametrize(("repo", "dest", "message"), [("", "site", "REPO is empty"), ("REPO", "", "DEST is empty")])
def test_empty_repo_or_dest_is_bad_input(run_cli, git_daemon, tmp_path, monkeypatch, repo, dest, message):
    monkeypatch.chdir(tmp_path)
    repo = git_daemon.url("main.git") if repo == "REPO" else repo
    result = run_cli("git-clone", repo, dest)
    assert result.code == 2 and message in result.stderr
    assert os.listdir(tmp_path) == []


# --- defence in depth: what every git call overrides --------------------------------


def poisoned_repo(tmp_path: Path, marker: Path) -> Path:
    repo = tmp_path / "poisoned"
    git("init", "-q", repo)
    for key in ("core.fsmonitor", "core.gitProxy", "core.askPass", "core.sshCommand"):
        plant(repo, key, script(tmp_path / key, marker))
    plant(repo, "credential.helper", "!" + script(tmp_path / "helper", marker))
    return repo


@pytest.mark.parametrize(
    ("what", "args"),
    [
        ("fsmonitor", ["status"]),
        ("gitProxy", ["ls-remote", "git://127.0.0.1:9/x.git"]),
        ("askPass and credential.helper", ["ls-remote", "HTTP"]),
        ("sshCommand", ["ls-remote", "ssh://git@127.0.0.1:9/x.git"]),
    ],
)
def test_every_git_call_overrides_what_a_checkout_could_run(git_http, tmp_path, marker, what, args):
    """Even past the allow-list, initkit's environment wins over these keys of a repository's
    config. The same call without it runs the planted program, so the test can fail."""
    from initkit.git.remote import ssh_options
    from initkit.git.runner import git_environment

    repo = poisoned_repo(tmp_path, marker)
    args = [git_http.url("main.git") if arg == "HTTP" else arg for arg in args]
    argv = ["git", "--git-dir", str(repo / ".git"), "--work-tree", str(repo), *args]
    plain = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(argv, env=plain, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert marker.exists(), f"control: the planted {what} did not run without initkit's environment"
    marker.unlink()
    ssh = ssh_options([], None)
    env = {**plain, **git_environment(ssh=ssh)}
    subprocess.run(argv, env=env, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert not marker.exists(), f"the planted {what} ran"


# --- refs, for any input --------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_ref_is_accepted_only_if_git_would_take_it_as_a_name(ref):
    from initkit.errors import BadInput
    from initkit.git.checkout import FULL_SHA, check_ref
    from initkit.git.runner import Git, git_environment

    runner = Git(git_environment())
    try:
        check_ref(runner, ref)
    except BadInput as exc:
        assert "\n" not in str(exc)
        return
    assert not ref.startswith("-")
    named = subprocess.run(["git", "check-ref-format", "--allow-onelevel", ref], capture_output=True)
    assert named.returncode == 0 or FULL_SHA.match(ref.lower())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=30))
def test_any_ref_on_the_command_line_is_exit_1_or_2_in_one_line(run_cli, tmp_path, ref):
    dest = tmp_path / "site"
    result = run_cli("git-clone", "git://127.0.0.1:9/x.git", str(dest), "--ref", ref)
    assert result.code in (1, 2), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.lines[-1].startswith("initkit git-clone: error: ") and len(result.lines) <= 2
    assert not dest.exists()


SSH = ["--known-hosts-file", os.devnull]


@pytest.mark.parametrize(
    ("repo", "args"),
    [
        ("ssh://-oProxyCommand=touch${IFS}MARKER/x.git", SSH),
        ("ssh://-oProxyCommand=x@127.0.0.1/x.git", SSH),
        ("-oProxyCommand=touch${IFS}MARKER:x.git", SSH),
        ("git://127.0.0.1:9/x.git", ["--depth", "9" * 20]),
    ],
)
def test_option_like_ssh_hosts_and_huge_depths_are_bad_input(run_cli, tmp_path, marker, repo, args):
    result = run_cli("git-clone", repo.replace("MARKER", str(marker)), str(tmp_path / "site"), *args)
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and not marker.exists() and not (tmp_path / "site").exists()


# --- issue 12: --git-config may not re-open what initkit closes ----------------------


REFUSED_CONFIG = {
    "core.fsmonitor": lambda tmp, marker: script(tmp / "fsmonitor", marker),
    "Core.FSMonitor": lambda tmp, marker: script(tmp / "fsmonitor", marker),
    "core.sshCommand": lambda tmp, marker: script(tmp / "ssh", marker),
    "core.hooksPath": lambda tmp, marker: str(tmp),
    "core.gitProxy": lambda tmp, marker: script(tmp / "proxy", marker),
    "core.askPass": lambda tmp, marker: script(tmp / "askpass", marker),
    "credential.helper": lambda tmp, marker: "!" + script(tmp / "helper", marker),
    "credential.https://x.example.helper": lambda tmp, marker: "!" + script(tmp / "helper", marker),
    "protocol.ext.allow": lambda tmp, marker: "always",
    "protocol.allow": lambda tmp, marker: "always",
    "include.path": lambda tmp, marker: str(tmp / "included"),
    "includeIf.gitdir:/.path": lambda tmp, marker: str(tmp / "included"),
    "filter.x.smudge": lambda tmp, marker: script(tmp / "smudge", marker),
    "remote.origin.uploadpack": lambda tmp, marker: script(tmp / "upload", marker),
    "submodule.x.update": lambda tmp, marker: "!" + script(tmp / "update", marker),
    "alias.status": lambda tmp, marker: "!" + script(tmp / "alias", marker),
    "gc.auto": lambda tmp, marker: "1",
    "initkit.cloning": lambda tmp, marker: "true",
}


@pytest.mark.parametrize("key", list(REFUSED_CONFIG))
@pytest.mark.parametrize("flag", ["--git-config", "--git-config-add"])
def test_git_config_cannot_reopen_what_initkit_closes(run_cli, git_daemon, tmp_path, marker, key, flag):
    value = REFUSED_CONFIG[key](tmp_path, marker)
    pair = f'"{key}":"{value}"'
    result = run_cli("git-clone", git_daemon.url("main.git"), str(tmp_path / "site"), flag, pair)
    assert result.code == 2, result.stderr
    assert f"{flag} may not set {key}" in result.stderr and len(result.lines) == 1
    assert not marker.exists() and not (tmp_path / "site").exists()


def test_git_config_cannot_let_credentials_follow_a_redirect(run_cli, other_host, tmp_path):
    """http.followRedirects is not on --git-config's allow-list; the general form would come
    before initkit's own keys, which win, the URL-scoped one would not (issue 15 #3)."""
    redirector = Redirector(f"http://127.0.0.2:{other_host.port}")
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    auth = ["--username", USERNAME, "--password-file", str(password)]
    try:
        result = run_cli(
            "git-clone", redirector.url("main.git"), str(tmp_path / "site"), *auth,
            "--git-config", "http.followRedirects:true",
        )  # fmt: skip
    finally:
        redirector.stop()
    assert all("Authorization" not in headers for headers in other_host.seen)
    assert result.code == 2 and "may not set http.followRedirects" in result.stderr


def test_git_config_extra_header_authenticates_and_stays_out_of_the_checkout(run_cli, git_http, git_repos, tmp_path):
    import base64

    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    header = f"http.extraHeader:Authorization: Basic {token}"
    result = run_cli("--debug", "git-clone", git_http.url("main.git"), str(tmp_path / "site"), "--git-config", header)
    assert result.code == 0, result.stderr  # the user's own header authenticates
    assert token not in result.stderr
    assert token not in (tmp_path / "site/.git/config").read_text()
    assert head(tmp_path / "site") == git_repos.shas["c2"]


def test_askpass_credentials_stay_out_of_argv(git_http, tmp_path):
    """What a process listing shows of every git git-clone runs: no password, no token."""
    import base64

    from tests.commands.test_git_clone import initkit_command
    from tests.gitservers import AskpassServer

    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    askpass = AskpassServer(f"username={USERNAME}\npassword={PASSWORD}\n")
    slow = GitHTTPServer(git_http.root, throttled=("/big.git/",), throttle_rate=8 << 20)
    slow.start()
    dest = tmp_path / "site"
    try:
        proc = subprocess.Popen(
            initkit_command("git-clone", slow.url("big.git"), str(dest), "--askpass-url", askpass.url),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            seen += processes_naming(str(dest))
            time.sleep(0.05)
        proc.kill()
        _, err = proc.communicate()
    finally:
        askpass.stop()
        slow.stop()
    assert any("fetch" in cmdline for cmdline in seen), err
    assert not any(PASSWORD in cmdline or token in cmdline for cmdline in seen)
    assert PASSWORD not in err


# --- issue 15 #2: --git-config is an allow-list ----------------------------------------


def template_with_a_filter(tmp_path: Path, marker: Path) -> Path:
    """A git template whose config defines a smudge filter and whose info/attributes applies it."""
    template = tmp_path / "template"
    (template / "info").mkdir(parents=True)
    git("config", "--file", template / "config", "filter.x.smudge", script(tmp_path / "smudge", marker))
    git("config", "--file", template / "config", "filter.x.required", "true")
    (template / "info/attributes").write_text("* filter=x\n")
    return template


@pytest.mark.parametrize("flag", ["--git-config", "--git-config-add"])
def test_git_config_template_dir_cannot_plant_a_filter(run_cli, git_daemon, git_repos, tmp_path, marker, flag):
    template = template_with_a_filter(tmp_path, marker)
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), flag, f"init.templateDir:{template}")
    assert not marker.exists(), "the template's smudge filter ran"
    assert result.code == 2, result.stderr
    assert f"{flag} may not set init.templateDir" in result.stderr and len(result.lines) == 1
    assert not dest.exists()


# Each of these runs a command, reads configuration, attributes, cookies or keys from
# elsewhere, fetches from another place, or undoes a safeguard: none is on the allow-list.
NOT_ALLOWED = {
    "init.templateDir": "/tmp",
    "core.attributesFile": "/tmp/attributes",
    "core.excludesFile": "/tmp/excludes",
    "core.sharedRepository": "0777",
    "core.bare": "true",
    "core.worktree": "/tmp",
    "core.editor": "touch /tmp/x",
    "core.packedRefsTimeout": "1",
    "http.sslVerify": "false",
    "http.followRedirects": "true",
    "http.cookieFile": "/var/run/secrets/token",
    "http.sslKey": "/var/run/secrets/key",
    "http.sslCert": "/var/run/secrets/cert",
    "http.curloptResolve": "git.example.com:443:10.0.0.9",
    "http.emptyAuth": "true",
    "http.delegation": "always",
    "http.proxySSLKey": "/var/run/secrets/key",
    "fetch.bundleURI": "http://127.0.0.1:9/bundle",
    "transfer.bundleURI": "true",
    "fetch.recurseSubmodules": "true",
    "protocol.file.allow": "always",
    "protocol.https.allow": "always",
    "url.file:///etc/.insteadOf": "https://git.example.com/",
    "url.ext::sh -c touch% /tmp/x/.insteadOf": "https://git.example.com/",
    "url./var/run/secrets/.insteadOf": "https://git.example.com/",
    "url.https://x/.pushInsteadOf": "https://git.example.com/",
    "safe.directory": "*",
    "submodule.x.url": "file:///etc",
    "submodule.x.update": "!touch /tmp/x",
    "uploadpack.packObjectsHook": "touch /tmp/x",
    "diff.external": "touch /tmp/x",
    "mailmap.file": "/etc/passwd",
    "sequence.editor": "touch /tmp/x",
    "gpg.program": "touch /tmp/x",
    "color.ui": "always",
    "trace2.eventTarget": "/tmp/trace",
}


@pytest.mark.parametrize("key", list(NOT_ALLOWED))
def test_git_config_outside_the_allow_list_is_refused(run_cli, tmp_path, key):
    dest = tmp_path / "site"
    result = run_cli(
        "git-clone", "git://127.0.0.1:9/x.git", str(dest), "--git-config-add", f'"{key}":"{NOT_ALLOWED[key]}"'
    )
    assert result.code == 2, result.stderr
    assert f"--git-config-add may not set {key}" in result.stderr and len(result.lines) == 1
    assert not dest.exists()


def test_the_allowed_keys_reach_git(run_cli, git_daemon, git_repos, tmp_path):
    """What a one-time clone legitimately tunes still works, in any case, with URL-scoped tuning."""
    allowed = (
        "http.postBuffer:524288000,HTTP.LOWSPEEDLIMIT:100,http.lowSpeedTime:30,"
        '"http.https://git.example.com/.postBuffer":1048576,http.version:HTTP/1.1,'
        "core.compression:9,core.bigFileThreshold:1m,core.autocrlf:false,core.quotePath:false,"
        "pack.threads:1,pack.windowMemory:100m,fetch.unpackLimit:1,transfer.fsckObjects:true,"
        "protocol.version:2,user.name:deploy,user.email:deploy@example.com,checkout.workers:2,"
        '"url.https://git.example.com/.insteadOf":"git@git.example.com:",submodule.fetchJobs:2'
    )
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_daemon.url("main.git"), str(dest), "--git-config", allowed)
    assert result.code == 0, result.stderr
    assert head(dest) == git_repos.shas["c2"]


# --- issue 15 #3: no URL-scoped form of a safety key ------------------------------------


def test_url_scoped_follow_redirects_cannot_send_credentials_to_another_host(run_cli, other_host, tmp_path):
    """git prefers http.<url>.followRedirects over initkit's http.followRedirects=false."""
    redirector = Redirector(f"http://127.0.0.2:{other_host.port}")
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    auth = ["--username", USERNAME, "--password-file", str(password)]
    dest = tmp_path / "site"
    try:
        result = run_cli(
            "git-clone", redirector.url("main.git"), str(dest), *auth,
            "--git-config", f'"http.http://127.0.0.1:{redirector.port}/.followRedirects":true',
        )  # fmt: skip
    finally:
        redirector.stop()
    assert all("Authorization" not in headers for headers in other_host.seen), "credentials reached the other host"
    assert result.code == 2, result.stderr
    assert "may not set http.http://127.0.0.1" in result.stderr and len(result.lines) == 1
    assert not dest.exists()


@pytest.mark.parametrize(
    "name", ["followRedirects", "sslVerify", "extraHeader", "proxy", "sslCAInfo", "FOLLOWREDIRECTS", "cookieFile"]
)
def test_url_scoped_forms_of_safety_keys_are_refused(run_cli, tmp_path, name):
    for scope in ("http://127.0.0.1:9/", "https://git.example.com/team/site.git", "*.example.com", ""):
        key = f"http.{scope}.{name}" if scope else f"http..{name}"
        result = run_cli("git-clone", "git://127.0.0.1:9/x.git", str(tmp_path / "site"), "--git-config", f'"{key}":x')
        assert result.code == 2, (key, result.stderr)
        assert len(result.lines) == 1 and "may not set" in result.stderr


def test_a_users_own_authorization_header_does_not_follow_a_redirect(run_cli, other_host, tmp_path):
    """An Authorization header of --git-config is a credential too: git must not follow a redirect with it."""
    import base64

    token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    redirector = Redirector(f"http://127.0.0.2:{other_host.port}")
    dest = tmp_path / "site"
    try:
        result = run_cli(
            "git-clone",
            redirector.url("main.git"),
            str(dest),
            "--git-config",
            f"http.extraHeader:Authorization: Basic {token}",
        )
    finally:
        redirector.stop()
    assert redirector.seen
    assert all("Authorization" not in headers for headers in other_host.seen), "the header reached the other host"
    assert result.code == 1 and "redirect" in result.stderr and token not in result.stderr
    assert not dest.exists()


@pytest.fixture
def checkout_http(run_cli, git_http, tmp_path) -> tuple[Path, list[str]]:
    """A checkout initkit made over http with credentials; the app now writes into it."""
    dest = tmp_path / "site"
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    auth = ["--username", USERNAME, "--password-file", str(password)]
    assert run_cli("git-clone", git_http.url("main.git"), str(dest), "--ref", "v1", *auth).code == 0
    return dest, auth


@pytest.mark.parametrize("name", ["followRedirects", "sslVerify", "extraHeader", "proxy"])
def test_url_scoped_safety_keys_planted_in_the_checkout_are_refused(run_cli, git_http, checkout_http, name):
    """The app may write DEST/.git/config: the checkout's allow-list holds no http.* key at all."""
    dest, auth = checkout_http
    key = f"http.{git_http.url('')}.{name}"
    plant(dest, key, "true" if name in ("followRedirects", "sslVerify") else "http://127.0.0.1:9")
    result = run_cli("git-clone", git_http.url("main.git"), str(dest), "--ref", "main", *auth)
    assert result.code == 2, result.stderr
    assert f"sets {key.lower()}" in result.stderr.lower() and len(result.lines) == 1


# --- every override beats what an included file could add --------------------------------


@pytest.mark.parametrize("include", ["include.path", "includeIf.gitdir:/.path"])
def test_overrides_beat_an_included_file(git_http, git_repos, tmp_path, marker, include):
    """Past the allow-list (which refuses include.* and includeIf.*): the keys initkit forces
    come after the user's, so they win even over a file the user's config would include."""
    from initkit.git.remote import ssh_options
    from initkit.git.runner import git_environment

    repo = tmp_path / "repo"
    git("clone", "-q", git_repos.path("main.git"), repo)
    included = tmp_path / "included.config"
    for key in ("core.fsmonitor", "core.sshCommand", "core.gitProxy", "core.askPass"):
        git("config", "--file", included, key, script(tmp_path / key, marker))
    git("config", "--file", included, "credential.helper", "!" + script(tmp_path / "helper", marker))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    script(hooks / "post-checkout", marker)
    git("config", "--file", included, "core.hooksPath", str(hooks))
    plain = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    tree = ["git", "--git-dir", str(repo / ".git"), "--work-tree", str(repo)]
    user = [(include, str(included))]
    control = {**plain, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": include, "GIT_CONFIG_VALUE_0": str(included)}
    subprocess.run([*tree, "checkout", "-q", "--detach"], env=control, capture_output=True, timeout=30)
    assert marker.exists(), "control: the included file ran nothing without initkit's overrides"
    marker.unlink()
    env = {**plain, **git_environment(ssh=ssh_options([], None), user_config=user)}
    for args in (
        ["status"],
        ["checkout", "-q", "--detach"],
        ["ls-remote", "git://127.0.0.1:9/x.git"],
        ["ls-remote", git_http.url("main.git")],
        ["ls-remote", "ssh://git@127.0.0.1:9/x.git"],
    ):
        subprocess.run([*tree, *args], env=env, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        assert not marker.exists(), f"the included file ran a command on git {args[0]}"


# --- issue 15 #5: --askpass-url is bounded in time and size ------------------------------


def test_a_dripping_askpass_url_ends_at_the_timeout(run_proc, tmp_path):
    from tests.security.hostile_http import DripServer

    drip = DripServer("body", every=0.5)
    dest = tmp_path / "site"
    try:
        started = time.monotonic()
        result = run_proc("git-clone", "http://127.0.0.1:9/x.git", str(dest), "--askpass-url", drip.url("/pw"),
                          "--timeout", "3s", timeout=20)  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        drip.stop()
    assert result.code == 1, result.stderr
    assert elapsed < 5, elapsed
    assert "--askpass-url" in result.stderr and "timed out" in result.stderr and len(result.lines) == 1
    assert not dest.exists()


def test_a_flooding_askpass_url_is_not_read_into_memory(tmp_path):
    from tests.conftest import initkit_command
    from tests.security.hostile_http import FloodServer

    flood = FloodServer(200, size=2 << 30)
    out = tmp_path / "rss"
    try:
        started = time.monotonic()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(out),
             *initkit_command("git-clone", "http://127.0.0.1:9/x.git", str(tmp_path / "site"),
                              "--askpass-url", flood.url("/pw"), "--timeout", "20s")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        flood.stop()
    rss = int(out.read_text().split()[-1])
    assert rss < 80 * 1024, f"peak RSS {rss} KiB"
    assert flood.sent < 64 << 20 and elapsed < 10
    assert done.returncode == 1, done.stderr
    assert "--askpass-url" in done.stderr and "larger than" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_askpass_redirect_is_not_followed(run_cli, tmp_path):
    from tests.gitservers import AskpassServer

    askpass = AskpassServer(f"username={USERNAME}\npassword={PASSWORD}\n", address="127.0.0.2")
    redirector = Redirector(f"http://127.0.0.2:{askpass.port}")
    try:
        result = run_cli(
            "git-clone", "http://127.0.0.1:9/x.git", str(tmp_path / "site"), "--askpass-url", redirector.url("pw")
        )
    finally:
        redirector.stop()
        askpass.stop()
    assert redirector.seen and askpass.requests == 0
    assert result.code == 1 and "answered HTTP 301, not 200" in result.stderr and len(result.lines) == 1


# --- issue 15 #17: NUL characters in --credential ----------------------------------------


@pytest.mark.parametrize("field", ["url", "password-file", "username"])
def test_nul_in_a_credential_is_bad_input(run_cli, git_http, tmp_path, field):
    import json

    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    entry = {"url": git_http.url("main.git"), "username": USERNAME, "password-file": str(password)}
    entry[field] = entry[field] + "\0x"
    dest = tmp_path / "site"
    result = run_cli("git-clone", git_http.url("main.git"), str(dest), "--credential", json.dumps(entry))
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "internal error" not in result.stderr and PASSWORD not in result.stderr
    assert not dest.exists()


def test_nul_in_a_password_file_is_bad_input(run_cli, git_http, tmp_path):
    import json

    password = tmp_path / "password"
    password.write_bytes(PASSWORD.encode() + b"\0tail\n")
    entry = {"url": git_http.url(""), "username": USERNAME, "password-file": str(password)}
    for args in (["--credential", json.dumps(entry)], ["--username", USERNAME, "--password-file", str(password)]):
        result = run_cli("git-clone", git_http.url("main.git"), str(tmp_path / "site"), *args)
        assert result.code == 2, result.stderr
        assert len(result.lines) == 1 and PASSWORD not in result.stderr and "tail" not in result.stderr


# --- issue 15 #20: --sparse-checkout-file is a bounded regular file ----------------------


def test_a_fifo_as_sparse_checkout_file_is_refused_at_once(run_proc, tmp_path):
    fifo = tmp_path / "patterns"
    os.mkfifo(fifo)
    dest = tmp_path / "site"
    started = time.monotonic()
    result = run_proc("git-clone", "git://127.0.0.1:9/x.git", str(dest), "--sparse-checkout-file", str(fifo),
                      "--timeout", "2s", timeout=15)  # fmt: skip
    assert time.monotonic() - started < 5
    assert result.code == 2, result.stderr
    assert "not a regular file" in result.stderr and len(result.lines) == 1
    assert not dest.exists()


@pytest.mark.parametrize("what", ["directory", "device", "huge"])
def test_sparse_checkout_file_must_be_a_small_regular_file(run_cli, tmp_path, what):
    path = tmp_path / "patterns"
    if what == "directory":
        path.mkdir()
    elif what == "device":
        path = Path("/dev/zero")
    else:
        path.write_bytes(b"/app/\n" * (1 << 20))
    result = run_cli(
        "git-clone", "git://127.0.0.1:9/x.git", str(tmp_path / "site"), "--sparse-checkout-file", str(path)
    )
    assert result.code == 2, result.stderr
    assert "sparse-checkout file" in result.stderr and len(result.lines) == 1


def test_sparse_checkout_file_from_a_configmap_is_read_through_its_link(run_cli, git_daemon, git_repos, tmp_path):
    """A ConfigMap's files are symbolic links into its ..data directory: those are followed."""
    mount = tmp_path / "configmap"
    (mount / "..2024_01_01").mkdir(parents=True)
    (mount / "..2024_01_01/patterns").write_text("/app/\n")
    (mount / "..data").symlink_to("..2024_01_01")
    (mount / "patterns").symlink_to("..data/patterns")
    dest = tmp_path / "site"
    result = run_cli(
        "git-clone", git_daemon.url("main.git"), str(dest), "--sparse-checkout-file", str(mount / "patterns")
    )
    assert result.code == 0, result.stderr
    assert (dest / "app/config.txt").exists() and not (dest / "README.md").exists()


# --- the allow-list, for any spelling -------------------------------------------------------

SAFETY_NAMES = ["followRedirects", "sslVerify", "extraHeader", "proxy", "sslCAInfo", "cookieFile", "sslKey"]


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(SAFETY_NAMES),
    scope=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n"), max_size=30),
    upper=st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_no_spelling_of_a_url_scoped_safety_key_passes(name, scope, upper):
    from initkit.errors import BadInput
    from initkit.git.config import check_user_config

    key = "".join(c.upper() if flip else c.lower() for c, flip in zip(f"http.{name}", upper * 2, strict=False))
    section, _, rest = key.partition(".")
    with pytest.raises(BadInput) as refused:
        check_user_config(f"{section}.{scope}.{rest}", "x")
    assert "\n" not in str(refused.value)


@settings(max_examples=300, deadline=None)
@given(key=st.text(st.characters(blacklist_categories=("Cs",)), max_size=40), value=st.text(max_size=10))
def test_any_accepted_key_is_on_the_allow_list(key, value):
    from initkit.errors import BadInput
    from initkit.git.config import URL_SCOPED, USER_KEYS, check_user_config

    try:
        check_user_config(key, value)
    except BadInput as exc:
        assert "\n" not in str(exc) or "\n" in key
        return
    section, _, rest = key.partition(".")
    sub, _, name = rest.rpartition(".")
    plain = f"{section}.{name}".lower()
    assert plain in USER_KEYS or plain == "url.insteadof"
    assert not sub or plain in URL_SCOPED or plain == "url.insteadof"


# --- a credential in REPO's query ------------------------------------------------------

QUERY_SECRET = "q-S3cret-4b1d2e"


def command_lines_holding(text: str) -> list[str]:
    """The command line of every process of this pid namespace that holds TEXT."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if text.encode() in cmdline:
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.parametrize("query", ["token={}", "X-Amz-Credential=a&X-Amz-Signature={}", "ref=main&private_token={}"])
def test_a_credential_in_repos_query_never_reaches_a_command_line(tmp_path, query):
    """git hands REPO, query and all, to its remote helper on the command line
    (`git-remote-http origin URL`), which every process of the node reads in /proc/PID/cmdline.
    REPO comes from the environment, as a chart passes a secret; the server stalls, so a git
    that was started is still running when the command lines are read."""
    server = StallingServer()
    dest = tmp_path / "site"
    repo = server.url("main.git") + "?" + query.format(QUERY_SECRET)
    env = {**os.environ, "INITKIT_GIT_CLONE_REPO": repo, "INITKIT_GIT_CLONE_DEST": str(dest)}
    proc = subprocess.Popen(
        initkit_command("git-clone", "--timeout", "60s"), env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    outcome: dict[str, str] = {}

    def finish() -> None:
        outcome["out"], outcome["err"] = proc.communicate()
        server.arrived.set()  # initkit ended before any request: nothing is left to read

    waiter = threading.Thread(target=finish, daemon=True)
    waiter.start()
    try:
        assert server.arrived.wait(60), "neither a request nor the end of initkit"
        leaked = command_lines_holding(QUERY_SECRET)
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: initkit stops git's process group
        waiter.join(30)
        server.stop()
    assert leaked == [], leaked
    assert proc.returncode == 2, outcome["err"]
    assert server.requests == 0
    assert QUERY_SECRET not in outcome["err"] and len(outcome["err"].splitlines()) == 1
    assert "its query holds a credential" in outcome["err"]
    assert not dest.exists()


def test_a_credential_left_in_a_checkouts_origin_is_dropped_on_a_rerun(run_cli, git_daemon, git_repos, checkout):
    """A checkout whose origin holds a token in its query (an older initkit, or a plain `git
    clone`): the re-run with the plain URL stores that URL, and nothing prints the token."""
    plant(checkout, "remote.origin.url", git_daemon.url("main.git") + "?token=" + QUERY_SECRET)
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 0, result.stderr
    assert QUERY_SECRET not in (checkout / ".git/config").read_text()
    assert QUERY_SECRET not in result.stderr
    assert head(checkout) == git_repos.shas["c2"]


def test_a_key_on_its_sections_line_is_read_as_git_reads_it(run_cli, git_daemon, git_repos, checkout, tmp_path, marker):
    """`[core] fsmonitor = CMD` on one line is core.fsmonitor to git. The checkout's config is
    read by git itself: a parser that skipped that line (GitPython's GitConfigParser does)
    would pass the allow-list, and git would then run the command."""
    with open(checkout / ".git/config", "a") as config:
        config.write(f"[core] fsmonitor = {script(tmp_path / 'fsmonitor', marker)}\n")
    result = run_cli("git-clone", git_daemon.url("main.git"), str(checkout), "--ref", "main")
    assert result.code == 2 and "sets core.fsmonitor" in result.stderr, result.stderr
    assert not marker.exists()
    assert head(checkout) == git_repos.shas["c1"]


@pytest.mark.parametrize("repo", ["http://[::1/site.git", "https://host:99999/site.git", "https://h:x/s?token=abc"])
def test_a_malformed_repo_url_is_bad_input_in_one_line(run_cli, tmp_path, repo):
    result = run_cli("git-clone", repo, str(tmp_path / "site"))
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and "invalid REPO" in result.stderr and "internal error" not in result.stderr
    assert "abc" not in result.stderr
    assert not (tmp_path / "site").exists()
