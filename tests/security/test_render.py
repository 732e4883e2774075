"""Hostile input to `initkit render`: a poisoned DEST volume, resource bombs, signals.

DEST is often a volume the app container writes too, and templates and values
come from ConfigMaps and chart values someone else controls. Each test is a
repro of issue 8 that failed on the code before the fix.
"""

import os
import stat

import pytest


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
