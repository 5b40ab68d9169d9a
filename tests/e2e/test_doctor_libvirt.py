"""`labctl doctor` for a libvirt lab, against stand-in `vagrant` and `virsh` on PATH.

The stand-ins print what the real tools print on Debian 12 (vagrant 2.3.4 with
vagrant-libvirt 0.11.2, libvirt 9.0.0), recorded on this machine; the real tools are
exercised by the e2e test itself (its `labctl up` runs the same checks first).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from labctl.host import doctor_libvirt
from labctl.host.doctor import FAIL, OK, WARN, check, gather
from labctl.spec import Libvirt, default_spec

PLUGIN_LIST = "vagrant-libvirt (0.11.2, system)\n"
NO_PLUGINS = "No plugins installed.\n"
VIRSH_VERSION = """Compiled against library: libvirt 9.0.0
Using library: libvirt 9.0.0
Using API: QEMU 9.0.0
Running hypervisor: QEMU 7.2.22

"""
VIRSH_NO_DAEMON = """error: failed to connect to the hypervisor
error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory
"""
EMULATED = Libvirt(driver="qemu", cpu_mode="custom", cpu_model="qemu64", boot_timeout=900)


def _tool(bin_dir: Path, name: str, stdout: str, rc: int = 0, *, stderr: bool = False) -> None:
    out = bin_dir / f"{name}.out"
    out.write_text(stdout)
    redirect = " >&2" if stderr else ""
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\ncat {out}{redirect}\nexit {rc}\n")
    script.chmod(0o755)


@pytest.fixture
def host(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only the stand-ins and the basics the shell scripts need.
    for tool in ("cat", "sh"):
        (bin_dir / tool).symlink_to(f"/bin/{tool}")
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    return {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")}


def _vagrant(bin_dir: Path, plugins: str = PLUGIN_LIST) -> None:
    script = bin_dir / "vagrant"
    (bin_dir / "plugins.out").write_text(plugins)
    script.write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then echo "Vagrant 2.3.4"; exit 0; fi\n'
                      f'if [ "$1 $2" = "plugin list" ]; then cat {bin_dir}/plugins.out; exit 0; fi\nexit 1\n')
    script.chmod(0o755)


def _findings(bin_dir: Path, lv: Libvirt = EMULATED, env: dict | None = None) -> dict:
    spec = replace(default_spec(workers=1), provider="libvirt", libvirt=lv)
    report = check(spec, gather(env=env or _env(bin_dir), routes=(), provider="libvirt"))
    return {f.id: f for f in report.findings}


def test_a_working_libvirt_host(host):
    _vagrant(host)
    _tool(host, "virsh", VIRSH_VERSION)
    found = _findings(host)
    assert found["vagrant-libvirt"].level == OK and "0.11.2" in found["vagrant-libvirt"].message
    assert found["libvirt"].level == OK and "QEMU 7.2.22" in found["libvirt"].message
    assert "virtualbox" not in found
    # Emulation works, and doctor says what it costs.
    assert found["libvirt.driver"].level == WARN


def test_missing_plugin_names_the_package(host):
    _vagrant(host, NO_PLUGINS)
    _tool(host, "virsh", VIRSH_VERSION)
    f = _findings(host)["vagrant-libvirt"]
    assert f.level == FAIL and "vagrant-libvirt" in f.fix


def test_libvirtd_not_answering_says_why_and_how_to_start_it(host):
    _vagrant(host)
    _tool(host, "virsh", VIRSH_NO_DAEMON, rc=1, stderr=True)
    f = _findings(host)["libvirt"]
    assert f.level == FAIL
    assert "qemu:///system" in f.message and "libvirt-sock" in f.message
    assert "libvirtd" in f.fix


def test_the_uri_comes_from_libvirt_default_uri(host):
    _vagrant(host)
    _tool(host, "virsh", VIRSH_NO_DAEMON, rc=1, stderr=True)
    env = {**_env(host), "LIBVIRT_DEFAULT_URI": "qemu+ssh://lab-host/system"}
    assert "qemu+ssh://lab-host/system" in _findings(host, env=env)["libvirt"].message


def test_no_virsh_at_all(host):
    _vagrant(host)
    f = _findings(host)["libvirt"]
    assert f.level == FAIL and "libvirt-daemon-system" in f.fix


def test_host_passthrough_under_emulation_is_refused(host):
    _vagrant(host)
    _tool(host, "virsh", VIRSH_VERSION)
    f = _findings(host, Libvirt(driver="qemu", cpu_mode="host-passthrough"))["libvirt.cpu_mode"]
    assert f.level == FAIL and "cpu_mode: custom" in f.fix


def test_kvm_driver_without_a_usable_dev_kvm(host):
    _vagrant(host)
    _tool(host, "virsh", VIRSH_VERSION)
    facts = doctor_libvirt.gather(_env(host))
    spec = replace(default_spec(workers=1), provider="libvirt", libvirt=Libvirt(driver="kvm"))
    without = {f.id: f for f in doctor_libvirt.findings(spec, replace(facts, kvm_device=False), vagrant_installed=True)}
    assert without["libvirt.driver"].level == FAIL and "driver: qemu" in without["libvirt.driver"].fix
    with_kvm = {f.id for f in doctor_libvirt.findings(spec, replace(facts, kvm_device=True), vagrant_installed=True)}
    assert "libvirt.driver" not in with_kvm


def test_up_refuses_a_libvirt_lab_when_libvirtd_is_down(host):
    from labctl.host.doctor import require_ready
    from labctl.errors import HostNotReady

    _vagrant(host)
    _tool(host, "virsh", VIRSH_NO_DAEMON, rc=1, stderr=True)
    spec = replace(default_spec(workers=1), provider="libvirt", libvirt=EMULATED)
    with pytest.raises(HostNotReady) as exc:
        require_ready(spec, env=_env(host), routes=())
    assert "libvirtd does not answer" in exc.value.message and exc.value.hint
