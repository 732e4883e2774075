import random

import pytest

from initkit import retry


class Clock:
    """A fake clock for the retry loop's own arithmetic (the loop talks to nothing)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def failing(times: int, retry_after: float | None = None):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise retry.TryAgain(f"fail {calls['n']}", retry_after=retry_after)
        return "done"

    return fn, calls


def test_returns_after_retries_with_fixed_wait():
    clock = Clock()
    fn, calls = failing(3)
    assert retry.call(fn, stop=retry.stop_never, wait=retry.wait_fixed(2), sleep=clock.sleep, clock=clock) == "done"
    assert calls["n"] == 4 and clock.sleeps == [2, 2, 2]


def test_stop_after_attempt_raises_with_last_reason():
    clock = Clock()
    fn, calls = failing(10)
    with pytest.raises(retry.RetryError) as info:
        retry.call(fn, stop=retry.stop_after_attempt(3), wait=retry.wait_fixed(1), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 3 and info.value.last.reason == "fail 3" and info.value.state.attempt == 3


def test_exponential_jitter_is_bounded_and_grows():
    clock = Clock()
    fn, _ = failing(6)
    wait = retry.wait_exponential_jitter(initial=0.5, maximum=4, jitter=0.5, rng=random.Random(1))
    retry.call(fn, stop=retry.stop_never, wait=wait, sleep=clock.sleep, clock=clock)
    for sleep, base in zip(clock.sleeps, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert base <= sleep <= base * 1.5


def test_retry_after_raises_the_wait_and_stop_before_delay_refuses_to_oversleep():
    clock = Clock()
    fn, calls = failing(5, retry_after=30)
    stop = retry.stop_after_attempt(10) | retry.stop_before_delay(60)
    with pytest.raises(retry.RetryError):
        retry.call(fn, stop=stop, wait=retry.wait_fixed(1), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [30, 30] and calls["n"] == 3  # a third 30 s sleep would pass 60 s


def test_stop_after_delay_and_stop_when():
    clock = Clock()
    fn, calls = failing(100)
    with pytest.raises(retry.RetryError):
        retry.call(fn, stop=retry.stop_after_delay(5), wait=retry.wait_fixed(1), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 6
    flag = {"set": False}
    fn2, calls2 = failing(100)

    def sleep(seconds: float) -> None:
        flag["set"] = calls2["n"] >= 2

    with pytest.raises(retry.RetryError):
        retry.call(fn2, stop=retry.stop_when(lambda: flag["set"]), wait=retry.wait_fixed(0), sleep=sleep)
    assert calls2["n"] == 3


def test_other_exceptions_propagate_at_once():
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        retry.call(boom, stop=retry.stop_never, wait=retry.wait_fixed(0))


def test_zero_delay_limits_mean_never():
    assert not retry.stop_after_delay(0)(retry.RetryState(elapsed=1e9))
    assert not retry.stop_before_delay(0)(retry.RetryState(elapsed=1e9, upcoming_sleep=1))
