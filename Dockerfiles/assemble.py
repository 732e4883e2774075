"""Assemble the root file systems of the initkit images inside the builder stage.

Run by the builder's python3 (Debian trixie) after apt has installed python3,
the python3-* libraries, git and openssh-client.  It writes one tree per image
layer under OUT (default /out), each meant to be `COPY`ed into a `FROM scratch`
stage:

  base/    python3 runtime, the stdlib modules initkit's code can import, their
           shared libraries, CA certificates, /etc/passwd and /etc/group
  pylibs/  the Debian python3-* libraries initkit needs
  git/     git with its http(s) helper, ssh client, GitPython,
           and the shared libraries they need that base/ lacks
  app/     initkit itself (sources + .pyc), its dist-info, /usr/bin/initkit

Shared libraries are found with ldd (so the same script works on any arch);
symlinks on the way (/lib -> usr/lib, libfoo.so.1 -> libfoo.so.1.2.3) are
recreated.  Every .py is byte-compiled with unchecked-hash pycs so that a
read-only root file system never needs a write.  All mtimes are set to
SOURCE_DATE_EPOCH so the layers are reproducible.
"""

from __future__ import annotations

import argparse
import compileall
import modulefinder
import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
STDLIB = Path(sysconfig.get_path("stdlib"))  # /usr/lib/python3.13
DYNLOAD = STDLIB / "lib-dynload"
DIST = Path("/usr/lib/python3/dist-packages")

# Debian packages whose dist-packages files go in each layer. requests' own dependencies
# (urllib3, idna, certifi: Debian's points at the system CA bundle) and one charset detector:
# requests takes whichever of chardet / charset_normalizer it finds, so only the latter ships.
PYLIBS = [
    "python3-click",
    "python3-jinja2",
    "python3-markupsafe",
    "python3-yaml",
    "python3-requests",
    "python3-urllib3",
    "python3-idna",
    "python3-certifi",
    "python3-charset-normalizer",
    "python3-dnspython",
]
# GitPython and what it imports: only git-clone uses them, so only the full image has them.
GITLIBS = ["python3-git", "python3-gitdb", "python3-smmap"]

# Stdlib that is always kept although no import statement names it:
# codecs are looked up by name at run time (the CJK ones need C modules
# that are left out: initkit reads and writes UTF-8).
# socket encodes host names with the idna codec, which needs stringprep and unicodedata.
STDLIB_ALWAYS = ["encodings", "stringprep"]
DYNLOAD_ALWAYS = ["unicodedata"]
# Never shipped even if some import statement reaches them: not used by an
# init container, and each pulls in a lot (tests, GUIs, REPL, doc server,
# package installers, databases, CJK codec tables).
STDLIB_NEVER = {
    "test",
    "idlelib",
    "tkinter",
    "turtle",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc",
    "pydoc_data",
    "venv",
    "sqlite3",
    "_sqlite3",
    "curses",
    "_curses",
    "_curses_panel",
    "dbm",
    "_dbm",
    "readline",
    "_pyrepl",
    "pdb",
    "doctest",
    "unittest",
    "tomllib",
    "xmlrpc",
    "wsgiref",
    "_tkinter",
    "lib-dynload",
    "multiprocessing",
    "_multiprocessing",
    "_posixshmem",
    "concurrent.futures.process",
    "_ctypes_test",
    "xxlimited",
    "xxlimited_35",
    "xxsubtype",
    "_xxtestfuzz",
    "_pydecimal",
    "_pyio",
    "_pydatetime",
    "pickletools",
    "idle",
    "lzma",
    "_lzma",
    "bz2",
    "_bz2",
    "zoneinfo",
    "_zoneinfo",
    "_lsprof",
    "cProfile",
    "profile",
    "trace",
    "tracemalloc",
    "asyncio.__main__",
    "sitecustomize",
    "usercustomize",
    "__phello__",
    "__hello__",
}
NEVER_PREFIX = tuple(n + "." for n in STDLIB_NEVER)
ALWAYS_EXCLUDED_DIRS = {"__pycache__", "test", "tests", "idle_test"}


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class Tree:
    """A destination tree; copies files with their symlink chains."""

    def __init__(self, root: Path, others: list[Tree] | None = None):
        self.root = root
        self.others = others or []
        root.mkdir(parents=True, exist_ok=True)

    def dest(self, p: str | Path) -> Path:
        return self.root / str(p).lstrip("/")

    def has(self, p: str | Path) -> bool:
        return any(os.path.lexists(t.dest(p)) for t in [self, *self.others])

    def add(self, path: str | Path) -> None:
        """Copy `path` (absolute) with every symlink met on the way."""
        path = Path(path)
        cur = Path("/")
        parts = path.parts[1:]
        for i, part in enumerate(parts):
            cur = cur / part
            if cur.is_symlink():
                target = os.readlink(cur)
                if not self.has(cur):
                    d = self.dest(cur)
                    d.parent.mkdir(parents=True, exist_ok=True)
                    d.symlink_to(target)
                rest = Path(*parts[i + 1 :]) if i + 1 < len(parts) else None
                resolved = (cur.parent / target) if not target.startswith("/") else Path(target)
                resolved = Path(os.path.normpath(resolved))
                self.add(resolved / rest if rest else resolved)
                return
        if self.has(path):
            return
        d = self.dest(path)
        d.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            d.mkdir(exist_ok=True)
            shutil.copystat(path, d)
        else:
            shutil.copy2(path, d)

    def add_elf(self, path: str | Path) -> None:
        """Copy an ELF file and every shared library it loads (ldd)."""
        self.add(path)
        for lib in needed_libs(Path(path)):
            self.add(lib)


