"""`initkit info`: the pod facts templates see, as JSON on stdout."""

from __future__ import annotations

import json

import click

from initkit.errors import EXIT_CODES_HELP


@click.command("info", epilog=EXIT_CODES_HELP)
def command() -> None:
    """Print the pod facts (pod.ip, pod.name, pod.namespace, pod.uid, node.name) as JSON."""
    from initkit.podfacts import PodFacts

    click.echo(json.dumps(PodFacts().as_dict(), indent=2, sort_keys=True))
