"""`http://...` / `https://...`: ready when GET answers as expected (after redirects, as requests follows them).

Without expectations, any 2xx. With them (the URL's fragment, parsed in
`initkit.probes.parse_expectations`): the status in a set, the body holding a
text or matching a regex, a JSON field equal to a value, a header holding a
text. Only the first BODY_LIMIT bytes of a body are ever read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from initkit import httpclient
from initkit.probes import HttpExpect, NotReady
from initkit.urls import printable

if TYPE_CHECKING:
    from initkit.cancel import Token

REQUEST_TIMEOUT = 5.0  # one check, however the server drips its answer
BODY_LIMIT = 64 * 1024
_MISSING = object()


class HttpProbe:
    def __init__(
        self, url: str, ca_file: str | None, expect: HttpExpect | None = None, label: str | None = None
    ) -> None:
        httpclient.check_url(url)
        self.label = label or url
        self.url = url
        self.expect = expect or HttpExpect()
        self._ca_file = ca_file
        # One Session, one attempt a check (wait-for's loop retries); made now so a missing CA file is exit 2.
        self._client = httpclient.Client(ca_file)

    def check(self, token: Token | None = None) -> str:
        """One GET within REQUEST_TIMEOUT and the token's deadline; its sockets are cut when the token is cancelled."""
        from initkit import cancel

        token = token or cancel.current()
        if self._client.token is not token:
            self._client = httpclient.Client(self._ca_file, token=token)
        expect = self.expect
        try:
            answer = self._client.send(
                "GET",
                self.url,
                deadline=token.clock.monotonic() + REQUEST_TIMEOUT,
                per_attempt=REQUEST_TIMEOUT,
                read_body=lambda status: expect.needs_body,
                body_limit=BODY_LIMIT,
            )
        except (httpclient.RequestFailed, httpclient.GaveUp) as exc:
            raise NotReady(str(exc)) from None
        status = answer.status
        if not (status in expect.statuses if expect.statuses else 200 <= status < 300):
            raise NotReady(f"HTTP {status}" + (f", expected {expect.status_text}" if expect.statuses else ""))
        for name, wanted in expect.header:
            value = answer.headers.get(name)
            if value is None or wanted not in value:
                raise NotReady(f"HTTP {status}, header {name} is {_quote(value)}, expected it to hold {wanted!r}")
        body = answer.start
        for text in expect.body:
            if text not in body:
                raise NotReady(f"HTTP {status}, body does not hold {text!r}: {_quote(httpclient.snippet(body, 80))}")
        for pattern in expect.regex:
            if not pattern.search(body):
                raise NotReady(
                    f"HTTP {status}, body does not match {pattern.pattern!r}: {_quote(httpclient.snippet(body, 80))}"
                )
        if expect.json:
            try:
                document = json.loads(body)
            except ValueError:
                raise NotReady(f"HTTP {status}, body is not JSON (first {BODY_LIMIT // 1024} KiB read)") from None
            for path, wanted in expect.json:
                found = _field(document, path)
                if found is _MISSING:
                    raise NotReady(f"HTTP {status}, JSON has no {'.'.join(path)}")
                if not _equal(found, wanted):
                    shown = found if isinstance(found, str) else json.dumps(found)
                    raise NotReady(f"HTTP {status}, JSON {'.'.join(path)} is {_quote(shown)}, expected {wanted!r}")
        return f"HTTP {status}"


def _field(document: Any, path: list[str]) -> Any:
    """document.a.b, or document.items.0 for a list; _MISSING when absent."""
    for part in path:
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return _MISSING
    return document


def _equal(found: Any, wanted: str) -> bool:
    """A string field equals the text; any other value equals its JSON form (true, 3, null)."""
    if isinstance(found, str):
        return found == wanted
    try:
        value = json.loads(wanted)
    except ValueError:
        return False
    if isinstance(found, bool) or isinstance(value, bool):
        return found is value  # True == 1 in Python; in JSON they differ
    return bool(value == found)  # numbers (3 == 3.0), null


def _quote(text: str | None) -> str:
    return "absent" if text is None else repr(printable(text))
