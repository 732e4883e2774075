import base64
import errno
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import yaml

from tests.conftest import initkit_command, missing, wait_until

OLD_MTIME = 1_000_000_000  # 2001: clearly not "now"


def write(path, text, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return str(path)


def listing(directory):
    """Every path under directory (relative), to check nothing extra was left behind."""
    found = []
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(found)


def snapshot(path):
    st = os.stat(path)
    return path.read_bytes(), st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- a single file ---------------------------------------------------------------------------------


def test_renders_a_file_with_values_and_set(run_cli, tmp_path):
    template = write(tmp_path / "app.conf.tpl", "host={{ db.host }} replicas={{ db.replicas }}\n")
    values = write(tmp_path / "values.yaml", "db:\n  host: db.local\n  replicas: 1\n")
    dest = tmp_path / "out" / "app.conf"
    result = run_cli("render", template, str(dest), "--values", values, "--set", "db.replicas=3")
    assert result.code == 0, result.stderr
    assert dest.read_text() == "host=db.local replicas=3\n"
    assert result.lines == [
        f"initkit render: wrote {dest}",
        f"initkit render: rendered 1 file from {template}: 1 written, 0 unchanged",
    ]
    assert mode_of(dest) == 0o644


def test_values_files_merge_in_order_then_set(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ a }} {{ b.x }} {{ b.y }} {{ c }}\n")
    first = write(tmp_path / "1.yaml", "a: 1\nb: {x: 1, y: 1}\nc: 1\n")
    second = write(tmp_path / "2.json", '{"b": {"y": 2}, "c": 2}')
    result = run_cli("render", template, "--values", first, "--values", second, "--set", "c=3")
    assert result.code == 0, result.stderr
    assert result.stdout == "1 1 2 3\n"


def test_set_values_are_typed(run_cli, tmp_path):
    template = write(
        tmp_path / "t",
        "{{ n + 1 }} {{ flag is sameas true }} {{ off is sameas false }} {{ v }} {{ s ~ '!' }} {{ nothing is none }}\n",
    )
    result = run_cli(
        "render", template, "--set", "n=3", "--set", "flag=true", "--set", "off=false",
        "--set", "v=1.10", "--set", 's="3"', "--set", "nothing=null",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert result.stdout == "4 True True 1.10 3! True\n"


def test_set_typed_values_through_tojson(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ db | tojson }}\n")
    sets = ["--set", "db.replicas=3", "--set", "db.tls=true", "--set", "db.name=x"]
    result = run_cli("render", template, *sets)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"replicas": 3, "tls": True, "name": "x"}


def test_stdout_keeps_the_trailing_newline_and_logs_nothing(run_cli, tmp_path):
    template = write(tmp_path / "t", "line 1\nline 2\n\n")
    result = run_cli("render", template)
    assert result.code == 0, result.stderr
    assert result.stdout == "line 1\nline 2\n\n"
    assert result.stderr == ""


def test_no_trailing_newline_is_added(run_cli, tmp_path):
    template = write(tmp_path / "t", "no newline")
    dest = tmp_path / "d"
    assert run_cli("render", template, str(dest)).code == 0
    assert dest.read_bytes() == b"no newline"


def test_as_a_child_process(run_proc, tmp_path):
    template = write(tmp_path / "t", "ip={{ pod.ip }}\n")
    result = run_proc("render", template, env={"POD_IP": "10.1.2.3"})
    assert result.code == 0, result.stderr
    assert result.stdout == "ip=10.1.2.3\n"


def test_pod_facts_from_the_downward_api(run_cli, tmp_path):
    template = write(
        tmp_path / "t",
        "{{ pod.ip }} {{ pod.name }} {{ pod.namespace }} {{ pod.uid }} {{ node.name }}\n",
    )
    env = {
        "POD_IP": "10.0.0.7",
        "POD_NAME": "web-0",
        "POD_NAMESPACE": "shop",
        "POD_UID": "0b1c2d3e-aaaa-bbbb-cccc-123456789abc",
        "NODE_NAME": "node-3",
    }
    result = run_cli("render", template, env=env)
    assert result.code == 0, result.stderr
    assert result.stdout == "10.0.0.7 web-0 shop 0b1c2d3e-aaaa-bbbb-cccc-123456789abc node-3\n"