def needed_libs(path: Path) -> list[str]:
    out = run("ldd", str(path))
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


def package_files(pkgs: list[str]) -> list[Path]:
    files = []
    for pkg in pkgs:
        for line in run("dpkg", "-L", pkg).splitlines():
            p = Path(line)
            if not str(p).startswith(str(DIST) + "/") or p.is_dir():
                continue
            if set(p.parts) & ALWAYS_EXCLUDED_DIRS:
                continue
            files.append(p)
    return files


def is_never(name: str) -> bool:
    return name in STDLIB_NEVER or name.startswith(NEVER_PREFIX)


def stdlib_modules(module_names: list[str], search_path: list[str]) -> set[Path]:
    """Files of the stdlib modules reachable by import statements from module_names."""
    finder = modulefinder.ModuleFinder(path=search_path, excludes=sorted(STDLIB_NEVER))
    for name in module_names:
        try:
            finder.import_hook(name)
        except (SyntaxError, ImportError) as exc:  # reported, not fatal
            print(f"assemble: modulefinder skipped {name}: {exc}", file=sys.stderr)
    files: set[Path] = set()
    for name, mod in finder.modules.items():
        if is_never(name) or not mod.__file__:
            continue
        p = Path(mod.__file__)
        if p.is_relative_to(STDLIB):
            files.add(p)
    for name in STDLIB_ALWAYS:
        if (STDLIB / f"{name}.py").is_file():
            files.add(STDLIB / f"{name}.py")
        for p in (STDLIB / name).rglob("*.py"):
            files.add(p)
    for name in DYNLOAD_ALWAYS:
        files.update(DYNLOAD.glob(f"{name}.*.so"))
    # os.py is the landmark python uses to find its prefix
    files.add(STDLIB / "os.py")
    return files


def write_passwd(tree: Tree) -> None:
    etc = tree.dest("/etc")
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\n")


def compile_tree(root: Path, strip_source: bool) -> None:
    """Byte-compile every .py so nothing is written at run time."""
    ok = compileall.compile_dir(
        str(root),
        quiet=1,
        workers=0,
        legacy=strip_source,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        stripdir=str(root),
        prependdir="/",
    )
    if not ok:
        raise SystemExit(f"assemble: byte-compiling {root} failed")
    if strip_source:
        for p in root.rglob("*.py"):
            p.unlink()


