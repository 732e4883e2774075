"""HTTP for `register` and wait-for's URL targets, on urllib3.

urllib3 rather than requests: requests' import alone (urllib3 plus
charset_normalizer, idna, cookies) costs 5 MiB more than register's whole
memory budget leaves. What requests added that matters here is done below:
the proxy environment variables, a CA bundle, redirects, short error phrases.
"""

from __future__ import annotations

import email.utils
import os
import time
from dataclasses import dataclass
from typing import Any

from initkit import __version__
from initkit.errors import BadInput

USER_AGENT = f"initkit/{__version__}"
MAX_REDIRECTS = 5


class RequestFailed(Exception):
    """No HTTP answer: the message is a short phrase ('connection refused', ...)."""


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased
    text: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def check_url(url: str) -> None:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise BadInput(f"invalid URL {url}: expected http://HOST/... or https://HOST/...")


def _no_proxy(host: str) -> bool:
    entries = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
    for entry in (e.strip().lower() for e in entries.split(",")):
        if entry == "*" or (entry and (host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")))):
            return True
    return False


def _proxy_for(scheme: str, host: str) -> str | None:
    if _no_proxy(host.lower()):
        return None
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
        if os.environ.get(name):
            return os.environ[name]
    return None


class Client:
    def __init__(self, ca_file: str | None = None) -> None:
        import urllib3

        if ca_file is not None and not os.path.isfile(ca_file):
            raise BadInput(f"CA file {ca_file} does not exist")
        self._urllib3 = urllib3
        self._options: dict[str, Any] = {"ca_certs": ca_file} if ca_file else {}
        self._pools: dict[str | None, Any] = {}

    def _pool(self, proxy: str | None) -> Any:
        if proxy not in self._pools:
            if proxy is None:
                self._pools[proxy] = self._urllib3.PoolManager(**self._options)
            else:
                self._pools[proxy] = self._urllib3.ProxyManager(proxy, **self._options)
        return self._pools[proxy]

    def request(
        self, method: str, url: str, *, body: str | None = None, headers: dict[str, str] | None = None, timeout: float
    ) -> Response:
        check_url(url)
        urllib3 = self._urllib3
        try:
            parsed = urllib3.util.parse_url(url)
        except urllib3.exceptions.LocationParseError as exc:
            raise BadInput(f"invalid URL {url}: {exc}") from None
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if parsed.auth and not any(k.lower() == "authorization" for k in all_headers):
            # http://user:password@host/ means Basic auth, as curl and requests read it
            import base64
            from urllib.parse import unquote

            all_headers["Authorization"] = "Basic " + base64.b64encode(unquote(parsed.auth).encode()).decode()
        retries = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=MAX_REDIRECTS)
        try:
            answer = self._pool(_proxy_for(parsed.scheme or "http", parsed.host or "")).request(
                method,
                url,
                body=body.encode() if body is not None else None,
                headers=all_headers,
                timeout=urllib3.Timeout(total=timeout),
                retries=retries,
            )
        except urllib3.exceptions.LocationValueError as exc:
            raise BadInput(f"invalid URL {url}: {exc}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise RequestFailed(describe_error(exc)) from None
        return Response(
            answer.status,
            answer.reason or "",
            {k.lower(): v for k, v in answer.headers.items()},
            answer.data.decode("utf-8", errors="replace"),
        )


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


def describe_error(exc: BaseException) -> str:
    """A short phrase for a failed request: 'connection refused', 'timed out', ..."""
    import ssl

    chain = _causes(exc)
    text = " ".join(str(item) for item in chain)
    if any(isinstance(item, ConnectionRefusedError) for item in chain) or "Connection refused" in text:
        return "connection refused"
    if any(isinstance(item, ssl.SSLCertVerificationError) for item in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS error: certificate verify failed"
    if any(isinstance(item, ssl.SSLError) for item in chain):
        return "TLS error"
    if "NameResolutionError" in text or "Name or service not known" in text or "Failed to resolve" in text:
        return "cannot resolve host"
    if any(isinstance(item, TimeoutError) for item in chain) or "timed out" in text:
        return "timed out"
    if "redirect" in text.lower():
        return f"too many redirects (over {MAX_REDIRECTS})"
    if "Connection reset" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed by the server"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


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
