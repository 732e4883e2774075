"""git for `initkit git-clone`: the mechanism behind the command.

- `remote`: the repository's location, credentials (an origin-scoped Authorization
  header), askpass and ssh options;
- `config`: the two allow-lists (--git-config, and an existing checkout's .git/config);
- `runner`: how git runs (GitPython, the environment, forced settings, the job's
  deadline and the kill of git's process group);
- `checkout`: DEST as named states (EMPTY, CLONING, CHECKED_OUT) and the steps between;
- `ssh`: `initkit-ssh`, the ssh wrapper git runs (it imports nothing else: this module
  imports its submodules only when `clone` runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from initkit.git.checkout import Options
    from initkit.git.remote import Access


def clone(repo: str, dest: str, options: Options, access: Access, timeout: float) -> bool:
    """Bring DEST to the requested commit of REPO; return whether anything in it changed.

    Every input is checked (exit 2) before the first network access."""
    import os
    import shutil
    import time

    from initkit.errors import BadInput
    from initkit.git import checkout, config, remote, runner

    if shutil.which("git", path=os.environ.get("PATH", os.defpath)) is None:
        raise BadInput("git-clone needs git, which is not on PATH (initkit-slim has no git: use the initkit image)")
    where = remote.parse_remote(repo)
    remote.check_remote(where)
    user_config = config.user_config(access.git_config, access.git_config_add, access.ca_file, access.group_write)
    started = time.monotonic()
    reach = remote.transport(where, access, timeout, started)
    runner.scrub_environment()
    env = runner.git_environment(
        header=reach.header, scope=where.scope, ssh=reach.ssh, credentials=reach.per_url, user_config=user_config
    )
    if access.ca_file:  # GIT_SSL_CAINFO, when the image sets it, would win over http.sslCAInfo
        env["GIT_SSL_CAINFO"] = os.path.abspath(access.ca_file)
    git = runner.Git(env, credentials=reach.credentials, timeout=timeout, started=started)
    if options.ref is not None:
        checkout.check_ref(git, options.ref)
    return checkout.Checkout(git, where, dest, options).run()
