"""`initkit info`: the pod facts templates see, and the wait-for targets this image can check, as JSON."""

from __future__ import annotations

import json

import click

from initkit.errors import EXIT_CODES_HELP


@click.command("info", epilog=EXIT_CODES_HELP)
def command() -> None:
    """Print the pod facts (pod.ip, pod.name, pod.namespace, pod.uid, node.name) and the wait-for
    target schemes this image can check (wait_for: dns, tcp, http, https, file, and each database
    scheme whose driver the image has) as JSON."""
    from initkit.podfacts import PodFacts
    from initkit.probes import available_schemes

    facts: dict[str, object] = dict(PodFacts().as_dict())
    facts["wait_for"] = available_schemes()
    click.echo(json.dumps(facts, indent=2, sort_keys=True))
