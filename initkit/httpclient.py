"""HTTP for `register` and wait-for's URL targets, on requests.

requests does the protocol work: the proxy environment variables (CIDR and
suffix NO_PROXY entries), Basic auth from URL userinfo, redirects, the CA
bundle. Retries, their backoff
with jitter and Retry-After are urllib3's `Retry`, mounted on the Session's
adapter. What initkit adds is what neither library has:

- a real deadline: requests' timeout applies to each socket read, so a server
  that drips one byte at a time never trips it. A watchdog shuts the socket
  down at the deadline (`_Watchdog`); `_DeadlineRetry` then refuses to retry.
- cancellation: each Client waits on a token (initkit.cancel: the run's by
  default). When it is cancelled (a signal), the watchdog shuts every socket
  down, a pause between attempts ends, and `Stopped` is raised: never an
  exception from a signal handler in the middle of urllib3. Deadlines and
  pauses are on the token's clock, so tests can use a fake one.
- answers are streamed: only the first few KiB of a body are ever read.
- request parts are checked before sending, so a bad value is exit 2 with a
  line naming the part, never a library message quoting the (secret) value.
- a redirect to another host gets none of the credential headers (requests
  drops only Authorization), and one to a URL that is not http(s) is the
  server's failure (`_Session`).
- one wording of a failed request for every command (`failure`, `refused`).

Imported only by commands that send HTTP: `initkit sleep` loads no requests.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from initkit import __version__, cancel, redact
from initkit.errors import BadInput

USER_AGENT = f"initkit/{__version__}"
MAX_REDIRECTS = 5
SNIPPET_BYTES = 4096  # all of an answer's body `send` reads unless asked for more: enough for the error line
DOWNLOAD_CHUNK = 1 << 16
DOWNLOAD_WATCH = 365 * 86400.0  # the watchdog of a download without a deadline: never fires
MAX_RETRY_AFTER = 600.0  # a server may ask for a pause, not for forever (and time.sleep overflows)
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: methods and header names
# RFC 9110 field-value characters: visible ASCII, space, tab and obs-text; all latin-1, as http.client sends them.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class RequestFailed(Exception):
    """No usable HTTP answer: the message is a short phrase ('connection refused', ...).

    `attempts`: how many were made, when fewer than the policy allowed.
    `retried`: False for a failure no retry could change (a redirect off http(s))."""

    def __init__(self, reason: str, attempts: int | None = None, *, retried: bool = True) -> None:
        super().__init__(reason)
        self.attempts = attempts
        self.retried = retried


class BadStatus(Exception):
    """A download answered with a status other than 2xx (after retrying 5xx and 429)."""

    def __init__(self, status: int, reason: str, start: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.reason = reason
        self.snippet = snippet(start)


class GaveUp(Exception):
    """Retrying stopped early because the deadline would pass; `reason` is the last failure."""

    def __init__(self, reason: str, attempts: int, deadline_passed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.deadline_passed = deadline_passed


@dataclass
class Answer:
    status: int
    reason: str
    start: str  # the first SNIPPET_BYTES (or the caller's body_limit) of the body, decoded
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case

    @property
    def snippet(self) -> str:
        return snippet(self.start)


# ---- checks before sending ----------------------------------------------------------------------


def check_url(url: str) -> None:
    """http(s)://HOST[:PORT]/... that requests can send; else BadInput (initkit.urls is the one check)."""
    from initkit.urls import check_http_url, shown

    check_http_url(url)
    try:
        # requests' own preparation (IDNA, labels such as '.' or '*.'), without sending anything.
        requests.models.PreparedRequest().prepare_url(url, None)
    except (requests.exceptions.RequestException, ValueError, UnicodeError):
        # Its message quotes the URL, password and all: name only the cause.
        raise BadInput(
            f"invalid URL {shown(url)!r}: requests cannot prepare it (an empty or invalid host label)"
        ) from None


def check_method(method: str) -> None:
    if not TOKEN.fullmatch(method):
        raise BadInput(f"invalid --method {method!r}: a method is one word such as POST or PUT")


