"""One deadline-and-cancel object for a run: what every blocking point waits on.

A signal handler only records the signal (initkit.signals); a thread then calls
`Token.cancel` on the run's token, which sets its event, writes its pipe, runs
its callbacks (e.g. an HTTP watchdog shutting its sockets down) and cancels its
children. Code that blocks waits on the token (`wait`, `fileno` in a select,
`run` for a child process, `call` for a library call that cannot be woken) and
checks it between steps (`check`), so `Stopped` is raised where the code chose
to look, never in the middle of a library holding a lock.

The API the commands use:

    token = cancel.current()           # the run's token (cancelled by SIGTERM, SIGINT, SIGHUP)
    job = token.child(timeout=30.0)    # same cancellation, plus a deadline (0 or None: none)
    job.check()                        # Stopped(signum) if cancelled; nothing else
    job.wait(2.0)                      # sleep up to 2 s or the deadline; Stopped at once if cancelled
    job.remaining(), job.expired()     # seconds left (None: no deadline), whether it passed
    job.fileno()                       # readable once cancelled: for select/poll loops
    job.on_cancel(callback)            # run callback once cancelled; returns a function that removes it
    job.run(argv, ...)                 # subprocess.run that terminates the child when cancelled
    job.call(fn, *args)                # a blocking call in a worker thread; Stopped at once when cancelled

Time comes from the token's `Clock`, so tests of backoff, intervals and
deadlines can hand in a `FakeClock` (`use_clock`) instead of waiting.

Every command checks the token: git-clone waits for git on it (and kills git's
process group when it is cancelled), fetch's download and extraction, the
permissions walk, render's loops and its writes, sleep, wait-for and register.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from initkit.errors import Stopped

if TYPE_CHECKING:
    import subprocess

T = TypeVar("T")

TERMINATE_GRACE = 0.5  # a child process stopped with SIGTERM has this long before SIGKILL


class Clock(Protocol):
    """Where a token reads the time and how it waits: real time, or a test's fake."""

    def monotonic(self) -> float: ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Until EVENT is set or SECONDS pass; whether EVENT is set."""
        ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        # threading refuses waits past TIMEOUT_MAX (an --interval of years)
        return event.wait(min(max(0.0, seconds), threading.TIMEOUT_MAX))


class FakeClock:
    """For tests: time moves only when someone waits, and at once.

    `wait` returns at once: True when the event is set, else after moving the time
    on by SECONDS. `sleeps` records every wait, so a test can read the backoff."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)
        return event.is_set()


REAL_CLOCK: Clock = RealClock()
_default_clock: Clock = REAL_CLOCK


def default_clock() -> Clock:
    return _default_clock


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """For tests: runs (`initkit.cli.run`) started inside take this clock."""
    global _default_clock
    previous, _default_clock = _default_clock, clock
    try:
        yield clock
    finally:
        _default_clock = previous


