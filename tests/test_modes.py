"""initkit.modes against the real chmod: the same spec, applied to the same file, must give the same st_mode."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from initkit.modes import ModeError, format_mode, parse

CHMOD = shutil.which("chmod")
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

who = st.text(alphabet="ugoa", max_size=3)
perms = st.one_of(st.text(alphabet="rwxX", max_size=4), st.sampled_from(["u", "g", "o"]))
action = st.tuples(st.sampled_from("+-="), perms).map("".join)
clause = st.tuples(who, st.lists(action, min_size=1, max_size=3).map("".join)).map("".join)
symbolic = st.lists(clause, min_size=1, max_size=4).map(",".join)
octal = st.integers(0, 0o777).flatmap(lambda m: st.sampled_from([f"{m:o}", f"{m:03o}", f"{m:04o}"]))
umasks = st.one_of(st.sampled_from([0o022, 0o002, 0o077, 0o000]), st.integers(0, 0o777))


def chmod(spec: str, path: Path, umask: int) -> subprocess.CompletedProcess[str]:
    # `--`: a spec such as -w must not be taken for an option.
    env = {**os.environ, "LC_ALL": "C"}  # its messages, which the tests read, in English
    return subprocess.run(
        [CHMOD, "--", spec, str(path)], umask=umask, env=env, capture_output=True, text=True, check=False
    )


def scratch(base: Path, is_dir: bool, mode: int) -> Path:
    path = base / ("d" if is_dir else "f")
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()
    if is_dir:
        path.mkdir()
    else:
        path.touch()
    os.chmod(path, mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode  # as root, setuid/setgid/sticky all stick
    return path


def agrees_with_chmod(base: Path, spec: str, start: int, is_dir: bool, umask: int) -> None:
    path = scratch(base, is_dir, start)
    done = chmod(spec, path, umask)
    # chmod exits 1 (having changed the mode) when the umask kept a bit from changing; anything else is a refusal.
    assert done.returncode == 0 or "new permissions are" in done.stderr, (spec, done.stderr)
    expected = stat.S_IMODE(os.stat(path).st_mode)
    got = parse(spec).apply(start, is_dir, umask)
    assert format_mode(got) == format_mode(expected), (spec, format_mode(start), is_dir, f"{umask:03o}")


@SETTINGS
@given(spec=symbolic, start=st.integers(0, 0o7777), is_dir=st.booleans(), umask=umasks)
@example(spec="u+rwX,g+rwX", start=0o644, is_dir=False, umask=0o022)
@example(spec="u+rwX,g+rwX", start=0o744, is_dir=False, umask=0o022)  # X: someone can execute it
@example(spec="u+x,g+X", start=0o600, is_dir=False, umask=0o022)  # X sees the u+x just made
@example(spec="a=rX", start=0o2775, is_dir=True, umask=0o022)  # a directory keeps setgid
@example(spec="a=rX", start=0o4755, is_dir=False, umask=0o022)  # a file loses setuid
@example(spec="g=u", start=0o750, is_dir=False, umask=0o022)
@example(spec="=rw", start=0o1777, is_dir=False, umask=0o022)  # no who: the umask's bits are cleared, not set
@example(spec="-w", start=0o666, is_dir=False, umask=0o022)
def test_symbolic_specs_match_chmod(tmp_path, spec, start, is_dir, umask):
    agrees_with_chmod(tmp_path, spec, start, is_dir, umask)


@SETTINGS
@given(spec=octal, start=st.integers(0, 0o7777), is_dir=st.booleans())
@example(spec="0775", start=0o2755, is_dir=True)  # chmod 0775 keeps a directory's setgid
@example(spec="0775", start=0o3755, is_dir=True)  # ... but clears its sticky bit
@example(spec="644", start=0o4755, is_dir=False)
def test_octal_specs_match_chmod(tmp_path, spec, start, is_dir):
    agrees_with_chmod(tmp_path, spec, start, is_dir, 0o022)


@SETTINGS
@given(spec=st.text(alphabet="ugoa+-=rwxX,", min_size=1, max_size=10))
@example(spec="u+r,")
@example(spec="ug")
def test_parse_accepts_exactly_what_chmod_accepts_and_agrees(tmp_path, spec):
    try:
        parsed = parse(spec)
    except ModeError:
        parsed = None
    for is_dir in (False, True):
        path = scratch(tmp_path, is_dir, 0o640)
        done = chmod(spec, path, 0o022)
        if "invalid mode" in done.stderr:
            assert parsed is None, f"chmod refuses {spec!r}: {done.stderr}"
            continue
        assert parsed is not None, f"chmod accepts {spec!r}"
        assert done.returncode == 0 or "new permissions are" in done.stderr, (spec, done.stderr)
        assert format_mode(parsed.apply(0o640, is_dir, 0o022)) == format_mode(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("u+s", "setuid, setgid or sticky"),
        ("+t", "setuid, setgid or sticky"),
        ("g+rws", "setuid, setgid or sticky"),
        ("4755", "setuid, setgid or sticky"),
        ("1777", "setuid, setgid or sticky"),
        ("00775", "0000 to 0777"),
        ("0789", "0000 to 0777"),
        ("", "empty mode"),
        ("u", "is not [ugoa...]"),
        ("rwx", "is not [ugoa...]"),
        ("u+r,", "is not [ugoa...]"),
        ("u+q", "unexpected 'q'"),
        ("g=uo", "unexpected 'o'"),
        ("+755", "unexpected '7'"),
        ("u:rwx", "is not [ugoa...]"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(spec, words):
    with pytest.raises(ModeError) as caught:
        parse(spec)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_clauses_and_chained_ops_parse_as_chmod_does():
    spec = parse("u=rwx,g=rx-x+w,o=")
    assert [c.op for c in spec.clauses] == ["=", "=", "-", "+", "="]
    assert spec.apply(0o777, is_dir=False) == 0o760
