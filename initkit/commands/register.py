"""`initkit register URL`: announce this pod to a service, once, with retries.

Replaces: curl -X POST http://$MANAGEMENT_SERVICE_HOST:$MANAGEMENT_SERVICE_PORT/register \\
              -d "instance=$POD_NAME&ip=$POD_IP"
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from initkit import log, options
from initkit.errors import EXIT_CODES_HELP, BadInput, InitkitError, JobFailed
from initkit.params import Duration, option

if TYPE_CHECKING:
    from initkit.cancel import Token
    from initkit.podfacts import PodFacts

# A fixed namespace, so the key depends on the pod's identity and target only.
_KEY_NAMESPACE = uuid.UUID("6f1c3f6e-8d4c-5b0e-9a57-2f1d4c9e7a10")
MAX_REQUEST_TIMEOUT = 30.0  # one attempt's limit, also when --timeout is 0
# Headers whose values are credentials by name; their rendered values are redacted like a token file's.


@click.command("register", epilog=EXIT_CODES_HELP)
@click.argument("url", envvar="INITKIT_REGISTER_URL")
@option("--method", default="POST", help="HTTP method.")
@option("--data", "data", metavar="TEMPLATE", help="Form body, sent as is (like curl -d).")
@option(
    "--json",
    "json_body",
    envvar="INITKIT_REGISTER_JSON",
    metavar="TEMPLATE",
    help="JSON body; must render to valid JSON.",
)
@options.headers("register", metavar="'NAME: TEMPLATE'")
@options.token_file()
@options.ca_file()
@options.attempts(default=10)
@options.timeout("5m")
@option(
    "--deregister-method",
    metavar="METHOD",
    help="Sidecar mode: stay running after registering and, on SIGTERM, send this request (e.g. DELETE), then exit 0.",
)
@option("--deregister-url", metavar="TEMPLATE", help="URL of the deregister request [default: URL].")
@option("--deregister-data", metavar="TEMPLATE", help="Form body of the deregister request.")
@option("--deregister-json", metavar="TEMPLATE", help="JSON body of the deregister request.")
@option(
    "--deregister-timeout",
    type=Duration(),
    default="10s",
    help="Time limit of the deregister request, retries included; keep it below terminationGracePeriodSeconds.",
)
@option(
    "--heartbeat",
    type=Duration(),
    default="0",
    help="Sidecar mode: send the register request again this often (0: never).",
)
def command(
    url: str,
    method: str,
    data: str | None,
    json_body: str | None,
    headers: Sequence[str],
    token_file: str | None,
    ca_file: str | None,
    attempts: int,
    timeout: float,
    deregister_method: str | None,
    deregister_url: str | None,
    deregister_data: str | None,
    deregister_json: str | None,
    deregister_timeout: float,
    heartbeat: float,
) -> None:
    """Send one request to URL announcing this pod. 2xx or 409 (already registered)
    is success; connection errors, 5xx and 429 are retried with exponential backoff
    and jitter (Retry-After honoured); any other 4xx fails at once.

    URL, body and header values are Jinja templates over pod.ip, pod.name,
    pod.namespace, pod.uid, node.name and env.NAME. Every request carries an
    Idempotency-Key derived from the pod's identity, the same on every re-run.

    Sidecar mode (--deregister-method, or --heartbeat): after registering, stay
    running (a Kubernetes 1.29+ native sidecar: an init container with
    restartPolicy: Always); re-register every --heartbeat; on SIGTERM send the
    deregister request (templated like the register one, same headers) within
    --deregister-timeout and exit 0 when it succeeded (2xx, or 404/410: already
    gone), 1 when it did not.

    \b
    Example: initkit register 'http://mgmt/register' \\
               --data 'instance={{ pod.name }}&ip={{ pod.ip }}' --token-file /var/run/secrets/token
    """
    from initkit import httpclient
    from initkit.headers import parse as parse_headers
    from initkit.podfacts import PodFacts
    from initkit.templating import base_context, render_string

    if data is not None and json_body is not None:
        raise BadInput("--data and --json are mutually exclusive")
    if deregister_data is not None and deregister_json is not None:
        raise BadInput("--deregister-data and --deregister-json are mutually exclusive")
    sidecar = deregister_method is not None or heartbeat > 0
    if deregister_method is None and (deregister_url or deregister_data is not None or deregister_json is not None):
        raise BadInput("--deregister-url, --deregister-data and --deregister-json need --deregister-method")
    httpclient.check_method(method)
    if deregister_method is not None:
        httpclient.check_method(deregister_method)
    facts = PodFacts()
    context = base_context(facts)
    common = parse_headers(headers, token_file, lambda value, name: render_string(value, context, f"--header {name}"))
    register = _prepare(facts, context, method, url, data, json_body, common, "")
    deregister = None
    if deregister_method is not None:
        # Rendered now, with the register request: a template error is exit 2 at start, not at SIGTERM.
        deregister = _prepare(
            facts, context, deregister_method, deregister_url or url, deregister_data, deregister_json, common,
            "--deregister-",
        )  # fmt: skip
    if not sidecar:
        send(*register, ca_file=ca_file, attempts=attempts, timeout=timeout)
        return
    _sidecar(
        register, deregister, ca_file=ca_file, attempts=attempts, timeout=timeout, heartbeat=heartbeat,
        deregister_timeout=deregister_timeout,
    )  # fmt: skip


Request = tuple[str, str, "str | None", dict[str, str]]  # method, URL, body, headers


def _prepare(
    facts: PodFacts,
    context: dict[str, object],
    method: str,
    url: str,
    data: str | None,
    json_body: str | None,
    common: dict[str, str],
    prefix: str,
) -> Request:
    """One request rendered from its templates; `prefix` names its options in messages ('' or '--deregister-')."""
    from initkit.templating import render_string

    name = "URL" if not prefix else "--deregister-url"
    target = render_string(url, context, name)
    headers = {"Idempotency-Key": idempotency_key(facts, method.upper(), url), **common}
    body: str | None = None
    if data is not None:
        body = render_string(data, context, f"{prefix or '--'}data")
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif json_body is not None:
        body = render_string(json_body, context, f"{prefix or '--'}json")
        try:
            json.loads(body)
        except ValueError as exc:
            raise BadInput(f"{prefix or '--'}json does not render to valid JSON: {exc}") from None
        headers.setdefault("Content-Type", "application/json")
    from initkit import httpclient

    httpclient.check_url(target)
    httpclient.check_headers(headers)
    return method.upper(), target, body, headers


def _sidecar(
    register: Request,
    deregister: Request | None,
    *,
    ca_file: str | None,
    attempts: int,
    timeout: float,
    heartbeat: float,
    deregister_timeout: float,
) -> None:
    """The sidecar: register, then wait for a signal, re-registering every `heartbeat`; then deregister.

    Everything waits on the run's token (initkit.cancel). A signal during the
    registration stops initkit (128+N) as any job, and sends no deregistration.
    Once registered, the main thread waits on the token; the heartbeats run in
    their own thread on a child of it, so the signal also cuts off a heartbeat in
    flight (its sockets shut down, no pause or retry after it) and it never delays
    the deregistration. That runs under a fresh token, which a second signal cancels.
    """
    from initkit import cancel
    from initkit.durations import format_duration
    from initkit.errors import Stopped

    token = cancel.current()
    send(*register, ca_file=ca_file, attempts=attempts, timeout=timeout)
    what = "deregister on SIGTERM" if deregister else "be stopped"
    beat = f", re-registering every {format_duration(heartbeat)}" if heartbeat else ""
    log.info(f"staying up to {what}{beat}")
    if heartbeat:
        _Heartbeats(register, ca_file=ca_file, attempts=attempts, every=heartbeat, token=token.child()).start()
    try:
        token.wait()  # until a signal
    except Stopped as exc:
        stopped = exc
    if deregister is None:
        raise stopped
    log.info(f"{stopped}: deregistering (within {format_duration(deregister_timeout)})")
    # The signals now cancel this token: a second one stops the deregistration at once (128+N).
    with cancel.scope(cancel.Token(clock=token.clock)):
        send(*deregister, ca_file=ca_file, attempts=attempts, timeout=deregister_timeout, deregistering=True)


class _Heartbeats:
    """Sends the register request every `every` seconds in a daemon thread, until `token` is cancelled.

    The token is a child of the run's: a signal cancels the heartbeat in flight (its
    sockets are shut down, no pause or retry follows), so the main thread deregisters
    at once instead of waiting out that heartbeat's deadline."""

    def __init__(self, register: Request, *, ca_file: str | None, attempts: int, every: float, token: Token) -> None:
        import threading

        self.register, self.ca_file, self.attempts, self.every = register, ca_file, attempts, every
        self.token = token
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from initkit.errors import Stopped

        try:
            while True:
                self.token.wait(self.every)
                try:
                    # A heartbeat may use at most its interval, so beats never pile up.
                    send(
                        *self.register, ca_file=self.ca_file, attempts=self.attempts, timeout=self.every, quiet=True,
                        token=self.token,
                    )  # fmt: skip
                except InitkitError as exc:  # in this thread: a warning, as a failed heartbeat always was
                    log.warning(f"heartbeat: {exc}")
        except Stopped:
            return  # cut off by the signal: no failure of the registry's


