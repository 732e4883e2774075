import socket

from initkit.podfacts import PodFacts


def test_downward_api_variables_win(tmp_path):
    env = {"POD_IP": "10.1.1.1", "POD_NAME": "p", "POD_NAMESPACE": "ns", "POD_UID": "u", "NODE_NAME": "n"}
    facts = PodFacts(env, namespace_file=str(tmp_path / "none"))
    assert facts.as_dict() == {
        "pod": {"ip": "10.1.1.1", "name": "p", "namespace": "ns", "uid": "u"},
        "node": {"name": "n"},
    }
    assert facts.identity() == "uid:u"


def test_fallbacks_outside_the_downward_api(tmp_path):
    ns = tmp_path / "namespace"
    ns.write_text("team-a\n")
    facts = PodFacts({}, namespace_file=str(ns))
    assert facts.namespace == "team-a"
    assert facts.name == socket.gethostname()
    assert facts.ip == socket.gethostbyname(socket.gethostname())
    assert facts.uid is None and facts.node_name is None
    assert facts.identity() == f"name:team-a/{socket.gethostname()}"


def test_info_prints_facts_as_json(run_cli):
    import json

    result = run_cli("info", env={"POD_IP": "10.0.0.9", "POD_UID": "abc", "NODE_NAME": "node-1"})
    assert result.code == 0
    facts = json.loads(result.stdout)
    assert facts["pod"]["ip"] == "10.0.0.9" and facts["pod"]["uid"] == "abc" and facts["node"]["name"] == "node-1"


def test_a_variable_that_is_not_utf8_is_bad_input(tmp_path):
    import pytest

    from initkit.errors import BadInput

    env = {"POD_IP": b"10.0.0.\xff".decode("utf-8", "surrogateescape")}
    with pytest.raises(BadInput) as caught:
        _ = PodFacts(env, namespace_file=str(tmp_path / "none")).ip
    assert str(caught.value) == "environment variable POD_IP is not valid UTF-8"


def test_a_namespace_file_that_is_not_utf8_is_bad_input(tmp_path):
    import pytest

    from initkit.errors import BadInput

    ns = tmp_path / "namespace"
    ns.write_bytes(b"\xff\xfe")
    with pytest.raises(BadInput, match="is not UTF-8 text"):
        _ = PodFacts({}, namespace_file=str(ns)).namespace
