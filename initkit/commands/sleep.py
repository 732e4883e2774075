"""`initkit sleep DURATION`: the `sleep 60` init container, stoppable by SIGTERM."""

from __future__ import annotations

import time

import click

from initkit.errors import EXIT_CODES_HELP
from initkit.params import Duration


@click.command("sleep", epilog=EXIT_CODES_HELP)
@click.argument("duration", type=Duration(), envvar="INITKIT_SLEEP_DURATION")
def command(duration: float) -> None:
    """Sleep for DURATION (90, 90s, 1m30s, 500ms, 2h).

    Replaces: sleep 60
    """
    # time.sleep is interrupted by the SIGTERM handler, so this ends at once.
    time.sleep(duration)