def test_env_variables(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ env.GREETING }} {{ env['GREETING'] }}\n")
    result = run_cli("render", template, env={"GREETING": "hello"})
    assert result.code == 0, result.stderr
    assert result.stdout == "hello hello\n"


def test_unset_env_variable_is_named(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    template = write(tmp_path / "t", "\n{{ env.NOT_SET_HERE }}\n")
    result = run_cli("render", template)
    assert result.code == 2
    assert "NOT_SET_HERE" in result.stderr
    assert f"{template}:2:" in result.stderr


def test_unknown_pod_fact_hints_at_the_variable_to_set(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ node.name }}\n")
    result = run_cli("render", template)
    assert result.code == 2
    assert "NODE_NAME" in result.stderr


def test_every_filter(run_cli, tmp_path):
    template = write(
        tmp_path / "t",
        "{{ s | b64encode }}\n"
        "{{ enc | b64decode }}\n"
        "{{ s | sha256 }}\n"
        "{{ m | tojson }}\n"
        "{{ m | toyaml }}\n"
        "{{ s | upper }}\n",
    )
    values = write(tmp_path / "v.yaml", "s: héllo\nenc: d29ybGQ=\nm:\n  b: [1, two]\n  a: true\n")
    result = run_cli("render", template, "--values", values)
    assert result.code == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == base64.b64encode("héllo".encode()).decode()
    assert lines[1] == "world"
    assert lines[2] == hashlib.sha256("héllo".encode()).hexdigest()
    assert json.loads(lines[3]) == {"b": [1, "two"], "a": True}
    assert lines[3].index('"b"') < lines[3].index('"a"')  # keeps the values' order
    assert yaml.safe_load("\n".join(lines[4:8])) == {"b": [1, "two"], "a": True}
    assert lines[8] == "HÉLLO"


def test_a_filter_failing_is_bad_input_naming_the_line(run_cli, tmp_path):
    template = write(tmp_path / "t", "ok\n{{ 'not base64!' | b64decode }}\n")
    result = run_cli("render", template)
    assert result.code == 2
    assert len(result.lines) == 1
    assert f"{template}:2:" in result.stderr


def test_include_works_within_the_directory(run_cli, tmp_path):
    write(tmp_path / "tpl" / "_common.tpl", "common={{ x }}\n")
    template = write(tmp_path / "tpl" / "main.tpl", "{% include '_common.tpl' %}main\n")
    result = run_cli("render", template, "--set", "x=1")
    assert result.code == 0, result.stderr
    assert result.stdout == "common=1\nmain\n"


def test_include_outside_the_directory_is_refused(run_cli, tmp_path):
    write(tmp_path / "secret.txt", "s3cr3t\n")
    template = write(tmp_path / "tpl" / "main.tpl", "{% include '../secret.txt' %}\n")
    result = run_cli("render", template)
    assert result.code == 2
    assert "s3cr3t" not in result.stdout + result.stderr


def test_include_through_a_symlink_leaving_the_directory_is_refused(run_cli, tmp_path):
    write(tmp_path / "secret.txt", "s3cr3t\n")
    (tmp_path / "tpl").mkdir()
    os.symlink(tmp_path / "secret.txt", tmp_path / "tpl" / "link")
    template = write(tmp_path / "tpl" / "main.tpl", "{% include 'link' %}\n")
    result = run_cli("render", template)
    assert result.code == 2
    assert "outside the template directory" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ env.__dict__ }}",
    ],
)
def test_sandbox_refuses_python_internals(run_cli, tmp_path, source):
    template = write(tmp_path / "t", source + "\n")
    dest = tmp_path / "d"
    result = run_cli("render", template, str(dest))
    assert result.code == 2
    assert len(result.lines) == 1
    assert not dest.exists()


def test_sandbox_error_says_unsafe(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ ''.__class__ }}\n")
    result = run_cli("render", template)
    assert result.code == 2
    assert "unsafe" in result.stderr


