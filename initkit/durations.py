"""Durations as people write them: 90, 90s, 1m30s, 500ms, 2h, 1.5m."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# ASCII digits only: \d would take any script's digits, which float() then reads.
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
_WHOLE = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d))+")
MAX_SECONDS = 365 * 86400.0  # longer is a typo; time.sleep() and deadlines overflow near 1e11 s anyway


def parse_duration(text: str) -> float:
    """Return seconds, at most a year; a bare number means seconds. Raises ValueError."""
    value = text.strip().lower()
    if re.fullmatch(_NUMBER, value):
        seconds = float(value)
    elif _WHOLE.fullmatch(value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    else:
        raise ValueError(f"invalid duration {text!r}: use a number of seconds or units like 90s, 1m30s, 500ms, 2h")
    return check_seconds(seconds, text)


def check_seconds(seconds: float, shown: object) -> float:
    """`seconds` if it is a usable duration: finite, not negative, at most MAX_SECONDS."""
    if not 0 <= seconds <= MAX_SECONDS:  # also false for nan; inf and 1e400 are above
        shown = shown if len(str(shown)) <= 40 else f"{str(shown)[:37]}..."
        raise ValueError(f"duration {shown!r} is too long: at most 365d")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: 0.5s, 42s, 1m30s, 2h0m0s."""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != int(seconds) else f"{seconds:.0f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
