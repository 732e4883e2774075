"""The exceptions commands raise, each carrying its documented exit code.

The one place that turns them into exit codes is `initkit.cli.main`.
"""

from __future__ import annotations

import signal

OK = 0
FAILED = 1
BAD_INPUT = 2

EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 the job could not be done (timeout, refused, unreachable, "
    "clone failed); 2 bad usage or input; 128+N stopped by signal N (SIGTERM: 143)."
)


class InitkitError(Exception):
    """A failure with a one-line message for the user."""

    exit_code = FAILED


class JobFailed(InitkitError):
    """The job could not be done: a timeout, a refusal, an unreachable host."""

    exit_code = FAILED


class BadInput(InitkitError):
    """Bad usage or input: a malformed target, a missing file, a foreign destination."""

    exit_code = BAD_INPUT


class ExecFailed(InitkitError):
    """The command after `--` could not be executed (126) or was not found (127)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Stopped(BaseException):
    """The run was stopped by signal `signum`: raised by `initkit.cancel.Token.check` (and its
    waits) where a command checks the token; never by a signal handler.

    A BaseException so that no `except Exception` in a library swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"
