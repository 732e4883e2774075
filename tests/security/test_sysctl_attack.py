"""Red-team attacks on `initkit sysctl`, through the real CLI, in its documented test root
(INITKIT_SYSCTL_ROOT) only: never a sysctl of the host.

Settings from the environment twin split at odd line separators, a root whose files hold
kernel-style or hostile text, numbers past 64 bits and negative numbers under both rules."""

from __future__ import annotations

import pytest

from tests.security import test_sysctl as base
from tests.security.test_sysctl import assert_refused, untouched

layout, run = base.layout, base.run  # its fixtures: the fake root, and the CLI run in it


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029", "\x1e", "\x1c", "\r", "\v", "\f"])
def test_settings_from_the_environment_split_at_newline_only(run_cli, layout, separator):
    # str.splitlines() would make two settings of this one line (and click's default, whitespace,
    # would split "1024 65000"): it is one malformed value, exit 2, and neither key is written.
    root, _ = layout
    settings = f"vm.max_map_count=262144{separator}net.core.somaxconn=8192"
    result = run_cli("sysctl", env={"INITKIT_SYSCTL_ROOT": str(root), "INITKIT_SYSCTL_SETTINGS": settings})
    line = assert_refused(result)
    assert separator not in line
    untouched(layout)
    assert (root / "net" / "core" / "somaxconn").read_text() == "4096\n"


def test_kernel_style_tabs_and_trailing_spaces_are_read_as_fields(run, layout):
    root, _ = layout
    (root / "net" / "ipv4").mkdir()
    (root / "net" / "ipv4" / "tcp_rmem").write_text("4096\t131072\t6291456 \t\n")
    result = run("net.ipv4.tcp_rmem=8192 1 1")
    assert result.code == 0, result.stderr
    assert (root / "net" / "ipv4" / "tcp_rmem").read_text() == "8192 131072 6291456\n"


def test_a_current_value_past_64_bits_is_compared_not_wrapped(run, layout):
    # Read back from a root that holds more than an unsigned long: --only-raise keeps it (no
    # wrap-around makes 2**64 - 1 look higher), --exact writes what was asked.
    root, _ = layout
    (root / "kernel").mkdir()
    big = root / "kernel" / "shmmax"
    big.write_text("99999999999999999999\n")
    result = run(f"kernel.shmmax={2**64 - 1}")
    assert result.code == 0, result.stderr
    assert big.read_text() == "99999999999999999999\n"
    assert run("kernel.shmmax=-1", exact=True).code == 0
    assert big.read_text() == "-1\n"


@pytest.mark.parametrize(
    ("current", "wanted", "exact", "after"),
    [
        ("-1", "2", False, "2"),  # only-raise compares signed numbers: 2 > -1
        ("2", "-1", False, "2"),  # and never lowers to a negative one
        ("2", "-1", True, "-1"),
        ("-9223372036854775808", "-9223372036854775807", False, "-9223372036854775807"),
    ],
)
def test_negative_numbers_under_both_rules(run, layout, current, wanted, exact, after):
    root, _ = layout
    (root / "kernel").mkdir()
    paranoid = root / "kernel" / "perf_event_paranoid"
    paranoid.write_text(f"{current}\n")
    result = run(f"kernel.perf_event_paranoid={wanted}", exact=exact)
    assert result.code == 0, result.stderr
    assert paranoid.read_text() == f"{after}\n"


@pytest.mark.parametrize("value", ["-9223372036854775809", "18446744073709551616", "-0x1", "1e3", "9" * 21])
def test_numbers_past_64_bits_are_exit_2(run, layout, value):
    assert_refused(run(f"vm.max_map_count={value}", exact=True))
    untouched(layout)
