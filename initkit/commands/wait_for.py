"""`initkit wait-for TARGET...`: block until every target is ready.

Replaces: until nslookup myservice; do sleep 2; done
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from initkit import log, options
from initkit.errors import EXIT_CODES_HELP, BadInput, ExecFailed, InitkitError, JobFailed
from initkit.params import Duration, option

if TYPE_CHECKING:
    from initkit.cancel import Token
    from initkit.probes import Probe

SUMMARY_EVERY = 10.0
DEADLINE_MARGIN = 0.1


class _DashDashCommand(click.Command):
    """Keeps what follows `--` as the command to exec, out of TARGETS."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["initkit.exec"] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)


@dataclass
class _Status:
    label: str
    ready: threading.Event = field(default_factory=threading.Event)
    last_error: str = "no answer yet: its first check is still running"
    fatal: InitkitError | None = None  # final (a Job that failed, RBAC denied): the run ends with it
    probe: Any = None

    @property
    def reason(self) -> str:
        """The probe's own account when it keeps one (an API watch), else its last error."""
        return str(getattr(self.probe, "reason", None) or self.last_error)


@click.command(
    "wait-for",
    cls=_DashDashCommand,
    epilog="Targets: dns:NAME (an A or AAAA record), dns:NAME?min=N (at least N addresses, e.g. a headless "
    "Service's ready pods), dns:NAME?type=SRV|TXT|CNAME|A|AAAA (records of that type; combines with min, "
    "e.g. dns:_postgresql._tcp.mydb?type=SRV&min=2), tcp:HOST:PORT, http(s)://URL (2xx), file:PATH. "
    "An http(s) target's fragment sets what its answer must show, '&' between items (never sent): "
    "#status=200,204 (or 2xx), body=TEXT (substring), regex=PATTERN (RE2 syntax), json=FIELD=VALUE (dotted FIELD), "
    "header=NAME:TEXT; values percent-decoded, e.g. 'http://api/health#status=200&json=status=UP'. "
    "Kubernetes API targets (watched with the pod's ServiceAccount; NS/ picks another namespace than the pod's): "
    "job:[NS/]NAME (complete; failed: exit 1 at once), pods:[NS/]SELECTOR[?min=N] (all ready, or N), "
    "endpoints:[NS/]SERVICE[?min=N] (ready EndpointSlice addresses), daemonset:[NS/]NAME (its pod on this "
    "node, NODE_NAME, ready), cr:GROUP/VERSION/PLURAL/[NS/]NAME#condition=TYPE[=STATUS]; gone:TARGET waits "
    "for deletion. "
    "After `--`, COMMAND is executed once all are ready (126/127 when it cannot be run). " + EXIT_CODES_HELP,
)
@click.argument("targets", nargs=-1, required=True, envvar="INITKIT_WAIT_FOR_TARGETS")
@options.timeout("5m", zero="wait forever")
@option("--interval", type=Duration(), default="1s", help="Time between checks of a target.")
@option("--dns-server", metavar="IP[:PORT]", help="Ask this nameserver instead of resolv.conf's.")
@options.ca_file("https targets")
@option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    envvar=["INITKIT_WAIT_FOR_KUBECONFIG", "KUBECONFIG"],
    help="For API targets outside a pod: this kubeconfig's current context (default: the pod's ServiceAccount).",
)
@option(
    "--watch-timeout",
    type=Duration(),
    default="5m",
    help="How long one watch of an API target lasts before initkit resumes it (reading the token again).",
)
@click.pass_context
def command(
    ctx: click.Context,
    targets: Sequence[str],
    timeout: float,
    interval: float,
    dns_server: str | None,
    ca_file: str | None,
    kubeconfig: str | None,
    watch_timeout: float,
) -> None:
    """Wait until every TARGET is ready, checking them concurrently.

    \b
    Replaces: until nslookup myservice; do sleep 2; done
    Example:  initkit wait-for dns:myservice tcp:mydb:5432 http://api/healthz --timeout 2m
    """
    from initkit import cancel
    from initkit.durations import format_duration
    from initkit.probes import parse
    from initkit.urls import shown

    token = cancel.current()
    started = token.clock.monotonic()
    if interval <= 0:
        raise BadInput("--interval must be greater than 0")
    if dns_server is not None:
        from initkit.probes.dns import parse_server

        parse_server(dns_server)  # an empty or malformed value is exit 2 even without dns: targets
    # DNS checks end a little before the deadline, so the timeout names their last error.
    deadline = started + max(0.0, timeout - DEADLINE_MARGIN) if timeout else None
    if watch_timeout < 1:
        raise BadInput("--watch-timeout must be at least 1s")
    kube = _lazy_kube(kubeconfig, watch_timeout)
    probes = [parse(t, dns_server=dns_server, ca_file=ca_file, deadline=deadline, kube=kube) for t in targets]
    limit = f"timeout {format_duration(timeout)}" if timeout else "no timeout"
    names = ", ".join(shown(p.label) for p in probes)
    log.info(f"waiting for {names} ({limit}, checking every {format_duration(interval)})")
    wait_until_ready(probes, timeout=timeout, interval=interval, started=started, token=token)
    argv = ctx.meta.get("initkit.exec")
    if argv:
        _exec(argv)


