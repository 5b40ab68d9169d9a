"""`labctl doctor` with injected inputs: stand-in `vagrant`/`VBoxManage` on PATH that
print what the real tools print, and route tables as data."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from labctl.host import doctor
from labctl.host.doctor import FAIL, OK, WARN, Route, check, gather, parse_ip_json_routes, parse_proc_net_route, require_ready
from labctl.spec import default_spec
from labctl.errors import ExitCode, HostNotReady

VBOX_MODULE_WARNING = (
    "WARNING: The vboxdrv kernel module is not loaded. Either there is no module\n"
    "         available for the current kernel (6.1.0-17-amd64) or it failed to\n"
    "         load. Please recompile the kernel module and install it by\n\n"
    "           sudo /sbin/vboxconfig\n\n"
    "         You will not be able to start VMs until this problem is fixed.\n"
)


def _tool(bin_dir: Path, name: str, stdout: str, rc: int = 0, stderr: str = "") -> None:
    path = bin_dir / name
    # Shell builtins only: the tests' PATH holds nothing but the stand-ins.
    path.write_text(f"#!/bin/sh\nprintf '%s' {shlex.quote(stdout)}\nprintf '%s' {shlex.quote(stderr)} >&2\nexit {rc}\n")
    path.chmod(0o755)


@pytest.fixture
def host_bin(tmp_path):
    """A PATH holding only the stand-ins a test creates (and sh for them)."""
    d = tmp_path / "bin"
    d.mkdir()
    return d


def _env(bin_dir: Path) -> dict:
    return {"PATH": str(bin_dir), "HOME": str(bin_dir.parent)}


NO_ROUTES: list[Route] = []


def _levels(report) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in report.findings:
        out.setdefault(f.id, f.level)
        if f.level == FAIL:
            out[f.id] = FAIL
    return out


@pytest.mark.parametrize(
    "vagrant,vbox,pair",
    [
        ("Vagrant 2.3.4", "7.0.14r161095", OK),
        ("Vagrant 2.4.1", "7.0.20r163906", OK),
        ("Vagrant 2.4.1", "7.1.4r165100", FAIL),  # hashicorp/vagrant#13501
        ("Vagrant 2.4.3", "7.1.4r165100", OK),
        ("Vagrant 2.3.0", "7.0.14r161095", FAIL),
        ("Vagrant 2.2.19", "6.1.50r161033", OK),
        ("Vagrant 2.4.3", "7.2.0r168464", FAIL),  # 7.2 arrived in Vagrant 2.4.9 (GH-13709)
        ("Vagrant 2.4.8", "7.2.4r170995", FAIL),
        ("Vagrant 2.4.9", "7.2.4r170995", OK),
        ("Vagrant 2.4.9", "7.1.4r165100", OK),
        ("Vagrant 2.4.9", "7.3.0r171000", WARN),  # newer than the table: not known either way
        ("Vagrant 2.2.6", "6.1.50r161033", FAIL),
    ],
)
def test_version_pairs(host_bin, vagrant, vbox, pair):
    _tool(host_bin, "vagrant", vagrant + "\n")
    _tool(host_bin, "VBoxManage", vbox + "\n")
    report = check(default_spec(), gather(env=_env(host_bin), routes=NO_ROUTES))
    levels = _levels(report)
    assert levels["vagrant"] == OK and levels["virtualbox"] == OK
    assert levels["pair"] == pair, report.findings
    found = next(f for f in report.findings if f.id == "pair")
    assert vagrant.split()[1] in found.message and vbox.split("r")[0] in found.message
    if pair != OK:
        assert found.fix
    if (vagrant, pair) == ("Vagrant 2.4.3", FAIL):
        assert found.fix.startswith("upgrade Vagrant to >= 2.4.9")


def test_version_behind_a_kernel_module_warning(host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.4.3\n")
    _tool(host_bin, "VBoxManage", VBOX_MODULE_WARNING + "7.1.4r165100\n")
    host = gather(env=_env(host_bin), routes=NO_ROUTES)
    assert host.virtualbox.version == "7.1.4" and host.vagrant.version == "2.4.3"


def test_missing_tools(host_bin):
    report = check(default_spec(), gather(env=_env(host_bin), routes=NO_ROUTES))
    by_id = {f.id: f for f in report.findings}
    assert by_id["vagrant"].level == FAIL and "Vagrant is not installed" in by_id["vagrant"].message
    assert by_id["virtualbox"].level == FAIL and "VirtualBox is not installed" in by_id["virtualbox"].message
    # No Vagrant to pair with: the newest pair, and the older ones.
    assert by_id["virtualbox"].fix.startswith("install VirtualBox 7.2 ") and "Vagrant >= 2.4.9" in by_id["virtualbox"].fix
    assert not report.ok


def test_broken_vboxmanage_is_a_failure_with_its_output(host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.4.3\n")
    _tool(host_bin, "VBoxManage", "", rc=1, stderr="VBoxManage: error: Failed to create the VirtualBox object!\n")
    report = check(default_spec(), gather(env=_env(host_bin), routes=NO_ROUTES))
    f = next(f for f in report.findings if f.id == "virtualbox")
    assert f.level == FAIL and "exited 1" in f.message and "Failed to create the VirtualBox object" in f.message


def test_require_ready_raises_the_first_failure_with_its_fix(host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.3.4\n")
    with pytest.raises(HostNotReady) as err:
        require_ready(default_spec(), env=_env(host_bin), routes=NO_ROUTES)
    assert err.value.message.startswith("VirtualBox is not installed")
    assert "VirtualBox 7.0" in err.value.hint
    assert err.value.exit_code == ExitCode.HOST_NOT_READY


def test_require_ready_passes_on_a_good_host(host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.4.3\n")
    _tool(host_bin, "VBoxManage", "7.1.4r165100\n")
    host = gather(env=_env(host_bin), routes=NO_ROUTES)
    if host.memory_mb < 4096 + doctor.HOST_MIN_MEMORY_MB or host.disk_free_mb < 2 * doctor.DISK_MIN_PER_NODE_MB:
        pytest.skip("this machine itself is too small for the default lab")
    report = require_ready(default_spec(workers=1), env=_env(host_bin), routes=NO_ROUTES)
    assert report.ok


def test_libvirt_has_its_own_checks_and_no_virtualbox_requirement(host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.3.4\n")
    spec = replace(default_spec(), provider="libvirt")
    report = check(spec, gather(env=_env(host_bin), routes=NO_ROUTES))
    ids = {f.id for f in report.findings}
    assert "virtualbox" not in ids and "provider" in ids


# ------------------------------------------------------------------ resources


def _host(host_bin, **changes):
    _tool(host_bin, "vagrant", "Vagrant 2.4.3\n")
    _tool(host_bin, "VBoxManage", "7.1.4r165100\n")
    return replace(gather(env=_env(host_bin), routes=NO_ROUTES), **changes)


def test_resources_against_the_spec(host_bin):
    spec = default_spec()  # 6 vCPUs, 6144 MB, 3 nodes
    levels = _levels(check(spec, _host(host_bin, cpus=8, memory_mb=16384, disk_free_mb=100_000)))
    assert (levels["cpus"], levels["memory"], levels["disk"]) == (OK, OK, OK)
    levels = _levels(check(spec, _host(host_bin, cpus=4, memory_mb=9000, disk_free_mb=100_000)))
    assert (levels["cpus"], levels["memory"]) == (WARN, WARN)
    assert _levels(check(spec, _host(host_bin, disk_free_mb=10_000)))["disk"] == WARN
    report = check(spec, _host(host_bin, cpus=1, memory_mb=7000, disk_free_mb=1000))
    by_id = {f.id: f for f in report.findings}
    assert by_id["cpus"].level == FAIL and "wants 2 CPUs, the host has 1" in by_id["cpus"].message
    assert by_id["memory"].level == FAIL and "6144 MB" in by_id["memory"].message
    assert by_id["disk"].level == FAIL and by_id["disk"].fix


# ------------------------------------------------------------------ routes

IP_JSON = json.dumps([
    {"dst": "default", "gateway": "192.168.1.1", "dev": "wlp2s0", "protocol": "dhcp", "prefsrc": "192.168.1.23", "metric": 600, "flags": []},
    {"dst": "192.168.1.0/24", "dev": "wlp2s0", "protocol": "kernel", "scope": "link", "prefsrc": "192.168.1.23", "metric": 600, "flags": []},
    {"dst": "192.168.56.0/24", "dev": "vboxnet0", "protocol": "kernel", "scope": "link", "prefsrc": "192.168.56.1", "flags": ["linkdown"]},
])

PROC_NET_ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
    "tun0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"
)


def test_parse_route_tables():
    assert parse_ip_json_routes(IP_JSON) == (
        Route("default", "wlp2s0"), Route("192.168.1.0/24", "wlp2s0"), Route("192.168.56.0/24", "vboxnet0"))
    assert parse_proc_net_route(PROC_NET_ROUTE) == (
        Route("default", "eth0"), Route("192.168.1.0/24", "eth0"), Route("10.0.0.0/8", "tun0"))


def _routes_report(host_bin, routes, spec=None):
    report = check(spec or default_spec(), replace(_host(host_bin), routes=tuple(routes)))
    return [f for f in report.findings if f.id == "routes"]


def test_the_labs_own_host_only_interface_is_fine(host_bin):
    found = _routes_report(host_bin, parse_ip_json_routes(IP_JSON))
    assert [f.level for f in found] == [OK]


def test_a_lan_on_the_host_only_network_fails(host_bin):
    found = _routes_report(host_bin, [Route("default", "eth0"), Route("192.168.56.0/24", "eth0")])
    assert [f.level for f in found] == [FAIL]
    assert "192.168.56.0/24 via eth0" in found[0].message and "network.host_only" in found[0].message
    assert found[0].fix


def test_a_vpn_over_the_service_cidr_warns(host_bin):
    found = _routes_report(host_bin, parse_proc_net_route(PROC_NET_ROUTE))
    assert [f.level for f in found] == [WARN]
    assert "10.0.0.0/8 via tun0" in found[0].message and "network.service_cidr" in found[0].message


def test_unreadable_routes_warn(host_bin):
    report = check(default_spec(), replace(_host(host_bin), routes=None))
    assert [f.level for f in report.findings if f.id == "routes"] == [WARN]


def test_spec_warnings_are_findings(host_bin):
    report = check(default_spec(workers=0), _host(host_bin))
    assert any(f.id == "spec" and f.level == WARN and "k8s-node1" in f.message for f in report.findings)


# ------------------------------------------------------------------ the command


def _labctl(args, env):
    return subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True, env=env, timeout=120)


def test_doctor_command_exits_host_not_ready(tmp_path, host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.3.4\n")
    env = dict(_env(host_bin), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = _labctl(["-C", str(tmp_path), "doctor"], env)
    assert proc.returncode == ExitCode.HOST_NOT_READY, proc.stderr
    assert "FAIL  VirtualBox is not installed" in proc.stdout
    assert "fix: install VirtualBox 7.0" in proc.stdout
    proc = _labctl(["-C", str(tmp_path), "doctor", "--json"], env)
    assert proc.returncode == ExitCode.HOST_NOT_READY
    out = json.loads(proc.stdout)
    assert out["ok"] is False
    assert {f["id"]: f["level"] for f in out["findings"]}["vagrant"] == "ok"


def test_doctor_command_ok_exit(tmp_path, host_bin):
    _tool(host_bin, "vagrant", "Vagrant 2.4.3\n")
    _tool(host_bin, "VBoxManage", "7.1.4r165100\n")
    (tmp_path / "lab.yaml").write_text("nodes:\n  - {name: k8s-master, role: master, ip: 192.168.56.30, cpus: 1, memory: 1800}\n")
    env = dict(_env(host_bin), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = _labctl(["-C", str(tmp_path), "doctor", "--json"], env)
    # cpus: 1 is refused by the spec before any host check
    assert proc.returncode == ExitCode.SPEC_INVALID and json.loads(proc.stdout)["message"].startswith("nodes[0].cpus")
    (tmp_path / "lab.yaml").write_text("nodes:\n  - {name: k8s-master, role: master, ip: 192.168.56.30, cpus: 2, memory: 1800}\n")
    proc = _labctl(["-C", str(tmp_path), "doctor", "--json"], env)
    out = json.loads(proc.stdout)
    fails = [f for f in out["findings"] if f["level"] == "fail"]
    assert proc.returncode == (ExitCode.HOST_NOT_READY if fails else 0), out
    if os.cpu_count() >= 2 and not fails:
        assert out["ok"] is True
