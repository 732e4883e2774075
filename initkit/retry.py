"""Retry with backoff. Strategies are named as phrases, as in tenacity:

    call(fn, stop=stop_after_attempt(10) | stop_before_delay(300),
         wait=wait_exponential_jitter(initial=0.5, maximum=30))

`fn` raises `TryAgain` for a retryable failure (optionally with the delay a
server asked for); anything else propagates. `sleep` and `clock` are
injectable, so tests and callers that must stay cancellable can pass their own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class TryAgain(Exception):
    """A retryable failure; `reason` is a short phrase such as 'HTTP 503'."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RetryError(Exception):
    """The stop strategy ended the retries; `last` is the last failure."""

    def __init__(self, state: RetryState) -> None:
        super().__init__(state.last.reason if state.last else "stopped")
        self.state = state

    @property
    def last(self) -> TryAgain | None:
        return self.state.last


@dataclass
class RetryState:
    attempt: int = 0
    elapsed: float = 0.0
    upcoming_sleep: float = 0.0
    last: TryAgain | None = None


class Stop:
    def __init__(self, predicate: Callable[[RetryState], bool]) -> None:
        self.predicate = predicate

    def __call__(self, state: RetryState) -> bool:
        return self.predicate(state)

    def __or__(self, other: Stop) -> Stop:
        return Stop(lambda s: self(s) or other(s))


def stop_after_attempt(attempts: int) -> Stop:
    return Stop(lambda s: s.attempt >= attempts)


def stop_after_delay(seconds: float) -> Stop:
    """Stop once `seconds` have passed (0 means never)."""
    return Stop(lambda s: seconds > 0 and s.elapsed >= seconds)


def stop_before_delay(seconds: float) -> Stop:
    """Stop rather than sleep past `seconds` (0 means never)."""
    return Stop(lambda s: seconds > 0 and s.elapsed + s.upcoming_sleep > seconds)


def stop_when(flag: Callable[[], bool]) -> Stop:
    """Stop when `flag()` is true, e.g. `threading.Event().is_set`."""
    return Stop(lambda s: flag())


stop_never = Stop(lambda s: False)

Wait = Callable[[RetryState], float]


def wait_fixed(seconds: float) -> Wait:
    return lambda s: seconds


def wait_exponential_jitter(
    initial: float = 0.5, maximum: float = 30.0, jitter: float = 0.5, rng: random.Random | None = None
) -> Wait:
    """initial * 2**(attempt-1), capped at maximum, plus up to `jitter` of it at random."""
    rand = rng or random.Random()

    def wait(s: RetryState) -> float:
        base = min(maximum, initial * (2 ** max(0, s.attempt - 1)))
        return base + rand.uniform(0, jitter * base)

    return wait


def call(
    fn: Callable[[], T],
    *,
    stop: Stop,
    wait: Wait,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    before_sleep: Callable[[RetryState], None] | None = None,
) -> T:
    started = clock()
    state = RetryState()
    while True:
        state.attempt += 1
        try:
            return fn()
        except TryAgain as failure:
            state.last = failure
        state.elapsed = clock() - started
        delay = wait(state)
        if state.last.retry_after is not None:
            delay = max(delay, state.last.retry_after)
        state.upcoming_sleep = delay
        if stop(state):
            raise RetryError(state)
        if before_sleep is not None:
            before_sleep(state)
        sleep(delay)
