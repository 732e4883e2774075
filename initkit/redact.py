"""Secret redaction: every line initkit prints passes through `redact`."""

from __future__ import annotations

import re

MASK = "***"
_secrets: set[str] = set()

# scheme://user:password@  and, for http(s), scheme://token@
_USER_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")
_HTTP_TOKEN = re.compile(r"(?P<head>\bhttps?://)[^/@:\s]+@")


def register(secret: str) -> None:
    """Never print this value (a token, a password) from now on."""
    secret = secret.strip()
    if len(secret) >= 3:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USER_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    return _HTTP_TOKEN.sub(rf"\g<head>{MASK}@", text)


def forget_all() -> None:
    """For tests and for repeated in-process runs."""
    _secrets.clear()
