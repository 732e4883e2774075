"""Secret redaction: every line initkit prints passes through `redact`.

Three kinds of secrets are masked: values registered as secret (token files, the values
of credential headers), a URL's userinfo, and the values of secret-looking query keys
(a presigned URL's X-Amz-Signature, `?token=`), wherever they appear in the text.
"""

from __future__ import annotations

import re

MASK = "***"
_MIN_LENGTH = 3  # shorter "secrets" would mask ordinary words
_secrets: set[str] = set()

# scheme://USERINFO@ where USERINFO runs to the LAST '@' before the host: a password may
# hold '@' (http://alice:top@secret@host/), but the authority ends at '/' or whitespace.
_USERINFO = re.compile(r"(?P<head>\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)(?P<userinfo>[^/\s]*)@")


# The one rule for "this name holds a credential", for header names (headers.py registers their
# values; httpclient drops them on a redirect to another host) and for URL query keys.
# Substrings, case-insensitive: over-masking a value costs little, missing one leaks it.
SECRET_NAME = re.compile(
    r"auth|token|key|secret|pass(?:w|phrase)|pwd|cookie|session|credential|jwt|bearer"
    r"|(?<![a-z])sig",  # sig, signature, X-Amz-Signature, X-Goog-Signature; not 'design'
    re.IGNORECASE,
)
_SECRET_EXACT = frozenset({"code", "pass", "pw"})  # too short to look for inside other names (an OAuth code)
_NOT_SECRET = frozenset({"idempotency-key"})  # initkit's own header: the same on every re-run, no credential

# [?&;#]KEY=VALUE anywhere in a text: a URL's query or fragment, and also a path printed
# without its host (urllib3's '"GET /r?token=abc HTTP/1.1"'). VALUE runs to '&', '#' or
# whitespace, or to the punctuation and closing quotes a message puts after a URL
# ('...?token=abc': why, GET ...?sig=abc: why); such characters inside it stay in it.
_QUERY_PAIR = re.compile(
    r"(?P<head>[?&;#](?P<key>[^=&;#?\s'\"<>]+)=)(?P<value>[^&#\s]*?)"
    r"(?=[&#\s]|[:;,.!?'\"`<>)\]}]+(?:\s|$)|$)"
)
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def is_secret_name(name: str) -> bool:
    """Does a header name or query key name a credential (X-Api-Key, PRIVATE-TOKEN, sig, code)?"""
    lowered = name.strip().lower()
    if lowered in _NOT_SECRET:
        return False
    return lowered in _SECRET_EXACT or SECRET_NAME.search(lowered) is not None


def _mask_query_value(match: re.Match[str]) -> str:
    key = _PERCENT.sub(lambda m: chr(int(m[1], 16)), match["key"].replace("+", " "))  # X%2DAmz%2DSignature
    if match["value"] and is_secret_name(key):
        return f"{match['head']}{MASK}"
    return match.group(0)


def mask_query(text: str) -> str:
    """TEXT with the values of secret-looking query keys masked: `?token=abc&x=1` -> `?token=***&x=1`."""
    if "=" not in text:
        return text
    return _QUERY_PAIR.sub(_mask_query_value, text)


def _escaped_forms(secret: str) -> set[str]:
    """How the secret reads once a message escaped it: repr() of the str or of its UTF-8
    bytes (`b'Bearer abc\\ndef'`), or JSON. Error messages escape the very characters
    (a newline) that make a value invalid, so the raw form alone would slip through."""
    forms = {secret}
    for quoted in (repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1]):
        # repr picks its quotes by content; the text around the secret may have picked the other ones
        bare = quoted.replace("\\'", "'").replace('\\"', '"')
        forms.update((quoted, bare, bare.replace("'", "\\'"), bare.replace('"', '\\"')))
    import json  # only when a secret is registered

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
    """TEXT without registered secrets, URL userinfo, nor secret query values."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_query(_USERINFO.sub(_mask_userinfo, text))


def forget_all() -> None:
    """For tests and for repeated in-process runs."""
    _secrets.clear()
