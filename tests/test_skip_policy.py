"""The suite's skip policy itself: under CI=true a skip is a failure, and markers are strict."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_one="""
        from conftest import requirement

        def test_needs_a_tool():
            requirement.tool("no-such-tool-initkit", "install it")

        def test_stray_skip():
            import pytest
            pytest.skip("a helper of its own")

        def test_plain():
            pass
        """
    )
    return pytester


@pytest.mark.parametrize(("ci", "outcome"), [("true", {"failed": 2, "passed": 1}), ("", {"skipped": 2, "passed": 1})])
def test_skips_are_skips_outside_ci_and_failures_in_ci(suite, monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(**outcome)
    if ci:
        result.stdout.fnmatch_lines(["*no-such-tool-initkit is not installed (CI=true: install it)*"])
        result.stdout.fnmatch_lines(["*skipped under CI=true*a helper of its own*"])


def test_an_undeclared_marker_is_an_error(pytester):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile("import pytest\n\n@pytest.mark.dokcer\ndef test_typo():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'dokcer' not found in `markers` configuration option*"])