def normalise_mtimes(root: Path, epoch: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def install_initkit(src: Path, tree: Tree) -> None:
    """Copy initkit's sources and write a minimal dist-info and console script."""
    pkg_dst = tree.dest(DIST / "initkit")
    shutil.copytree(src / "initkit", pkg_dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    text = (src / "initkit" / "__init__.py").read_text()
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    version = m.group(1) if m else "0.0.0"
    info = tree.dest(DIST / f"initkit-{version}.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: initkit\nVersion: {version}\n"
        "Summary: idempotent Kubernetes init-container jobs in one CLI\n"
    )
    (info / "entry_points.txt").write_text(
        "[console_scripts]\ninitkit = initkit.cli:main\ninitkit-ssh = initkit.gitssh:main\n"
    )
    (info / "INSTALLER").write_text("initkit-images\n")
    (info / "top_level.txt").write_text("initkit\n")
    # initkit-ssh is what git runs as GIT_SSH (git would need a shell for GIT_SSH_COMMAND).
    for name, module in (("initkit", "initkit.cli"), ("initkit-ssh", "initkit.gitssh")):
        script = tree.dest(f"/usr/bin/{name}")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f"#!/usr/bin/{PY}\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        script.chmod(0o755)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path("/src"), help="the initkit repo")
    ap.add_argument("--out", type=Path, default=Path("/out"))
    ap.add_argument(
        "--keep-source",
        action="store_true",
        help="ship .py beside the .pyc for the stdlib and libraries too "
        "(default: sourceless .pyc; initkit always keeps its .py)",
    )
    args = ap.parse_args()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))

    base = Tree(args.out / "base")
    pylibs = Tree(args.out / "pylibs", [base])
    app = Tree(args.out / "app", [base, pylibs])
    git = Tree(args.out / "git", [base, pylibs])

    # --- initkit (first, so modulefinder can start from its sources)
    install_initkit(args.src, app)

    # --- Python libraries from Debian
    for f in package_files(PYLIBS):
        pylibs.add(f)
    for f in package_files(GITLIBS):
        git.add(f)

    # --- python runtime and the stdlib it needs
    base.add_elf(f"/usr/bin/{PY}")
    base.dest("/usr/bin/python3").symlink_to(PY)
    search = [str(STDLIB), str(DYNLOAD), str(app.dest(DIST)), str(pylibs.dest(DIST)), str(git.dest(DIST))]
    names = []
    for t in (app, pylibs, git):
        for p in t.dest(DIST).rglob("*.py"):
            parts = list(p.relative_to(t.dest(DIST)).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    files = stdlib_modules([*sorted(names), "site"], search)
    for f in sorted(files):
        base.add(f)
        if f.suffix == ".so":
            for lib in needed_libs(f):
                base.add(lib)
    for t in (pylibs, git):
        for so in t.dest(DIST).rglob("*.so"):
            for lib in needed_libs(Path("/") / so.relative_to(t.root)):
                t.add(lib)

    # glibc dlopen()s libgcc_s for pthread_exit / thread cancellation, which ldd
    # cannot see ("libgcc_s.so.1 must be installed for pthread_exit to work").
    libc = next(lib for lib in needed_libs(Path(f"/usr/bin/{PY}")) if "/libc.so" in lib)
    base.add(Path(libc).parent / "libgcc_s.so.1")

    # --- TLS trust, users
    base.add("/etc/ssl/certs/ca-certificates.crt")
    base.add("/usr/lib/ssl/cert.pem")
    base.add("/usr/lib/ssl/certs")
    write_passwd(base)

    # --- git (+ https helper) and ssh for the full image
    git.add_elf("/usr/bin/git")
    git.add_elf("/usr/lib/git-core/git-remote-http")
    git.dest("/usr/lib/git-core/git-remote-https").symlink_to("git-remote-http")
    git.dest("/usr/lib/git-core/git").symlink_to("../../bin/git")
    # builtins git execs by name: upload-pack serves file:// and local-path clones
    for builtin in ("git-upload-pack",):
        git.dest(f"/usr/lib/git-core/{builtin}").symlink_to("../../bin/git")
        git.dest(f"/usr/bin/{builtin}").symlink_to("git")
    for t in ("description", "info/exclude"):
        git.add(f"/usr/share/git-core/templates/{t}")
    git.add_elf("/usr/bin/ssh")

    # --- byte-compile, normalise
    for t in (base, pylibs, git):
        compile_tree(t.root, strip_source=not args.keep_source)
    compile_tree(app.root, strip_source=False)
    for t in (base, pylibs, git, app):
        normalise_mtimes(t.root, epoch)
        print(f"assemble: {t.root.name}: {run('du', '-sh', str(t.root)).split()[0]}")


if __name__ == "__main__":
    main()
