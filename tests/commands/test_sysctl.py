"""initkit sysctl: the write path against a fake /proc/sys (INITKIT_SYSCTL_ROOT, made for tests), and
the real kernel: the host's vm.max_map_count read and left alone, namespaced keys written only inside a
fresh network namespace, and the kernel's refusals (a read-only /proc/sys, a non-root user, EINVAL).

No test writes a sysctl of the host: every real write runs under `unshare --net`, and every real run
that names a vm.* key runs in its own mount namespace with /proc/sys bound read-only, so even a bug
could not change the node."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from initkit import sysctl
from tests.conftest import ROOT, initkit_command, requirement

NOT_NAMESPACED = "not namespaced: needs a privileged container"
NET = "namespaced (net): the pod's securityContext.sysctls can set it without privilege"


def plant(root: Path, name: str, content: str) -> Path:
    path = root.joinpath(*name.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


@pytest.fixture
def proc_sys(tmp_path: Path) -> Path:
    """A fake /proc/sys holding the kernel's defaults, as the kernel prints them."""
    root = tmp_path / "sys"
    plant(root, "vm.max_map_count", "65530\n")
    plant(root, "fs.file-max", "9223372036854775807\n")
    plant(root, "net.core.somaxconn", "4096\n")
    plant(root, "net.ipv4.ip_local_port_range", "32768\t60999\n")
    plant(root, "net.ipv4.ping_group_range", "1\t0\n")
    plant(root, "net.ipv4.tcp_rmem", "4096\t131072\t6291456\n")
    plant(root, "kernel.core_pattern", "core\n")
    (root / "net" / "ipv4" / "conf" / "eth0.100").mkdir(parents=True)
    (root / "net" / "ipv4" / "conf" / "eth0.100" / "rp_filter").write_text("0\n")
    return root


@pytest.fixture
def run(run_cli, proc_sys):
    def go(*args: str, env: dict[str, str] | None = None):
        return run_cli("sysctl", *args, env={"INITKIT_SYSCTL_ROOT": str(proc_sys), **(env or {})})

    return go


def value(root: Path, name: str) -> str:
    return root.joinpath(*name.split(".")).read_text()


def key_lines(result) -> list[str]:
    """The lines about keys (the test root's warning left out)."""
    return [line for line in result.lines if "is for tests only" not in line]


# ---- the write path, in a fake root -------------------------------------------------------------


def test_raises_a_lower_value_then_leaves_it_alone(run, proc_sys):
    first = run("vm.max_map_count=262144")
    assert first.code == 0, first.stderr
    assert value(proc_sys, "vm.max_map_count") == "262144\n"
    assert key_lines(first) == [f"initkit sysctl: vm.max_map_count: 65530 -> 262144 ({NOT_NAMESPACED})"]

    before = os.stat(proc_sys / "vm" / "max_map_count")
    again = run("vm.max_map_count=262144")
    assert again.code == 0
    assert key_lines(again) == [f"initkit sysctl: vm.max_map_count is 262144: unchanged ({NOT_NAMESPACED})"]
    assert os.stat(proc_sys / "vm" / "max_map_count").st_mtime_ns == before.st_mtime_ns  # not even rewritten


def test_only_raise_is_the_default_and_exact_lowers(run, proc_sys):
    plant(proc_sys, "vm.max_map_count", "1048576\n")
    kept = run("vm.max_map_count=262144")
    assert kept.code == 0
    assert value(proc_sys, "vm.max_map_count") == "1048576\n"
    assert key_lines(kept) == [
        f"initkit sysctl: vm.max_map_count is 1048576 (262144 wanted; --only-raise never lowers it): "
        f"unchanged ({NOT_NAMESPACED})"
    ]

    lowered = run("--exact", "vm.max_map_count=262144")
    assert lowered.code == 0
    assert value(proc_sys, "vm.max_map_count") == "262144\n"
    assert "1048576 -> 262144" in lowered.stderr


def test_several_numbers_are_raised_field_by_field(run, proc_sys):
    result = run("net.ipv4.tcp_rmem=8192 65536 16777216")
    assert result.code == 0, result.stderr
    assert value(proc_sys, "net.ipv4.tcp_rmem") == "8192 131072 16777216\n"  # 131072 is not lowered
    assert f'net.ipv4.tcp_rmem: "4096 131072 6291456" -> "8192 131072 16777216" ({NET})' in result.stderr


