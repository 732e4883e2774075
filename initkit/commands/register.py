"""`initkit register URL`: announce this pod to a service, once, with retries.

Replaces: curl -X POST http://$MANAGEMENT_SERVICE_HOST:$MANAGEMENT_SERVICE_PORT/register \\
              -d "instance=$POD_NAME&ip=$POD_IP"
"""

from __future__ import annotations

import json
import re
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
MAX_REQUEST_TIMEOUT = 30.0  # one attempt's limit, also when --timeout is 0
# Headers whose values are credentials by name; their rendered values are redacted like a token file's.
_SECRET_HEADER = re.compile(r"auth|token|key|secret|passw|cookie|session|credential", re.IGNORECASE)


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
    from initkit import httpclient, redact, secretfile
    from initkit.podfacts import PodFacts
    from initkit.templating import base_context, render_string

    if data is not None and json_body is not None:
        raise BadInput("--data and --json are mutually exclusive")
    httpclient.check_method(method)
    facts = PodFacts()
    context = base_context(facts)
    request_headers = {"Idempotency-Key": idempotency_key(facts, method.upper(), url)}
    if token_file is not None:
        request_headers["Authorization"] = f"Bearer {secretfile.read(token_file, 'token file')}"
    for raw in headers:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"malformed --header {raw.split(':')[0]!r}...: expected 'Name: value'")
        rendered = render_string(value.strip(), context, f"--header {name.strip()}")
        if _SECRET_HEADER.search(name):
            redact.register(rendered)  # e.g. 'Authorization: Bearer {{ env.API_KEY }}': never print the value
        request_headers[name.strip()] = rendered
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

    from initkit import httpclient
    from initkit.durations import format_duration

    httpclient.check_url(url)
    httpclient.check_headers(headers)

    def on_retry(reason: str, delay: float, attempt: int) -> None:
        log.warning(f"{method} {url}: {reason}; retrying in {format_duration(delay)} (attempt {attempt} of {attempts})")

    client = httpclient.Client(ca_file, policy=httpclient.RetryPolicy(attempts=attempts, on_retry=on_retry))
    deadline = time.monotonic() + timeout if timeout else None
    try:
        answer = client.send(
            method,
            url,
            body=body,
            headers=headers,
            deadline=deadline,
            per_attempt=min(timeout, MAX_REQUEST_TIMEOUT) if timeout else MAX_REQUEST_TIMEOUT,
            # The body only matters for the error line of a refusal; a success's body is never read.
            read_body=lambda status: not (200 <= status < 300 or status == 409),
        )
    except httpclient.GaveUp as exc:
        passed = "passed" if exc.deadline_passed else "would pass before the next attempt"
        raise JobFailed(
            f"{method} {url} failed: {exc.reason}; gave up after {exc.attempts} attempts: "
            f"the {format_duration(timeout)} timeout {passed}"
        ) from None
    except httpclient.RequestFailed as exc:
        tries = exc.attempts or attempts
        raise JobFailed(f"{method} {url} failed: {exc}; gave up after {tries} attempts") from None
    status = answer.status
    if status >= 500 or status == 429:
        raise JobFailed(f"{method} {url} failed: HTTP {status}; gave up after {attempts} attempts")
    if status == 409:
        log.info(f"{method} {url}: already registered (HTTP 409)")
    elif 200 <= status < 300:
        log.info(f"{method} {url}: registered (HTTP {status})")
    else:
        raise JobFailed(f"{method} {url} was refused: HTTP {status} {answer.reason}: {answer.snippet}")