def _lazy_kube(kubeconfig: str | None, watch_timeout: float) -> Callable[[], tuple[Any, float]]:
    """The API configuration, loaded by the first API target (once): other targets read no kubeconfig."""
    loaded: list[Any] = []

    def load() -> tuple[Any, float]:
        if not loaded:
            from initkit.kube.config import load as load_config

            loaded.append(load_config(kubeconfig))
        return loaded[0], watch_timeout

    return load


def poll(probe: Probe, status: _Status, token: Token, *, interval: float, started: float) -> bool:
    """Check PROBE every INTERVAL (between the starts of two checks: at most one check per interval)
    until it is ready (True) or TOKEN is cancelled (False). Time is the token's clock."""
    from initkit.durations import format_duration
    from initkit.errors import Stopped
    from initkit.probes import NotReady, TooLate

    clock = token.clock
    try:
        while True:
            began = clock.monotonic()
            try:
                detail = probe.check(token)
            except TooLate:
                pass  # asked nothing: the last answer's reason stands
            except NotReady as exc:
                status.last_error = str(exc)
            except InitkitError as exc:  # final: no later check can change it
                status.fatal = exc
                return True
            except Exception as exc:  # a probe bug must not look like a hang (Stopped is no Exception)
                status.last_error = f"{type(exc).__name__}: {exc}"
            else:
                log.info(f"{status.label} is ready after {format_duration(clock.monotonic() - started)} ({detail})")
                status.ready.set()
                return True
            token.sleep_until(began + interval)
    except Stopped:
        return False


def wait_until_ready(
    probes: Sequence[Probe],
    *,
    timeout: float,
    interval: float,
    started: float | None = None,
    token: Token | None = None,
) -> None:
    """Check every probe each interval, in its own thread; JobFailed naming the laggards at the timeout.

    The main thread waits on TOKEN (the run's by default): a signal ends the wait with Stopped."""
    from initkit import cancel
    from initkit.durations import format_duration
    from initkit.urls import shown

    token = token or cancel.current()
    clock = token.clock
    started = clock.monotonic() if started is None else started
    polls = token.child()  # cancelled when this returns: the checkers stop
    changed = threading.Event()
    statuses = [_Status(shown(p.label), probe=p) for p in probes]

    def run(probe: Probe, status: _Status) -> None:
        if poll(probe, status, polls, interval=interval, started=started):
            changed.set()

    for probe, status in zip(probes, statuses, strict=True):
        threading.Thread(target=run, args=(probe, status), name=status.label, daemon=True).start()

    next_summary = started + SUMMARY_EVERY
    try:
        while True:
            changed.clear()
            for status in statuses:
                if status.fatal is not None:
                    raise status.fatal
            pending = [s for s in statuses if not s.ready.is_set()]
            if not pending:
                break
            now = clock.monotonic()
            if timeout and now - started >= timeout:
                raise JobFailed(
                    f"timed out after {format_duration(timeout)}; not ready: "
                    + "; ".join(f"{s.label} ({s.reason})" for s in pending)
                )
            if now >= next_summary:
                log.info(
                    f"waiting for {len(pending)} of {len(statuses)} targets "
                    f"({format_duration(now - started)}): " + ", ".join(f"{s.label} ({s.reason})" for s in pending)
                )
                next_summary = now + SUMMARY_EVERY
            wake = next_summary if not timeout else min(next_summary, started + timeout)
            token.wait_event(changed, max(0.0, wake - now))  # Stopped at once on a signal
    finally:
        polls.cancel()
    log.info(f"all targets ready ({len(statuses)}) after {format_duration(clock.monotonic() - started)}")


def _exec(argv: list[str]) -> None:
    import os

    from initkit import signals
    from initkit.urls import printable

    name = printable(argv[0])
    if not argv[0]:  # execvp("") is a ValueError, not ENOENT; for the user it is the same
        raise ExecFailed("cannot exec '': command not found", 127)
    log.info(f"exec {printable(' '.join(argv))}")
    signals.restore_defaults()
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise ExecFailed(f"cannot exec {name}: command not found", 127) from None
    except OSError as exc:
        raise ExecFailed(f"cannot exec {name}: {exc.strerror}", 126) from None
