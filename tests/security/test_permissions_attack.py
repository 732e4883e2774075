"""More hostile volumes for `initkit permissions` (red team): a link the app planted above PATH."""

from __future__ import annotations

import os
import stat

import pytest

from tests.conftest import requirement

APP = 1001


@pytest.mark.parametrize("mkdir", [True, False])
def test_a_link_planted_above_an_existing_path_never_leads_the_walk_out(run_cli, tmp_path, mkdir):
    """The app owns the volume (the last run chowned it) and swaps `postgresql`, the directory
    PATH lies in, for a link to a directory that holds a `data`: the walk must not chown it."""
    requirement.root("chown")
    volume = tmp_path / "volume"
    volume.mkdir()
    outside = tmp_path / "outside" / "data"
    outside.mkdir(parents=True)
    (outside / "shadow").write_text("root:x\n")
    (outside / "shadow").chmod(0o600)
    (volume / "postgresql").symlink_to(outside.parent)
    args = ["--path", str(volume / "postgresql" / "data"), f"{APP}:{APP}", "u=rwX,go=rwX"]
    result = run_cli("permissions", *args, *(["--mkdir"] if mkdir else []))
    assert result.code == 1, result.stderr
    assert len(result.lines) == 1 and f"{volume}/postgresql is a symlink" in result.lines[0], result.stderr
    for entry in (outside, outside / "shadow"):
        st = entry.lstat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode) & 0o077) == (0, 0 if entry.name == "shadow" else 0o055)
    assert os.readlink(volume / "postgresql") == str(outside.parent)