def test_a_range_is_only_widened(run, proc_sys):
    widened = run("net.ipv4.ip_local_port_range=40000 65000")
    assert widened.code == 0, widened.stderr
    assert value(proc_sys, "net.ipv4.ip_local_port_range") == "32768 65000\n"  # the low end is not narrowed

    inside = run("net.ipv4.ip_local_port_range=40000 50000")
    assert inside.code == 0
    assert "unchanged" in inside.stderr

    # ping_group_range's default "1 0" is an empty range: nothing to widen, the wanted range is set
    assert run("net.ipv4.ping_group_range=0 2147483647").code == 0
    assert value(proc_sys, "net.ipv4.ping_group_range") == "0 2147483647\n"


def test_an_empty_range_cannot_widen_but_exact_sets_it(run, proc_sys):
    plant(proc_sys, "net.ipv4.ping_group_range", "0\t10\n")
    refused = run("net.ipv4.ping_group_range=1 0")
    assert refused.code == 2
    assert "empty range" in refused.stderr and "--exact" in refused.stderr
    assert run("--exact", "net.ipv4.ping_group_range=1 0").code == 0
    assert value(proc_sys, "net.ipv4.ping_group_range") == "1 0\n"


def test_slash_form_and_a_dot_inside_a_component(run, proc_sys):
    assert run("vm/max_map_count=100000").code == 0
    assert value(proc_sys, "vm.max_map_count") == "100000\n"
    # sysctl(8)'s forms for the interface eth0.100: the dot inside a component is a slash, or dots are literal
    dotted = run("net.ipv4.conf.eth0/100.rp_filter=1")
    assert dotted.code == 0, dotted.stderr
    assert (proc_sys / "net/ipv4/conf/eth0.100/rp_filter").read_text() == "1\n"
    slashed = run("--exact", "net/ipv4/conf/eth0.100/rp_filter=2")
    assert slashed.code == 0
    assert "net.ipv4.conf.eth0/100.rp_filter: 1 -> 2" in slashed.stderr


def test_an_unknown_key_is_exit_2_and_nothing_is_written(run, proc_sys):
    result = run("vm.max_map_count=262144", "vm.no_such_key=1")
    assert result.code == 2
    assert key_lines(result) == [
        f"initkit sysctl: error: unknown sysctl vm.no_such_key: there is no {proc_sys}/vm/no_such_key"
    ]
    assert value(proc_sys, "vm.max_map_count") == "65530\n"  # every key is read before any is written


def test_a_group_is_not_a_key(run):
    result = run("net.ipv4=1")
    assert result.code == 2
    assert "net.ipv4 is a group of sysctls" in result.stderr


def test_a_text_sysctl_is_refused_whatever_the_value(run, proc_sys):
    result = run("kernel.core_pattern=1")
    assert result.code == 2
    assert "kernel.core_pattern does not hold numbers" in result.stderr
    assert value(proc_sys, "kernel.core_pattern") == "core\n"


def test_a_value_with_the_wrong_number_of_fields_is_exit_2(run, proc_sys):
    result = run("net.ipv4.ip_local_port_range=1024")
    assert result.code == 2
    assert 'net.ipv4.ip_local_port_range holds 2 numbers ("32768 60999"), not 1 (1024)' in result.stderr


def test_a_key_given_twice_is_exit_2(run):
    result = run("vm.max_map_count=1", "vm/max_map_count=2")
    assert result.code == 2
    assert "vm.max_map_count is given twice" in result.stderr


def test_environment_twins(run, proc_sys):
    settings = "vm.max_map_count=70000\nnet.ipv4.ip_local_port_range=1024 65000\n"
    result = run(env={"INITKIT_SYSCTL_SETTINGS": settings, "INITKIT_SYSCTL_ONLY_RAISE": "false"})
    assert result.code == 0, result.stderr
    assert value(proc_sys, "vm.max_map_count") == "70000\n"
    assert value(proc_sys, "net.ipv4.ip_local_port_range") == "1024 65000\n"


def test_json_log_line(run_cli, proc_sys):
    result = run_cli(
        "--log-format", "json", "sysctl", "net.core.somaxconn=8192", env={"INITKIT_SYSCTL_ROOT": str(proc_sys)}
    )
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in result.lines]
    (record,) = [r for r in records if r.get("key")]
    assert record["key"] == "net.core.somaxconn"
    assert record["namespace"] == "net"
    assert (record["before"], record["after"], record["changed"]) == ("4096", "8192", True)


def test_a_missing_root_is_exit_1(run_cli, tmp_path):
    result = run_cli("sysctl", "vm.max_map_count=1", env={"INITKIT_SYSCTL_ROOT": str(tmp_path / "none")})
    assert result.code == 1
    assert "needs /proc mounted" in result.lines[-1]


# ---- which keys are namespaced: the rule the chart follows to decide on privilege ----------------