def test_undefined_variable_names_it_and_the_line_and_keeps_the_old_dest(run_cli, tmp_path):
    template = write(tmp_path / "t", "a={{ a }}\nb={{ missing_thing }}\n")
    dest = tmp_path / "app.conf"
    write(dest, "old content\n", mtime=OLD_MTIME)
    os.chmod(dest, 0o640)
    before = snapshot(dest)
    result = run_cli("render", template, str(dest), "--set", "a=1")
    assert result.code == 2
    assert len(result.lines) == 1
    assert "missing_thing" in result.stderr
    assert f"{template}:2:" in result.stderr
    assert "undefined" in result.stderr
    assert snapshot(dest) == before
    assert listing(tmp_path) == ["app.conf", "t"]


def test_undefined_nested_value_is_named(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ db.port }}\n")
    result = run_cli("render", template, "--set", "db.host=x")
    assert result.code == 2
    assert "port" in result.stderr


def test_syntax_error_names_the_line(run_cli, tmp_path):
    template = write(tmp_path / "t", "one\ntwo\n{% if %}\n")
    dest = tmp_path / "d"
    write(dest, "old\n", mtime=OLD_MTIME)
    before = snapshot(dest)
    result = run_cli("render", template, str(dest))
    assert result.code == 2
    assert len(result.lines) == 1
    assert f"{template}:3: template syntax error" in result.stderr
    assert snapshot(dest) == before


def test_unchanged_rerun_keeps_the_mtime(run_cli, tmp_path):
    template = write(tmp_path / "t", "x={{ x }}\n")
    dest = tmp_path / "d"
    assert run_cli("render", template, str(dest), "--set", "x=1").code == 0
    os.utime(dest, (OLD_MTIME, OLD_MTIME))
    inode = os.stat(dest).st_ino
    result = run_cli("render", template, str(dest), "--set", "x=1")
    assert result.code == 0, result.stderr
    assert result.lines[0] == f"initkit render: unchanged {dest}"
    assert "0 written, 1 unchanged" in result.lines[1]
    assert os.stat(dest).st_mtime == OLD_MTIME
    assert os.stat(dest).st_ino == inode
    # and a change is written
    result = run_cli("render", template, str(dest), "--set", "x=2")
    assert result.lines[0] == f"initkit render: wrote {dest}"
    assert dest.read_text() == "x=2\n"
    assert os.stat(dest).st_mtime != OLD_MTIME
    assert listing(tmp_path) == ["d", "t"]


def test_mode_option(run_cli, tmp_path):
    template = write(tmp_path / "t", "secret\n")
    dest = tmp_path / "d"
    assert run_cli("render", template, str(dest), "--mode", "0600").code == 0
    assert mode_of(dest) == 0o600
    # unchanged content, another mode: the mode is corrected, the content and mtime kept
    os.utime(dest, (OLD_MTIME, OLD_MTIME))
    assert run_cli("render", template, str(dest), "--mode", "440").code == 0
    assert mode_of(dest) == 0o440
    assert os.stat(dest).st_mtime == OLD_MTIME


def test_without_mode_an_existing_files_mode_is_kept(run_cli, tmp_path):
    template = write(tmp_path / "t", "new\n")
    dest = tmp_path / "d"
    write(dest, "old\n")
    os.chmod(dest, 0o640)
    assert run_cli("render", template, str(dest)).code == 0
    assert dest.read_text() == "new\n"
    assert mode_of(dest) == 0o640


def test_malformed_mode_is_bad_input(run_cli, tmp_path):
    template = write(tmp_path / "t", "x\n")
    result = run_cli("render", template, str(tmp_path / "d"), "--mode", "rw-r--r--")
    assert result.code == 2
    assert "octal" in result.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("-0", "is not an octal file mode"),
        ("1_0", "is not an octal file mode"),
        ("0o644", "is not an octal file mode"),
        (" 644", "is not an octal file mode"),
        ("8", "is not an octal file mode"),
        ("4755", "only permission bits (0000 to 0777); setuid, setgid and sticky are refused"),
        ("7777", "only permission bits (0000 to 0777); setuid, setgid and sticky are refused"),
        ("1644", "only permission bits (0000 to 0777); setuid, setgid and sticky are refused"),
    ],
)
def test_mode_takes_permission_bits_in_octal_digits_only(run_cli, tmp_path, mode, problem):
    template = write(tmp_path / "t", "x\n")
    result = run_cli("render", template, str(tmp_path / "d"), "--mode", mode)
    assert result.code == 2
    assert len(result.lines) == 1 and problem in result.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("mode", "bits"), [("0", 0), ("777", 0o777), ("0640", 0o640), ("00600", 0o600)])
