"""initkit.signals: a stuck cleanup after SIGTERM still ends the process, with 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STUCK = """
import sys, threading
from initkit import signals
from initkit.errors import Stopped
with signals.stop_on_signals():
    try:
        print("ready", flush=True)
        threading.Event().wait()
    except Stopped:
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()  # a cleanup deadlocked on a lock the interrupted code held
"""


def test_a_cleanup_that_deadlocks_still_exits_143_after_the_cleanup_limit():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    proc = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 143
        from initkit.signals import CLEANUP_LIMIT

        assert CLEANUP_LIMIT - 0.1 <= time.monotonic() - sent < CLEANUP_LIMIT + 1.5
    finally:
        proc.kill()
