"""Turn SIGTERM, SIGINT and SIGHUP into `Stopped` in the main thread.

As PID 1 in a container a process ignores SIGTERM unless it handles it, so
initkit always does. Raising lets `finally` blocks clean up (kill a child git,
remove a temp file) before the exit code 128+N.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from initkit.errors import Stopped

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


# After a signal, cleanup has this long before the process exits regardless. Raising into
# arbitrary code can leave a library's lock held (seen: a child under coverage's tracer
# deadlocked on its own lock while exiting); the kubelet would then wait for its SIGKILL.
CLEANUP_LIMIT = 2.0


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    import os
    import threading

    if not getattr(_raise_stopped, "armed", False):
        _raise_stopped.armed = True  # type: ignore[attr-defined]
        timer = threading.Timer(CLEANUP_LIMIT, os._exit, args=(128 + signum,))
        timer.daemon = True
        timer.start()
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def restore_defaults() -> None:
    """Before exec: the new program starts with default dispositions."""
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_DFL)
