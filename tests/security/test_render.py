"""Hostile input to `initkit render`: a poisoned DEST volume, resource bombs, signals.

DEST is often a volume the app container writes too, and templates and values
come from ConfigMaps and chart values someone else controls. Each test is a
repro of issue 8 that failed on the code before the fix.
"""

import os
import signal
import stat
import subprocess
import time

import pytest

from tests.conftest import cpu_seconds, initkit_command, requirement, wait_for_handler, wait_until


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def listing(directory):
    return sorted(os.path.relpath(os.path.join(r, n), directory) for r, ds, fs in os.walk(directory) for n in ds + fs)


# --- a poisoned DEST: symlinks planted by the app -------------------------------------------------------


def test_a_symlinked_directory_in_dest_is_refused_and_nothing_is_written(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "app.conf", "a\n")
    write(tpl / "etc" / "passwd", "root::0:0::/:/bin/sh\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "etc").symlink_to(elsewhere)
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 2
    assert result.lines == [f"initkit render: error: {dest / 'etc'} is a symlink: initkit never writes through links"]
    assert listing(elsewhere) == []
    assert listing(dest) == ["etc"]  # the refusal comes before any write


@pytest.mark.parametrize("content", ["secret\n", "rendered\n"])
def test_a_symlinked_file_in_dest_is_neither_chmodded_nor_written_through(run_cli, tmp_path, content):
    tpl = tmp_path / "tpl"
    write(tpl / "app.conf", "rendered\n")
    outside = tmp_path / "shadow"
    outside.write_text(content)
    outside.chmod(0o600)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "app.conf").symlink_to(outside)
    for args in (("render", str(tpl), str(dest)), ("render", str(tpl / "app.conf"), str(dest / "app.conf"))):
        result = run_cli(*args, "--mode", "0666")
        assert result.code == 2
        assert len(result.lines) == 1 and "app.conf is a symlink" in result.stderr
    assert outside.read_text() == content
    assert stat.S_IMODE(outside.stat().st_mode) == 0o600
    assert (dest / "app.conf").is_symlink()


def test_dest_itself_may_be_a_symlink_the_operator_made(run_cli, tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    (tmp_path / "config").symlink_to(volume)
    write(tmp_path / "tpl" / "sub" / "a", "a\n")
    result = run_cli("render", str(tmp_path / "tpl"), str(tmp_path / "config"))
    assert result.code == 0, result.stderr
    assert (volume / "sub" / "a").read_text() == "a\n"


# --- resource bombs: every one ends quickly with exit 2, in bounded memory -------------------------------


def run_measured(tmp_path, *args, timeout=60):
    """Run initkit as a child; return (exit code, stderr lines, seconds, peak RSS in MiB).

    GNU time measures the peak: the rusage of a child forked from pytest itself would
    count pytest's own memory (Linux keeps the high-water mark across fork and exec). The
    child runs without coverage's subprocess hook: its tracer's time and memory (a render
    checks the run's token on every loop item, which coverage traces) are not initkit's."""
    requirement.path("/usr/bin/time", "apt-get install time (GNU time measures peak memory)")
    rss_path = tmp_path / "rss.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    started = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(rss_path), *initkit_command(*args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        timeout=timeout,
    )
    rss_mib = int(rss_path.read_text().split()[-1]) / 1024
    return proc.returncode, proc.stderr.splitlines(), time.monotonic() - started, rss_mib


def billion_laughs(kind):
    """Ten levels of nine aliases each: 9**10 values once expanded, in a file of 1 KiB."""
    if kind == "list":
        lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    else:  # mappings, which a deep merge copies key by key
        lines = ["m0: &m0 {" + ", ".join(f"k{j}: lol" for j in range(9)) + "}"]
        lines += [f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(9)) + "}" for i in range(1, 10)]
    return "\n".join(lines) + "\nall: *" + lines[-1].split("&")[1].split()[0] + "\n"


