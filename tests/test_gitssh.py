"""initkit-ssh, the GIT_SSH wrapper: ssh's options come from INITKIT_SSH_OPTIONS."""

import json
import os
import subprocess
import sys

WRAPPER = os.path.join(os.path.dirname(sys.executable), "initkit-ssh")


def run(options: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INITKIT_SSH_OPTIONS": options}
    return subprocess.run([WRAPPER, *args], env=env, capture_output=True, text=True, timeout=30)


def test_execs_ssh_with_the_options_first():
    # -G prints the configuration ssh would use, without connecting anywhere.
    options = json.dumps(["-F", os.devnull, "-o", "ConnectTimeout=7", "-o", "StrictHostKeyChecking=yes"])
    result = run(options, "-G", "-p", "2222", "git@example.invalid")
    assert result.returncode == 0, result.stderr
    config = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert config["connecttimeout"] == "7" and config["port"] == "2222" and config["user"] == "git"
    assert config["stricthostkeychecking"] == "true"


def test_malformed_options_exit_2():
    result = run("not json", "-V")
    assert result.returncode == 2 and "INITKIT_SSH_OPTIONS is not a JSON list" in result.stderr
