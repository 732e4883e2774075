"""initkit.signals and initkit.cancel: a signal cancels the run's token; it is never raised into the
code it lands in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from initkit import cancel, signals
from initkit.errors import Stopped
from tests.conftest import wait_until


def _signal_self(signum: int = signal.SIGTERM) -> None:
    os.kill(os.getpid(), signum)


def test_a_signal_lands_in_no_critical_section_and_is_raised_where_the_token_is_checked():
    """Before the token, SIGTERM raised Stopped inside whatever ran: here, with a lock held."""
    token = cancel.Token()
    lock = threading.Lock()
    finished = False
    with signals.stop_on_signals(), cancel.scope(token):
        with lock:
            _signal_self()
            wait_until(lambda: token.cancelled, 5, "the token to be cancelled")  # the handler has run by now
            finished = True
        with pytest.raises(Stopped) as stopped:
            token.check()
    assert finished and not lock.locked()
    assert stopped.value.exit_code == 143 and str(stopped.value) == "stopped by SIGTERM"


def test_a_signal_wakes_every_waiter_on_the_token_in_any_thread():
    token = cancel.Token()
    outcomes: list[str] = []

    def waiter() -> None:
        try:
            token.child().wait(3600)
        except Stopped as exc:
            outcomes.append(str(exc))

    with signals.stop_on_signals(), cancel.scope(token):
        threads = [threading.Thread(target=waiter) for _ in range(3)]
        for thread in threads:
            thread.start()
        _signal_self(signal.SIGHUP)
        with pytest.raises(Stopped):
            token.wait(3600)  # the main thread too
        for thread in threads:
            thread.join(5)
    assert outcomes == ["stopped by SIGHUP"] * 3


# ---- the token ----------------------------------------------------------------------------------


def test_a_child_has_the_nearer_deadline_and_is_cancelled_with_its_parent():
    clock = cancel.FakeClock(start=100.0)
    run = cancel.Token(clock=clock)
    job = run.child(timeout=30.0)
    assert job.deadline == 130.0 and job.remaining() == 30.0 and run.remaining() is None
    assert job.child(timeout=60.0).deadline == 130.0  # a child never outlives its parent's deadline
    assert job.child(timeout=5.0).deadline == 105.0
    assert job.child(timeout=0).deadline == 130.0  # 0: no timeout of its own
    called: list[str] = []
    remove = job.on_cancel(lambda: called.append("first"))
    job.on_cancel(lambda: called.append("second"))
    remove()
    run.cancel(signal.SIGINT)
    assert job.cancelled and called == ["second"]
    with pytest.raises(Stopped, match="SIGINT"):
        job.check()
    late = run.child()  # made after the cancellation: cancelled at once
    assert late.cancelled
    late.on_cancel(lambda: called.append("late"))
    assert called == ["second", "late"]


def test_wait_ends_at_the_deadline_on_the_tokens_clock():
    clock = cancel.FakeClock(start=0.0)
    job = cancel.Token(clock=clock).child(timeout=10.0)
    assert job.wait(4.0) is False and clock.now == 4.0
    assert job.wait(60.0) is True and clock.now == 10.0  # cut at the deadline, which has passed
    assert job.expired() and job.remaining() == 0.0
    assert clock.sleeps == [4.0, 6.0]


def test_fileno_turns_readable_when_cancelled():
    import select

    token = cancel.Token()
    try:
        assert select.select([token.fileno()], [], [], 0)[0] == []
        threading.Thread(target=token.cancel).start()
        assert select.select([token.fileno()], [], [], 10)[0] == [token.fileno()]
    finally:
        token.close()


def test_run_terminates_the_child_when_the_token_is_cancelled(tmp_path: Path):
    pid_file = tmp_path / "pid"
    token = cancel.Token()

    def cancel_once_started() -> None:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the child to start")
        token.cancel()

    threading.Thread(target=cancel_once_started, daemon=True).start()
    with pytest.raises(Stopped):
        token.run(["sh", "-c", f'echo $$ > "{pid_file}"; exec sleep 600'])
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()  # terminated and reaped


def test_run_returns_the_childs_output_and_stops_it_at_the_deadline():
    token = cancel.Token()
    done = token.run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], input="hi", text=True,
                     stdout=subprocess.PIPE, stdin=subprocess.PIPE)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "HI\n")
    failed = token.run(["sh", "-c", "echo oops >&2; exit 3"], capture_output=True, text=True)
    assert (failed.returncode, failed.stderr) == (3, "oops\n")
    with pytest.raises(subprocess.CalledProcessError):
        token.run(["false"], check=True)
    with pytest.raises(subprocess.TimeoutExpired):
        token.child(timeout=0.2).run(["sleep", "600"])


def test_call_returns_its_result_or_stops_at_once_when_cancelled():
    token = cancel.Token()
    assert token.call(lambda a, b: a + b, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        token.call(lambda: 1 / 0)
    release = threading.Event()
    threading.Thread(target=token.cancel).start()
    with pytest.raises(Stopped):
        token.call(release.wait)  # a blocking call that knows nothing of the token
    release.set()
