"""A ceiling on the memory a run may add, enforced by the kernel (RLIMIT_AS).

Templates and values come from people other than the operator, and a few
Python operations (a filter's width, a capture block that keeps growing) can
ask for gigabytes before any check of ours sees the result. With the address
space capped at what the process uses now plus a headroom, such a request
fails at once with MemoryError (a quick exit 2) instead of swapping the node or
calling the OOM killer, and no allocation can run long enough to delay SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator

HEADROOM = 256 << 20  # bytes of address space a run may add to what the process holds at its start


def _address_space() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def limited(headroom: int = HEADROOM) -> Iterator[None]:
    """Cap the address space for the duration of the block; a lower existing cap is kept."""
    used = _address_space()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if used is None:
        yield  # no /proc: no measure to add the headroom to; the pod's memory limit still holds
        return
    cap = used + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