def test_mode_accepts_0000_to_0777(run_cli, tmp_path, mode, bits):
    template = write(tmp_path / "t", "x\n")
    assert run_cli("render", template, str(tmp_path / "d"), "--mode", mode).code == 0
    assert mode_of(tmp_path / "d") == bits


def test_pod_ip_that_is_not_utf8_is_one_line_exit_2(tmp_path):
    template = write(tmp_path / "t", "ip={{ pod.ip }}\n")
    env = {**os.environb, b"POD_IP": b"10.0.0.\xff"}
    done = subprocess.run(initkit_command("render", template, str(tmp_path / "d")), env=env, capture_output=True)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "initkit render: error: environment variable POD_IP is not valid UTF-8"
    ]
    assert not (tmp_path / "d").exists()


def test_env_variable_that_is_not_utf8_is_one_line_exit_2(tmp_path):
    template = write(tmp_path / "t", "x={{ env.SOME_VAR }}\n")
    env = {**os.environb, b"SOME_VAR": b"\xfe\xff"}
    done = subprocess.run(initkit_command("render", template), env=env, capture_output=True)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "initkit render: error: environment variable SOME_VAR is not valid UTF-8"
    ]


# --- bad input ---------------------------------------------------------------------------------------


def test_missing_template(run_cli, tmp_path):
    result = run_cli("render", str(tmp_path / "nope.tpl"), str(tmp_path / "d"))
    assert result.code == 2
    assert result.lines == [f"initkit render: error: template {tmp_path / 'nope.tpl'}: not found"]


def test_missing_values_file(run_cli, tmp_path):
    template = write(tmp_path / "t", "x\n")
    result = run_cli("render", template, "--values", str(tmp_path / "v.yaml"))
    assert result.code == 2
    assert len(result.lines) == 1
    assert "values file" in result.stderr
    assert "not found" in result.stderr


def test_malformed_values_file(run_cli, tmp_path):
    template = write(tmp_path / "t", "x\n")
    values = write(tmp_path / "v.yaml", "a: 1\nb: [\n")
    result = run_cli("render", template, "--values", values)
    assert result.code == 2
    assert len(result.lines) == 1
    assert f"values file {values}:" in result.stderr
    assert "malformed YAML" in result.stderr


def test_values_file_not_a_mapping(run_cli, tmp_path):
    template = write(tmp_path / "t", "x\n")
    values = write(tmp_path / "v.yaml", "- a\n- b\n")
    result = run_cli("render", template, "--values", values)
    assert result.code == 2
    assert "must be a mapping" in result.stderr


def test_set_without_equals(run_cli, tmp_path):
    template = write(tmp_path / "t", "x\n")
    result = run_cli("render", template, "--set", "replicas")
    assert result.code == 2
    assert result.lines == ["initkit render: error: --set 'replicas' has no '=': expected KEY=VALUE"]


@pytest.mark.parametrize("args", [["--set", "pod.ip=1.1.1.1"], ["--set", "env=x"], ["--set", "node.name=n"]])
def test_reserved_keys_in_set(run_cli, tmp_path, args):
    template = write(tmp_path / "t", "x\n")
    result = run_cli("render", template, *args)
    assert result.code == 2
    assert "reserved" in result.stderr


def test_reserved_keys_in_a_values_file(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ pod.ip }}\n")
    values = write(tmp_path / "v.yaml", "pod:\n  ip: 6.6.6.6\n")
    result = run_cli("render", template, "--values", values, env={"POD_IP": "10.0.0.1"})
    assert result.code == 2
    assert "pod is reserved" in result.stderr
    assert result.stdout == ""


def test_values_are_never_logged(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ password }}\n")
    dest = tmp_path / "d"
    values = write(tmp_path / "v.yaml", "password: s3cr3t-from-file\n")
    result = run_cli("--debug", "render", template, str(dest), "--values", values)
    assert result.code == 0, result.stderr
    assert "s3cr3t" not in result.stderr
    result = run_cli("--debug", "render", template, str(dest), "--set", "password=s3cr3t-from-set")
    assert result.code == 0, result.stderr
    assert "s3cr3t" not in result.stderr
    result = run_cli("render", template, str(dest), "--set", "password:s3cr3t-typo")
    assert result.code == 2
    assert "s3cr3t" not in result.stderr


