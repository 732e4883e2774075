"""A shim: the names git-clone imports from here, now in `initkit.fs`.

It goes away once the git code imports `initkit.fs` itself; nothing else may
import it (render, fetch and the tests use `initkit.fs`).
"""

from initkit.fs import UnsafePath, check_dirs, open_dir, remove_path, touch_path, write_path
from initkit.fs import write_atomic as write_at

__all__ = ["UnsafePath", "check_dirs", "open_dir", "remove_path", "touch_path", "write_at", "write_path"]