def idempotency_key(facts: PodFacts, method: str, url: str) -> str:
    """Same pod (UID, else namespace/name) and same request: same key, on every re-run."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{facts.identity()}|{method}|{url}"))


def send(
    method: str,
    url: str,
    body: str | None,
    headers: dict[str, str],
    *,
    ca_file: str | None,
    attempts: int,
    timeout: float,
    quiet: bool = False,
    deregistering: bool = False,
    token: Token | None = None,
) -> None:
    """Send with retries; success is 2xx, or 409 (already registered) / 404 and 410 (already deregistered).

    The request waits on `token` (the run's by default): Stopped when it is cancelled."""
    from initkit import httpclient
    from initkit.durations import format_duration

    httpclient.check_url(url)
    httpclient.check_headers(headers)

    def on_retry(reason: str, delay: float, attempt: int) -> None:
        log.warning(f"{method} {url}: {reason}; retrying in {format_duration(delay)} (attempt {attempt} of {attempts})")

    client = httpclient.Client(
        ca_file, policy=httpclient.RetryPolicy(attempts=attempts, on_retry=on_retry), token=token
    )
    gone = (404, 410) if deregistering else (409,)
    deadline = client.token.clock.monotonic() + timeout if timeout else None
    try:
        answer = client.send(
            method,
            url,
            body=body,
            headers=headers,
            deadline=deadline,
            per_attempt=min(timeout, MAX_REQUEST_TIMEOUT) if timeout else MAX_REQUEST_TIMEOUT,
            # The body only matters for the error line of a refusal; a success's body is never read.
            read_body=lambda status: not (200 <= status < 300 or status in gone),
        )
    except (httpclient.GaveUp, httpclient.RequestFailed) as exc:
        raise JobFailed(httpclient.failure(f"{method} {url}", exc, attempts=attempts, timeout=timeout)) from None
    status = answer.status
    done = "deregistered" if deregistering else "registered"
    if status in gone:
        log.emit(log.DEBUG if quiet else log.INFO, f"{method} {url}: already {done} (HTTP {status})")
    elif 200 <= status < 300:
        log.emit(log.DEBUG if quiet else log.INFO, f"{method} {url}: {done} (HTTP {status})")
    else:
        raise JobFailed(httpclient.refused(f"{method} {url}", status, answer.reason, answer.snippet, attempts=attempts))