def test_directory_template_needs_a_dest(run_cli, tmp_path):
    write(tmp_path / "tpl" / "a", "x\n")
    result = run_cli("render", str(tmp_path / "tpl"))
    assert result.code == 2
    assert "give a DEST directory" in result.stderr


def test_file_template_into_a_directory_dest_is_bad_input(run_cli, tmp_path):
    template = write(tmp_path / "t", "x\n")
    (tmp_path / "out").mkdir()
    result = run_cli("render", template, str(tmp_path / "out"))
    assert result.code == 2
    assert "is a directory" in result.stderr
    assert listing(tmp_path / "out") == []


def test_dest_that_is_the_template_is_refused(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ x }}\n")
    result = run_cli("render", template, template, "--set", "x=1")
    assert result.code == 2
    assert (tmp_path / "t").read_text() == "{{ x }}\n"


def test_json_log_format(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ nope }}\n")
    result = run_cli("--log-format", "json", "render", template, str(tmp_path / "d"))
    assert result.code == 2
    record = json.loads(result.stderr)
    assert record["level"] == "error"
    assert "nope" in record["msg"]


# --- environment variables ---------------------------------------------------------------------------


def test_everything_from_the_environment(run_cli, tmp_path):
    template = write(tmp_path / "t", "{{ a }} {{ b }} {{ c.d }} {{ e }}\n")
    first = write(tmp_path / "1.yaml", "a: 1\nb: 1\n")
    second = write(tmp_path / "2.yaml", "b: 2\n")
    dest = tmp_path / "d"
    result = run_cli(
        "render",
        env={
            "INITKIT_RENDER_TEMPLATE": template,
            "INITKIT_RENDER_DEST": str(dest),
            "INITKIT_RENDER_VALUES": f"{first} {second}",
            "INITKIT_RENDER_SET": "c.d=3  e=true",
            "INITKIT_RENDER_MODE": "0600",
        },
    )
    assert result.code == 0, result.stderr
    assert dest.read_text() == "1 2 3 True\n"
    assert mode_of(dest) == 0o600


def test_help_shows_the_environment_variables(run_cli):
    result = run_cli("render", "--help")
    assert result.code == 0
    for name in ("INITKIT_RENDER_VALUES", "INITKIT_RENDER_SET", "INITKIT_RENDER_MODE", "Exit codes"):
        assert name in result.stdout


# --- trees ---------------------------------------------------------------------------------------------


def test_tree_is_mirrored_with_nested_directories(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "app.conf", "name={{ name }}\n")
    write(tpl / "conf.d" / "10-db.conf", "db={{ db.host }}\n")
    write(tpl / "conf.d" / "deeper" / "x.json", "{{ db | tojson }}\n")
    write(tpl / ".hidden", "dot files are rendered too {{ name }}\n")
    write(tpl / "_partial.tpl", "partial {{ name }}")
    write(tpl / "uses.conf", "{% include '_partial.tpl' %}!\n")
    dest = tmp_path / "out"
    write(dest / "keep.me", "someone else's\n")
    result = run_cli("render", str(tpl), str(dest), "--set", "name=web", "--set", "db.host=db")
    assert result.code == 0, result.stderr
    assert listing(dest) == [
        ".hidden",
        "_partial.tpl",
        "app.conf",
        "conf.d",
        "conf.d/10-db.conf",
        "conf.d/deeper",
        "conf.d/deeper/x.json",
        "keep.me",
        "uses.conf",
    ]
    assert (dest / "app.conf").read_text() == "name=web\n"
    assert (dest / "conf.d" / "10-db.conf").read_text() == "db=db\n"
    assert json.loads((dest / "conf.d" / "deeper" / "x.json").read_text()) == {"host": "db"}
    assert (dest / "uses.conf").read_text() == "partial web!\n"
    assert (dest / "keep.me").read_text() == "someone else's\n"
    assert len(result.lines) == 7
    assert f"initkit render: wrote {dest / 'conf.d' / 'deeper' / 'x.json'}" in result.lines
    assert result.lines[-1] == f"initkit render: rendered 6 files from {tpl}: 6 written, 0 unchanged"


