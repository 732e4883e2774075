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
  app/     initkit itself (sources + .pyc), its dist-info (with a RECORD of every
           file initkit's build owns), /usr/bin/initkit

Every other file shipped comes from a Debian package (dpkg's own file lists decide
which), or is the byte-compiled form of such a package's .py.  For each of those
packages the layer that ships its files also gets, as distroless images carry
them, /var/lib/dpkg/status.d/<package> (its dpkg status stanza: Package, Version,
Architecture, Source, ...), /var/lib/dpkg/status.d/<package>.md5sums (the files
shipped verbatim) and /usr/share/doc/<package>/copyright, so image scanners
(Trivy, Grype, syft) see the OS packages and their versions.  A file no package
owns fails the build.

Shared libraries are found with ldd (so the same script works on any arch);
symlinks on the way (/lib -> usr/lib, libfoo.so.1 -> libfoo.so.1.2.3) are
recreated.  Every .py is byte-compiled with unchecked-hash pycs so that a
read-only root file system never needs a write.  All mtimes are set to
SOURCE_DATE_EPOCH so the layers are reproducible.
"""

from __future__ import annotations

import argparse
import base64
import compileall
import hashlib
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
    # render --merge / --edit, pure Python (about 150 kB together). Not python3-ruamel.yaml.clib, which
    # python3-ruamel.yaml depends on: initkit only uses the round-trip mode, which never loads it.
    "python3-ruamel.yaml",
    "python3-iniparse",
    "python3-javaproperties",
]
# GitPython and what it imports: only git-clone uses them, so only the full image has them.
# RE2 too (wait-for's regex=): its .so brings libre2, Abseil and libstdc++ (ldd), about 1.7 MB
# compressed, which would take the slim image past its 15 MB budget.
# And wait-for's database drivers: psycopg in its C implementation (python3-psycopg-c's .so
# needs libpq.so.5, so ldd brings libpq and its Kerberos, LDAP and SASL libraries, most of them
# already there for git's libcurl; the pure-Python implementation would need ldconfig to find
# libpq), PyMySQL and redis-py (pure Python).
GITLIBS = [
    "python3-git",
    "python3-gitdb",
    "python3-smmap",
    "python3-re2",
    "python3-psycopg",
    "python3-psycopg-c",
    "python3-pymysql",
    "python3-redis",
]
# certs: cryptography (its Rust module loads _cffi_backend and libssl) and pyjks with what it imports
# (python3-pycryptodome is the Cryptodome namespace). Large, so the full image only, like RE2.
# Debian's python3-cryptography also depends on python3-bcrypt, for OpenSSH keys only: not shipped.
CERTLIBS = [
    "python3-cryptography",
    "python3-cffi-backend",
    "python3-pyjks",
    "python3-pyasn1",
    "python3-pyasn1-modules",
    "python3-javaobj",
    "python3-pycryptodome",
]

# Stdlib that is always kept although no import statement names it:
# codecs are looked up by name at run time (the CJK ones need C modules
# that are left out: initkit reads and writes UTF-8).
# socket encodes host names with the idna codec, which needs stringprep and unicodedata.
STDLIB_ALWAYS = ["encodings", "stringprep"]
DYNLOAD_ALWAYS = ["unicodedata"]
# Never shipped even if some import statement reaches them: not used by an
# init container, and each pulls in a lot (tests, GUIs, REPL, doc server,
# package installers, databases, CJK codec tables). zoneinfo ships: psycopg
# imports it at start (without tzdata, a time zone it cannot find is UTC).
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
ALWAYS_EXCLUDED_DIRS = {"__pycache__", "test", "tests", "idle_test", "SelfTest"}  # SelfTest: pycryptodome's


DPKG_INFO = Path("/var/lib/dpkg/info")
STATUS_D = Path("/var/lib/dpkg/status.d")
# Merged /usr: dpkg's lists name a file under whichever spelling its package used.
USRMERGE = {"/bin": "/usr/bin", "/sbin": "/usr/sbin", "/lib": "/usr/lib", "/lib64": "/usr/lib64"}
# Files a package's maintainer script writes (so no dpkg list names them), by that package.
GENERATED = {"/etc/ssl/certs/ca-certificates.crt": "ca-certificates"}
# Files initkit's own build writes besides its package; its dist-info RECORD lists them.
INITKIT_GENERATED = ["/etc/passwd", "/etc/group"]
SHARED = ""  # the owner of a path several packages list
# dpkg status fields that describe this machine's installation, not the package.
STATUS_DROP = {"Status", "Conffiles", "Config-Version"}


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


class _Finder(modulefinder.ModuleFinder):
    """ModuleFinder that knows namespace packages (a directory without __init__.py, such as
    Debian's ruamel/ above ruamel/yaml/): the stdlib's crashes on them (spec.loader is None)."""

    def find_module(self, name, path, parent=None):  # type: ignore[no-untyped-def]
        for base in self.path if path is None else path:
            if any(Path(base).glob(f"{name}.*py")) or any(Path(base).glob(f"{name}.*.so")):
                break  # a module of that name comes first: the usual search
            directory = Path(base) / name
            if directory.is_dir() and not (directory / "__init__.py").exists():
                return None, str(directory), ("", "", modulefinder._PKG_DIRECTORY)
        return super().find_module(name, path, parent)

    def load_package(self, fqname, pathname):  # type: ignore[no-untyped-def]
        if (Path(pathname) / "__init__.py").exists():
            return super().load_package(fqname, pathname)
        module = self.add_module(fqname)
        module.__file__ = None
        module.__path__ = [pathname]
        return module


def stdlib_modules(module_names: list[str], search_path: list[str]) -> set[Path]:
    """Files of the stdlib modules reachable by import statements from module_names."""
    finder = _Finder(path=search_path, excludes=sorted(STDLIB_NEVER))
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
    # sysconfig imports its data module by a name built at run time (the platform's), which
    # modulefinder cannot follow: zoneinfo asks sysconfig for TZPATH when psycopg imports it.
    files.update(STDLIB.glob("_sysconfigdata_*.py"))
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


def canonical(path: str) -> str:
    """The /usr spelling of a path (dpkg lists and images may use either)."""
    for alias, real in USRMERGE.items():
        if path == alias or path.startswith(alias + "/"):
            return real + path[len(alias) :]
    return path


def dpkg_owners() -> dict[str, str]:
    """Path -> owning package, from dpkg's own file lists (what `dpkg -S` reads).

    A path several packages list (a directory such as /usr/lib, which /lib also
    spells) maps to SHARED: it belongs to the packages, but makes none of them shipped.
    """
    owners = {canonical(p): pkg for p, pkg in GENERATED.items()}
    for lst in sorted(DPKG_INFO.glob("*.list")):
        pkg = lst.stem.split(":")[0]
        for line in lst.read_text().splitlines():
            path = canonical(line)
            owners[path] = SHARED if owners.get(path, pkg) != pkg else pkg
    return owners


def pyc_source(path: str) -> str | None:
    """The .py a .pyc was compiled from (sourceless next to it, or in __pycache__)."""
    p = Path(path)
    if p.suffix != ".pyc":
        return None
    if p.parent.name == "__pycache__":
        return str(p.parent.parent / (p.name.split(".")[0] + ".py"))
    return str(p.with_suffix(".py"))


def shipped(tree: Tree) -> list[str]:
    """Absolute image paths of the files and symlinks in one layer tree."""
    out = []
    for dirpath, dirnames, filenames in os.walk(tree.root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            out.append("/" + os.path.relpath(os.path.join(dirpath, name), tree.root))
    return sorted(out)


def owner(path: str, owners: dict[str, str], trees: list[Tree]) -> str | None:
    """The Debian package a shipped path comes from (None: no package owns it)."""
    if canonical(path) in owners:
        return owners[canonical(path)]  # possibly SHARED
    src = pyc_source(path)
    if src and canonical(src) in owners:
        return owners[canonical(src)]
    for t in trees:  # a symlink assemble made (git-remote-https): the package of its target
        d = t.dest(path)
        if d.is_symlink():
            target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(d)))
            return owner(target, owners, trees) if target != path else None
    return None


def visible_in(path: str, trees: list[Tree]) -> bool:
    """Whether PATH exists in the image the layers TREES make, its symlinks resolved across
    layers: /usr/share/doc/python3-re2 -> libre2-11 may be in one layer, the target in another."""
    parts, cur, hops = Path(path).parts[1:], Path("/"), 0
    while parts:
        cur, parts = cur / parts[0], parts[1:]
        link = next((t.dest(cur) for t in trees if t.dest(cur).is_symlink()), None)
        if link is not None:
            hops += 1
            if hops > 40:
                return False
            target = Path(os.path.normpath(cur.parent / os.readlink(link)))
            parts, cur = (*target.parts[1:], *parts), Path("/")
        elif not any(os.path.lexists(t.dest(cur)) for t in trees):
            return False
    return True


def status_stanza(pkg: str) -> str:
    """`dpkg-query -s PKG` without the fields about this machine's installation."""
    out, keep = [], True
    for line in run("dpkg-query", "-s", pkg).splitlines():
        if line and not line[0].isspace():
            keep = line.split(":", 1)[0] not in STATUS_DROP
        if keep and line:
            out.append(line)
    return "\n".join(out) + "\n"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def write_package_metadata(layers: list[Tree]) -> dict[str, list[str]]:
    """status.d entries, md5sums and copyright files for every package a layer ships.

    Layers are in image order; a package whose files are spread over several layers
    gets its entry again in each higher one, listing everything visible up to there
    (the later copy replaces the earlier in the image).  Returns layer -> packages.
    """
    owners = dpkg_owners()
    per_layer: dict[str, list[str]] = {}
    for i, tree in enumerate(layers):
        visible = layers[: i + 1]
        # copyright files are shipped files too (possibly a symlink to another package's doc)
        added_last: list[str] = []
        while True:
            pkgs = {p: owner(p, owners, visible) for p in shipped(tree) if p not in INITKIT_GENERATED}
            bad = sorted(p for p, o in pkgs.items() if o is None)
            if bad:  # (SHARED is "" and so not None: a shared directory is owned)
                raise SystemExit(f"assemble: no Debian package owns {bad[:20]} in {tree.root.name}/")
            missing = sorted(
                f"/usr/share/doc/{o}/copyright"
                for o in set(pkgs.values()) - {SHARED}
                if not visible_in(f"/usr/share/doc/{o}/copyright", visible)
            )
            if not missing:
                break
            if missing == added_last:  # adding them did not make them visible: a loop, not progress
                raise SystemExit(f"assemble: cannot place {missing} in {tree.root.name}/")
            added_last = missing
            for c in missing:
                if not os.path.lexists(c):
                    raise SystemExit(f"assemble: {c} is missing in the builder")
                tree.add(c)
        names = sorted(set(pkgs.values()) - {SHARED})
        per_layer[tree.root.name] = names
        status = tree.dest(STATUS_D)
        status.mkdir(parents=True, exist_ok=True)
        for pkg in names:
            (status / pkg).write_text(status_stanza(pkg))
            lines = []
            for t in visible:
                for p in shipped(t):
                    d = t.dest(p)
                    if d.is_file() and not d.is_symlink() and owners.get(canonical(p)) == pkg:
                        lines.append(f"{md5(d)}  {p.lstrip('/')}\n")
            (status / f"{pkg}.md5sums").write_text("".join(sorted(set(lines), key=lambda x: x[34:])))
    return per_layer


def record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def write_record(app: Tree, base: Tree, version: str) -> None:
    """initkit's dist-info RECORD: every file of the app layer, plus what the build generated."""
    site = DIST
    info = app.dest(DIST / f"initkit-{version}.dist-info")
    rows = []
    entries = [(p, app.dest(p)) for p in shipped(app)] + [(p, base.dest(p)) for p in INITKIT_GENERATED]
    for p, d in sorted(entries):
        rel = os.path.relpath(p, site)
        if d.is_symlink():
            rows.append(f"{rel},,")
        elif d.name == "RECORD" and d.parent == info:
            continue
        else:
            rows.append(f"{rel},{record_hash(d)},{d.stat().st_size}")
    rows.append(f"{os.path.relpath(str(DIST / info.name / 'RECORD'), site)},,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def initkit_version(src: Path) -> str:
    text = (src / "initkit" / "__init__.py").read_text()
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    return m.group(1) if m else "0.0.0"


def install_initkit(src: Path, tree: Tree) -> None:
    """Copy initkit's sources and write a minimal dist-info and console script."""
    pkg_dst = tree.dest(DIST / "initkit")
    shutil.copytree(src / "initkit", pkg_dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    version = initkit_version(src)
    info = tree.dest(DIST / f"initkit-{version}.dist-info")
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: initkit\nVersion: {version}\n"
        "Summary: idempotent Kubernetes init-container jobs in one CLI\n"
        "License: Apache-2.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[console_scripts]\ninitkit = initkit.cli:main\ninitkit-ssh = initkit.git.ssh:main\n"
    )
    (info / "INSTALLER").write_text("initkit-images\n")
    (info / "top_level.txt").write_text("initkit\n")
    # initkit-ssh is what git runs as GIT_SSH (git would need a shell for GIT_SSH_COMMAND).
    for name, module in (("initkit", "initkit.cli"), ("initkit-ssh", "initkit.git.ssh")):
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
    for f in package_files(GITLIBS + CERTLIBS):
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

    # --- what the OS is (scanners match the dpkg packages to Debian's advisories by it)
    for f in ("/etc/os-release", "/etc/debian_version"):
        base.add(f)

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

    # --- byte-compile
    for t in (base, pylibs, git):
        compile_tree(t.root, strip_source=not args.keep_source)
    compile_tree(app.root, strip_source=False)

    # --- package database (status.d, md5sums, copyright) and initkit's RECORD
    for name, pkgs in write_package_metadata([base, pylibs, git]).items():
        print(f"assemble: {name}: {len(pkgs)} Debian packages: {' '.join(pkgs)}")
    write_record(app, base, initkit_version(args.src))

    # --- normalise
    for t in (base, pylibs, git, app):
        normalise_mtimes(t.root, epoch)
        print(f"assemble: {t.root.name}: {run('du', '-sh', str(t.root)).split()[0]}")


if __name__ == "__main__":
    main()
