"""Property-based tests of the parsers that read what others control: durations, modes,
--set and values files. For any input initkit exits 0 or 2, says at most one line
(`-q` keeps the success lines out), and never shows a traceback or an internal error."""

import string

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from initkit.durations import parse_duration

# run_cli and tmp_path are function-scoped: one file per test is rewritten by every example.
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_clean(result, allowed=(0, 2)):
    assert result.code in allowed, result.stderr
    assert len(result.lines) <= 1, result.lines
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if result.code == 2:
        assert len(result.lines) == 1, "exit 2 names its cause in one line"


NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.from_regex(r"\A[0-9]{0,25}(\.[0-9]{0,25})?\Z"),
)
DURATIONS = st.one_of(
    st.text(max_size=30),
    NUMBERS,
    st.lists(st.tuples(NUMBERS, st.sampled_from(["ms", "s", "m", "h", "d", "y", "S", ""])), max_size=4).map(
        lambda parts: "".join(n + u for n, u in parts)
    ),
)


@PROPERTY
@given(text=DURATIONS)
@example(text="99999999999999999999")
@example(text="1" * 400)
def test_durations_are_finite_and_at_most_a_year(run_cli, text):
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
        seconds = None
    else:
        assert 0 <= seconds <= 365 * 86400
    if seconds is None or seconds < 0.05:  # sleep only when it is short
        assert_clean(run_cli("-q", "sleep", text))


@PROPERTY
@given(timeout=DURATIONS, interval=DURATIONS)
def test_durations_as_options(run_cli, timeout, interval):
    # file:/ always exists, so a valid pair of durations ends at once with 0
    assert_clean(run_cli("-q", "wait-for", "--timeout", timeout, "--interval", interval, "file:/"))


MODES = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="01234567_-+ o", max_size=8),
    st.integers(min_value=-0o10000, max_value=0o100000).map(lambda n: format(n, "o")),
)


@PROPERTY
@given(mode=MODES)
def test_modes(run_cli, tmp_path, mode):
    template = tmp_path / "t"
    template.write_text("x\n")
    result = run_cli("-q", "render", str(template), str(tmp_path / "out"), "--mode", mode)
    assert_clean(result)
    if result.code == 0:
        assert (tmp_path / "out").stat().st_mode & 0o7000 == 0  # never setuid, setgid or sticky


KEYS = st.text(alphabet=string.ascii_letters + string.digits + "._-\\[]=/ \n\t\x00\x1b\u200b\u00e9", max_size=20)
SETS = st.one_of(
    st.text(max_size=40),
    st.tuples(KEYS, st.text(max_size=20) | NUMBERS).map(lambda kv: f"{kv[0]}={kv[1]}"),
)


@PROPERTY
@given(sets=st.lists(SETS, min_size=1, max_size=4))
@example(sets=["a=" + "9" * 5000])  # more digits than Python turns into an int
@example(sets=[".".join("a" * 500) + "=1"])
def test_set(run_cli, tmp_path, sets):
    template = tmp_path / "t"
    template.write_text("{{ 1 }}\n")
    args = [arg for item in sets for arg in ("--set", item)]
    assert_clean(run_cli("-q", "render", str(template), *args))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
YAMLISH = st.text(alphabet="&*!|>-:{}[],'\"#%@`?<~ \n\tab019.eE+", max_size=80)


def documents():
    return st.one_of(
        VALUES.map(lambda v: yaml.safe_dump(v)),
        st.dictionaries(st.text(max_size=8), VALUES, max_size=4).map(lambda v: yaml.safe_dump(v)),
        YAMLISH,
        st.text(max_size=80),
    )


@PROPERTY
@given(first=documents(), second=st.one_of(documents(), st.binary(max_size=40)))
def test_values_files(run_cli, tmp_path, first, second):
    template = tmp_path / "t"
    template.write_text("{{ 1 }}\n")
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(first, encoding="utf-8", errors="surrogatepass")
    (two.write_bytes if isinstance(second, bytes) else two.write_text)(second)
    assert_clean(run_cli("-q", "render", str(template), "--values", str(one), "--values", str(two)))


@pytest.mark.parametrize(
    "text", ["a: &a [*a]", "a: !!python/object/apply:os.system ['touch /tmp/x']", "a: \x08", "[1, 2]"]
)
def test_values_files_known_hostile_examples(run_cli, tmp_path, text):
    template = tmp_path / "t"
    template.write_text("{{ 1 }}\n")
    (tmp_path / "v.yaml").write_text(text)
    result = run_cli("-q", "render", str(template), "--values", str(tmp_path / "v.yaml"))
    assert_clean(result, allowed=(2,))
