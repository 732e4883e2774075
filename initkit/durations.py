"""Durations as people write them: 90, 90s, 1m30s, 500ms, 2h, 1.5m."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(text: str) -> float:
    """Return seconds; a bare number means seconds. Raises ValueError."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if not _WHOLE.fullmatch(value):
        raise ValueError(f"invalid duration {text!r}: use a number of seconds or units like 90s, 1m30s, 500ms, 2h")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))


def format_duration(seconds: float) -> str:
    """Short human form: 0.5s, 42s, 1m30s, 2h0m0s."""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != int(seconds) else f"{seconds:.0f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
