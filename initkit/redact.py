"""Secret redaction: every line initkit prints passes through `redact`."""

from __future__ import annotations

import json
import re

MASK = "***"
_MIN_LENGTH = 3  # shorter "secrets" would mask ordinary words
_secrets: set[str] = set()

# scheme://USERINFO@ where USERINFO runs to the LAST '@' before the host: a password may
# hold '@' (http://alice:top@secret@host/), but the authority ends at '/' or whitespace.
_USERINFO = re.compile(r"(?P<head>\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)(?P<userinfo>[^/\s]*)@")


def _escaped_forms(secret: str) -> set[str]:
    """How the secret reads once a message escaped it: repr() of the str or of its UTF-8
    bytes (`b'Bearer abc\\ndef'`), or JSON. Error messages escape the very characters
    (a newline) that make a value invalid, so the raw form alone would slip through."""
    forms = {secret}
    for quoted in (repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1]):
        # repr picks its quotes by content; the text around the secret may have picked the other ones
        bare = quoted.replace("\\'", "'").replace('\\"', '"')
        forms.update((quoted, bare, bare.replace("'", "\\'"), bare.replace('"', '\\"')))
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return forms


def register(secret: str) -> None:
    """Never print this value (a token, a password), nor its escaped forms, from now on."""
    secret = secret.strip()
    if len(secret) >= _MIN_LENGTH:
        _secrets.update(_escaped_forms(secret))


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    if colon:
        return f"{match['head']}{user}:{MASK}@"
    if match["scheme"].lower() in ("http", "https"):
        return f"{match['head']}{MASK}@"  # https://TOKEN@host: the user name is the secret
    return match.group(0)  # ssh://git@host: a user name only


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _USERINFO.sub(_mask_userinfo, text)


def forget_all() -> None:
    """For tests and for repeated in-process runs."""
    _secrets.clear()