def test_tree_rerun_writes_only_what_changed(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a={{ a }}\n")
    write(tpl / "sub" / "b", "b={{ b }}\n")
    dest = tmp_path / "out"
    assert run_cli("render", str(tpl), str(dest), "--set", "a=1", "--set", "b=1").code == 0
    for path in (dest / "a", dest / "sub" / "b"):
        os.utime(path, (OLD_MTIME, OLD_MTIME))
    result = run_cli("render", str(tpl), str(dest), "--set", "a=1", "--set", "b=2")
    assert result.code == 0, result.stderr
    assert result.lines == [
        f"initkit render: unchanged {dest / 'a'}",
        f"initkit render: wrote {dest / 'sub' / 'b'}",
        f"initkit render: rendered 2 files from {tpl}: 1 written, 1 unchanged",
    ]
    assert os.stat(dest / "a").st_mtime == OLD_MTIME
    assert os.stat(dest / "sub" / "b").st_mtime != OLD_MTIME
    assert (dest / "sub" / "b").read_text() == "b=2\n"


def test_one_bad_template_in_a_tree_changes_nothing(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a={{ a }}\n")
    write(tpl / "new" / "b", "b={{ a }}\n")
    write(tpl / "z", "line one\n{{ undefined_here }}\n")
    dest = tmp_path / "out"
    write(dest / "a", "old a\n", mtime=OLD_MTIME)
    before = snapshot(dest / "a")
    result = run_cli("render", str(tpl), str(dest), "--set", "a=1")
    assert result.code == 2
    assert len(result.lines) == 1
    assert f"{tpl / 'z'}:2:" in result.stderr
    assert "undefined_here" in result.stderr
    assert snapshot(dest / "a") == before
    assert listing(dest) == ["a"]  # no new directory, no new file, no temp file


def test_configmap_volume_layout(run_cli, tmp_path):
    """What the kubelet makes of a ConfigMap: keys are symlinks through ..data into a timestamped dir."""
    volume = tmp_path / "cm"
    stamp = "..2024_05_01_12_00_00.123456789"
    write(volume / stamp / "app.conf", "ip={{ pod.ip }}\n")
    write(volume / stamp / "sub" / "nested.conf", "ns={{ pod.namespace }}\n")
    os.symlink(stamp, volume / "..data")
    os.symlink("..data/app.conf", volume / "app.conf")
    os.symlink("..data/sub", volume / "sub")
    dest = tmp_path / "out"
    result = run_cli("render", str(volume), str(dest), env={"POD_IP": "10.0.0.9", "POD_NAMESPACE": "shop"})
    assert result.code == 0, result.stderr
    assert listing(dest) == ["app.conf", "sub", "sub/nested.conf"]
    assert (dest / "app.conf").read_text() == "ip=10.0.0.9\n"
    assert (dest / "sub" / "nested.conf").read_text() == "ns=shop\n"
    assert not (dest / "app.conf").is_symlink()

    # the kubelet updates the ConfigMap: a new timestamped dir, ..data swapped
    new_stamp = "..2024_05_02_12_00_00.987654321"
    write(volume / new_stamp / "app.conf", "ip={{ pod.ip }} v2\n")
    write(volume / new_stamp / "sub" / "nested.conf", "ns={{ pod.namespace }}\n")
    os.symlink(new_stamp, volume / "..data_tmp")
    os.rename(volume / "..data_tmp", volume / "..data")
    os.utime(dest / "sub" / "nested.conf", (OLD_MTIME, OLD_MTIME))
    result = run_cli("render", str(volume), str(dest), env={"POD_IP": "10.0.0.9", "POD_NAMESPACE": "shop"})
    assert result.code == 0, result.stderr
    assert (dest / "app.conf").read_text() == "ip=10.0.0.9 v2\n"
    assert os.stat(dest / "sub" / "nested.conf").st_mtime == OLD_MTIME


def test_configmap_file_key_as_a_single_template(run_cli, tmp_path):
    volume = tmp_path / "cm"
    write(volume / "..2024_05_01" / "app.conf", "{% include 'part' %}={{ x }}\n")
    write(volume / "..2024_05_01" / "part", "part")
    os.symlink("..2024_05_01", volume / "..data")
    os.symlink("..data/app.conf", volume / "app.conf")
    os.symlink("..data/part", volume / "part")
    result = run_cli("render", str(volume / "app.conf"), "--set", "x=1")
    assert result.code == 0, result.stderr
    assert result.stdout == "part=1\n"


def test_tree_symlink_leaving_the_tree_is_refused(run_cli, tmp_path):
    write(tmp_path / "secret", "s3cr3t\n")
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    os.symlink(tmp_path / "secret", tpl / "leak")
    dest = tmp_path / "out"
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 2
    assert "outside the template tree" in result.stderr
    assert not dest.exists()


def test_tree_symlink_loop_is_rendered_once(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "sub" / "a", "a\n")
    os.symlink("..", tpl / "sub" / "loop")
    dest = tmp_path / "out"
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 0, result.stderr
    assert listing(dest) == ["sub", "sub/a"]


def test_tree_broken_symlink_is_skipped_with_a_warning(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    os.symlink("gone", tpl / "dangling")
    dest = tmp_path / "out"
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 0, result.stderr
    assert listing(dest) == ["a"]
    assert any("warning: skipping" in line and "dangling" in line for line in result.lines)


def test_tree_dest_that_is_a_file(run_cli, tmp_path):
    write(tmp_path / "tpl" / "a", "a\n")
    dest = write(tmp_path / "out", "a file\n")
    result = run_cli("render", str(tmp_path / "tpl"), dest)
    assert result.code == 2
    assert "not a directory" in result.stderr
    assert (tmp_path / "out").read_text() == "a file\n"


def test_tree_with_a_directory_where_a_file_goes_changes_nothing(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    write(tpl / "b", "b\n")
    dest = tmp_path / "out"
    (dest / "b").mkdir(parents=True)
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 2
    assert "is a directory" in result.stderr
    assert listing(dest) == ["b"]


def test_tree_with_a_file_where_a_directory_goes_changes_nothing(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    write(tpl / "sub" / "b", "b\n")
    dest = tmp_path / "out"
    write(dest / "sub", "a file\n")
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 2
    assert "a file is in the way" in result.stderr
    assert listing(dest) == ["sub"]


def test_tree_dest_inside_the_template_tree_is_refused(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    result = run_cli("render", str(tpl), str(tpl / "out"))
    assert result.code == 2
    assert "inside the template tree" in result.stderr
    assert listing(tpl) == ["a"]


def test_tree_binary_file_is_bad_input(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    (tpl / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    dest = tmp_path / "out"
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 2
    assert len(result.lines) == 1
    assert "logo.png" in result.stderr
    assert not dest.exists()


# --- a full disk ---------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs mounted for this test."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        missing(f"cannot mount a tmpfs: {done.stderr.strip()}", "run as root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def fill(directory):
    """Write a filler file until the file system is full."""
    with open(directory / "filler", "wb", buffering=0) as f:
        chunk = b"\0" * 4096
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        while True:  # the last few bytes
            try:
                f.write(b"\0")
            except OSError:
                break


def test_full_disk_leaves_the_old_file_intact(run_cli, tmp_path, small_disk):
    dest = small_disk / "app.conf"
    write(dest, "old config\n", mtime=OLD_MTIME)
    before = snapshot(dest)
    fill(small_disk)
    template = write(tmp_path / "t", "{% for i in range(2000) %}line {{ i }} of a config\n{% endfor %}")
    result = run_cli("render", template, str(dest))
    assert result.code == 1
    assert result.lines == [f"initkit render: error: cannot write {dest}: No space left on device"]
    assert snapshot(dest) == before
    assert listing(small_disk) == ["app.conf", "filler"]


def test_full_disk_in_a_tree_leaves_no_temp_file(run_proc, tmp_path, small_disk):
    tpl = tmp_path / "tpl"
    write(tpl / "big", "{{ 'x' * 100000 }}\n")
    dest = small_disk / "out"
    write(dest / "big", "old\n", mtime=OLD_MTIME)
    before = snapshot(dest / "big")
    fill(small_disk)
    result = run_proc("render", str(tpl), str(dest))
    assert result.code == 1
    assert "No space left on device" in result.stderr
    assert len(result.lines) == 1
    assert snapshot(dest / "big") == before
    assert listing(dest) == ["big"]


# --- a run killed by SIGKILL mid-write ---------------------------------------------------------------

# initkit render on a disk that stalls at its Nth fsync (the one before a temp file's rename), until the
# test's SIGKILL: the process dies with the temp file beside the destination, written and not renamed.
STALLING_DISK = """
import os, sys
gate, stall_at = int(sys.argv.pop(1)), int(sys.argv.pop(1))
calls, real_fsync = 0, os.fsync
def fsync(fd):
    global calls
    calls += 1
    if calls == stall_at:
        os.read(gate, 1)  # never written to
    real_fsync(fd)
os.fsync = fsync
from initkit.cli import main
main()
"""


def temps_in(directory):
    return sorted(name for name in os.listdir(directory) if ".initkit-tmp" in name) if directory.is_dir() else []


@pytest.mark.parametrize("tree", [False, True], ids=["file", "tree"])
def test_a_render_killed_mid_write_leaves_nothing_after_the_next_run(tmp_path, tree):
    """kill -9 runs no clean-up: the next run sweeps the temp file away (it stayed forever before)."""
    write(tmp_path / "tpl" / "a.conf", "a={{ a }}\n")
    write(tmp_path / "tpl" / "sub" / "b.conf", "{{ 'x' * 1000000 }}\n")
    dest = tmp_path / "out"
    if tree:  # killed writing its second file, in a subdirectory
        args, stall_at, where = [str(tmp_path / "tpl"), str(dest)], 2, dest / "sub"
    else:
        args, stall_at, where = [str(tmp_path / "tpl" / "sub" / "b.conf"), str(dest / "b.conf")], 1, dest
    gate, hold = os.pipe()
    command = [sys.executable, "-c", STALLING_DISK, str(gate), str(stall_at), "render", *args, "--set", "a=1"]
    proc = subprocess.Popen(command, pass_fds=[gate], stderr=subprocess.PIPE, text=True)
    os.close(gate)
    try:
        # the stall is in fsync: the temp file is then whole (it appears while still being written)
        def stalled() -> list[str]:
            found = temps_in(where)
            return found if found and os.path.getsize(where / found[0]) == 1000001 else []

        left = wait_until(stalled, 30, "the temp file, whole and not renamed")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        os.close(hold)
        proc.kill()
        proc.wait()
    assert temps_in(where) == left and os.path.getsize(where / left[0]) == 1000001  # all written, not renamed
    again = subprocess.run(initkit_command("render", *args, "--set", "a=1"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert listing(dest) == (["a.conf", "sub", "sub/b.conf"] if tree else ["b.conf"])
    assert (where / "b.conf").read_text() == "x" * 1000000 + "\n"
    assert not tree or (dest / "a.conf").read_text() == "a=1\n"


def test_special_files(run_cli, tmp_path):
    tpl = tmp_path / "tpl"
    write(tpl / "a", "a\n")
    os.mkfifo(tpl / "fifo")
    result = run_cli("render", str(tpl / "fifo"))
    assert result.code == 2
    assert "not a file or directory" in result.stderr
    dest = tmp_path / "out"
    result = run_cli("render", str(tpl), str(dest))
    assert result.code == 0, result.stderr
    assert listing(dest) == ["a"]
    assert any("skipping" in line and "not a regular file" in line for line in result.lines)


@pytest.mark.parametrize(
    ("part", "line", "kind"),
    [
        ("a\nb\n{{ undefined_in_part }}\n", 3, "undefined variable: 'undefined_in_part'"),
        ("a\n{% if %}\n", 2, "template syntax error"),
        ("a\n{{ 'x' | b64decode }}\n", 2, "template error: binascii.Error"),
    ],
)
def test_an_error_in_an_included_template_names_that_template(run_cli, tmp_path, part, line, kind):
    tpl = tmp_path / "tpl"
    part_path = write(tpl / "part", part)
    main = write(tpl / "main", "x\n{% include 'part' %}\n")
    result = run_cli("render", main)
    assert result.code == 2
    assert len(result.lines) == 1
    assert result.lines[0].startswith(f"initkit render: error: {part_path}:{line}: {kind}")
