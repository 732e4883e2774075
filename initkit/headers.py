"""The request headers a command is given: `--token-file` and `--header 'Name: value'`.

One reader for register and fetch. The token goes through `secretfile`; the value of a
header whose name looks like a credential is registered for redaction as soon as it is
known, so no later message can show it. Which names do is `redact.is_secret_name`, the
one rule also used for URL query keys and for the headers httpclient drops on a
redirect to another host. Light on purpose: no HTTP library is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from initkit.errors import BadInput


def parse(
    raw_headers: Sequence[str], token_file: str | None, render: Callable[[str, str], str] | None = None
) -> dict[str, str]:
    """Headers by name; `render(value, name)` fills in a template value (register's Jinja)."""
    from initkit import redact, secretfile

    result: dict[str, str] = {}
    if token_file is not None:
        result["Authorization"] = f"Bearer {secretfile.read(token_file, 'token file')}"
    for raw in raw_headers:
        name, sep, value = raw.partition(":")
        name = name.strip()
        if not sep or not name:
            raise BadInput(f"malformed --header {raw.split(':')[0]!r}...: expected 'Name: value'")
        value = render(value.strip(), name) if render else value.strip()
        if redact.is_secret_name(name):
            redact.register(value)  # e.g. 'Authorization: Bearer {{ env.API_KEY }}': never print the value
        result[name] = value
    return result
