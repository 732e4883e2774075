"""`initkit-ssh`: the program git runs as GIT_SSH.

git runs GIT_SSH_COMMAND through /bin/sh, and initkit's images have no shell.
GIT_SSH is executed directly, but takes no options of its own, so git-clone
passes ssh's options in INITKIT_SSH_OPTIONS (a JSON list) and this wrapper
execs `ssh OPTIONS... ARGS-FROM-GIT...`. It imports nothing heavy on purpose.
"""

from __future__ import annotations

import json
import os
import sys

OPTIONS_VAR = "INITKIT_SSH_OPTIONS"


def main() -> None:
    try:
        options = json.loads(os.environ.get(OPTIONS_VAR, "[]"))
    except ValueError:
        sys.stderr.write(f"initkit-ssh: {OPTIONS_VAR} is not a JSON list\n")
        sys.exit(2)
    argv = ["ssh", *options, *sys.argv[1:]]
    try:
        os.execvp("ssh", argv)
    except OSError as exc:
        sys.stderr.write(f"initkit-ssh: cannot run ssh: {exc.strerror}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
