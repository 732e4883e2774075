"""`initkit sleep DURATION`: the `sleep 60` init container, stoppable by SIGTERM."""

from __future__ import annotations

import click

from initkit.errors import EXIT_CODES_HELP
from initkit.params import Duration


@click.command("sleep", epilog=EXIT_CODES_HELP)
@click.argument("duration", type=Duration(), envvar="INITKIT_SLEEP_DURATION")
def command(duration: float) -> None:
    """Sleep for DURATION (90, 90s, 1m30s, 500ms, 2h).

    Replaces: sleep 60
    """
    from initkit import cancel

    # Waits on the run's token: a signal ends it at once (Stopped, 128+N).
    cancel.current().wait(duration)
