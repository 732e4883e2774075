"""HTTP through requests, shared by `register` and `wait-for`'s URL targets."""

from __future__ import annotations

import email.utils
import os
import time
from typing import TYPE_CHECKING

from initkit import __version__
from initkit.errors import BadInput

if TYPE_CHECKING:
    import requests

USER_AGENT = f"initkit/{__version__}"


def session(ca_file: str | None = None) -> requests.Session:
    import requests

    if ca_file is not None and not os.path.isfile(ca_file):
        raise BadInput(f"CA file {ca_file} does not exist")

    class Session(requests.Session):
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's
        # own `verify` (psf/requests#3829); an explicit --ca-file must win.
        def request(self, *args: object, **kwargs: object) -> requests.Response:
            if ca_file is not None:
                kwargs.setdefault("verify", ca_file)
            return super().request(*args, **kwargs)  # type: ignore[arg-type]

    s = Session()
    s.headers["User-Agent"] = USER_AGENT
    if ca_file is not None:
        s.verify = ca_file
    return s


def describe_error(exc: BaseException) -> str:
    """A short phrase for a requests failure: 'connection refused', 'timed out', ..."""
    import requests

    chain = _causes(exc)
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
    text = " ".join(str(item) for item in chain)
    if isinstance(exc, requests.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS error: certificate verify failed" if "VERIFY_FAILED" in text else "TLS error"
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
        return "cannot resolve host"
    if "Connection refused" in text:
        return "connection refused"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return f"invalid URL: {exc}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and everything behind it: __cause__, __context__, urllib3's .reason, nested args."""
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or any(item is f for f in found):
            continue
        found.append(item)
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return found


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def snippet(text: str, limit: int = 200) -> str:
    """The start of an answer body, on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
