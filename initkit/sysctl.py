"""Kernel parameters under /proc/sys: names checked, values read before written, numbers only.

A sysctl name comes from chart values, so it is data that must never address a
file outside the sysctl root: it is split into components here, each a plain
name (letters, digits, `_`, `-`, and dots only inside an interface name such as
`eth0.100`), and the file is reached from the root's descriptor one component at
a time with `O_NOFOLLOW` (`fs.open_dir`). Values are numbers only: a text
sysctl such as `kernel.core_pattern` (`|/path` runs a program as root on the
node) is refused, whatever the value.

Names follow sysctl(8): with `.` as the separator a `/` stands for a dot inside
a component (`net.ipv4.conf.eth0/100.rp_filter`); when the first separator is
`/`, dots are literal (`net/ipv4/conf/eth0.100/rp_filter`). Kubernetes' pod
`securityContext.sysctls` takes the same two forms.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass

from initkit import fs

ROOT = "/proc/sys"

_MAX_NAME = 256  # the longest sysctl names are about 80 characters (interface names included)
_MAX_PARTS = 16
_PART = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")  # dots only between names: never ".", "..", ".x"
_MAX_VALUE = 256
_MAX_FIELDS = 8  # kernel.sem has 4, net.ipv4.tcp_rmem 3
_NUMBER = r"-?[0-9]{1,20}"  # ASCII digits only: int() would also take "١٢", "1_0" and "+5"
_VALUE = re.compile(rf"[ \t]*{_NUMBER}(?:[ \t]+{_NUMBER})*[ \t]*")
_CURRENT = re.compile(rf"\s*{_NUMBER}(?:\s+{_NUMBER})*\s*", re.ASCII)
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1  # long and unsigned long: kernel.shmmax is 18446744073692774399
_MAX_READ = 4096  # a sysctl's text is a page at most

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # O_NONBLOCK: a FIFO must not hang
# No O_TRUNC: it would truncate before fstat could tell a hard link to a file elsewhere (`write` truncates after).
_WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

# Namespaced as Kubernetes counts them (k8s.io/component-helpers/node/util/sysctl, NamespacedBy, and
# "Using sysctls in a Kubernetes Cluster"): what a pod's securityContext.sysctls may set.
_NAMESPACED_NAMES = {"kernel.sem": "ipc"}
_NAMESPACED_PREFIXES = (("kernel.shm", "ipc"), ("kernel.msg", "ipc"), ("fs.mqueue.", "ipc"), ("net.", "net"))
# Under net. but global: the docs' named exceptions (read-only outside the host's network namespace).
_NOT_NAMESPACED = frozenset({"net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_expect_max"})

# Two numbers that are a range LOW HIGH: raising means widening, never narrowing.
RANGES = frozenset({"net.ipv4.ip_local_port_range", "net.ipv4.ping_group_range"})

Value = tuple[int, ...]


class SysctlError(Exception):
    """Bad input about a sysctl: an invalid or unknown name, a value it cannot hold (exit 2)."""


class Refused(Exception):
    """The kernel (or the container) refused a read or a write (exit 1)."""


@dataclass(frozen=True)
class Key:
    """A sysctl: the components of its path below the root (a component may hold a dot: `eth0.100`)."""

    parts: tuple[str, ...]

    @property
    def name(self) -> str:
        """The dotted name, a dot inside a component written `/` (sysctl(8)'s and Kubernetes' form)."""
        return ".".join(part.replace(".", "/") for part in self.parts)

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_key(text: str) -> Key:
    """The Key named by `text`, dotted (`vm.max_map_count`) or slashed (`vm/max_map_count`).

    Raises SysctlError for anything but plain components: an empty one (`vm..x`,
    `/vm/x`), `.` or `..`, NUL, spaces, line breaks, non-ASCII."""
    if not text:
        raise SysctlError("an empty sysctl name")
    if len(text) > _MAX_NAME:
        raise SysctlError(f"the sysctl name {_shown(text)} is longer than {_MAX_NAME} characters")
    slash, dot = text.find("/"), text.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        parts = text.split("/")  # slash form: dots are literal
    else:
        parts = [part.replace("/", ".") for part in text.split(".")]
    if len(parts) > _MAX_PARTS:
        raise SysctlError(f"the sysctl name {_shown(text)} has more than {_MAX_PARTS} components")
    for part in parts:
        if not _PART.fullmatch(part):
            raise SysctlError(
                f"{_shown(text)} is not a sysctl name such as vm.max_map_count: only letters, digits, "
                "'_' and '-' between the dots (no empty component, no '..', no absolute path)"
            )
    return Key(tuple(parts))


def parse_value(text: str) -> Value:
    """The numbers of `text`: one (`262144`) or several separated by spaces or tabs (`1024 65000`)."""
    if len(text) > _MAX_VALUE or not _VALUE.fullmatch(text):
        raise SysctlError(
            f"{_shown(text)} is not a sysctl value initkit sets: one number or several separated by "
            f"spaces (at most {_MAX_FIELDS}, ASCII digits, no text)"
        )
    fields = tuple(int(field) for field in text.split())
    if len(fields) > _MAX_FIELDS:
        raise SysctlError(f"{_shown(text)}: at most {_MAX_FIELDS} numbers")
    for field in fields:
        if not _MIN_INT <= field <= _MAX_INT:
            raise SysctlError(f"{_shown(text)}: {field} does not fit in 64 bits")
    return fields


def parse_setting(text: str) -> tuple[Key, Value]:
    """KEY=VALUE."""
    name, sep, value = text.partition("=")
    if not sep:
        raise SysctlError(f"{_shown(text)} is not KEY=VALUE, e.g. vm.max_map_count=262144")
    return parse_key(name), parse_value(value)


def show(value: Value) -> str:
    """A value as written: `262144`, or `1024 65000`."""
    return " ".join(str(field) for field in value)


def shown(value: Value) -> str:
    """A value in a message: `262144`, or `"1024 65000"`, quoted when it holds a space."""
    return show(value) if len(value) == 1 else f'"{show(value)}"'


# ---- namespaces ------------------------------------------------------------------------------------


def namespace(key: Key | str) -> str | None:
    """The kernel namespace that holds `key` ("net" or "ipc") as Kubernetes counts them, or None
    when it is node-wide: only a namespaced sysctl can be set by the pod's securityContext.sysctls
    (no privilege); a node-wide one needs a privileged container, and changes the whole node."""
    name = key.name if isinstance(key, Key) else parse_key(key).name
    if name in _NOT_NAMESPACED:
        return None
    if name in _NAMESPACED_NAMES:
        return _NAMESPACED_NAMES[name]
    for prefix, ns in _NAMESPACED_PREFIXES:
        if name.startswith(prefix):
            return ns
    return None


def privilege_note(key: Key) -> str:
    """What setting `key` needs, for a log line: "not namespaced: needs a privileged container"."""
    ns = namespace(key)
    if ns is None:
        return "not namespaced: needs a privileged container"
    return f"namespaced ({ns}): the pod's securityContext.sysctls can set it without privilege"


def what_to_do(key: Key) -> str:
    """The one remedy for a refused write."""
    ns = namespace(key)
    if ns is None:
        return (
            f"{key.name} is not namespaced: run this step in a privileged container "
            "(securityContext.privileged: true), or set it on the node"
        )
    return (
        f"{key.name} is namespaced ({ns}): set it in the pod's securityContext.sysctls instead "
        "(no privilege needed), or run this step in a privileged container"
    )


# ---- the rule: what to write -----------------------------------------------------------------------


def target(key: Key, current: Value, wanted: Value, exact: bool) -> Value:
    """The value to hold: `wanted` with `exact`; otherwise never lower than `current`.

    - one number: the larger of the two;
    - a range (`RANGES`: LOW HIGH): widened, never narrowed: the lower LOW and the
      higher HIGH (an empty current range, LOW > HIGH, is replaced);
    - several numbers (`tcp_rmem`, `kernel.sem`): each the larger of the two, field by field.
    """
    if len(current) != len(wanted):
        raise SysctlError(
            f"{key.name} holds {len(current)} number{'s' if len(current) != 1 else ''} "
            f"({shown(current)}), not {len(wanted)} ({shown(wanted)})"
        )
    if exact:
        return wanted
    if key.name in RANGES and len(wanted) == 2:
        if wanted[0] > wanted[1]:
            raise SysctlError(
                f"{key.name}={shown(wanted)} is an empty range: it cannot widen {shown(current)} (use --exact)"
            )
        if current[0] > current[1]:
            return wanted
        return (min(current[0], wanted[0]), max(current[1], wanted[1]))
    return tuple(max(have, want) for have, want in zip(current, wanted, strict=True))


# ---- reading and writing ---------------------------------------------------------------------------


def _open(root: str, key: Key, flags: int) -> int:
    """A descriptor of the sysctl file, every component below `root` opened without following a link."""
    *dirs, name = key.parts
    try:
        with fs.open_dir(root, dirs) as dir_fd:
            fd = os.open(name, flags, dir_fd=dir_fd)
    except fs.UnsafePath as exc:  # a component is a link, or a file where a directory should be
        if os.path.islink(exc.path):
            raise SysctlError(f"{key.name}: {exc.path} is a symlink: initkit never follows links") from None
        raise SysctlError(_unknown(root, key)) from None
    except (FileNotFoundError, NotADirectoryError):
        raise SysctlError(_unknown(root, key)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SysctlError(
                f"{key.name}: {os.path.join(root, key.path)} is a symlink: initkit never follows links"
            ) from None
        if exc.errno == errno.EISDIR:
            raise SysctlError(_group(key)) from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SysctlError(_group(key))
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise SysctlError(f"{key.name}: {os.path.join(root, key.path)} is not a sysctl file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _group(key: Key) -> str:
    return f"{key.name} is a group of sysctls, not one: name one below it"


def _unknown(root: str, key: Key) -> str:
    message = f"unknown sysctl {key.name}: there is no {os.path.join(root, key.path)}"
    if key.name.startswith("net."):
        message += " (a node-wide net.* sysctl exists only in the node's network namespace)"
    return message


def read(root: str, key: Key) -> Value:
    """The numbers `key` holds now. SysctlError when it is unknown or holds text; Refused when not readable."""
    try:
        fd = _open(root, key, _READ_FLAGS)
    except OSError as exc:
        raise Refused(
            f"cannot read {key.name}: {exc.strerror or exc} (initkit sets only what it can read first)"
        ) from None
    try:
        data = os.read(fd, _MAX_READ + 1)
    except OSError as exc:
        raise Refused(f"cannot read {key.name}: {exc.strerror}") from None
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace")
    if len(data) > _MAX_READ or not _CURRENT.fullmatch(text):
        raise SysctlError(
            f"{key.name} does not hold numbers ({_shown(text.strip())}): initkit sets numeric sysctls only"
        )
    return tuple(int(field) for field in text.split())


def write(root: str, key: Key, value: Value) -> None:
    """Write `value` to `key` in one write(2), as the kernel wants it. Refused when the kernel says no."""
    data = (show(value) + "\n").encode("ascii")
    try:
        fd = _open(root, key, _WRITE_FLAGS)
    except OSError as exc:
        raise Refused(_refusal(key, value, exc)) from None
    try:
        if os.fstat(fd).st_size:  # a file of the test root; /proc/sys files have no size
            os.ftruncate(fd, 0)
        written = os.write(fd, data)
    except OSError as exc:
        raise Refused(_refusal(key, value, exc)) from None
    finally:
        os.close(fd)
    if written != len(data):
        raise Refused(f"the kernel took {written} of the {len(data)} bytes of {key.name}={shown(value)}")


def _refusal(key: Key, value: Value, exc: OSError) -> str:
    setting = f"{key.name}={shown(value)}"
    if exc.errno == errno.EROFS:
        return f"cannot set {setting}: /proc/sys is read-only in this container; {what_to_do(key)}"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return f"not permitted to set {setting}; {what_to_do(key)}"
    if exc.errno == errno.EINVAL:
        return f"the kernel refused {setting} (EINVAL): the value is outside what {key.name} takes"
    return f"cannot set {setting}: {exc.strerror or exc}"
