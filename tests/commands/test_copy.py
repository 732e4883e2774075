"""`initkit copy`: an app image's default files into a volume, as Bitnami's 75 init containers
that run the app's image only to `cp -a` them, but idempotent and without a shell."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import requirement

APP = 1001


@pytest.fixture(autouse=True)
def _root() -> None:
    requirement.root("chown to the app's user")


def app_image(root: Path) -> Path:
    """What an app image holds under /opt/app: config, a venv-like bin/ with links, odd modes."""
    (root / "conf" / "conf.d").mkdir(parents=True)
    (root / "conf" / "app.conf").write_text("listen 8080\n")
    (root / "conf" / "conf.d" / "extra.conf").write_text("# extra\n")
    (root / "conf" / "secret.conf").write_text("k=v\n")
    (root / "conf" / "secret.conf").chmod(0o600)
    (root / "bin").mkdir()
    (root / "bin" / "python3.13").write_bytes(b"\x7fELF" + os.urandom(300_000))
    (root / "bin" / "python3.13").chmod(0o755)
    (root / "bin" / "python3").symlink_to("python3.13")
    (root / "bin" / "python").symlink_to("/usr/bin/python3")  # out of SRC: copied as a link, never followed
    (root / "logs").mkdir()
    (root / "logs" / "app.log").symlink_to("/dev/stdout")
    (root / "ro").mkdir()
    (root / "ro" / "defaults").write_text("d\n")
    (root / "ro").chmod(0o555)
    return root


def tree(root: Path) -> dict[str, tuple]:
    """relative path -> (kind, mode, uid, gid, content or link target), links not followed."""
    out = {}
    for entry in sorted(root.rglob("*")):
        st = entry.lstat()
        rel = str(entry.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("l", None, st.st_uid, st.st_gid, os.readlink(entry))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, None)
        else:
            out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, entry.read_bytes())
    return out


def inodes(root: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_ino, p.lstat().st_mtime_ns, p.lstat().st_ctime_ns)
        for p in root.rglob("*")
    }


def test_first_copy_keeps_modes_and_links_and_a_rerun_rewrites_nothing(tmp_path, run_cli):
    src = app_image(tmp_path / "image" / "opt" / "app")
    dest = tmp_path / "volume" / "app"

    first = run_cli("copy", str(src), str(dest), "--owner", f"{APP}:{APP}")

    assert first.code == 0, first.stderr
    assert first.lines == [f"initkit copy: {dest}: 13 entries from 1 SRC, 8 written, 0 unchanged, 0 kept, 0 skipped"]
    want = {rel: (kind, mode, APP, APP, data) for rel, (kind, mode, _u, _g, data) in tree(src).items()}
    got = tree(dest)
    assert got.pop(".initkit-copy.json")[0] == "f"
    assert got == want
    assert os.readlink(dest / "bin" / "python") == "/usr/bin/python3"
    assert dest.stat().st_uid == APP  # DEST was made by the copy: it is the app's too
    before = inodes(dest)
    time.sleep(0.05)  # past the file system's timestamp granularity

    again = run_cli("copy", str(src), str(dest), "--owner", f"{APP}:{APP}")

    assert again.code == 0, again.stderr
    assert again.lines == [f"initkit copy: {dest}: 13 entries from 1 SRC, 0 written, 8 unchanged, 0 kept, 0 skipped"]
    assert inodes(dest) == before  # not rewritten, not even chmod'ed: same inode, mtime and ctime


def test_a_new_image_replaces_what_initkit_wrote_and_keeps_what_the_app_changed(tmp_path, run_cli):
    src = app_image(tmp_path / "image")
    dest = tmp_path / "volume"
    assert run_cli("copy", str(src), str(dest)).code == 0
    (dest / "conf" / "app.conf").write_text("listen 9090\n")  # the app's own change
    (dest / "bin" / "python").unlink()
    (dest / "bin" / "python").symlink_to("python3")  # and a link it redirected
    (src / "conf" / "app.conf").write_text("listen 8081\n")  # the next image's defaults
    (src / "conf" / "conf.d" / "extra.conf").write_text("# extra, v2\n")
    (src / "bin" / "python").unlink()
    (src / "bin" / "python").symlink_to("/usr/local/bin/python3")

    result = run_cli("copy", str(src), str(dest))

    assert result.code == 0, result.stderr
    assert result.lines == [
        f"initkit copy: warning: kept {dest}/bin/python: changed since the last copy (--overwrite replaces it)",
        f"initkit copy: warning: kept {dest}/conf/app.conf: changed since the last copy (--overwrite replaces it)",
        f"initkit copy: {dest}: 13 entries from 1 SRC, 1 written, 5 unchanged, 2 kept, 0 skipped",
    ]
    assert (dest / "conf" / "app.conf").read_text() == "listen 9090\n"
    assert (dest / "conf" / "conf.d" / "extra.conf").read_text() == "# extra, v2\n"
    assert os.readlink(dest / "bin" / "python") == "python3"
    assert run_cli("copy", str(src), str(dest)).lines[-1].endswith("0 written, 6 unchanged, 2 kept, 0 skipped")

    forced = run_cli("copy", str(src), str(dest), "--overwrite")

    assert forced.code == 0, forced.stderr
    assert forced.lines[-1].endswith("2 written, 6 unchanged, 0 kept, 0 skipped")
    assert {k: v for k, v in tree(dest).items() if k != ".initkit-copy.json"} == tree(src)


def test_files_that_were_there_before_the_first_copy_are_kept(tmp_path, run_cli):
    src = app_image(tmp_path / "image")
    dest = tmp_path / "volume"
    (dest / "conf").mkdir(parents=True)
    (dest / "conf" / "app.conf").write_text("the operator's own\n")
    (dest / "conf" / "secret.conf").write_text("k=v\n")  # the same content: adopted, its mode set
    result = run_cli("copy", str(src), str(dest))
    assert result.code == 0, result.stderr
    assert result.lines[0].startswith(f"initkit copy: warning: kept {dest}/conf/app.conf: changed since the last copy")
    assert (dest / "conf" / "app.conf").read_text() == "the operator's own\n"
    assert stat.S_IMODE((dest / "conf" / "secret.conf").stat().st_mode) == 0o600
    assert json.loads((dest / ".initkit-copy.json").read_text())["entries"]["conf/secret.conf"][0] == "f"


def test_mode_spec_several_sources_and_a_file_source(tmp_path, run_cli):
    src = app_image(tmp_path / "image")
    extra = tmp_path / "configmap"
    (extra / "conf").mkdir(parents=True)
    (extra / "conf" / "override.conf").write_text("o\n")
    single = tmp_path / "one.txt"
    single.write_text("one\n")
    (src / "bin" / "suid").write_text("s")
    (src / "bin" / "suid").chmod(0o4755)
    dest = tmp_path / "volume"

    result = run_cli("copy", str(src), str(extra), str(single), str(dest), "--mode", "g+rwX,o-rwx")

    assert result.code == 0, result.stderr
    got = tree(dest)
    assert got["conf"][1] == 0o770 and got["conf/app.conf"][1] == 0o660 and got["conf/secret.conf"][1] == 0o660
    assert got["bin/python3.13"][1] == 0o770
    assert got["bin/suid"][1] == 0o770  # never setuid
    assert got["ro"][1] == 0o570 and got["ro/defaults"][4] == b"d\n"  # a read-only directory, filled first
    assert got["conf/override.conf"][4] == b"o\n" and got["one.txt"][4] == b"one\n"


def test_every_option_from_the_environment(tmp_path, run_cli):
    src = app_image(tmp_path / "image")
    dest = tmp_path / "volume"
    env = {
        "INITKIT_COPY_SOURCES": f"{src}/conf {src}/logs",
        "INITKIT_COPY_DEST": str(dest),
        "INITKIT_COPY_OWNER": f":{APP}",
        "INITKIT_COPY_MODE": "a=rX",
        "INITKIT_COPY_MAX_ENTRIES": "10",
        "INITKIT_COPY_MAX_SIZE": "1KiB",
        "INITKIT_COPY_TIMEOUT": "30s",
        "INITKIT_COPY_OVERWRITE": "true",
    }
    result = run_cli("--log-format", "json", "copy", env=env)
    assert result.code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.lines]
    assert (record["entries"], record["written"], record["kept"], record["skipped"]) == (5, 4, 0, 0)
    assert tree(dest)["conf.d/extra.conf"][1:4] == (0o444, 0, APP)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["{t}/nope", "{t}/dest"], "{t}/nope: not found"),
        (["{t}/image/conf", "{t}/image/conf/conf.d/out"], "{t}/image/conf and DEST {t}/image/conf/conf.d/out overlap"),
        (["{t}/image/conf/conf.d", "{t}/image/conf"], "{t}/image/conf/conf.d and DEST {t}/image/conf overlap"),
        (["{t}/image", "{t}/dest", "--owner", "app"], "give numeric ids"),
        (["{t}/image", "{t}/dest", "--mode", "u+s"], "setuid, setgid or sticky"),
        (["{t}/image", "{t}/dest", "--max-size", "lots"], "is not a size"),
        (["{t}/image", "{t}/file", "--owner", "1"], "{t}/file: not a directory"),
        (["{t}/image"], "Missing argument"),
        (["{t}/image/conf", "{t}/other", "{t}/dest"], "conf.d/extra.conf is in both {t}/image/conf and {t}/other"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(tmp_path, run_cli, args, words):
    app_image(tmp_path / "image")
    (tmp_path / "file").write_text("")
    (tmp_path / "other" / "conf.d").mkdir(parents=True)  # shares a directory (fine) and a file (not)
    (tmp_path / "other" / "conf.d" / "extra.conf").write_text("")
    result = run_cli("copy", *(arg.format(t=tmp_path) for arg in args))
    assert result.code == 2, result.stderr
    assert len(result.lines) == 1 and words.format(t=tmp_path) in result.stderr, result.stderr


def test_help_names_the_one_liner_and_every_environment_variable(run_cli):
    result = run_cli("copy", "--help")
    assert result.code == 0
    text = " ".join(result.stdout.split())
    assert "Replaces: cp -a /opt/app/conf/. /emptydir/conf/" in text
    for name in ("OWNER", "MODE", "OVERWRITE", "MAX_ENTRIES", "MAX_SIZE", "TIMEOUT"):
        assert f"INITKIT_COPY_{name}" in text


def test_imports_no_library_it_does_not_use(tmp_path):
    src = app_image(tmp_path / "image")
    code = (
        "import sys\nfrom initkit.cli import run\nassert run(sys.argv[1:]) == 0\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    args = ["copy", str(src), str(tmp_path / "dest")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, check=True)
    loaded = set(done.stdout.split())
    assert "click" in loaded
    assert not loaded & {"requests", "jinja2", "dns", "git", "yaml", "urllib3"}


def test_the_readme_example_an_image_directory_and_a_configmap_with_its_links(tmp_path, run_cli):
    # `initkit copy /src/opt/app/conf /configmap /data/conf --owner 1001:1001 --mode g+rwX`; a ConfigMap
    # volume is the kubelet's atomic writer: keys are links through `..data` to a timestamped directory.
    src = app_image(tmp_path / "src" / "opt" / "app")
    configmap = tmp_path / "configmap"
    (configmap / "..2026_12_03_17_00_00.1").mkdir(parents=True)
    (configmap / "..2026_12_03_17_00_00.1" / "override.conf").write_text("o=1\n")
    (configmap / "..data").symlink_to("..2026_12_03_17_00_00.1")
    (configmap / "override.conf").symlink_to("..data/override.conf")
    dest = tmp_path / "data" / "conf"
    args = ("copy", str(src / "conf"), str(configmap), str(dest), "--owner", f"{APP}:{APP}", "--mode", "g+rwX")

    assert run_cli(*args).code == 0
    assert (dest / "override.conf").read_text() == "o=1\n" and (dest / "app.conf").read_text() == "listen 8080\n"
    assert tree(dest)["conf.d"][1:4] == (0o775, APP, APP)
    # The ConfigMap changes: the kubelet writes a new directory and swaps `..data`.
    (configmap / "..2026_12_03_18_00_00.2").mkdir()
    (configmap / "..2026_12_03_18_00_00.2" / "override.conf").write_text("o=2\n")
    (configmap / "..data").unlink()
    (configmap / "..data").symlink_to("..2026_12_03_18_00_00.2")

    again = run_cli(*args)

    assert again.code == 0, again.stderr
    assert again.lines[-1].endswith("2 written, 5 unchanged, 0 kept, 0 skipped")  # `..data` and the new file
    assert (dest / "override.conf").read_text() == "o=2\n"
