"""Red-team attacks on `initkit render --merge` / `--edit` (ruamel.yaml round-trip, iniparse,
javaproperties): inputs a ConfigMap's writer controls, run through the real CLI.

Each test names the promise of SECURITY.md it checks: SIGTERM ends any command within a
second (143), bad input is one line and exit 2, a message never shows a value."""

import os
import signal
import subprocess
import time

import pytest

from tests.conftest import cpu_seconds, initkit_command, wait_for_handler, wait_until
from tests.security.test_render import run_measured


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- SIGTERM: no stretch of pure-Python YAML work without a look at the run's token ----------------------

# Each is under the 1 MiB cap and one value (one node: the composer's check every 1024 values never
# comes): ruamel scans it for seconds, and a folded scalar of 260000 lines took two minutes to write back
# (ruamel's representer copies the whole string at each fold).
SLOW = {
    "folded-scalar": "a: >\n" + "  x\n" * 262_000,
    "plain-scalar": "a: " + " ".join(["x"] * 500_000) + "\n",
    "escaped-line-breaks": 'a: "' + "\\\n" * 500_000 + '"\n',
}


@pytest.mark.parametrize("name", sorted(SLOW))
def test_sigterm_while_one_huge_scalar_is_read_or_written_exits_143_within_a_second(tmp_path, name):
    write(tmp_path / "big.yaml", SLOW[name])
    proc = subprocess.Popen(
        initkit_command("render", "--merge", "big.yaml", "--to", "out.yaml"),
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    wait_for_handler(proc.pid, signal.SIGTERM)
    started = cpu_seconds(proc.pid)
    wait_until(lambda: cpu_seconds(proc.pid) > started + 1.0 or proc.poll() is not None, 30, "a second of work")
    assert proc.poll() is None, proc.stderr.read()
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    finally:
        proc.kill()
    assert time.monotonic() - sent < 1
    assert code == 143
    assert proc.stderr.read().splitlines() == ["initkit render: error: stopped by SIGTERM"]
    assert not (tmp_path / "out.yaml").exists()


def test_a_folded_scalar_of_many_lines_is_written_back_in_linear_time(tmp_path):
    # 100000 folds: ruamel's representer made 100000 copies of the 400 KB string (seconds, quadratic)
    write(tmp_path / "folded.yaml", "a: >\n" + "  word\n" * 100_000)
    code, lines, seconds, _ = run_measured(tmp_path, "render", "--merge", "folded.yaml", "--to", "out.yaml")
    assert code == 0, lines
    assert (tmp_path / "out.yaml").read_text() == (tmp_path / "folded.yaml").read_text()
    assert seconds < 15


# --- YAML 1.1 numbers: a sexagesimal int is a power of 60 per part -------------------------------------------


def test_a_sexagesimal_int_of_many_parts_is_one_line_exit_2_at_once(tmp_path):
    # `%YAML 1.1` makes 1:59:59 an int (base 60): 60000 parts are an int of 107000 digits, computed by a
    # Python loop of bignum products (quadratic; 300000 parts took 20 s of CPU with no look at the token)
    # that nothing could write back: str() of it was an internal error.
    write(tmp_path / "sx.yaml", "%YAML 1.1\n---\na: 1" + ":59" * 60_000 + "\n")
    code, lines, seconds, _ = run_measured(tmp_path, "render", "--merge", "sx.yaml", "--to", "out.yaml")
    assert code == 2
    assert lines == ["initkit render: error: merge file sx.yaml:3:4: a number of more than 4300 characters"]
    assert seconds < 10
    assert not (tmp_path / "out.yaml").exists()


# --- no value in a message -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "db:\n  password: hunter2-s3cr3t\n  password: hunter2-s3cr3t-too\n",
        'db:\n  password: "hunter2-s3cr3t\\q"\n',  # an unknown escape: ruamel quotes the character
    ],
)
def test_a_malformed_secret_value_is_never_shown(run_cli, tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "secret.yaml", text)
    result = run_cli("render", "--merge", "secret.yaml", "--to", "out.yaml")
    assert result.code == 2
    assert len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith("initkit render: error: merge file secret.yaml:")
    assert "hunter2" not in result.stderr and "'q'" not in result.stderr


# --- no write outside DEST: an in-place --edit of a hard link the app planted -------------------------------


@pytest.mark.parametrize(("name", "text"), [("app.cfg", "[core]\nx = 1\n"), ("app.properties", "x=1\n")])
def test_an_in_place_edit_of_a_hard_link_to_a_file_outside_gets_a_new_inode(run_cli, tmp_path, name, text):
    outside = tmp_path / "outside" / name
    write(outside, text)
    dest = tmp_path / "dest"
    dest.mkdir()
    os.link(outside, dest / name)
    key = "core.x=2" if name.endswith(".cfg") else "x=2"
    result = run_cli("render", "--edit", str(dest / name), "--set", key)
    assert result.code == 0, result.stderr
    assert outside.read_text() == text
    assert (dest / name).read_text() != text
    assert os.stat(outside).st_nlink == 1
