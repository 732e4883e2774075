"""`initkit sysctl KEY=VALUE...`: Bitnami's `sysctl -w vm.max_map_count=262144`, idempotently.

Replaces the privileged os-shell container of Elasticsearch, OpenSearch and
others: `if [ "$(sysctl -n vm.max_map_count)" -lt 262144 ]; then sysctl -w
vm.max_map_count=262144; fi`. Every setting is checked and every current value
read before anything is written; a value already right (or already higher, with
--only-raise, the default) is not written. One line per key says what was done
and whether the key is namespaced, that is whether the pod's
securityContext.sysctls could set it without a privileged container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click

from initkit import cancel, log
from initkit import sysctl as kernel
from initkit.errors import EXIT_CODES_HELP, BadInput, JobFailed
from initkit.params import Line, option


class SettingType(Line):
    """KEY=VALUE; one per line in INITKIT_SYSCTL_SETTINGS (a value such as "1024 65000" holds spaces)."""

    name = "KEY=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return kernel.parse_setting(str(value))
        except kernel.SysctlError as exc:
            self.fail(str(exc), param, ctx)


@click.command("sysctl", epilog=EXIT_CODES_HELP)
@click.argument(
    "settings", nargs=-1, required=True, type=SettingType(), metavar="KEY=VALUE...", envvar="INITKIT_SYSCTL_SETTINGS"
)
@option(
    "--only-raise/--exact",
    "only_raise",
    default=True,
    help="--only-raise: never lower a value (a range LOW HIGH is only widened; several numbers "
    "are raised field by field). --exact: set each value exactly.",
)
@option("--root", default=kernel.ROOT, hidden=True, help="For tests only: another /proc/sys.")
def command(settings: tuple[tuple[kernel.Key, kernel.Value], ...], only_raise: bool, root: str) -> None:
    """Set kernel parameters (sysctls) to numbers, writing only those that need it.

    KEY is dotted (vm.max_map_count) or slashed (vm/max_map_count); VALUE is one
    number or several separated by spaces ("1024 65000"). Text values are
    refused. An unknown KEY is exit 2; a write the kernel refuses is exit 1, naming
    what the step needs (a privileged container, or the pod's
    securityContext.sysctls for a namespaced KEY).

    Replaces: sysctl -w vm.max_map_count=262144
    """
    _check_unique(settings)
    if root != kernel.ROOT:
        log.warning(f"the sysctl root is {root}, not {kernel.ROOT} (INITKIT_SYSCTL_ROOT is for tests only)")
    if not os.path.isdir(root):
        raise JobFailed(f"{root} is not there: initkit sysctl needs /proc mounted")
    plan = [_plan(root, key, wanted, only_raise) for key, wanted in settings]  # every read before any write
    token = cancel.current()
    for step in plan:
        token.check()
        _apply(root, step, only_raise)


@dataclass(frozen=True)
class _Step:
    key: kernel.Key
    current: kernel.Value  # read before anything is written
    wanted: kernel.Value  # as given
    value: kernel.Value  # what the rule (--only-raise or --exact) makes of the two


def _check_unique(settings: tuple[tuple[kernel.Key, kernel.Value], ...]) -> None:
    seen: set[tuple[str, ...]] = set()
    for key, _ in settings:
        if key.parts in seen:
            raise BadInput(f"{key.name} is given twice")
        seen.add(key.parts)


def _plan(root: str, key: kernel.Key, wanted: kernel.Value, only_raise: bool) -> _Step:
    try:
        current = kernel.read(root, key)
        return _Step(key, current, wanted, kernel.target(key, current, wanted, exact=not only_raise))
    except kernel.SysctlError as exc:
        raise BadInput(str(exc)) from None
    except kernel.Refused as exc:
        raise JobFailed(str(exc)) from None


def _apply(root: str, step: _Step, only_raise: bool) -> None:
    key, current, value = step.key, step.current, step.value
    note = kernel.privilege_note(key)
    fields = {"key": key.name, "before": kernel.show(current), "namespace": kernel.namespace(key)}
    if value == current:
        kept = f" ({kernel.shown(step.wanted)} wanted; --only-raise never lowers it)" if step.wanted != current else ""
        log.info(f"{key.name} is {kernel.shown(current)}{kept}: unchanged ({note})", changed=False, **fields)
        return
    try:
        kernel.write(root, key, value)
        now = kernel.read(root, key)
    except kernel.SysctlError as exc:  # the file changed between the read and the write
        raise BadInput(str(exc)) from None
    except kernel.Refused as exc:
        raise JobFailed(str(exc)) from None
    if now != value:
        raise JobFailed(f"the kernel holds {key.name}={kernel.shown(now)} after initkit wrote {kernel.shown(value)}")
    log.info(
        f"{key.name}: {kernel.shown(current)} -> {kernel.shown(value)} ({note})",
        changed=True,
        after=kernel.show(value),
        **fields,
    )
