"""Hostile input to `initkit render --merge` and `--edit` (issue 19: 7).

The files merged or edited come from ConfigMaps and chart values someone else
writes, and the output often lands in a volume the app container writes too: a
merge must end with one line and bounded memory whatever the YAML holds, and
never write through a link planted at its output.
"""

import os
import signal
import subprocess
import time

import pytest

from tests.conftest import cpu_seconds, initkit_command, wait_for_handler, wait_until
from tests.security.test_render import billion_laughs, run_measured


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- resource bombs: one line, exit 2, quickly, in bounded memory -----------------------------------------


@pytest.mark.parametrize("kind", ["list", "mapping"])
def test_billion_laughs_is_refused_while_it_is_read(tmp_path, kind):
    write(tmp_path / "bomb.yaml", billion_laughs(kind))
    code, lines, seconds, rss = run_measured(tmp_path, "render", "--merge", "bomb.yaml", "--to", "out.json")
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("initkit render: error: merge file bomb.yaml:")
    assert lines[0].endswith(": expands to more than 100000 values (aliases count at each use)")
    assert seconds < 10 and rss < 64
    assert not (tmp_path / "out.json").exists()


def test_an_alias_inside_its_own_anchor_is_refused(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "cycle.yaml", "a: &x\n  b: *x\n")
    result = run_cli("render", "--merge", "cycle.yaml", "--to", "out.json")
    assert result.code == 2
    assert result.lines == [
        "initkit render: error: merge file cycle.yaml:2:6: an alias refers to a value that contains it"
    ]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("flow.yaml", "[" * 20_000 + "]" * 20_000 + "\n", ":1:101"),
        ("block.yaml", "".join(" " * i + f"k{i}:\n" for i in range(300)) + " " * 300 + "v: 1\n", ":100:100"),
        ("deep.json", "[" * 200_000 + "]" * 200_000, ""),
    ],
)
def test_deep_nesting_is_refused(tmp_path, name, text, where):
    write(tmp_path / name, text)
    code, lines, seconds, rss = run_measured(tmp_path, "render", "--merge", name, "--to", "out.yaml")
    assert code == 2
    assert lines == [f"initkit render: error: merge file {name}{where}: nested more than 100 levels deep"]
    assert seconds < 10 and rss < 64


def huge(path, mib=100):
    with open(path, "w") as f:
        f.write("k: ")
        chunk = "x" * (1 << 20)
        for _ in range(mib):
            f.write(chunk)
        f.write("\n")
    return str(path)


def test_a_100_mib_file_is_refused_before_it_is_read(tmp_path):
    huge(tmp_path / "huge.yaml")
    code, lines, seconds, rss = run_measured(tmp_path, "render", "--merge", "huge.yaml", "--to", "out.yaml")
    assert code == 2
    assert lines == ["initkit render: error: merge file huge.yaml: larger than 1 MiB (--max-input-size)"]
    assert seconds < 5 and rss < 40


def test_without_the_size_cap_the_memory_limit_ends_it(tmp_path):
    huge(tmp_path / "huge.yaml")
    code, lines, seconds, rss = run_measured(
        tmp_path, "render", "--merge", "huge.yaml", "--to", "out.yaml", "--max-input-size", "0"
    )
    assert code == 2
    assert lines == ["initkit render: error: rendering needs more than 256 MiB of memory: an input file is too big"]
    assert seconds < 10 and rss < 256 + 64
    assert not (tmp_path / "out.yaml").exists()


def test_a_fifo_is_refused_instead_of_blocking(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe.yaml")
    result = run_cli("render", "--merge", "pipe.yaml", "--to", "out.yaml")
    assert result.code == 2
    assert result.lines == ["initkit render: error: merge file pipe.yaml: not a regular file"]


def test_sigterm_during_a_big_merge_exits_143_within_a_second(tmp_path):
    # ~35000 commented keys: a second of pure-Python parsing and more
    text = "".join(f"key{i:06d}: value-{i:06d}   # c\n" for i in range(34000))
    write(tmp_path / "big.yaml", text)
    proc = subprocess.Popen(
        initkit_command("render", "--merge", "big.yaml", "--to", "out.yaml"),
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    wait_for_handler(proc.pid, signal.SIGTERM)
    started = cpu_seconds(proc.pid)
    wait_until(lambda: cpu_seconds(proc.pid) > started + 1.0 or proc.poll() is not None, 30, "a second of parsing")
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


# --- no value in a message ---------------------------------------------------------------------------------


def test_malformed_yaml_is_named_by_position_never_by_content(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "bad.yaml", 'db:\n  password: "s3cr3t-value\n  other: [\n')
    result = run_cli("render", "--merge", "bad.yaml", "--to", "out.yaml")
    assert result.code == 2
    assert len(result.lines) == 1
    assert result.lines[0].startswith("initkit render: error: merge file bad.yaml:")
    assert "s3cr3t" not in result.stderr


# --- a poisoned output directory ---------------------------------------------------------------------------


def test_a_symlink_at_the_output_is_refused_and_its_target_untouched(run_cli, tmp_path):
    outside = tmp_path / "outside" / "passwd"
    write(outside, "root:x:0:0\n")
    volume = tmp_path / "volume"
    volume.mkdir()
    os.symlink(outside, volume / "app.yaml")
    base = write(tmp_path / "base.yaml", "a: 1\n")
    result = run_cli("render", "--merge", base, "--to", str(volume / "app.yaml"))
    assert result.code == 2
    assert result.lines == [
        f"initkit render: error: {volume / 'app.yaml'} is a symlink: initkit never writes through links"
    ]
    assert outside.read_text() == "root:x:0:0\n"
    assert os.path.islink(volume / "app.yaml")


@pytest.mark.parametrize(("name", "text"), [("app.ini", "[a]\nb = 1\n"), ("app.properties", "b=1\n")])
def test_an_in_place_edit_of_a_symlink_is_refused(run_cli, tmp_path, name, text):
    outside = tmp_path / "outside" / name
    write(outside, text)
    volume = tmp_path / "volume"
    volume.mkdir()
    os.symlink(outside, volume / name)
    key = "a.b=2" if name.endswith(".ini") else "b=2"
    result = run_cli("render", "--edit", str(volume / name), "--set", key)
    assert result.code == 2
    assert result.lines == [f"initkit render: error: {volume / name} is a symlink: initkit never writes through links"]
    assert outside.read_text() == text


def test_leftovers_of_a_killed_run_are_swept_and_a_rerun_rewrites_nothing(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", "# keep me\nb: 1\na: [1, 2]  # and me\n")
    volume = tmp_path / "volume"
    write(volume / ".app.yaml.0123abcd.initkit-tmp", "half a file")
    write(volume / "other.txt", "the app's")
    out = volume / "app.yaml"
    assert run_cli("render", "--merge", base, "--set", "c=3", "--to", str(out)).code == 0
    assert out.read_text() == "# keep me\nb: 1\na: [1, 2]  # and me\nc: 3\n"
    assert sorted(os.listdir(volume)) == ["app.yaml", "other.txt"]
    st = os.stat(out)
    assert run_cli("render", "--merge", base, "--set", "c=3", "--to", str(out)).code == 0
    assert (os.stat(out).st_ino, os.stat(out).st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
