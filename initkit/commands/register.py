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

from initkit import log
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.params import Duration, Line, option

if TYPE_CHECKING:
    from initkit.podfacts import PodFacts

# A fixed namespace, so the key depends on the pod's identity and target only.
_KEY_NAMESPACE = uuid.UUID("6f1c3f6e-8d4c-5b0e-9a57-2f1d4c9e7a10")
MAX_REQUEST_TIMEOUT = 30.0


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
@option(
    "--header",
    "headers",
    envvar="INITKIT_REGISTER_HEADER",
    type=Line(),
    multiple=True,
    metavar="'NAME: TEMPLATE'",
    help="Extra header (repeatable; one per line in the environment variable).",
)
@option("--token-file", type=click.Path(dir_okay=False), help="Send its content as a Bearer token.")
@option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle to verify https.")
@option("--attempts", type=click.IntRange(min=1), default=10, help="Tries before giving up.")
@option("--timeout", type=Duration(), default="5m", help="Overall time limit (0: none).")
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
) -> None:
    """Send one request to URL announcing this pod. 2xx or 409 (already registered)
    is success; connection errors, 5xx and 429 are retried with exponential backoff
    and jitter (Retry-After honoured); any other 4xx fails at once.

    URL, body and header values are Jinja templates over pod.ip, pod.name,
    pod.namespace, pod.uid, node.name and env.NAME. Every request carries an
    Idempotency-Key derived from the pod's identity, the same on every re-run.

    \b
    Example: initkit register 'http://mgmt/register' \\
               --data 'instance={{ pod.name }}&ip={{ pod.ip }}' --token-file /var/run/secrets/token
    """
    from initkit import secretfile
    from initkit.podfacts import PodFacts
    from initkit.templating import base_context, render_string

    if data is not None and json_body is not None:
        raise BadInput("--data and --json are mutually exclusive")
    facts = PodFacts()
    context = base_context(facts)
    request_headers = {"Idempotency-Key": idempotency_key(facts, method.upper(), url)}
    if token_file is not None:
        request_headers["Authorization"] = f"Bearer {secretfile.read(token_file, 'token file')}"
    for raw in headers:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"malformed --header {raw.split(':')[0]!r}...: expected 'Name: value'")
        request_headers[name.strip()] = render_string(value.strip(), context, f"--header {name.strip()}")
    target = render_string(url, context, "URL")
    body: str | None = None
    if data is not None:
        body = render_string(data, context, "--data")
        request_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif json_body is not None:
        body = render_string(json_body, context, "--json")
        try:
            json.loads(body)
        except ValueError as exc:
            raise BadInput(f"--json does not render to valid JSON: {exc}") from None
        request_headers.setdefault("Content-Type", "application/json")
    send(method.upper(), target, body, request_headers, ca_file=ca_file, attempts=attempts, timeout=timeout)


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
) -> None:
    import time

    from initkit import httpclient, retry
    from initkit.durations import format_duration

    httpclient.check_url(url)
    client = httpclient.Client(ca_file)
    started = time.monotonic()

    def attempt() -> httpclient.Response:
        left = timeout - (time.monotonic() - started) if timeout else MAX_REQUEST_TIMEOUT
        try:
            response = client.request(
                method, url, body=body, headers=headers, timeout=max(0.1, min(MAX_REQUEST_TIMEOUT, left))
            )
        except httpclient.RequestFailed as exc:
            raise retry.TryAgain(str(exc)) from None
        status = response.status
        if 200 <= status < 300 or status == 409:
            return response
        if status >= 500 or status == 429:
            retry_after = httpclient.parse_retry_after(response.header("Retry-After"))
            raise retry.TryAgain(f"HTTP {status}", retry_after=retry_after)
        answer = httpclient.snippet(response.text)
        raise JobFailed(f"{method} {url} was refused: HTTP {status} {response.reason}: {answer}")

    def before_sleep(state: retry.RetryState) -> None:
        log.warning(
            f"{method} {url}: {state.last.reason if state.last else '?'}; "
            f"retrying in {format_duration(state.upcoming_sleep)} (attempt {state.attempt} of {attempts})"
        )

    try:
        response = retry.call(
            attempt,
            stop=retry.stop_after_attempt(attempts) | retry.stop_before_delay(timeout),
            wait=retry.wait_exponential_jitter(initial=0.5, maximum=30.0),
            before_sleep=before_sleep,
        )
    except retry.RetryError as exc:
        state = exc.state
        why = state.last.reason if state.last else "unknown"
        if state.attempt < attempts:
            limit = f"the {format_duration(timeout)} timeout would pass before the next attempt"
            raise JobFailed(f"{method} {url} failed: {why}; gave up after {state.attempt} attempts: {limit}") from None
        raise JobFailed(f"{method} {url} failed: {why}; gave up after {state.attempt} attempts") from None
    if response.status == 409:
        log.info(f"{method} {url}: already registered (HTTP 409)")
    else:
        log.info(f"{method} {url}: registered (HTTP {response.status})")
