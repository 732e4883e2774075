"""The one reader of secret files (a token, a password) mounted from a Secret.

Every secret initkit reads goes through `read`: it is registered for redaction
before anything can print it, and a value that cannot travel in one HTTP header
or git credential (several lines, control characters, not UTF-8) is refused
with a message that names the file, never the value.
"""

from __future__ import annotations

import os
import stat

from initkit import redact
from initkit.errors import BadInput


def read(path: str, what: str) -> str:
    """The file's content without its trailing newline; exit 2 (BadInput) when unusable."""
    try:
        # O_NONBLOCK: a FIFO at the path must not hang the run (nor SIGTERM: open() is retried after it)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BadInput(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        kind = os.fstat(fd).st_mode
        if stat.S_ISDIR(kind):
            raise BadInput(f"{what} {path} is a directory")
        if not stat.S_ISREG(kind):
            raise BadInput(f"{what} {path} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as handle:
            raw = handle.read(1 << 20)
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{what} {path} is not UTF-8 text") from None
    value = text.removesuffix("\n").removesuffix("\r")
    # Register every piece before judging it, so no later message can show any of it.
    redact.register(value)
    for line in value.splitlines():
        redact.register(line)
    if not value.strip():
        raise BadInput(f"{what} {path} is empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise BadInput(f"{what} {path} holds a line break or control character; it must be one line")
    return value
