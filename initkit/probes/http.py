"""`http://...` / `https://...`: ready when GET answers 2xx (after redirects, as requests follows them)."""

from __future__ import annotations

import time

from initkit import httpclient
from initkit.probes import NotReady

REQUEST_TIMEOUT = 5.0  # one check, however the server drips its answer


class HttpProbe:
    def __init__(self, url: str, ca_file: str | None) -> None:
        httpclient.check_url(url)
        self.label = url
        self.url = url
        self._client = httpclient.Client(ca_file)  # one Session, one attempt a check: wait-for's loop retries

    def check(self) -> str:
        try:
            answer = self._client.send(
                "GET",
                self.url,
                deadline=time.monotonic() + REQUEST_TIMEOUT,
                per_attempt=REQUEST_TIMEOUT,
                read_body=lambda status: False,
            )
        except (httpclient.RequestFailed, httpclient.GaveUp) as exc:
            raise NotReady(str(exc)) from None
        if 200 <= answer.status < 300:
            return f"HTTP {answer.status}"
        raise NotReady(f"HTTP {answer.status}")
