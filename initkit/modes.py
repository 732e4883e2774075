"""chmod's mode specs: symbolic (`u+rwX,g+rwX`, `o-rwx`, `a=rX`, `g=u`) and octal (`0775`).

`parse` compiles a spec once; `ModeSpec.apply` computes the new mode of one file
from its current mode exactly as GNU chmod does (coreutils' mode_adjust), so a
tree changed by `initkit permissions --mode SPEC` ends up as `chmod -R SPEC`
would leave it. The property tests compare against the real chmod binary.

Only permission bits can be set: `s`, `t` and octal values above 0777 are
refused, because setuid, setgid and sticky bits on a shared volume are a
privilege decision, not a permissions fix-up. Like chmod, `=` and octal specs
still clear those bits on files, and keep a directory's setuid/setgid bits.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from enum import Enum

# Bits chmod can change: permissions plus setuid, setgid and sticky.
_ALL = 0o7777
_READ = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_EXEC = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
_DIR_KEPT = stat.S_ISUID | stat.S_ISGID  # a directory keeps these unless a clause names them

_WHO = {
    "u": stat.S_ISUID | stat.S_IRWXU,
    "g": stat.S_ISGID | stat.S_IRWXG,
    "o": stat.S_ISVTX | stat.S_IRWXO,
    "a": _ALL,
}
_PERM = {"r": _READ, "w": _WRITE, "x": _EXEC}
_COPY = {"u": stat.S_IRWXU, "g": stat.S_IRWXG, "o": stat.S_IRWXO}


class Kind(Enum):
    ORDINARY = "ordinary"  # fixed bits: r, w, x
    X_IF_ANY_X = "X"  # x for directories and for files someone can already execute
    COPY = "copy"  # g=u: the bits another class has right now


@dataclass(frozen=True)
class Clause:
    """One operation, e.g. the `+rwX` of `ug+rwX`."""

    op: str  # "+", "-" or "="
    who: int  # bits the who letters select; 0 when none were given (then the umask decides)
    value: int  # bits to add, remove or set, before masking by `who`
    kind: Kind
    mentioned: int  # bits the clause names: a directory's setuid/setgid survive `=` unless mentioned


@dataclass(frozen=True)
class ModeSpec:
    text: str
    clauses: tuple[Clause, ...]

    def apply(self, mode: int, is_dir: bool, umask: int = 0) -> int:
        """The permission and special bits (0..0o7777) chmod would give a file that has `mode`."""
        new = mode & _ALL
        for clause in self.clauses:
            value = clause.value
            if clause.kind is Kind.COPY:
                # Take the source class's bits as they are now, and spread them to all three classes.
                value &= new
                value = (
                    (_READ if value & _READ else 0)
                    | (_WRITE if value & _WRITE else 0)
                    | (_EXEC if value & _EXEC else 0)
                )
            elif clause.kind is Kind.X_IF_ANY_X and (is_dir or new & _EXEC):
                value |= _EXEC
            omitted = _DIR_KEPT & ~clause.mentioned if is_dir else 0
            # No who letters: act as `a`, except on bits the umask holds (chmod +w with umask 022 is u+w).
            value &= (clause.who if clause.who else ~umask & _ALL) & ~omitted
            if clause.op == "+":
                new |= value
            elif clause.op == "-":
                new &= ~value
            else:
                # `=` without who letters clears the bits the umask holds too, as chmod does.
                kept = (~clause.who if clause.who else 0) | omitted
                new = (new & kept & _ALL) | value
        return new


class ModeError(ValueError):
    """A spec chmod would not accept, or one that sets setuid, setgid or sticky bits."""


def parse(text: str) -> ModeSpec:
    """Compile `text`; raise ModeError naming what is wrong."""
    if not text:
        raise ModeError("empty mode: give e.g. u+rwX,g+rwX or 0775")
    if text[0].isdigit():
        return ModeSpec(text, (_octal(text),))
    return ModeSpec(text, tuple(clause for part in text.split(",") for clause in _symbolic(text, part)))


def _octal(text: str) -> Clause:
    if len(text) > 4 or any(c not in "01234567" for c in text):
        raise ModeError(f"mode {text!r} is not an octal mode from 0000 to 0777")
    value = int(text, 8)
    if value > 0o777:
        raise ModeError(f"mode {text!r} sets setuid, setgid or sticky bits: give permission bits only (0000 to 0777)")
    # As chmod: an octal mode is `a=` that names everything but a directory's setuid/setgid bits.
    return Clause("=", _ALL, value, Kind.ORDINARY, mentioned=stat.S_ISVTX | 0o777)


def _symbolic(text: str, part: str) -> list[Clause]:
    i = 0
    who = 0
    while i < len(part) and part[i] in _WHO:
        who |= _WHO[part[i]]
        i += 1
    if i == len(part) or part[i] not in "+-=":
        raise ModeError(f"mode {text!r}: {part!r} is not [ugoa...][+-=][rwxX...|u|g|o] (as chmod's)")
    clauses = []
    while i < len(part) and part[i] in "+-=":
        op = part[i]
        i += 1
        value = 0
        kind = Kind.ORDINARY
        if i < len(part) and part[i] in _COPY:
            value, kind = _COPY[part[i]], Kind.COPY
            i += 1
        else:
            while i < len(part) and part[i] in "rwxXst":
                letter = part[i]
                if letter in "st":
                    raise ModeError(
                        f"mode {text!r} sets setuid, setgid or sticky bits ({letter!r}): give permission bits only"
                    )
                if letter == "X":
                    kind = Kind.X_IF_ANY_X
                else:
                    value |= _PERM[letter]
                i += 1
        clauses.append(Clause(op, who, value, kind, mentioned=who & value if who else value))
    if i != len(part):
        raise ModeError(f"mode {text!r}: unexpected {part[i]!r} in {part!r}")
    return clauses


def format_mode(mode: int) -> str:
    """0o2775 -> '2775', for messages."""
    return f"{mode & _ALL:04o}"
