"""The one check of an http(s) URL a user gives (register's URL, wait-for's http targets),
and the one way such a URL is shown in a message (`redact` masks it again in every line).

It runs before anything is sent, so a URL no request could ever go to (`http://[::1`,
port 99999) is exit 2 at once instead of a failure retried until the timeout. The
message never holds the URL's user:password@, and stays one line whatever the URL holds.
Light on purpose (the standard library only), so a fetch re-run with nothing to fetch loads
no HTTP library; `httpclient.check_url` adds requests' own preparation before a request.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

from initkit.errors import BadInput
from initkit.log import printable
from initkit.redact import mask_query

__all__ = ["check_http_url", "printable", "shown", "without_userinfo"]

_UNSENDABLE = re.compile(r"[\x00-\x20\x7f]")


def without_userinfo(url: str) -> str:
    """URL without the user:password@ part (a lone http user is a token, so it is hidden too).

    Redaction would hide a password as well, but a malformed URL is exactly where its
    pattern may not match; this keeps the secret out of the message in the first place."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    if "@" in netloc:  # the last @ ends the userinfo, as in urllib3 and requests
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    return f"{scheme}{sep}{netloc}{tail}"


def shown(url: str) -> str:
    """URL as a message may show it: no user:password@, no secret query value (?token=***), one line."""
    return mask_query(printable(without_userinfo(url)))


def check_http_url(url: str, label: str = "invalid URL") -> None:
    """BadInput ("LABEL 'URL': why") unless URL looks like http(s)://HOST[:PORT]/..."""

    def bad(why: str) -> BadInput:
        if label == "invalid URL":
            return BadInput(f"invalid URL {shown(url)!r}: {why}")
        return BadInput(f"{label} {shown(url)!r}: invalid URL: {why}")

    if _UNSENDABLE.search(url):
        raise bad("a URL cannot hold whitespace or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise bad(str(exc).rstrip(".")) from None
    if parts.scheme.lower() not in ("http", "https") or not url.partition("://")[1] or not parts.hostname:
        raise bad("expected http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH")
    if port == 0 or (port is None and parts.netloc.rsplit("@", 1)[-1].endswith(":")):
        raise bad("port must be 1 to 65535")
    if "[" in parts.netloc:  # a bracketed literal must be an IPv6 address (urlsplit checks only some)
        try:
            ipaddress.IPv6Address(parts.hostname.split("%", 1)[0])
        except ValueError:
            raise bad(f"{parts.hostname!r} in brackets is not an IPv6 address") from None
