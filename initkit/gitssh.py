"""The former home of `initkit-ssh` (now initkit.git.ssh): a console script installed by an
earlier initkit still imports `initkit.gitssh:main`, until the package is reinstalled."""

from initkit.git.ssh import main

__all__ = ["main"]
