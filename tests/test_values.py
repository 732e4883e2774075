import json

import pytest

from initkit import values
from initkit.errors import BadInput


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_files_deep_merge_in_order(tmp_path):
    first = write(
        tmp_path / "a.yaml",
        "db:\n  host: a\n  replicas: 1\n  opts: {ssl: true}\nlist: [1, 2]\nonly_a: x\n",
    )
    second = write(tmp_path / "b.json", json.dumps({"db": {"replicas": 2, "opts": {"pool": 5}}, "list": [3]}))
    assert values.load([first, second]) == {
        "db": {"host": "a", "replicas": 2, "opts": {"ssl": True, "pool": 5}},
        "list": [3],  # lists replace, as in Helm
        "only_a": "x",
    }
    # the other order: the later file wins
    assert values.load([second, first])["db"]["replicas"] == 1


def test_deep_merge_does_not_modify_its_inputs():
    base = {"a": {"b": 1}}
    overlay = {"a": {"c": 2}}
    assert values.deep_merge(base, overlay) == {"a": {"b": 1, "c": 2}}
    assert base == {"a": {"b": 1}}
    assert overlay == {"a": {"c": 2}}


def test_a_mapping_replaces_a_scalar_and_the_reverse():
    assert values.deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert values.deep_merge({"a": {"b": 2}}, {"a": None}) == {"a": None}


def test_set_overrides_one_nested_value_after_the_files(tmp_path):
    file = write(tmp_path / "v.yaml", "db:\n  host: a\n  replicas: 1\n")
    result = values.load([file], ["db.replicas=3", "new.deep.key=x"])
    assert result == {"db": {"host": "a", "replicas": 3}, "new": {"deep": {"key": "x"}}}


def test_later_set_wins():
    assert values.load([], ["a=1", "a=2"]) == {"a": 2}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3", 3),
        ("-12", -12),
        ("0", 0),
        ("true", True),
        ("True", True),
        ("false", False),
        ("null", None),
        ("~", None),
        ("", ""),
        ("hello", "hello"),
        ("1.10", "1.10"),  # a version, not 1.1
        ("0644", "0644"),  # not octal 420
        ("yes", "yes"),  # YAML 1.1's yes/no/on/off stay strings, as in Helm
        ("1:30", "1:30"),  # not sexagesimal 90
        ("2024-01-01", "2024-01-01"),  # not a date
        ('"3"', "3"),  # quoted: a string
        ("'true'", "true"),
        ("a=b=c", "a=b=c"),
    ],
)
def test_set_values_are_typed_like_helm(raw, expected):
    assert values.parse_scalar(raw) == expected
    assert type(values.parse_scalar(raw)) is type(expected)


def test_set_splits_at_the_first_equals_sign():
    assert values.load([], ["url=http://x/?a=b"]) == {"url": "http://x/?a=b"}


def test_escaped_dot_keeps_a_dot_in_a_key():
    assert values.load([], [r"labels.app\.kubernetes\.io/name=web"]) == {"labels": {"app.kubernetes.io/name": "web"}}


def test_set_without_equals_is_bad_input():
    with pytest.raises(BadInput, match=r"--set 'db.replicas' has no '='"):
        values.load([], ["db.replicas"])


def test_set_without_equals_does_not_echo_what_may_be_a_secret():
    with pytest.raises(BadInput) as caught:
        values.load([], ["a=1", "password:hunter2!"])
    assert "hunter2" not in str(caught.value)
    assert "#2" in str(caught.value)


@pytest.mark.parametrize("item", ["=1", "a..b=1", ".a=1", "a.=1", " =1", "a\nb=1", "a.\x1b[31m=1", "a.b\u200b=1"])
def test_malformed_set_key_is_bad_input(item):
    with pytest.raises(BadInput, match="malformed key"):
        values.load([], [item])


def test_set_through_a_scalar_is_bad_input(tmp_path):
    file = write(tmp_path / "v.yaml", "db:\n  host: a\n")
    with pytest.raises(BadInput, match=r"--set db\.host\.port: db\.host is a string, not a mapping"):
        values.load([file], ["db.host.port=5432"])