class Token:
    """A cancellation flag with an optional deadline, shared by every thread of a job."""

    def __init__(self, *, deadline: float | None = None, clock: Clock | None = None) -> None:
        self.clock = clock or _default_clock
        self.deadline = deadline  # on self.clock; None: none
        self.signum: int | None = None
        self._cancelled = False  # read without the lock: checked in hot loops (templates)
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next_id = 0
        self._children: weakref.WeakSet[Token] = weakref.WeakSet()
        self._pipe: tuple[int, int] | None = None

    # ---- cancelling ----

    def cancel(self, signum: int = signal.SIGTERM) -> None:
        """Cancel this token and its children (not from a signal handler: it takes locks)."""
        with self._lock:
            if self._cancelled:
                return
            self.signum = signum
            self._cancelled = True
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
            children = list(self._children)
            if self._pipe is not None:
                with contextlib.suppress(OSError):
                    os.write(self._pipe[1], b"\0")
        for callback in callbacks:
            callback()
        for child in children:
            child.cancel(signum)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def check(self) -> None:
        """Raise Stopped if cancelled. Cheap: call it between steps of any loop."""
        if self._cancelled:
            raise Stopped(self.signum or signal.SIGTERM)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call CALLBACK (in the cancelling thread) once cancelled, at once if already; returns its remover."""
        with self._lock:
            if not self._cancelled:
                key = self._next_id
                self._next_id += 1
                self._callbacks[key] = callback
                return lambda: self._remove(key)
        callback()
        return lambda: None

    def _remove(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)

    # ---- deadlines ----

    def child(self, timeout: float | None = None, *, deadline: float | None = None) -> Token:
        """A token cancelled with this one, with the nearer of its deadline and TIMEOUT from now (0: none)."""
        if timeout:
            deadline = self.clock.monotonic() + timeout if deadline is None else deadline
        if self.deadline is not None:
            deadline = self.deadline if deadline is None else min(deadline, self.deadline)
        token = Token(deadline=deadline, clock=self.clock)
        with self._lock:
            if not self._cancelled:
                self._children.add(token)
                return token
        token.cancel(self.signum or signal.SIGTERM)
        return token

    def remaining(self) -> float | None:
        """Seconds to the deadline (0 once passed); None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock.monotonic())

    def expired(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    def wait(self, seconds: float | None = None) -> bool:
        """Sleep SECONDS (None: until the deadline, or for ever), ending early at the deadline.

        Raises Stopped at once when cancelled; returns whether the deadline has passed."""
        left = self.remaining()
        if seconds is None and left is None:
            while not self.clock.wait(self._event, threading.TIMEOUT_MAX):
                pass
        else:
            span = left if seconds is None else seconds if left is None else min(seconds, left)
            self.clock.wait(self._event, span)
        self.check()
        return self.expired()

    def sleep_until(self, when: float) -> bool:
        """`wait` until the clock reads WHEN."""
        return self.wait(max(0.0, when - self.clock.monotonic()))

    def wait_event(self, event: threading.Event, seconds: float | None = None) -> bool:
        """Until EVENT is set, SECONDS pass (None: for ever) or the deadline; Stopped when cancelled.

        Returns whether EVENT is set."""
        remove = self.on_cancel(event.set)
        try:
            left = self.remaining()
            span = seconds if left is None else left if seconds is None else min(seconds, left)
            if span is None:
                while not self.clock.wait(event, threading.TIMEOUT_MAX):
                    pass
            else:
                self.clock.wait(event, span)
        finally:
            remove()
        self.check()
        return event.is_set()

    def fileno(self) -> int:
        """A descriptor that turns readable once the token is cancelled (for select/poll)."""
        with self._lock:
            if self._pipe is None:
                read, write = os.pipe()
                os.set_blocking(write, False)
                self._pipe = (read, write)
                if self._cancelled:
                    os.write(write, b"\0")
            return self._pipe[0]

    def close(self) -> None:
        """Release the pipe of `fileno`, if one was made."""
        with self._lock:
            pipe, self._pipe = self._pipe, None
        for fd in pipe or ():
            os.close(fd)

    # ---- blocking work under the token ----

    def run(
        self,
        argv: Sequence[str],
        *,
        input: Any = None,
        capture_output: bool = False,
        check: bool = False,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """subprocess.run under the token (same arguments, but `timeout`: the deadline is the token's):
        the child is terminated (SIGTERM, then SIGKILL) when the token is cancelled (Stopped) or its
        deadline passes (subprocess.TimeoutExpired)."""
        import subprocess  # here, not at the top: `initkit sleep 0` starts no process

        if capture_output:
            kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
        with subprocess.Popen(argv, **kwargs) as proc:
            outputs: list[tuple[Any, Any]] = []
            done = threading.Event()

            def talk() -> None:
                try:
                    outputs.append(proc.communicate(input))
                finally:
                    done.set()

            threading.Thread(target=talk, name="subprocess", daemon=True).start()
            try:
                finished = self.wait_event(done)
            except Stopped:
                _terminate(proc)
                raise
            if not finished:
                _terminate(proc)
                raise subprocess.TimeoutExpired(list(argv), self.deadline or 0.0)
        out, err = outputs[0]
        if check and proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, list(argv), out, err)
        return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """FUNCTION(*ARGS) in a daemon thread; Stopped at once when cancelled (the thread is left to
        finish on its own: use this only for calls whose result can be abandoned)."""
        done = threading.Event()
        result: list[Any] = []
        failure: list[BaseException] = []

        def work() -> None:
            try:
                result.append(function(*args, **kwargs))
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name=getattr(function, "__name__", "call"), daemon=True).start()
        self.wait_event(done)
        if failure:
            raise failure[0]
        return result[0]  # type: ignore[no-any-return]


def _terminate(proc: subprocess.Popen[Any]) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(TERMINATE_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- the run's token ----

_scopes: list[Token] = []
_fallback = Token()  # outside any run (a library caller): never cancelled


def current() -> Token:
    """The innermost token in scope: the run's, or one a command put in place (the sidecar's
    deregistration). The signal handlers cancel this one."""
    return _scopes[-1] if _scopes else _fallback


def signal_received(signum: int) -> None:
    """Cancel the current token (called by initkit.signals' thread); outside any run, nothing."""
    if _scopes:
        _scopes[-1].cancel(signum)


@contextlib.contextmanager
def scope(token: Token) -> Iterator[Token]:
    """Make TOKEN `current()` (for every thread) while inside."""
    _scopes.append(token)
    try:
        yield token
    finally:
        _scopes.remove(token)
        token.close()
