"""The click group, the wiring of subcommands, and the one error boundary.

Subcommands load lazily: `initkit sleep 0` imports neither urllib3, jinja2 nor
yaml.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import NoReturn

import click

from initkit import __version__, log
from initkit.errors import BAD_INPUT, EXIT_CODES_HELP, FAILED, InitkitError, Stopped

COMMANDS = {
    "wait-for": ("initkit.commands.wait_for", "Wait until DNS names, TCP ports, URLs and files are ready."),
    "register": ("initkit.commands.register", "Send an idempotent registration request, with retries."),
    "sleep": ("initkit.commands.sleep", "Sleep for a duration."),
    "git-clone": ("initkit.commands.git_clone", "Clone or update a git repository, idempotently."),
    "render": ("initkit.commands.render", "Render Jinja templates with pod facts and values."),
    "fetch": ("initkit.commands.fetch", "Download a file or archive, verify its SHA-256, and put it in place."),
    "permissions": ("initkit.commands.permissions", "Set a volume's owner and mode, changing only what differs."),
    "sysctl": ("initkit.commands.sysctl", "Set kernel parameters (sysctls), raising only those that are lower."),
    "certs": ("initkit.commands.certs", "Issue this pod's TLS certificate and keystores from a mounted or kept CA."),
    "copy": ("initkit.commands.copy", "Copy files out of an image or a ConfigMap into a volume, idempotently."),
    "info": ("initkit.commands.info", "Print the pod facts and the wait-for targets this image checks, as JSON."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name][0]).command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(
    cls=LazyGroup,
    context_settings={"auto_envvar_prefix": "INITKIT", "help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP + " Every option can be set from the environment as INITKIT_<COMMAND>_<OPTION>, "
    "e.g. INITKIT_WAIT_FOR_TIMEOUT=30s.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    show_envvar=True,
    help="json: every stderr line is one JSON object.",
)
@click.option("--quiet", "-q", is_flag=True, show_envvar=True, help="Print errors only.")
@click.option("--debug", is_flag=True, show_envvar=True, help="Print debug lines and tracebacks.")
@click.version_option(__version__, "--version", prog_name="initkit", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, log_format: str, quiet: bool, debug: bool) -> None:
    """Idempotent Kubernetes init-container jobs: wait for services, register the pod,
    clone a repository, render configuration."""
    log.configure(log_format, log.DEBUG if debug else log.ERROR if quiet else log.INFO)
    log.set_command(ctx.invoked_subcommand)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and exit with the documented code. The one error boundary."""
    code = run(argv)
    # The run is over: interpreter shutdown's garbage collections would walk every object the
    # imports made (requests': tens of ms, more on a busy node). Frozen, they are skipped; files
    # are still closed and atexit handlers run (bench/bench_kube.py measures it).
    gc.freeze()
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    from initkit import cancel, signals

    args = list(sys.argv[1:] if argv is None else argv)
    log.preconfigure(args, os.environ)
    # The run's token: the signals cancel it, every blocking point of a command waits on it.
    with signals.stop_on_signals(), cancel.scope(cancel.Token()):
        try:
            result = cli.main(args=args, prog_name="initkit", standalone_mode=False)
            return result if isinstance(result, int) else 0
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.ClickException as exc:
            log.error(_one_line(exc.format_message()))
            return BAD_INPUT
        except click.exceptions.Abort:
            log.error("aborted")
            return FAILED
        except InitkitError as exc:
            _debug_traceback()
            log.error(str(exc))
            return exc.exit_code
        except Stopped as exc:
            _debug_traceback()
            log.error(str(exc))
            return exc.exit_code
        except Exception as exc:  # a bug: still one line, traceback with --debug
            _debug_traceback()
            log.error(f"internal error: {type(exc).__name__}: {_one_line(str(exc))} (rerun with --debug)")
            return FAILED
        finally:
            log.set_command(None)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())


def _debug_traceback() -> None:
    if log.is_debug():
        import traceback

        for line in traceback.format_exc().rstrip().splitlines():
            log.debug(line)
