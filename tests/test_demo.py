"""`make demo` (examples/demo.py) stays true: it runs end to end and the restart changes nothing."""

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_runs_end_to_end():
    result = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "registered (HTTP 201)" in out and "already registered (HTTP 409)" in out
    assert "nothing to do" in out and "0 written, 1 unchanged" in out
    assert "app.conf | listen 10.244.0.17:8080" in out
