import signal
import subprocess
import time

from initkit import cancel
from tests.conftest import initkit_command, wait_for_handler


def test_sleep_waits_for_the_duration(run_cli):
    with cancel.use_clock(cancel.FakeClock()) as clock:
        result = run_cli("sleep", "1m30s")
    assert result.code == 0, result.stderr
    assert clock.sleeps == [90.0]  # one wait on the run's token, for the whole duration


def test_sleep_duration_from_environment(run_cli):
    result = run_cli("sleep", env={"INITKIT_SLEEP_DURATION": "10ms"})
    assert result.code == 0, result.stderr


def test_malformed_duration_is_bad_input(run_cli):
    result = run_cli("sleep", "ten")
    assert result.code == 2
    assert len(result.lines) == 1
    assert "invalid duration 'ten'" in result.stderr


def test_sigterm_stops_sleep_at_once_with_143():
    proc = subprocess.Popen(initkit_command("sleep", "1h"), stderr=subprocess.PIPE, text=True)
    wait_for_handler(proc.pid, signal.SIGTERM)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=5)
    assert time.monotonic() - sent < 1
    assert code == 143
    assert "stopped by SIGTERM" in proc.stderr.read()


def test_an_overflowing_duration_is_one_line_exit_2(run_cli):
    result = run_cli("sleep", "99999999999999999999")
    assert result.code == 2
    assert result.lines == [
        "initkit sleep: error: Invalid value for 'DURATION': duration '99999999999999999999' is too long: at most 365d"
    ]


def test_an_overflowing_interval_is_one_line_exit_2(run_cli, tmp_path):
    result = run_cli("wait-for", "--interval", "99999999999999999999", f"file:{tmp_path}")
    assert result.code == 2
    assert len(result.lines) == 1 and "'--interval': duration '99999999999999999999' is too long" in result.stderr
