"""`http://...` / `https://...`: ready when GET answers 2xx."""

from __future__ import annotations

from initkit import httpclient
from initkit.probes import NotReady

REQUEST_TIMEOUT = 5.0


class HttpProbe:
    def __init__(self, url: str, ca_file: str | None) -> None:
        httpclient.check_url(url)
        self.label = url
        self.url = url
        self._client = httpclient.Client(ca_file)

    def check(self) -> str:
        try:
            response = self._client.request("GET", self.url, timeout=REQUEST_TIMEOUT)
        except httpclient.RequestFailed as exc:
            raise NotReady(str(exc)) from None
        if 200 <= response.status < 300:
            return f"HTTP {response.status}"
        raise NotReady(f"HTTP {response.status}")