@pytest.mark.parametrize(
    ("name", "namespace"),
    [
        ("vm.max_map_count", None),
        ("fs.file-max", None),
        ("kernel.pid_max", None),
        ("kernel.shmmax", "ipc"),
        ("kernel.shm_rmid_forced", "ipc"),
        ("kernel.msgmax", "ipc"),
        ("kernel.sem", "ipc"),
        ("kernel.semx", None),  # kernel.sem is a name, not a prefix
        ("fs.mqueue.msg_max", "ipc"),
        ("fs/mqueue/queues_max", "ipc"),
        ("net.core.somaxconn", "net"),
        ("net.ipv4.ip_local_port_range", "net"),
        ("net.ipv4.conf.eth0/100.rp_filter", "net"),
        ("net.netfilter.nf_conntrack_max", None),  # Kubernetes' documented exceptions: node-wide
        ("net.netfilter.nf_conntrack_expect_max", None),
        ("kernel.hostname", None),  # UTS-namespaced in the kernel, but not in securityContext.sysctls
    ],
)
def test_namespace_follows_kubernetes(name, namespace):
    assert sysctl.namespace(name) == namespace


# ---- the real kernel ----------------------------------------------------------------------------


def _in_namespaces(script: str, *flags: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    requirement.root("unshare")
    requirement.tool("unshare", "apt-get install util-linux")
    return subprocess.run(
        ["unshare", *flags, "sh", "-c", script], capture_output=True, text=True, timeout=timeout, check=False
    )


def _initkit(*args: str) -> str:
    return shlex.join(initkit_command(*args))


def _read_only_proc_sys() -> str:
    """A shell prefix, for `unshare --mount`: /proc/sys bound read-only, so nothing can be written."""
    return "mount --make-rprivate / && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && "


def _host(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text()


@pytest.mark.root
def test_the_hosts_vm_max_map_count_already_high_is_read_and_not_written():
    host = _host("vm.max_map_count")
    wanted = int(host) // 2
    # /proc/sys is read-only for this run: any write would fail (exit 1), so exit 0 means none was tried
    done = _in_namespaces(
        _read_only_proc_sys()
        + _initkit("sysctl", f"vm.max_map_count={wanted}")
        + " && "
        + _initkit("sysctl", f"vm.max_map_count={int(host)}"),
        "--mount",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"initkit sysctl: vm.max_map_count is {int(host)} ({wanted} wanted; --only-raise never lowers it): "
        f"unchanged ({NOT_NAMESPACED})",
        f"initkit sysctl: vm.max_map_count is {int(host)}: unchanged ({NOT_NAMESPACED})",
    ]
    assert _host("vm.max_map_count") == host


@pytest.mark.root
def test_namespaced_keys_are_written_inside_a_fresh_network_namespace_only():
    somaxconn, ports = _host("net.core.somaxconn"), _host("net.ipv4.ip_local_port_range")
    wanted = int(somaxconn) + 1000
    settings = (f"net.core.somaxconn={wanted}", "net.ipv4.ip_local_port_range=1024 65000")
    script = " && ".join(
        [
            _initkit("sysctl", *settings),
            _initkit("sysctl", *settings),  # idempotent: the second run writes nothing
            "cat /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/ip_local_port_range",
        ]
    )
    done = _in_namespaces(script, "--net")
    assert done.returncode == 0, done.stderr
    low, high = ports.split()
    assert done.stderr.splitlines() == [
        f"initkit sysctl: net.core.somaxconn: {int(somaxconn)} -> {wanted} ({NET})",
        f'initkit sysctl: net.ipv4.ip_local_port_range: "{low} {high}" -> "1024 65000" ({NET})',
        f"initkit sysctl: net.core.somaxconn is {wanted}: unchanged ({NET})",
        f'initkit sysctl: net.ipv4.ip_local_port_range is "1024 65000": unchanged ({NET})',
    ]
    assert done.stdout.split() == [str(wanted), "1024", "65000"]  # the namespace's own values
    assert (_host("net.core.somaxconn"), _host("net.ipv4.ip_local_port_range")) == (somaxconn, ports)


@pytest.mark.root
def test_ipc_keys_are_written_inside_a_fresh_ipc_namespace_only():
    msgmax, sem = _host("kernel.msgmax"), _host("kernel.sem")
    fields = [int(field) for field in sem.split()]
    wanted_sem = [1, 1, 1, fields[3] + 100]  # only the last is higher: raised field by field
    script = " && ".join(
        [
            _initkit("sysctl", f"kernel.msgmax={int(msgmax) + 1}", "kernel.sem=" + " ".join(map(str, wanted_sem))),
            "cat /proc/sys/kernel/msgmax /proc/sys/kernel/sem",
        ]
    )
    done = _in_namespaces(script, "--ipc")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(int(msgmax) + 1), *map(str, fields[:3]), str(fields[3] + 100)]
    assert "kernel.sem: " in done.stderr and "namespaced (ipc)" in done.stderr
    assert (_host("kernel.msgmax"), _host("kernel.sem")) == (msgmax, sem)


@pytest.mark.root
@pytest.mark.parametrize(
    ("setting", "remedy"),
    [
        ("net.core.somaxconn", "net.core.somaxconn is namespaced (net): set it in the pod's securityContext.sysctls"),
        ("vm.max_map_count", "vm.max_map_count is not namespaced: run this step in a privileged container"),
    ],
)
def test_a_read_only_proc_sys_is_exit_1_saying_what_to_do(setting, remedy):
    host = _host(setting)
    wanted = int(host) + 1
    done = _in_namespaces(_read_only_proc_sys() + _initkit("sysctl", f"{setting}={wanted}"), "--net", "--mount")
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"initkit sysctl: error: cannot set {setting}={wanted}: /proc/sys is read-only")
    assert remedy in line
    assert _host(setting) == host


