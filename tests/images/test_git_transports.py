"""git-clone inside the full image over ssh and smart HTTP with basic auth.

ssh runs through initkit-ssh (git's GIT_SSH), so no shell is needed; the key
is mounted read-only, root-owned and mode 0444, as a Secret volume with
defaultMode 0444 would be. Servers listen on the network's gateway; names
resolve through the test's dnsmasq.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gitservers import PASSWORD, USERNAME, GitHTTPServer, _stop, served_repo, start_sshd
from tests.images.harness import IMAGE, DockerNet, DockerPod


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return served_repo(tmp_path, {"index.html": "<h1>from a private repository</h1>\n"})


def test_clone_over_ssh_with_a_mounted_key(net: DockerNet, repo: Path, tmp_path: Path):
    sshd = start_sshd(repo, tmp_path / "sshd", address=net.gateway)
    try:
        secrets = tmp_path / "secret"
        secrets.mkdir()
        for src, name in ((sshd.key_file, "ssh-privatekey"), (sshd.known_hosts_file, "known_hosts")):
            shutil.copy(src, secrets / name)
            (secrets / name).chmod(0o444)
        net.dns.add("gitserver", net.gateway)
        pod = DockerPod(net)
        url = f"ssh://root@gitserver:{sshd.port}{repo / 'site.git'}"
        (secrets / "known_hosts").write_text(
            sshd.known_hosts_file.read_text().replace(f"[{net.gateway}]", "[gitserver]")
        )
        args = ["git-clone", url, "/work/site", "--ssh-key-file", "/secret/ssh-privatekey",
                "--known-hosts-file", "/secret/known_hosts"]  # fmt: skip
        mount = ("-v", f"{secrets}:/secret:ro")
        first = pod.run_init(*args, extra=mount)
        assert first.returncode == 0, first.stderr
        assert "cloned" in first.stderr
        shown = pod.run_app("cat", "/work/site/index.html")
        assert shown.stdout == "<h1>from a private repository</h1>\n"
        again = pod.run_init(*args, extra=mount)
        assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    finally:
        _stop(sshd.proc)


def test_clone_over_http_with_basic_auth_never_logs_the_password(net: DockerNet, repo: Path, tmp_path: Path):
    server = GitHTTPServer(repo, address=net.gateway).start()
    try:
        secrets = tmp_path / "secret"
        secrets.mkdir()
        (secrets / "password").write_text(PASSWORD + "\n")
        (secrets / "password").chmod(0o444)
        net.dns.add("githttp", net.gateway)
        pod = DockerPod(net)
        url = f"http://githttp:{server.port}/site.git"
        args = ["git-clone", url, "/work/site", "--username", USERNAME, "--password-file", "/secret/password"]
        result = pod.run_init(*args, extra=("-v", f"{secrets}:/secret:ro"))
        assert result.returncode == 0, result.stderr
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        (wrong / "password").write_text("not-the-password\n")
        (wrong / "password").chmod(0o444)
        refused = pod.run_init("git-clone", url, "/work/other", "--username", USERNAME,
                               "--password-file", "/secret/password", extra=("-v", f"{wrong}:/secret:ro"))  # fmt: skip
        assert refused.returncode == 1
        assert "authentication failed" in refused.stderr
        assert "not-the-password" not in refused.stderr + refused.stdout
    finally:
        server.stop()


def test_image_has_what_ssh_needs_and_no_shell():
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "/usr/bin/initkit-ssh", IMAGE, "-V"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "OpenSSH" in out.stderr
