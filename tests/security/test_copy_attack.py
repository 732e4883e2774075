"""More hostile DEST for `initkit copy` (red team): a manifest the app writes to exhaust memory."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import initkit_command, requirement
from tests.security.test_copy import source


def test_a_manifest_of_millions_of_empty_values_is_ignored_in_bounded_memory(tmp_path):
    """64 MiB of `[],` is 22 million lists: json.loads built them all (1.7 GiB, 30 s) before a check."""
    src = source(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    junk = b"[]," * ((64 << 20) // 3 - 20)
    (dest / ".initkit-copy.json").write_bytes(b'{"entries":{},"x":[' + junk + b"[]]}")
    gnu_time = requirement.path("/usr/bin/time", "apt-get install time")
    rss = tmp_path / "rss"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "COV_CORE_"))}
    argv = [gnu_time, "-f", "%M", "-o", str(rss), *initkit_command("copy", f"{src}/", str(dest))]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    peak_mib = int(rss.read_text().split()[-1]) / 1024
    assert proc.returncode == 0, proc.stderr
    assert "ignored" in proc.stderr and "too many entries" in proc.stderr, proc.stderr
    assert peak_mib < 250, f"peak RSS {peak_mib:.0f} MiB"


def test_names_with_line_breaks_and_escapes_stay_one_log_line_each(tmp_path, run_cli):
    """A name with a newline, a carriage return or an escape sequence, in each message copy writes
    (skipped in SRC, kept in DEST): every line of stderr is one of initkit's."""
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    evil = "a\ninitkit copy: forged line\r\x1b[2K\u2028b"
    (src / evil).write_text("from the image\n")
    os.mkfifo(src / f"{evil}.fifo")
    assert run_cli("copy", f"{src}/", str(dest)).code == 0
    (dest / evil).write_text("changed by the app\n")
    result = run_cli("copy", f"{src}/", str(dest))
    assert result.code == 0, result.stderr
    assert len(result.lines) == 3, result.stderr  # skipped the FIFO, kept the file, the summary
    assert all(line.startswith("initkit copy: ") and "forged" not in line.split(":", 1)[0] for line in result.lines)
    assert not any(ch in result.stderr for ch in "\r\x1b\u2028")