def check_headers(headers: Mapping[str, str]) -> None:
    """Names are tokens, values one line of latin-1 text. The message names the header, never its value."""
    for name, value in headers.items():
        if not TOKEN.fullmatch(name):
            raise BadInput(f"invalid header name {name!r}: a header name is one word such as X-Team")
        if not _FIELD_VALUE.fullmatch(value):
            what = "a line break or control character" if re.search(r"[\x00-\x1f\x7f]", value) else "non-latin-1 text"
            raise BadInput(f"header {name}: its value holds {what}; a header value must be one line of latin-1 text")


# ---- the deadline -------------------------------------------------------------------------------


class _Watchdog:
    """Shuts sockets down when their time is up, from a timer thread.

    A blocked recv() then returns at once, wherever it is (status line, headers,
    body, TLS handshake, a proxy's CONNECT answer), in whichever thread. The
    watchdog holds its own duplicate of each descriptor: TLS detaches the socket
    object urllib3 first made, and a number alone could be reused by another file.
    """

    def __init__(self, deadline: float | None, per_attempt: float, token: cancel.Token) -> None:
        self.deadline = deadline  # on token.clock; None: no overall limit
        self.per_attempt = per_attempt
        self.token = token
        self.clock = token.clock
        self.fired = False  # a timer cut a request off since the last `take_fired`
        self.cancelled = threading.Event()  # the token was cancelled: no attempt, no pause goes on
        self._armed: dict[int, tuple[threading.Timer, socket.socket]] = {}  # connection id -> (timer, duplicate)
        self._lock = threading.Lock()
        self._closed = False
        self._unsubscribe = token.on_cancel(self.cancel)

    def left(self) -> float:
        if self.deadline is None:
            return self.per_attempt
        return min(self.per_attempt, self.deadline - self.clock.monotonic())

    def expired(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    def watch(self, key: int, sock: socket.socket) -> None:
        """(Re)arm the timer of connection `key` (its socket `sock`) for one attempt, bounded by the deadline."""
        try:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return  # closed already: nothing to wait on
        with self._lock:
            if self._closed:
                duplicate.close()
                return
            cancelled = self.cancelled.is_set()
            if not cancelled:
                timer = threading.Timer(max(0.0, self.left()), self._cut, args=(duplicate,))
                timer.daemon = True
                self._drop(self._armed.pop(key, None))
                self._armed[key] = (timer, duplicate)
        if cancelled:  # a connection made after `cancel` (its connect was under way): cut before it sends
            self._cut(duplicate)
            duplicate.close()
            return
        timer.start()

    def _cut(self, duplicate: socket.socket) -> None:
        with self._lock:
            if self._closed or duplicate.fileno() == -1:
                return
            # Flag first: the reader wakes the moment the socket is shut and asks at once.
            self.fired = True
            try:
                duplicate.shutdown(socket.SHUT_RDWR)  # acts on the connection, TLS or not
            except OSError:
                self.fired = False  # closed by the peer meanwhile: nothing was cut off

    @staticmethod
    def _drop(armed: tuple[threading.Timer, socket.socket] | None) -> None:
        if armed is not None:
            armed[0].cancel()
            armed[1].close()

    def cancel(self) -> None:
        """The token was cancelled (from another thread): every socket is shut down (also one whose
        connect ends later), the deadline becomes now so no retry starts."""
        with self._lock:
            self.deadline = self.clock.monotonic()
            self.cancelled.set()
            duplicates = [duplicate for _, duplicate in self._armed.values()]
        for duplicate in duplicates:
            self._cut(duplicate)

    def take_fired(self) -> bool:
        fired, self.fired = self.fired, False
        return fired

    def disarm(self) -> None:
        """Between attempts: the last attempt's sockets are done with (the next one re-arms its own)."""
        with self._lock:
            for armed in self._armed.values():
                self._drop(armed)
            self._armed.clear()

    def close(self) -> None:
        self._unsubscribe()
        self.disarm()
        with self._lock:
            self._closed = True


_current = threading.local()  # the watchdog of the request this thread is sending


def _watch(key: int, sock: socket.socket | None) -> None:
    watchdog: _Watchdog | None = getattr(_current, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.watch(key, sock)


class _WatchedMixin:
    """Hands every socket a connection opens or reuses to the thread's watchdog."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(id(self), sock)  # the TCP socket, before any TLS or tunnel wraps it
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:  # a kept-alive connection: re-arm for this attempt
            _watch(id(self), sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _Connection(_WatchedMixin, HTTPConnection):
    pass


class _TlsConnection(_WatchedMixin, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections the watchdog can see, direct or through a proxy."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


# ---- retries ------------------------------------------------------------------------------------


@dataclass
class RetryPolicy:
    """How `send` retries: `attempts` in all, within the deadline; `on_retry(reason, delay, attempt)` logs."""

    attempts: int = 1
    on_retry: Callable[[str, float, int], None] | None = None
    watchdog: _Watchdog | None = field(default=None, repr=False)


class _DeadlineRetry(Retry):
    """urllib3's Retry, plus: no retry that would start after the deadline, a cap on Retry-After,
    and a log line before each pause. Backoff, jitter and Retry-After parsing stay urllib3's."""

    # 413 with Retry-After is a 4xx that register's contract fails at once.
    RETRY_AFTER_STATUS_CODES = frozenset([429, 503])

    def __init__(self, *args: Any, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy or RetryPolicy()

    def new(self, **kwargs: Any) -> _DeadlineRetry:
        fresh = super().new(**kwargs)
        fresh.policy = self.policy
        return fresh

    def increment(self, *args: Any, **kwargs: Any) -> _DeadlineRetry:
        fresh = super().increment(*args, **kwargs)  # raises MaxRetryError when no attempt is left
        response = kwargs.get("response")
        if response is not None:
            # urllib3 then drains the answer to reuse the connection; some versions (Debian's 2.3)
            # keep all of it in memory. A closed answer drains at once; the retry connects anew.
            response.close()
        return fresh

    def get_retry_after(self, response: Any) -> float | None:
        try:
            seconds = super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:
            return None  # a Retry-After that is neither seconds nor a date: back off as usual
        return None if seconds is None else min(float(seconds), MAX_RETRY_AFTER)

    def sleep(self, response: Any = None) -> None:
        delay = None
        if self.respect_retry_after_header and response is not None:
            delay = self.get_retry_after(response)
        if delay is None:
            delay = self.get_backoff_time()
        attempt = len(self.history)
        last = self.history[-1] if self.history else None
        watchdog = self.policy.watchdog
        if watchdog is not None:
            watchdog.disarm()
        token = watchdog.token if watchdog is not None else cancel.current()
        token.check()  # an attempt cut off by a signal is not retried
        cut = watchdog is not None and watchdog.take_fired()
        reason = "timed out" if cut else _history_reason(last)
        deadline = watchdog.deadline if watchdog is not None else None
        if deadline is not None and token.clock.monotonic() + delay >= deadline:
            raise GaveUp(reason, attempt, deadline_passed=watchdog is not None and watchdog.expired())
        if self.policy.on_retry is not None:
            self.policy.on_retry(reason, delay, attempt)
        if delay > 0:
            token.wait(delay)  # Stopped at once on a signal, with no attempt after it


def _history_reason(entry: Any) -> str:
    if entry is None:
        return "unknown"
    if entry.status is not None:
        return f"HTTP {entry.status}"
    if isinstance(entry.error, _BodyCut):
        return str(entry.error)
    return describe_error(entry.error) if entry.error is not None else "unknown"


# ---- redirects ----------------------------------------------------------------------------------

SHOWN_REDIRECT = 200  # characters of a redirect's target a message shows: the server chose them


class _Session(requests.Session):
    """requests' Session, stricter on each redirect it follows (requests calls `rebuild_auth` for each).

    requests strips only Authorization when a redirect leaves the origin; initkit's
    credentials also travel as X-Api-Key, PRIVATE-TOKEN, Cookie and the like. Every
    header whose name `redact.is_secret_name` calls a credential is dropped too, by
    requests' own rule of what leaves the origin (`should_strip_auth`: another host,
    port or scheme, except http to https on the default ports). Proxy-Authorization
    is left to requests, which drops the caller's and rebuilds the one of the proxy
    settings for the new URL (`rebuild_proxies`)."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        target = prepared_request.url or ""
        try:
            check_url(target)
        except BadInput:
            # The server's doing, not the operator's: a failure (exit 1), not retried.
            why = f"redirected to {_shown_target(target)}: not a usable http(s) URL"
            raise RequestFailed(why, 1, retried=False) from None
        if self.should_strip_auth(response.request.url, target):
            for name in [n for n in prepared_request.headers if redact.is_secret_name(n)]:
                if name.lower() != "proxy-authorization":
                    del prepared_request.headers[name]
        super().rebuild_auth(prepared_request, response)


def _shown_target(url: str) -> str:
    """A redirect's target as a message shows it: no userinfo, no secret query value, bounded."""
    from initkit.urls import shown

    text = shown(url)
    return text if len(text) <= SHOWN_REDIRECT else text[:SHOWN_REDIRECT] + "..."


# ---- sending ------------------------------------------------------------------------------------


class Client:
    """One requests Session for a command; `verify` is passed per request, so neither
    REQUESTS_CA_BUNDLE nor CURL_CA_BUNDLE can replace `--ca-file`."""

    def __init__(
        self, ca_file: str | None = None, *, policy: RetryPolicy | None = None, token: cancel.Token | None = None
    ) -> None:
        import os

        if ca_file is not None and not os.path.isfile(ca_file):
            raise BadInput(f"CA file {ca_file} does not exist")
        self.verify: str | bool = ca_file if ca_file is not None else True
        self.policy = policy or RetryPolicy()
        # What cancels this client's requests and whose clock its deadlines are on.
        self.token = token or cancel.current()
        self.retry = _DeadlineRetry(
            total=self.policy.attempts - 1,
            # Every attempt carries the same Idempotency-Key, so any method may be retried, POST and PUT too.
            allowed_methods=None,
            status_forcelist=frozenset([429, *range(500, 600)]),
            respect_retry_after_header=True,
            raise_on_status=False,  # after the last attempt: hand back the last answer
            backoff_factor=0.5,
            backoff_jitter=0.5,
            backoff_max=30.0,
            redirect=False,  # requests follows redirects itself (Session.max_redirects)
            policy=self.policy,
        )
        self.session = _Session()
        self.session.max_redirects = MAX_REDIRECTS
        self.session.headers["User-Agent"] = USER_AGENT
        # No compressed answers: a small gzip body can inflate without bound, and initkit reads only a snippet.
        self.session.headers["Accept-Encoding"] = "identity"
        # requests reads a redirect's whole body (to reuse the connection) before following it.
        self.session.hooks["response"].append(_drop_redirect_body)
        adapter = _Adapter(max_retries=self.retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send(
        self,
        method: str,
        url: str,
        *,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None,
        per_attempt: float,
        read_body: Callable[[int], bool],
        body_limit: int = SNIPPET_BYTES,
    ) -> Answer:
        """One request with the retries of the policy, all within `deadline` (on the token's clock).

        Reads at most `body_limit` bytes of the answer, and only when `read_body(status)`.
        Raises GaveUp (the deadline ends the retries), RequestFailed (no answer after
        the last attempt), BadInput (requests found the URL unusable) or Stopped (the
        token was cancelled)."""
        watchdog = _Watchdog(deadline, per_attempt, self.token)
        try:
            response = self._open(method, url, body, headers, watchdog, read_timeout=None)
            try:
                start = _read_start(response, body_limit) if read_body(response.status_code) else b""
            finally:
                response.close()
            self.token.check()  # a body cut off by a signal is no answer
            return Answer(
                response.status_code,
                response.reason or "",
                start.decode("utf-8", errors="replace"),
                {k.lower(): v for k, v in response.headers.items()},
            )
        finally:
            _current.watchdog = None
            watchdog.close()

    def download(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        deadline: float | None,
        stall: float,
        restart: Callable[[int | None], None],
        write: Callable[[bytes], None],
    ) -> None:
        """GET `url` and stream its 2xx body to `write`, all within `deadline`.

        Failures before the answer's head (connection errors, 5xx, 429) are retried
        by urllib3, as for `send`. A body cut off mid-way (the server closed early,
        a reset, no byte for `stall` seconds) is retried from the start with the
        same Retry object's backoff and attempts: `restart(content_length)` is called
        before each attempt's first byte, so the caller can truncate what it kept.
        Raises BadStatus (a non-2xx answer, after retries), GaveUp, RequestFailed, BadInput.
        """
        retry = self.retry.new(total=self.policy.attempts - 1)
        while True:
            # One attempt may take all the time left; without a deadline, `stall` alone bounds each read.
            watchdog = _Watchdog(deadline, DOWNLOAD_WATCH, self.token)
            self.policy.watchdog = watchdog
            try:
                response = self._open("GET", url, None, headers, watchdog, read_timeout=stall)
                try:
                    if not 200 <= response.status_code < 300:
                        start = _read_start(response)
                        raise BadStatus(response.status_code, response.reason or "", start.decode("utf-8", "replace"))
                    length = response.headers.get("Content-Length")
                    restart(int(length) if length and length.isdigit() else None)
                    try:
                        # decode_content=False: the bytes as sent (Accept-Encoding is identity), so the
                        # checksum is the artifact's; urllib3 raises when fewer than Content-Length arrive.
                        for chunk in response.raw.stream(DOWNLOAD_CHUNK, decode_content=False):
                            write(chunk)
                    except (urllib3.exceptions.HTTPError, OSError) as exc:
                        self.token.check()
                        cut = watchdog.take_fired()
                        if cut and watchdog.expired():
                            raise GaveUp("timed out", len(retry.history) + 1, deadline_passed=True) from None
                        reason = "timed out" if cut else _body_error(exc)
                        error = _BodyCut(reason)
                    else:
                        self.token.check()  # a cut socket can look like the end of a body without a length
                        return
                finally:
                    response.close()
            finally:
                _current.watchdog = None
                watchdog.close()
            try:
                # urllib3's own bookkeeping and backoff, as for a failure before the head.
                retry = retry.increment("GET", url, error=error)
            except urllib3.exceptions.MaxRetryError:
                raise RequestFailed(reason, len(retry.history) + 1) from None
            retry.sleep()

    @contextlib.contextmanager
    def stream(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        deadline: float | None,
        per_attempt: float,
        read_timeout: float,
    ) -> Iterator[Stream]:
        """GET `url` once (no retry: the caller has its own) and hand its answer, body unread, to the
        caller; the watchdog cuts the connection at `deadline` or `per_attempt` after it opened (a drip
        never outlives them) or when the token is cancelled. Raises GaveUp, RequestFailed, BadInput."""
        watchdog = _Watchdog(deadline, per_attempt, self.token)
        try:
            response = self._open("GET", url, None, headers, watchdog, read_timeout=read_timeout)
            try:
                yield Stream(response, watchdog)
            finally:
                response.close()
        finally:
            _current.watchdog = None
            watchdog.close()

    def _open(
        self,
        method: str,
        url: str,
        body: str | None,
        headers: Mapping[str, str] | None,
        watchdog: _Watchdog,
        *,
        read_timeout: float | None,
    ) -> requests.Response:
        """The answer's head (body unread), after urllib3's retries; the caller closes it and the watchdog."""
        self.token.check()
        self.policy.watchdog = watchdog
        _current.watchdog = watchdog
        extra: dict[str, Any] = {}
        if headers and any(name.lower() == "authorization" for name in headers):
            # An explicit Authorization header wins over URL userinfo and ~/.netrc, as in curl.
            extra["auth"] = _keep_headers
        try:
            limit = max(0.05, watchdog.left())
            response = self.session.request(
                method,
                url,
                data=body.encode() if body is not None else None,
                headers=dict(headers or {}),
                timeout=(limit, limit) if read_timeout is None else (min(limit, read_timeout), read_timeout),
                verify=self.verify,
                stream=True,
                **extra,
            )
            if self.token.cancelled:
                response.close()
                self.token.check()
            if watchdog.take_fired():
                # The head was cut off at the deadline; http.client may still have made a
                # response of what came (a status line and half a header): it is no answer.
                response.close()
                history = getattr(getattr(response.raw, "retries", None), "history", ())
                tries = len(history) + 1
                if watchdog.expired():
                    raise GaveUp("timed out", tries, deadline_passed=True)
                raise RequestFailed("timed out", tries)
            return response
        except (GaveUp, RequestFailed):
            raise
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
            # Not a redirect's target (`_Session` checks those): the caller's URL.
            from initkit.urls import shown

            check_url(url)
            raise BadInput(f"invalid URL {shown(url)!r}: requests cannot send to it") from None
        except requests.exceptions.InvalidHeader:
            # requests' message quotes the value, which may be a secret: name nothing of it.
            raise BadInput("a header value was refused by requests (leading whitespace or a line break)") from None
        except requests.exceptions.RequestException as exc:
            self.token.check()
            cut = watchdog.take_fired()
            raise RequestFailed("timed out" if cut else describe_error(exc)) from None


@dataclass
class Stream:
    """An answer being read by `Client.stream`'s caller, and whether its watchdog cut it off."""

    response: requests.Response
    _watchdog: _Watchdog = field(repr=False)

    def cut(self) -> bool:
        """The connection was shut by the watchdog (its time was up, or the token was cancelled)."""
        return self._watchdog.take_fired() or self._watchdog.cancelled.is_set()


class _BodyCut(urllib3.exceptions.ProtocolError):
    """A download's body stopped before its end; the message is the reason, as retry lines show it."""


def _body_error(exc: BaseException) -> str:
    """A short phrase for a body that stopped before its end."""
    text = " ".join(str(item) for item in _causes(exc))
    if "IncompleteRead" in text or "bytes read" in text:
        return "the server closed the connection before the end of the body"
    return describe_error(exc)


def _drop_redirect_body(response: requests.Response, **kwargs: Any) -> requests.Response:
    """A redirect's body is never wanted: closing the answer makes it empty for requests."""
    if response.is_redirect:
        response.raw.close()
    return response


def _keep_headers(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _read_start(response: requests.Response, limit: int = SNIPPET_BYTES) -> bytes:
    """At most `limit` bytes of the body, undecoded; whatever came before an error or the deadline."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < limit:
            chunk = response.raw.read(limit - size, decode_content=False)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (urllib3.exceptions.HTTPError, OSError):
        pass
    return b"".join(chunks)


# ---- messages -----------------------------------------------------------------------------------


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
    chain = _causes(exc)
    text = " ".join(str(item) for item in chain)
    phrase = _phrase(chain, text)
    if any(isinstance(item, urllib3.exceptions.ProxyError) for item in chain):
        return f"proxy: {phrase}"
    return phrase


def _phrase(chain: list[BaseException], text: str) -> str:
    import ssl

    if any(isinstance(item, requests.exceptions.TooManyRedirects) for item in chain):
        return f"too many redirects (over {MAX_REDIRECTS})"
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
    if "Connection reset" in text or "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed by the server"
    # Never the library's message: it may quote a header value or a URL.
    return f"{type(chain[0]).__name__}"


def failure(what: str, exc: GaveUp | RequestFailed | BadStatus, *, attempts: int, timeout: float) -> str:
    """The one line of a request that did not succeed, for every command: "WHAT failed: why".

    `what` is "METHOD URL" as the command shows it; `attempts` and `timeout` are its options."""
    from initkit.durations import format_duration

    if isinstance(exc, BadStatus):
        return refused(what, exc.status, exc.reason, exc.snippet, attempts=attempts)
    if isinstance(exc, GaveUp):
        passed = "passed" if exc.deadline_passed else "would pass before the next attempt"
        return (
            f"{what} failed: {exc.reason}; gave up after {exc.attempts} attempts: "
            f"the {format_duration(timeout)} timeout {passed}"
        )
    if not exc.retried:
        return f"{what} failed: {exc}"
    return f"{what} failed: {exc}; gave up after {exc.attempts or attempts} attempts"


def refused(what: str, status: int, reason: str, snippet: str, *, attempts: int) -> str:
    """The one line of an answer that is no success: 5xx and 429 were retried, any other status was refused."""
    if status >= 500 or status == 429:
        return f"{what} failed: HTTP {status}; gave up after {attempts} attempts"
    return f"{what} was refused: HTTP {status} {reason}: {snippet}"


def snippet(text: str, limit: int = 200) -> str:
    """The start of an answer body, on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