def test_set_through_null_creates_a_mapping(tmp_path):
    file = write(tmp_path / "v.yaml", "db:\n")
    assert values.load([file], ["db.port=5432"]) == {"db": {"port": 5432}}


@pytest.mark.parametrize("key", ["pod", "node", "env"])
def test_reserved_keys_in_a_values_file(tmp_path, key):
    file = write(tmp_path / "v.yaml", f"{key}:\n  ip: 1.2.3.4\nok: 1\n")
    with pytest.raises(BadInput, match=rf"{key} is reserved"):
        values.load([file])


@pytest.mark.parametrize("item", ["pod.ip=1.2.3.4", "node=x", "env.HOME=/"])
def test_reserved_keys_in_set(item):
    with pytest.raises(BadInput, match="is reserved"):
        values.load([], [item])


def test_a_reserved_name_below_the_top_level_is_fine():
    assert values.load([], ["app.env=prod"]) == {"app": {"env": "prod"}}


def test_missing_values_file(tmp_path):
    with pytest.raises(BadInput, match=r"values file .*nope\.yaml: not found"):
        values.load([str(tmp_path / "nope.yaml")])


def test_values_file_that_is_a_directory(tmp_path):
    with pytest.raises(BadInput, match="is a directory"):
        values.load([str(tmp_path)])


def test_values_file_not_utf8(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(BadInput, match="not UTF-8"):
        values.load([str(path)])


def test_malformed_yaml_names_file_and_line_but_not_the_content(tmp_path):
    file = write(tmp_path / "v.yaml", "a: 1\npassword: s3cr3t\nb: [unclosed\n")
    with pytest.raises(BadInput) as caught:
        values.load([file])
    message = str(caught.value)
    assert message.startswith(f"values file {file}:")
    assert "malformed YAML" in message
    assert "s3cr3t" not in message
    assert "\n" not in message


def test_malformed_json_names_the_line(tmp_path):
    file = write(tmp_path / "v.json", '{\n  "a": 1\n  "b": 2\n}\n')
    with pytest.raises(BadInput, match=r"v\.json:\d+:\d+: malformed YAML"):
        values.load([file])


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "string"), ("3\n", "number")])
def test_values_file_that_is_not_a_mapping(tmp_path, text, kind):
    file = write(tmp_path / "v.yaml", text)
    with pytest.raises(BadInput, match=rf"must be a mapping .*not a {kind}"):
        values.load([file])


def test_empty_values_file_is_empty(tmp_path):
    assert values.load([write(tmp_path / "v.yaml", "# nothing yet\n")]) == {}


def test_multiple_documents_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="malformed YAML"):
        values.load([write(tmp_path / "v.yaml", "a: 1\n---\nb: 2\n")])


def test_set_key_of_more_than_100_parts_is_bad_input():
    with pytest.raises(BadInput, match="more than 100 parts"):
        values.load([], [".".join(["a"] * 101) + "=1"])


def test_set_int_of_too_many_digits_is_bad_input():
    with pytest.raises(BadInput, match="too many digits"):
        values.load([], ["a=" + "9" * 5000])


def test_set_that_is_not_utf8_is_bad_input():
    with pytest.raises(BadInput, match="not valid UTF-8"):
        values.load([], [b"a=\xff".decode("utf-8", "surrogateescape")])


def test_aliases_and_merge_keys_within_bounds_are_fine(tmp_path):
    path = write(tmp_path / "v.yaml", "base: &b {x: 1, y: [1, 2]}\nc: {<<: *b, z: 3}\nd: [*b, *b]\n")
    assert values.load([path, path]) == {
        "base": {"x": 1, "y": [1, 2]},
        "c": {"x": 1, "y": [1, 2], "z": 3},
        "d": [{"x": 1, "y": [1, 2]}, {"x": 1, "y": [1, 2]}],
    }


def test_a_value_that_refers_to_itself_is_bad_input(tmp_path):
    path = write(tmp_path / "v.yaml", "a: &a\n  b: *a\n")
    with pytest.raises(BadInput) as caught:
        values.load([path])
    assert str(caught.value) == f"values file {path}:2:6: an alias refers to a value that contains it"
