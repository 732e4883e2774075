"""SIGTERM, SIGINT and SIGHUP cancel the run's token (initkit.cancel).

As PID 1 in a container a process ignores SIGTERM unless it handles it, so
initkit always does. The signal is only recorded: Python's own C-level handler
writes its number to a pipe (`signal.set_wakeup_fd`) the moment it arrives,
whatever the main thread is doing, and a daemon thread reading that pipe cancels
the current token (`cancel.current()`), which wakes every waiter. Nothing is raised into
the code the signal happened to land in, so no library is left holding a lock;
the commands raise `Stopped` themselves where they check the token, and
`initkit.cli` turns it into the exit code 128+N.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from initkit import cancel

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_wake: tuple[int, int] | None = None  # the pipe from the handler to the waker thread
_wake_lock = threading.Lock()


def _waker(read_fd: int) -> None:
    """Turn each signal number the handler wrote into a cancellation of the current token."""
    while True:
        try:
            data = os.read(read_fd, 64)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            continue
        if not data:
            return
        for signum in data:
            if signum in HANDLED:  # the wakeup fd also carries other signals Python handles
                cancel.signal_received(signum)


def _start_waker() -> int:
    """The write end of the pipe, with its reader started (once per process)."""
    global _wake
    with _wake_lock:
        if _wake is None:
            read_fd, write_fd = os.pipe()
            os.set_blocking(write_fd, False)
            os.set_inheritable(read_fd, False)
            threading.Thread(target=_waker, args=(read_fd,), name="signals", daemon=True).start()
            _wake = (read_fd, write_fd)
        return _wake[1]


def _handler(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: nothing to do, the wakeup fd already has the signal."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle the signals while inside (main thread only, as Python requires)."""
    write_fd = _start_waker()
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, _handler) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)


def restore_defaults() -> None:
    """Before exec: the new program starts with default dispositions."""
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_DFL)
