"""`initkit render TEMPLATE [DEST]`: Jinja templates over pod facts, env and values.

Replaces `sed "s/@POD_IP@/$POD_IP/" app.conf.tpl > /config/app.conf` and
`envsubst < app.conf.tpl > /config/app.conf`, idempotently: every template is
rendered before anything is written, each file is written atomically and only
when its content changes, never through a symlink below DEST. Values are never
logged (they may be secrets).

Two more ways to make a config file, through the same writer: `--merge FILE...
--to DEST` deep-merges YAML/JSON files (initkit/confmerge.py), and `--edit FILE
--set KEY=VALUE` changes keys of a YAML, JSON, INI or .properties file and keeps
its other lines (initkit/iniedit.py).
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from initkit import log
from initkit.commands.fetch import Size
from initkit.errors import EXIT_CODES_HELP, BadInput, InitkitError, JobFailed
from initkit.params import Octal, option

if TYPE_CHECKING:
    from initkit.templating import OutputBudget

# A ConfigMap volume: `key -> ..data/key`, `..data -> ..2024_01_01_00_00_00.123`.
_HIDDEN_PREFIX = ".."


@dataclass
class _Output:
    template: str  # what the user sees in messages
    dest: str
    text: str
    root: str = "."  # trusted: the operator named it (DEST, or a file DEST's directory)
    parts: tuple[str, ...] = ()  # below root, never followed through a symlink
    encoding: str = "utf-8"  # .properties files are ISO-8859-1


@click.command("render", epilog=EXIT_CODES_HELP)
@click.argument("template", required=False, envvar="INITKIT_RENDER_TEMPLATE")
@click.argument("dest", required=False, envvar="INITKIT_RENDER_DEST")
@option(
    "--values",
    "values_files",
    envvar="INITKIT_RENDER_VALUES",
    multiple=True,
    metavar="FILE",
    show_default=False,
    help="YAML or JSON values file; repeatable, later files deep-merge over earlier ones.",
)
@option(
    "--set",
    "sets",
    envvar="INITKIT_RENDER_SET",
    multiple=True,
    metavar="KEY=VALUE",
    show_default=False,
    help="Set one value after the files (db.replicas=3; 3 is a number, true a boolean); repeatable. "
    "With --edit of an INI file SECTION.KEY=VALUE, of a .properties file KEY=VALUE (strings as given).",
)
@option(
    "--set-file",
    "set_files",
    envvar="INITKIT_RENDER_SET_FILE",
    multiple=True,
    metavar="KEY=PATH",
    show_default=False,
    help="As --set, the value (a string) read from a file, e.g. a mounted Secret; repeatable.",
)
@option(
    "--merge",
    "merge_files",
    envvar="INITKIT_RENDER_MERGE",
    multiple=True,
    metavar="FILE",
    show_default=False,
    help="Instead of a TEMPLATE: deep-merge these YAML or JSON files in order (mappings merge, "
    "anything else replaces), then --set, into --to; repeatable.",
)
@option(
    "--edit",
    "edit_file",
    metavar="FILE",
    default=None,
    show_default=False,
    help="Instead of a TEMPLATE: apply --set to this YAML, JSON, INI or .properties file, keeping its "
    "comments and order; written back to FILE, or to --to.",
)
@option(
    "--to",
    "to",
    metavar="PATH",
    default=None,
    show_default=False,
    help="Where --merge or --edit writes (--merge without --to: stdout).",
)
@option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json", "ini", "properties"]),
    default=None,
    show_default=False,
    help="With --merge: the output's (default: from --to's extension, else the first file's). "
    "With --edit: the file's (default: from its extension).",
)
@option(
    "--max-input-size",
    type=Size(),
    default="1MiB",
    help="With --merge or --edit: largest input file accepted (0: none).",
)
@option(
    "--mode",
    type=Octal(),
    default=None,
    show_default=False,
    help="File mode of written files (default: keep an existing file's mode, else 0644).",
)
def command(template: str | None, dest: str | None, mode: int | None, **options: Any) -> None:
    """Render TEMPLATE (a file, or a directory tree) into DEST (a file, or a directory);
    or merge (--merge) or edit (--edit) config files.

    A file TEMPLATE without DEST renders to stdout. A directory TEMPLATE is
    mirrored into DEST, creating subdirectories; files in DEST that are not in
    the tree are left alone. Entries named `..*` (a ConfigMap volume's `..data`)
    are skipped and its per-key symlinks followed.

    Templates see the values at the top level, plus pod.ip, pod.name,
    pod.namespace, pod.uid, node.name and env.NAME; filters b64encode,
    b64decode, sha256, tojson, toyaml. Templates run in Jinja's sandbox; an
    undefined variable is an error (exit 2) and nothing is written.

    --merge base.yaml --merge prod.yaml --to /config/app.yaml: mappings merge
    key by key, lists and scalars replace; the first file's comments and order
    are kept. --edit /config/airflow.cfg --set core.executor=LocalExecutor:
    only the keys set change.

    Replaces: envsubst < app.conf.tpl > /config/app.conf, yq eval-all, crudini --set
    """
    from initkit import memlimit

    try:
        with memlimit.limited():
            if options["merge_files"] or options["edit_file"]:
                _run_config(template, dest, mode, **options)
            else:
                _run(template, dest, options["values_files"], options["sets"], options["set_files"], mode)
    except MemoryError:
        what = "an input file is" if options["merge_files"] or options["edit_file"] else "a template or values file is"
        raise BadInput(f"rendering needs more than {memlimit.HEADROOM >> 20} MiB of memory: {what} too big") from None
    except RecursionError:  # values nested beyond what a filter such as tojson can walk
        raise BadInput("the values nest too deeply to render") from None


def _run(
    template: str | None,
    dest: str | None,
    values_files: tuple[str, ...],
    sets: tuple[str, ...],
    set_files: tuple[str, ...],
    mode: int | None,
) -> None:
    from initkit import values as values_mod
    from initkit.templating import OutputBudget, base_context

    if template is None:
        raise BadInput("give a TEMPLATE, or --merge FILE or --edit FILE")
    if not os.path.lexists(template):
        raise BadInput(f"template {template}: not found")
    is_dir = os.path.isdir(template)
    if not is_dir and not os.path.isfile(template):
        raise BadInput(f"template {template}: not a file or directory")
    if is_dir and not dest:
        raise BadInput(f"template {template} is a directory: give a DEST directory")

    values = values_mod.load(values_files, sets)
    for position, item in enumerate(set_files, 1):
        key, path = _split_set_file(item, position)
        key_path, _ = values_mod.parse_set(f"{key}=", position)
        values = values_mod.apply_set(values, key_path, _read_value(path))
    context: dict[str, Any] = {**values, **base_context()}

    budget = OutputBudget()
    if is_dir:
        assert dest is not None
        outputs = _render_tree(template, dest, context, budget)
    else:
        outputs = [_render_single(template, dest, context, budget)]

    if dest is None:
        sys.stdout.write(outputs[0].text)
        sys.stdout.flush()
        return
    written = _write_all(outputs, mode)
    unchanged = len(outputs) - written
    noun = "file" if len(outputs) == 1 else "files"
    log.info(f"rendered {len(outputs)} {noun} from {template}: {written} written, {unchanged} unchanged")


def _render_single(template: str, dest: str | None, context: dict[str, Any], budget: OutputBudget) -> _Output:
    from initkit.fs import UnsafePath, check_tree

    root, name = os.path.split(template)
    root = root or "."
    display = os.path.normpath(template)
    dest_root, dest_name = os.path.split(dest or "-")
    if dest is not None:
        if os.path.isdir(dest):
            raise BadInput(f"DEST {dest} is a directory, but TEMPLATE {template} is a file: give a file path")
        if os.path.exists(dest) and os.path.samefile(dest, template):
            raise BadInput(f"DEST {dest} is the template itself")
        try:
            check_tree(dest_root or ".", [dest_name])
        except UnsafePath as exc:
            raise BadInput(str(exc)) from None
    environment = _environment(root, trusted={name})
    text = _render(environment, name, context, display, budget)
    return _Output(display, dest or "-", text, dest_root or ".", (dest_name,))


def _render_tree(template: str, dest: str, context: dict[str, Any], budget: OutputBudget) -> list[_Output]:
    from initkit.fs import UnsafePath, check_tree, is_within

    if os.path.exists(dest) and not os.path.isdir(dest):
        raise BadInput(f"DEST {dest} is not a directory, but TEMPLATE {template} is")
    real_root = os.path.realpath(template)
    if is_within(dest, real_root):
        raise BadInput(f"DEST {dest} is inside the template tree {template}")
    environment = _environment(template)
    outputs = []
    for relative in _tree_files(template, real_root):
        display = os.path.normpath(os.path.join(template, relative))
        parts = tuple(relative.split("/"))
        target = os.path.join(dest, *parts)
        outputs.append(_Output(display, target, _render(environment, relative, context, display, budget), dest, parts))
    # Refuse before writing anything: a symlink below DEST, a file where a directory goes, or the reverse.
    for output in outputs:
        try:
            check_tree(dest, output.parts)
        except UnsafePath as exc:
            raise BadInput(str(exc)) from None
    return outputs


def _tree_files(root: str, real_root: str) -> list[str]:
    """Relative '/'-separated paths of the files under root, sorted; following symlinks
    that stay inside the tree and skipping `..*` entries."""
    from initkit.fs import is_within

    found: list[str] = []
    seen: set[str] = set()

    def walk(directory: str, prefix: str) -> None:
        real = os.path.realpath(directory)
        if real in seen:
            return  # a symlink loop, or a directory reached twice
        seen.add(real)
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith(_HIDDEN_PREFIX):
                    continue
                relative = prefix + entry.name
                if entry.is_symlink() and not is_within(entry.path, real_root):
                    where = os.path.join(root, relative)
                    raise BadInput(f"{where}: symlink points outside the template tree")
                try:
                    st = os.stat(entry.path)
                except OSError:
                    log.warning(f"skipping {os.path.join(root, relative)}: broken symlink")
                    continue
                if stat.S_ISDIR(st.st_mode):
                    walk(entry.path, relative + "/")
                elif stat.S_ISREG(st.st_mode):
                    found.append(relative)
                else:
                    log.warning(f"skipping {os.path.join(root, relative)}: not a regular file")

    walk(root, "")
    return found


def _environment(root: str, trusted: set[str] | None = None) -> Any:
    import jinja2

    from initkit.fs import is_within
    from initkit.templating import make_environment

    class TreeLoader(jinja2.FileSystemLoader):
        """Includes resolve inside the template directory, symlinks included."""

        def __init__(self) -> None:
            super().__init__(root)
            self.real_root = os.path.realpath(root)
            self.loaded: set[str] = set()  # file names, to find which template failed

        def get_source(self, environment: Any, template: str) -> Any:
            source, filename, uptodate = super().get_source(environment, template)
            self.loaded.add(filename)
            if template not in (trusted or ()) and not is_within(filename, self.real_root):
                raise jinja2.exceptions.SecurityError(f"{template} points outside the template directory")
            return source, filename, uptodate

    environment = make_environment()
    environment.loader = TreeLoader()
    return environment


def _render(environment: Any, name: str, context: dict[str, Any], display: str, budget: OutputBudget) -> str:
    import jinja2

    from initkit.templating import OutputTooBig, template_error

    try:
        return budget.render(environment.get_template(name), context)
    except OutputTooBig as exc:
        raise BadInput(f"{display}: {exc}") from None
    except InitkitError:
        raise  # a pod fact or env variable refused (not UTF-8): its message names it
    except jinja2.TemplateError as exc:
        raise template_error(exc, _failing_template(exc, environment.loader.loaded, display)) from exc
    except MemoryError:
        raise  # the command names the limit
    except Exception as exc:  # a filter or an expression failed: b64decode of junk, 1/0, ...
        lines = str(exc).strip().splitlines()
        kind = type(exc).__name__
        if type(exc).__module__ not in ("builtins", "__main__"):
            kind = f"{type(exc).__module__}.{kind}"
        detail = f"{kind}: {lines[0]}" if lines else kind
        wrapped = jinja2.TemplateError(detail).with_traceback(exc.__traceback__)
        raise template_error(wrapped, _failing_template(exc, environment.loader.loaded, display)) from exc


def _failing_template(exc: BaseException, loaded: set[str], display: str) -> str:
    """The template the error is in: an included one rather than the one including it."""
    import traceback

    filename = getattr(exc, "filename", None)  # syntax errors know their file
    if filename in loaded:
        return filename
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename in loaded:
            return frame.filename
    return display


def _write_all(outputs: list[_Output], mode: int | None) -> int:
    """Write every output; the number written. Each directory is swept first of the temp files a
    killed run left beside the files written there (kill -9 runs no clean-up)."""
    names: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for output in outputs:
        names.setdefault((output.root, output.parts[:-1]), set()).add(output.parts[-1])
    from initkit import cancel

    written, token = 0, cancel.current()
    for output in outputs:
        token.check()  # SIGTERM between two files: each file is whole, old or new (143)
        written += _write(output, mode, names.pop((output.root, output.parts[:-1]), None))
    return written


def _write(output: _Output, mode: int | None, sweep: set[str] | None) -> bool:
    """Write one output; first sweep its directory of temps beside the names in `sweep`, when given."""
    from initkit import fs

    try:
        with fs.open_dir(output.root, output.parts[:-1], create=True) as dir_fd:
            if sweep:
                for name in fs.sweep(dir_fd, sweep):
                    log.debug(f"removed {os.path.join(os.path.dirname(output.dest), name)}, left by an earlier run")
            data = output.text.encode(output.encoding)
            changed = fs.write_atomic(dir_fd, output.parts[-1], data, mode, shown=output.dest)
    except fs.UnsafePath as exc:  # planted after the check before rendering: still refused, never followed
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise JobFailed(f"cannot write {output.dest}: {exc.strerror or exc}") from exc
    log.info(f"{'wrote' if changed else 'unchanged'} {output.dest}")
    return changed


# ---- --merge and --edit: config files made by confmerge / iniedit, written like templates ------------


def _split_set_file(item: str, position: int) -> tuple[str, str]:
    key, sep, path = item.partition("=")
    if not sep or not key.strip() or not path:
        raise BadInput(f"--set-file #{position}: expected KEY=PATH")
    return key.strip(), path


def _read_value(path: str) -> str:
    from initkit import secretfile

    return secretfile.read(path, "--set-file")  # registered for redaction; one line


def _run_config(
    template: str | None,
    dest: str | None,
    mode: int | None,
    *,
    values_files: tuple[str, ...],
    sets: tuple[str, ...],
    set_files: tuple[str, ...],
    merge_files: tuple[str, ...],
    edit_file: str | None,
    to: str | None,
    fmt: str | None,
    max_input_size: int,
) -> None:
    from initkit import confmerge, iniedit

    if template is not None or dest is not None:
        raise BadInput("--merge and --edit take no TEMPLATE or DEST: name the output with --to")
    if values_files:
        raise BadInput("--values is for templates: give the files to merge as --merge")
    if merge_files and edit_file:
        raise BadInput("give --merge or --edit, not both")
    items = [(key, raw, True) for key, raw in (_split_set(item, n) for n, item in enumerate(sets, 1))]
    items += [
        (key, _read_value(path), False) for key, path in (_split_set_file(i, n) for n, i in enumerate(set_files, 1))
    ]
    if edit_file:
        kind = fmt or iniedit.format_of(edit_file) or confmerge.format_of(edit_file)
        if kind is None:
            raise BadInput(f"--edit {edit_file}: its name does not say its format: give --format")
        if not items:
            raise BadInput("--edit needs --set or --set-file")
        target: str | None = to or edit_file
        inputs = [edit_file]
    else:
        if fmt in (iniedit.INI, iniedit.PROPERTIES):
            raise BadInput(f"--merge writes YAML or JSON, not {fmt}: edit such a file with --edit")
        kind = fmt or confmerge.format_of(to)  # None: the first file's
        target = to
        inputs = list(merge_files)
        if to is not None:
            _refuse_input_as_output(to, inputs)
    if target is not None:
        _check_target(target)

    if kind == iniedit.INI:
        text = confmerge.read_input(inputs[0], "edit file", max_input_size)
        sections = [(*iniedit.ini_key(_key_path(key), key), raw, key) for key, raw, _ in items]
        result = iniedit.edit_ini(inputs[0], text, sections)
    elif kind == iniedit.PROPERTIES:
        text = confmerge.read_input(inputs[0], "edit file", max_input_size, encoding="latin-1")
        result = iniedit.edit_properties(inputs[0], text, [(key, raw, key) for key, raw, _ in items])
    else:
        typed = [(_key_path(key), _typed(raw) if is_typed else raw, key) for key, raw, is_typed in items]
        what = "edit file" if edit_file else "merge file"
        result = confmerge.merged(inputs, typed, kind, max_input_size, what=what)

    if target is None:
        sys.stdout.write(result)
        sys.stdout.flush()
        return
    root, name = os.path.split(target)
    output = _Output(inputs[0], target, result, root or ".", (name,), iniedit.ENCODING.get(kind or "", "utf-8"))
    _write(output, mode, {name})


def _typed(raw: str) -> Any:
    from initkit.values import parse_scalar

    try:
        return parse_scalar(raw)
    except ValueError:  # an int of more digits than Python converts (4300)
        raise BadInput("--set: a number has too many digits") from None


def _split_set(item: str, position: int) -> tuple[str, str]:
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 in argv or the environment
        raise BadInput(f"--set #{position} is not valid UTF-8") from None
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise BadInput(f"--set #{position} has no KEY=: expected KEY=VALUE")  # never shown: it may be a secret
    return key.strip(), raw


def _key_path(key: str) -> list[str]:
    from initkit.values import MAX_DEPTH, split_key

    path = split_key(key)
    if any(not part or not part.isprintable() for part in path):
        raise BadInput(f"--set {key[:40]!r}: malformed key: expected KEY or A.B.C")
    if len(path) > MAX_DEPTH:
        raise BadInput(f"--set {key[:40]!r}: more than {MAX_DEPTH} parts")
    return path


def _refuse_input_as_output(to: str, inputs: list[str]) -> None:
    """Merging into one of the inputs would lose it: the next run would merge into the result."""
    for path in inputs:
        if os.path.exists(to) and os.path.exists(path) and os.path.samefile(to, path):
            raise BadInput(f"--to {to} is the --merge file {path}: write the result elsewhere")


def _check_target(target: str) -> None:
    """Refused before anything is read or written: a directory, or a symlink, at the target."""
    from initkit.fs import UnsafePath, check_tree

    if os.path.isdir(target) and not os.path.islink(target):
        raise BadInput(f"--to {target} is a directory: give a file path")
    root, name = os.path.split(target)
    try:
        check_tree(root or ".", [name])
    except UnsafePath as exc:
        raise BadInput(str(exc)) from None
