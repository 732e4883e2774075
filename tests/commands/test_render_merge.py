"""`initkit render --merge` (YAML/JSON deep merge) and `--edit` (YAML, JSON, INI, .properties)."""

import json
import os

import pytest

BASE = """\
# the app's defaults
server:
  port: 8080   # http
  hosts:
    - a
    - b
db:
  user: "app"
  pool: 5
"""

OVERRIDE = """\
server:
  port: 9090
  hosts: [c]
db:
  password: null
extra:
  # added by prod
  k: v
"""

MERGED = """\
# the app's defaults
server:
  port: 9090   # http
  hosts: [c]
db:
  user: "app"
  pool: 7
  password:
extra:
  # added by prod
  k: v
"""

AIRFLOW_CFG = """\
# Airflow's config
[core]
; where the DAGs are
dags_folder = /opt/airflow/dags
Executor = SequentialExecutor
multi = a
    b

[webserver]
base_url = http://localhost:8080   ; inline comment
"""

APP_PROPERTIES = """\
# Spring
! bang comment
server.port=8080
spring.datasource.url : jdbc:postgresql://db/app
list = a,\\
   b
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def inode_and_mtime(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


# --- --merge -----------------------------------------------------------------------------------------


def test_merge_keeps_the_first_files_comments_order_and_quotes(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    override = write(tmp_path / "override.yaml", OVERRIDE)
    out = tmp_path / "config" / "app.yaml"
    result = run_cli("render", "--merge", base, "--merge", override, "--set", "db.pool=7", "--to", str(out))
    assert result.code == 0, result.stderr
    assert out.read_text() == MERGED
    assert result.lines == [f"initkit render: wrote {out}"]


def test_merge_again_rewrites_nothing(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    override = write(tmp_path / "override.yaml", OVERRIDE)
    out = tmp_path / "app.yaml"
    args = ("render", "--merge", base, "--merge", override, "--to", str(out))
    assert run_cli(*args).code == 0
    before = inode_and_mtime(out)
    result = run_cli(*args)
    assert result.code == 0
    assert result.lines == [f"initkit render: unchanged {out}"]
    assert inode_and_mtime(out) == before
    assert sorted(os.listdir(tmp_path)) == ["app.yaml", "base.yaml", "override.yaml"]


def test_merge_rule_maps_merge_lists_and_scalars_replace_empty_adds_nothing(run_cli, tmp_path):
    a = write(tmp_path / "a.yaml", "m: {x: 1, y: {z: 1}}\nl: [1, 2]\ns: one\nkind: {a: 1}\n")
    b = write(tmp_path / "b.yaml", "m: {y: {w: 2}}\nl: [3]\ns: two\nkind: [x]\n")
    empty = write(tmp_path / "empty.yaml", "")
    result = run_cli("render", "--merge", a, "--merge", b, "--merge", empty, "--format", "json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"m": {"x": 1, "y": {"z": 1, "w": 2}}, "l": [3], "s": "two", "kind": ["x"]}


def test_json_in_json_out_with_a_yaml_overlay(run_cli, tmp_path):
    base = write(tmp_path / "base.json", '{\n    "b": 1,\n    "a": {"x": [1, 2], "y": "é"}\n}\n')
    override = write(tmp_path / "prod.yaml", "a:\n  x: [3]\n  z: true\n")
    out = tmp_path / "out.json"
    assert run_cli("render", "--merge", base, "--merge", override, "--to", str(out)).code == 0
    text = out.read_text()
    assert json.loads(text) == {"b": 1, "a": {"x": [3], "y": "é", "z": True}}
    assert list(json.loads(text)) == ["b", "a"]  # the first file's order
    assert text.startswith('{\n    "b": 1')  # and its indentation


def test_merge_to_stdout(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    result = run_cli("render", "--merge", base)
    assert result.code == 0
    assert result.stdout == BASE


def test_set_file_takes_a_secret_from_a_file_and_never_shows_it(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    secret = write(tmp_path / "secret" / "password", "s3cr3t-value\n")
    out = tmp_path / "app.yaml"
    result = run_cli("render", "--merge", base, "--set-file", f"db.password={secret}", "--to", str(out))
    assert result.code == 0, result.stderr
    assert 'db:\n  user: "app"\n  pool: 5\n  password: s3cr3t-value\n' in out.read_text()
    assert "s3cr3t" not in result.stderr


def test_merge_into_one_of_its_inputs_is_refused(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    result = run_cli("render", "--merge", base, "--to", base)
    assert result.code == 2
    assert result.lines == [
        f"initkit render: error: --to {base} is the --merge file {base}: write the result elsewhere"
    ]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["t.j2", "--merge", "a.yaml"], "--merge and --edit take no TEMPLATE or DEST: name the output with --to"),
        (["--merge", "a.yaml", "--edit", "a.yaml"], "give --merge or --edit, not both"),
        (["--merge", "a.yaml", "--values", "a.yaml"], "--values is for templates: give the files to merge as --merge"),
        (
            ["--merge", "a.yaml", "--format", "ini"],
            "--merge writes YAML or JSON, not ini: edit such a file with --edit",
        ),
        (["--edit", "a.yaml"], "--edit needs --set or --set-file"),
        (["--edit", "a.conf", "--set", "a.b=1"], "--edit a.conf: its name does not say its format: give --format"),
        (["--merge", "missing.yaml"], "merge file missing.yaml: not found"),
        (["--merge", "a.yaml", "--set", "a.b=1"], "--set a.b: a is a number, not a mapping"),
        ([], "give a TEMPLATE, or --merge FILE or --edit FILE"),
    ],
)
def test_misuse_is_one_line_exit_2(run_cli, tmp_path, monkeypatch, args, problem):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", "a: 1\n")
    write(tmp_path / "a.conf", "[a]\nb = 0\n")
    result = run_cli("render", *args)
    assert result.code == 2
    assert result.lines == [f"initkit render: error: {problem}"]


# --- --edit ------------------------------------------------------------------------------------------


def test_edit_ini_in_place_keeps_every_other_line(run_cli, tmp_path):
    cfg = tmp_path / "airflow.cfg"
    write(cfg, AIRFLOW_CFG)
    result = run_cli(
        "render",
        "--edit",
        str(cfg),
        "--set",
        "core.executor=KubernetesExecutor",  # configparser's keys are case-insensitive
        "--set",
        "webserver.base_url=http://airflow:8080",
        "--set",
        "logging.remote_logging=True",
    )
    assert result.code == 0, result.stderr
    assert (
        cfg.read_text()
        == AIRFLOW_CFG.replace("= SequentialExecutor", "= KubernetesExecutor").replace(
            "http://localhost:8080   ;",
            "http://airflow:8080     ;",  # iniparse keeps the comment column
        )
        + "\n\n[logging]\nremote_logging = True\n"
    )
    before = inode_and_mtime(cfg)
    again = run_cli("render", "--edit", str(cfg), "--set", "core.executor=KubernetesExecutor")
    assert again.lines == [f"initkit render: unchanged {cfg}"]
    assert inode_and_mtime(cfg) == before


def test_edit_ini_from_a_configmap_to_another_file(run_cli, tmp_path):
    source = write(tmp_path / "cm" / "airflow.cfg", AIRFLOW_CFG)
    out = tmp_path / "work" / "airflow.cfg"
    result = run_cli("render", "--edit", source, "--to", str(out), "--set", "core.dags_folder=/git/dags")
    assert result.code == 0, result.stderr
    assert out.read_text() == AIRFLOW_CFG.replace("/opt/airflow/dags", "/git/dags")
    assert (tmp_path / "cm" / "airflow.cfg").read_text() == AIRFLOW_CFG


def test_edit_properties_keeps_comments_separators_and_continuations(run_cli, tmp_path):
    props = tmp_path / "application.properties"
    write(props, APP_PROPERTIES)
    result = run_cli("render", "--edit", str(props), "--set", "server.port=9090", "--set", "app.greeting=héllo wörld")
    assert result.code == 0, result.stderr
    assert props.read_bytes() == (
        APP_PROPERTIES.replace("server.port=8080", "server.port=9090") + "app.greeting=h\\u00e9llo w\\u00f6rld\n"
    ).encode("ascii")
    before = inode_and_mtime(props)
    assert run_cli("render", "--edit", str(props), "--set", "server.port=9090").code == 0
    assert inode_and_mtime(props) == before


def test_edit_yaml_in_place(run_cli, tmp_path):
    path = tmp_path / "app.yaml"
    write(path, BASE)
    result = run_cli("render", "--edit", str(path), "--set", "server.port=9000", "--set", "db.ssl=true")
    assert result.code == 0, result.stderr
    assert path.read_text() == BASE.replace("port: 8080", "port: 9000") + "  ssl: true\n"


@pytest.mark.parametrize(
    ("name", "text", "item", "problem"),
    [
        (
            "a.ini",
            "[a]\nb = 1\n",
            "a.b=x\n[admin]\nroot=1",
            "--set a.b: the value holds a line break or control character; it must be one line",
        ),
        ("a.ini", "[a]\nb = 1\n", "nosection=1", "--set nosection: an INI key is SECTION.KEY"),
        ("a.ini", "[a]\nb = 1\n", "a.b=c=d", None),  # '=' in a value is fine
        ("a.ini", "[a]\nb = 1\n", "a].x.b=1", "--set a].x.b: malformed section name"),
        ("a.ini", "key = 1\n", "a.b=1", "edit file a.ini:1: malformed INI: a key before any [section]"),
        ("a.ini", "[a]\n  junk line\n", "a.b=1", "edit file a.ini:2: malformed INI line"),
        ("a.properties", "a=\\u00zz\n", "a=1", "edit file a.properties: malformed .properties: an invalid \\u escape"),
    ],
)
def test_edit_refuses_what_the_format_cannot_hold(run_cli, tmp_path, monkeypatch, name, text, item, problem):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / name, text)
    result = run_cli("render", "--edit", name, "--set", item)
    if problem is None:
        assert result.code == 0, result.stderr
        return
    assert result.code == 2
    assert result.lines == [f"initkit render: error: {problem}"]
    assert (tmp_path / name).read_text() == text


def test_env_twins(run_cli, tmp_path):
    base = write(tmp_path / "base.yaml", "a: 1\n")
    out = tmp_path / "out.yaml"
    result = run_cli("render", env={"INITKIT_RENDER_MERGE": base, "INITKIT_RENDER_TO": str(out)})
    assert result.code == 0, result.stderr
    assert out.read_text() == "a: 1\n"


def test_readme_airflow_example_with_a_secret_from_a_file(run_cli, tmp_path):
    # README: initkit render --edit /cm/airflow.cfg --to /work/airflow.cfg --set core.executor=KubernetesExecutor
    #           --set-file database.sql_alchemy_conn=/secrets/db-uri
    source = write(tmp_path / "cm" / "airflow.cfg", AIRFLOW_CFG)
    uri = write(tmp_path / "secrets" / "db-uri", "postgresql://airflow:pa55@db/airflow\n")
    out = tmp_path / "work" / "airflow.cfg"
    result = run_cli(
        "render",
        "--edit",
        source,
        "--to",
        str(out),
        "--set",
        "core.executor=KubernetesExecutor",
        "--set-file",
        f"database.sql_alchemy_conn={uri}",
    )
    assert result.code == 0, result.stderr
    assert out.read_text() == AIRFLOW_CFG.replace("SequentialExecutor", "KubernetesExecutor") + (
        "\n\n[database]\nsql_alchemy_conn = postgresql://airflow:pa55@db/airflow\n"
    )
    assert "pa55" not in result.stderr
