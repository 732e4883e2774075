import os

import pytest

from initkit.atomic import UnsafePath, check_tree, open_dir, write_at, write_if_changed


def test_writes_new_file_with_default_mode(tmp_path):
    path = tmp_path / "f"
    assert write_if_changed(str(path), b"a\n") is True
    assert path.read_bytes() == b"a\n" and (path.stat().st_mode & 0o777) == 0o644


def test_unchanged_content_keeps_mtime_but_fixes_mode(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"same")
    os.utime(path, (1_000_000, 1_000_000))
    assert write_if_changed(str(path), b"same", mode=0o600) is False
    assert path.stat().st_mtime == 1_000_000 and (path.stat().st_mode & 0o777) == 0o600


def test_changed_content_replaces_and_keeps_existing_mode(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    path.chmod(0o640)
    assert write_if_changed(str(path), b"new") is True
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_if_changed(str(path), "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


# --- never through a symlink below the trusted directory ------------------------------------------------


def test_a_symlink_at_the_file_is_refused_not_followed_nor_replaced(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    outside.chmod(0o600)
    (tmp_path / "dest").mkdir()
    link = tmp_path / "dest" / "f"
    link.symlink_to(outside)
    for data in (b"keep", b"new"):  # unchanged content (a chmod) and changed content (a rename)
        with pytest.raises(UnsafePath, match="is a symlink"):
            write_if_changed(str(link), data, mode=0o644)
    assert outside.read_bytes() == b"keep" and (outside.stat().st_mode & 0o777) == 0o600
    assert link.is_symlink() and os.listdir(tmp_path / "dest") == ["f"]


def test_a_symlinked_directory_below_the_root_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "etc").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePath, match="etc is a symlink"):
        check_tree(str(tmp_path / "dest"), ["etc", "passwd"])
    with pytest.raises(UnsafePath, match="etc is a symlink"), open_dir(str(tmp_path / "dest"), ["etc"], create=True):
        pass
    assert os.listdir(tmp_path / "elsewhere") == []


def test_the_trusted_root_may_be_a_symlink(tmp_path):
    (tmp_path / "volume").mkdir()
    (tmp_path / "dest").symlink_to(tmp_path / "volume")
    with open_dir(str(tmp_path / "dest"), ["a", "b"], create=True) as fd:
        assert write_at(fd, "f", b"x") is True
    assert (tmp_path / "volume" / "a" / "b" / "f").read_bytes() == b"x"


def test_a_fifo_where_the_file_goes_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "f")
    with pytest.raises(UnsafePath, match="not a regular file"):
        write_if_changed(str(tmp_path / "f"), b"")


def test_a_second_hard_link_is_not_chmodded_through(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"same")
    outside.chmod(0o600)
    os.link(outside, tmp_path / "f")
    assert write_if_changed(str(tmp_path / "f"), b"same", mode=0o644) is True
    assert (outside.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "f").stat().st_mode & 0o777) == 0o644


def test_a_directory_swapped_for_a_symlink_after_opening_is_not_followed(tmp_path):
    """The app races initkit: once a directory is open, writes go through its descriptor."""
    dest = tmp_path / "dest"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with open_dir(str(dest), ["etc"], create=True) as fd:
        os.rename(dest / "etc", dest / "moved")
        (dest / "etc").symlink_to(elsewhere)
        assert write_at(fd, "passwd", b"x") is True
    assert os.listdir(elsewhere) == []
    assert (dest / "moved" / "passwd").read_bytes() == b"x"
