"""Hostile chart values and a hostile sysctl root for `initkit sysctl` (issue 19).

KEY=VALUE comes from chart values: a key such as `../../etc/passwd` or a value such as `|/bin/sh`
(what kernel.core_pattern would run as root on the node) must be exit 2 with one line, and nothing
written. The fake root (INITKIT_SYSCTL_ROOT, for tests) stands for a /proc/sys someone could shape:
links planted at a directory or at the key itself, a FIFO, a huge file, a hard link to a file
elsewhere, must never lead a write outside it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from initkit import sysctl

OUTSIDE = "65530\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(root, outside): a fake /proc/sys, and a file outside it that nothing may write."""
    root = tmp_path / "sys"
    (root / "vm").mkdir(parents=True)
    (root / "vm" / "max_map_count").write_text("65530\n")
    (root / "net" / "core").mkdir(parents=True)
    (root / "net" / "core" / "somaxconn").write_text("4096\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "max_map_count").write_text(OUTSIDE)
    (outside / "passwd").write_text(OUTSIDE)
    return root, outside


@pytest.fixture
def run(run_cli, layout):
    root, _ = layout

    def go(*settings: str, exact: bool = False):
        started = time.monotonic()
        result = run_cli("sysctl", *(["--exact"] if exact else []), *settings, env={"INITKIT_SYSCTL_ROOT": str(root)})
        assert time.monotonic() - started < 5
        return result

    return go


def assert_refused(result, code: int = 2) -> str:
    """Exit CODE, one error line (after the test root's warning), printable, no traceback."""
    assert result.code == code, result.stderr
    errors = [line for line in result.lines if "is for tests only" not in line]
    assert len(errors) == 1, result.stderr
    (line,) = errors
    assert line.isprintable(), line
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return line


def untouched(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    assert (outside / "max_map_count").read_text() == OUTSIDE
    assert (outside / "passwd").read_text() == OUTSIDE
    assert (root / "vm" / "max_map_count").read_text() == "65530\n"


HOSTILE_KEYS = [
    "../outside/passwd",
    "vm/../../outside/passwd",
    "vm/../max_map_count",
    "/etc/passwd",
    "/proc/sys/vm/max_map_count",
    "vm..max_map_count",
    ".vm.max_map_count",
    "vm.max_map_count.",
    "vm./..max_map_count",  # a slash in the dotted form is a dot: would make a ".." component
    "net.core.//.somaxconn",
    "vm/./max_map_count",
    "vm\\max_map_count",
    "vm.max_map_count\x00",
    "vm.max_map_count\nnet.core.somaxconn",
    "vm.max_map_count ",
    " vm.max_map_count",
    "vm.max_map_count\t",
    "vm.mаx_map_count",  # a Cyrillic a
    "vm.max_map_count\u2028",
    "vm.max_map_count\x1b[2J",
    "vm." + "a" * 10_000,
    ".".join(["vm"] * 20),
    "",
    "~/x",
    "$(reboot)",
    "vm.*",
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_a_hostile_key_is_exit_2_and_nothing_is_written(run, layout, key):
    line = assert_refused(run(f"{key}=262144"))
    assert len(line) < 400
    untouched(layout)


HOSTILE_VALUES = [
    "|/bin/sh -c reboot",  # what kernel.core_pattern would run
    "262144; reboot",
    "9" * 10_000,
    "1 " * 10_000,
    str(2**64),
    str(-(2**63) - 1),
    "1\x002",
    "1\n2",
    "262144\n",
    "1\r",
    "١٢",  # Arabic-Indic digits: int() takes them, the kernel does not
    "1_000",
    "+5",
    "0x10",
    "1e6",
    "",
    " ",
    "1 2 3 4 5 6 7 8 9",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_a_hostile_value_is_exit_2_and_nothing_is_written(run, layout, value):
    assert_refused(run(f"vm.max_map_count={value}", exact=True))
    untouched(layout)


def test_the_largest_numbers_pass(run, layout):
    root, _ = layout
    (root / "kernel").mkdir()
    (root / "kernel" / "shmmax").write_text("18446744073692774399\n")  # the kernel's default, near 2**64
    assert run(f"kernel.shmmax={2**64 - 1}").code == 0
    assert (root / "kernel" / "shmmax").read_text() == f"{2**64 - 1}\n"


def test_a_symlinked_directory_in_the_root_is_refused(run, layout):
    root, outside = layout
    os.rename(root / "vm", root / "vm.real")
    (root / "vm").symlink_to(outside)
    line = assert_refused(run("vm.max_map_count=262144"))
    assert f"{root}/vm is a symlink" in line
    assert (outside / "max_map_count").read_text() == OUTSIDE


def test_a_symlink_at_the_key_is_refused(run, layout):
    root, outside = layout
    (root / "vm" / "max_map_count").unlink()
    (root / "vm" / "max_map_count").symlink_to(outside / "max_map_count")
    line = assert_refused(run("vm.max_map_count=262144"))
    assert "is a symlink: initkit never follows links" in line
    assert (outside / "max_map_count").read_text() == OUTSIDE


def test_a_symlink_loop_is_refused(run, layout):
    root, _ = layout
    (root / "loop").symlink_to(root / "loop")
    assert_refused(run("loop.x=1"))


def test_a_dangling_symlink_at_the_key_is_refused_not_created(run, layout, tmp_path):
    root, _ = layout
    target = tmp_path / "created"
    (root / "vm" / "dangling").symlink_to(target)
    assert_refused(run("vm.dangling=1"))
    assert not target.exists()


def test_a_fifo_at_the_key_ends_at_once(run, layout):
    root, _ = layout
    os.mkfifo(root / "vm" / "fifo")
    line = assert_refused(run("vm.fifo=1"))  # opened with O_NONBLOCK: no writer needed, no hang
    assert "is not a sysctl file" in line


def test_a_hard_link_to_a_file_elsewhere_is_refused(run, layout):
    root, outside = layout
    (root / "vm" / "max_map_count").unlink()
    os.link(outside / "max_map_count", root / "vm" / "max_map_count")
    line = assert_refused(run("vm.max_map_count=262144"))
    assert "is not a sysctl file" in line
    assert (outside / "max_map_count").read_text() == OUTSIDE


def test_a_huge_file_is_read_in_bounded_memory(run, layout):
    root, _ = layout
    with open(root / "vm" / "huge", "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB of NULs that cost no disk
    line = assert_refused(run("vm.huge=1"))
    assert "vm.huge does not hold numbers" in line


def test_a_file_of_many_numbers_is_not_a_sysctl(run, layout):
    root, _ = layout
    (root / "vm" / "long").write_text("1 " * 5000)
    assert_refused(run("vm.long=1"))


def test_control_characters_in_a_file_are_shown_escaped(run, layout):
    root, _ = layout
    (root / "vm" / "text").write_bytes(b"\x1b]0;pwned\x07\n\xff")
    line = assert_refused(run("vm.text=1"))
    assert "\x1b" not in line and "\x07" not in line


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_namespace_of_a_hostile_key_is_bad_input(key):
    with pytest.raises(sysctl.SysctlError):
        sysctl.namespace(key)


@pytest.mark.parametrize("plant", ["hard link", "symlink", "fifo"])
def test_a_file_swapped_in_after_the_read_is_not_written_through(layout, plant):
    # What a swap between the read and the write would leave at the key: write() checks again.
    root, outside = layout
    key = root / "vm" / "max_map_count"
    key.unlink()
    if plant == "hard link":
        os.link(outside / "max_map_count", key)
    elif plant == "symlink":
        key.symlink_to(outside / "max_map_count")
    else:
        os.mkfifo(key)
    with pytest.raises((sysctl.SysctlError, sysctl.Refused)):
        sysctl.write(str(root), sysctl.parse_key("vm.max_map_count"), (262144,))
    assert (outside / "max_map_count").read_text() == OUTSIDE
