"""`http://...` / `https://...`: ready when GET answers 2xx."""

from __future__ import annotations

from initkit import httpclient
from initkit.probes import NotReady

REQUEST_TIMEOUT = 5.0


class HttpProbe:
    def __init__(self, url: str, ca_file: str | None) -> None:
        self.label = url
        self.url = url
        self._session = httpclient.session(ca_file)

    def check(self) -> str:
        import requests

        try:
            response = self._session.get(self.url, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            raise NotReady(httpclient.describe_error(exc)) from None
        response.close()
        if 200 <= response.status_code < 300:
            return f"HTTP {response.status_code}"
        raise NotReady(f"HTTP {response.status_code}")
