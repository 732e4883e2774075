import pytest

from initkit.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1.5m", 90), ("0", 0), ("1d", 86400),
     ("1h2m3s4ms", 3723.004), (" 5S ", 5)],
)  # fmt: skip
def test_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-5", "5 minutes", "1m30", "ms5", "1y", "1.s"])
def test_invalid(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.5, "0.5s"), (42, "42s"), (90, "1m30s"), (7200, "2h0m0s"), (1.5, "1.5s")]
)
def test_format(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["99999999999999999999", "366d", "8761h", "1" * 400, "99999999999999999999d"])
def test_longer_than_a_year_is_refused(text):
    with pytest.raises(ValueError, match="too long: at most 365d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["inf", "nan", "1e9", "\u0663", "\uff15s", "-0", "+5"])
def test_only_ascii_digits(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_a_year_is_the_longest():
    assert parse_duration("365d") == 365 * 86400