@pytest.mark.parametrize("kind", ["list", "mapping"])
def test_billion_laughs_values_merged_twice(tmp_path, kind):
    write(tmp_path / "values.yaml", billion_laughs(kind))
    write(tmp_path / "t.j2", "{{ all | tojson }}\n")
    code, lines, seconds, rss = run_measured(
        tmp_path, "render", "t.j2", "--values", "values.yaml", "--values", "values.yaml"
    )
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("initkit render: error: values file values.yaml:")
    assert lines[0].endswith(": expands to more than 100000 values (aliases count at each use)")
    assert seconds < 10 and rss < 64


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ("a: &a [1, *a]\n", ":1:11: an alias refers to a value that contains it"),
        ("a: &a {b: *a}\n", ":1:11: an alias refers to a value that contains it"),
        ("a: &a {<<: *a}\n", ":1:12: an alias refers to a value that contains it"),
        ("a: " + "[" * 500 + "]" * 500 + "\n", ":1:103: nested more than 100 levels deep"),
        ("a: " + "9" * 5000 + "\n", ": a value cannot be read: ValueError"),
        ("a: '" + "x" * (1 << 20) + "'\n", ": larger than 1 MiB (what a ConfigMap holds)"),
    ],
    ids=["list-cycle", "mapping-cycle", "merge-key-cycle", "deep", "long-int", "big-file"],
)
def test_hostile_values_files_are_one_line_exit_2(run_cli, tmp_path, values, problem):
    path = write(tmp_path / "values.yaml", values)
    template = write(tmp_path / "t.j2", "{{ a | tojson }}\n")
    result = run_cli("render", template, "--values", path)
    assert result.code == 2
    assert result.lines == [f"initkit render: error: values file {path}{problem}"]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ 'x' * 10**9 }}", "t.j2:1: unsafe template: '*' making a str of 1000000000 items is too big"),
        ("{{ 10**9 * 'x' }}", "t.j2:1: unsafe template: '*' making a str of 1000000000 items is too big"),
        ("{{ [0] * 10**9 }}", "t.j2:1: unsafe template: '*' making a list of 1000000000 items is too big"),
        (
            "{% set ns = namespace(s='x' * 10**7) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            "t.j2:1: unsafe template: '+' making a str of 20000000 items is too big",
        ),
        ("{{ 2 ** (10**9) }}", "t.j2:1: unsafe template: '**' making an int of over 65536 bits is not allowed"),
        ("{{ (7 ** 60000) * (7 ** 60000) }}", "t.j2:1: unsafe template: '**' making an int of over 65536 bits"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "t.j2:1: unsafe template: range() of more than 10000 items is not allowed",
        ),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}xxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
            "t.j2: rendered output passes 16 MiB, the limit for one run",
        ),
        ("{{ 'x' | center(10**9) }}", "rendering needs more than 256 MiB of memory"),
        ("{{ '%0999999999d' % 1 }}", "rendering needs more than 256 MiB of memory"),
        (
            "{% set s %}{% for i in range(10000) %}{% for j in range(10000) %}xxxxxxxxxxxxxxxxxxxxxxxx"
            "{% endfor %}{% endfor %}{% endset %}",
            "rendering needs more than 256 MiB of memory",
        ),
    ],
    ids=["str-mul", "mul-str", "list-mul", "doubling", "pow", "int-mul", "range", "output", "center", "format",
         "capture"],
)  # fmt: skip
def test_template_bombs_end_quickly_in_bounded_memory(tmp_path, template, problem):
    write(tmp_path / "t.j2", template + "\n")
    code, lines, seconds, rss = run_measured(tmp_path, "render", "t.j2", "out.txt")
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"initkit render: error: {problem}"), lines
    assert seconds < 10
    assert rss < 256 + 64  # the memory limit plus the interpreter
    assert not (tmp_path / "out.txt").exists()


def test_a_typical_render_stays_small(tmp_path):
    write(
        tmp_path / "tpl" / "app.conf", "ip={{ pod.ip }}\n{% for s in servers %}{{ s }}\n{% endfor %}{{ db | tojson }}\n"
    )
    values = write(tmp_path / "values.yaml", "servers: [a, b, c]\ndb: {host: db, port: 5432}\n")
    code, lines, _, rss = run_measured(tmp_path, "render", str(tmp_path / "tpl"), "out", "--values", values)
    assert code == 0, lines
    assert rss < 40, rss


# --- SIGTERM during a CPU-bound render ------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(10000) %}{% for j in range(10000) %}{% if i * j < 0 %}x{% endif %}{% endfor %}{% endfor %}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{{ ('x' * 10**7) | length }}{% endfor %}{% endfor %}",
        # no call, lookup or operator inside the loops: only the check of each loop's iterable sees it
        "{% set s = 'x' * 10000 %}{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}",
    ],
    ids=["loop", "largest-strings", "loops-calling-nothing"],
)
def test_sigterm_during_a_heavy_render_exits_143_within_a_second(tmp_path, template):
    path = write(tmp_path / "t.j2", template + "\n")
    # Under coverage too: the signal is no longer raised into the tracer (it deadlocked on its lock).
    proc = subprocess.Popen(initkit_command("render", path, "out.txt"), stderr=subprocess.PIPE, text=True)
    wait_for_handler(proc.pid, signal.SIGTERM)
    started = cpu_seconds(proc.pid)  # then well into the loops: a second of CPU past start-up
    wait_until(lambda: cpu_seconds(proc.pid) > started + 1.0 or proc.poll() is not None, 30, "a second of rendering")
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
    assert not (tmp_path / "out.txt").exists()
