"""fetch and render make DEST's missing parent directories (fs.make_parents), owned like the
volume's root: the kubelet makes a subPath directory only where it mounts it, and podman
makes none, so a step that writes below a subPath the app mounts finds it missing.

The attack: a symlink planted where a missing parent directory goes (by a container
sharing the volume, between the check and the mkdir) is refused and never followed. The
nearest existing ancestor is trusted as DEST's directory always was (the operator named it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from initkit import fs
from tests.artifact_server import ArtifactServer

APP = 1001  # the app's uid and gid, the volume root's owner (a permissions step, or fsGroup)
PAYLOAD = b"model weights\n" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server() -> Iterator[ArtifactServer]:
    s = ArtifactServer()
    yield s
    s.stop()


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "volume"
    root.mkdir()
    os.chown(root, APP, APP)
    return root


def owners(root: Path, *parts: str) -> list[tuple[int, int]]:
    out, path = [], root
    for part in parts:
        path = path / part
        st = path.lstat()
        out.append((st.st_uid, st.st_gid))
    return out


def test_fetch_makes_missing_parents_owned_like_the_volume_root(run_cli, server, volume):
    url = server.add("/model.bin", PAYLOAD)
    dest = volume / "models" / "resnet" / "model.bin"
    done = run_cli("fetch", url, str(dest), "--sha256", DIGEST)
    assert done.code == 0, done.stderr
    assert dest.read_bytes() == PAYLOAD
    assert owners(volume, "models", "resnet") == [(APP, APP), (APP, APP)], "not root's: the app writes there too"
    again = run_cli("fetch", url, str(dest), "--sha256", DIGEST)
    assert again.code == 0 and len(server.requests) == 1, "a re-run uses no network"


def test_render_makes_missing_parents_owned_like_the_volume_root(run_cli, tmp_path, volume):
    template = tmp_path / "app.conf.j2"
    template.write_text("name = {{ name }}\n")
    dest = volume / "conf" / "app" / "app.conf"
    done = run_cli("render", str(template), str(dest), "--set", "name=web")
    assert done.code == 0, done.stderr
    assert dest.read_text() == "name = web\n"
    assert owners(volume, "conf", "app") == [(APP, APP), (APP, APP)]


def test_a_link_at_a_missing_level_is_refused_not_followed(volume, tmp_path):
    """make_parents opens each level with O_NOFOLLOW: a link already at a missing level's name
    (the race lost between lexists and mkdir) is refused, not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (volume / "a").mkdir()
    (volume / "a" / "b").symlink_to(outside)
    with pytest.raises(fs.UnsafePath), fs.open_dir(str(volume), ["a", "b", "c"], create=True):
        pass
    assert list(outside.iterdir()) == []


def test_a_file_in_the_way_is_one_line_exit_2(run_cli, server, volume):
    (volume / "models").write_text("not a directory")
    url = server.add("/model.bin", PAYLOAD)
    done = run_cli("fetch", url, str(volume / "models" / "model.bin"), "--sha256", DIGEST)
    assert done.code == 2 and "not a directory" in done.stderr, done.stderr