@pytest.mark.root
def test_a_non_root_user_is_not_permitted():
    setpriv = requirement.tool("setpriv", "apt-get install util-linux")
    host = _host("net.core.somaxconn")
    wanted = int(host) + 1
    user = shlex.join([setpriv, "--reuid", "65532", "--regid", "65532", "--clear-groups"])
    done = _in_namespaces(f"{user} {_initkit('sysctl', f'net.core.somaxconn={wanted}')}", "--net")
    assert done.returncode == 1, done.stderr
    # under `make test` coverage adds lines of its own (uid 65532 cannot write its data file)
    lines = [x for x in done.stderr.splitlines() if x.startswith("initkit")]
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert line.startswith(f"initkit sysctl: error: not permitted to set net.core.somaxconn={wanted}; ")
    assert "securityContext.sysctls" in line
    assert _host("net.core.somaxconn") == host


@pytest.mark.root
def test_a_value_the_kernel_refuses_is_exit_1():
    done = _in_namespaces(_initkit("sysctl", "--exact", "net.ipv4.ip_local_port_range=60000 1000"), "--net")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        'initkit sysctl: error: the kernel refused net.ipv4.ip_local_port_range="60000 1000" (EINVAL): '
        "the value is outside what net.ipv4.ip_local_port_range takes"
    ]


# ---- the README's section, run --------------------------------------------------------------------


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n### sysctl\n")
    return text[start : text.index("\n### ", start + 1)]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _readme_section(), re.DOTALL)


def test_readme_commands_run(run_cli, proc_sys):
    (commands,) = _blocks("sh")
    for line in commands.splitlines():
        argv = shlex.split(line)
        assert argv[:2] == ["initkit", "sysctl"]
        result = run_cli(*argv[1:], env={"INITKIT_SYSCTL_ROOT": str(proc_sys)})
        assert result.code == 0, (line, result.stderr)
    assert value(proc_sys, "net.ipv4.ip_local_port_range") == "1024 65000\n"
    assert value(proc_sys, "fs.file-max") == "1048576\n"  # --exact lowered it


def test_readme_log_lines_are_what_initkit_prints(run, proc_sys):
    (shown,) = re.findall(r"```\n(initkit sysctl: .*?)```", _readme_section(), re.DOTALL)
    raised, kept, net = shown.splitlines()
    assert key_lines(run("vm.max_map_count=262144")) == [raised]
    plant(proc_sys, "vm.max_map_count", "1048576\n")
    assert key_lines(run("vm.max_map_count=262144")) == [kept]
    assert key_lines(run("net.core.somaxconn=8192")) == [net]


def test_readme_pod_examples_follow_the_namespace_rule(run, proc_sys):
    pod_level, init_container = (yaml.safe_load(block) for block in _blocks("yaml"))
    for item in pod_level["spec"]["securityContext"]["sysctls"]:
        assert sysctl.namespace(item["name"]) is not None, item  # the pod may set it: no privilege
        assert run("--exact", f"{item['name']}={item['value']}").code == 0
    (container,) = init_container["initContainers"]
    assert container["securityContext"]["privileged"] is True
    assert container["args"][0] == "sysctl"
    for setting in container["args"][1:]:
        assert sysctl.namespace(setting.split("=")[0]) is None  # privileged only for a node-wide key
    assert run(*container["args"][1:]).code == 0
