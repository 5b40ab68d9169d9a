"""The doctor on each kind of laptop the course's students have, driven by injected
host facts (HostInfo / HostFacts values), never by patching the doctor's internals:
Windows (VBoxManage off PATH, Hyper-V on or off), macOS Intel, macOS Apple Silicon
(VirtualBox < 7.1, 7.1.0-7.1.5, 7.1.6+; the box's architecture), Linux."""

from __future__ import annotations

from dataclasses import replace

from labctl.host.boxes import BOXES, box_arch, default_box
from labctl.host.doctor import FAIL, OK, WARN, check, gather
from labctl.host.hostfacts import HostFacts, ToolVersion
from labctl.host.platform import AMD64, ARM64, LINUX, MACOS, WINDOWS, HostInfo, Hypervisor
from labctl.spec import default_spec
from labctl.spec.model import Box

VBOX_WIN = "C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"


def _host(os_: str, arch: str, **kw) -> HostInfo:
    base = dict(cpus=8, memory_mb=16384, python="3.10.13", vboxmanage="/usr/bin/VBoxManage", vboxmanage_on_path=True,
                ssh_client="/usr/bin/ssh")
    base.update(kw)
    return HostInfo(os=os_, arch=arch, **base)


WINDOWS_HYPERV_ON = _host(WINDOWS, AMD64, vboxmanage=VBOX_WIN, vboxmanage_on_path=False, ssh_client=None,
                          hypervisor=Hypervisor(True, "Win32_ComputerSystem.HypervisorPresent = True"))
WINDOWS_HYPERV_OFF = replace(WINDOWS_HYPERV_ON, ssh_client="C:\\Windows\\System32\\OpenSSH\\ssh.exe",
                             hypervisor=Hypervisor(False, "Win32_ComputerSystem.HypervisorPresent = False"))
MAC_INTEL = _host(MACOS, AMD64)
MAC_ARM = _host(MACOS, ARM64, vboxmanage="/Applications/VirtualBox.app/Contents/MacOS/VBoxManage", vboxmanage_on_path=False)
LINUX_AMD64 = _host(LINUX, AMD64)


def _facts(host: HostInfo, vagrant="2.4.9", vbox: str | None = "7.1.6") -> HostFacts:
    return HostFacts(
        vagrant=ToolVersion(True, vagrant),
        virtualbox=ToolVersion(True, vbox, path=host.vboxmanage) if vbox else ToolVersion(False),
        cpus=host.cpus, memory_mb=host.memory_mb, disk_free_mb=100_000, disk_path="/home/student",
        routes=(), host=host,
    )


def _by_id(report) -> dict:
    return {f.id: f for f in report.findings}


def _arm_spec():
    box = default_box("virtualbox", ARM64)
    return replace(default_spec(), box=Box(box.name, box.version))


# ------------------------------------------------------------------ Windows


def test_windows_with_hyperv_on_warns_with_the_fix_and_finds_vboxmanage_off_path():
    report = check(default_spec(), _facts(WINDOWS_HYPERV_ON))
    f = _by_id(report)
    assert f["host"].message.startswith("Windows amd64")
    assert f["virtualbox"].level == OK and VBOX_WIN in f["virtualbox"].message and "not on PATH" in f["virtualbox"].message
    hv = f["hyper-v"]
    assert hv.level == WARN and "HypervisorPresent = True" in hv.message and "Windows Hypervisor Platform" in hv.message
    assert "bcdedit /set hypervisorlaunchtype off" in hv.fix and "reboot" in hv.fix
    assert "Virtual Machine Platform" in hv.fix and "Windows Hypervisor Platform" in hv.fix
    # No OpenSSH client: commands still work through paramiko; the fix names the Windows feature.
    assert f["ssh-client"].level == WARN and "OpenSSH.Client" in f["ssh-client"].fix
    assert report.ok  # slow, not broken


def test_windows_with_hyperv_off_is_clean():
    f = _by_id(check(default_spec(), _facts(WINDOWS_HYPERV_OFF)))
    assert f["hyper-v"].level == OK and "ssh-client" not in f


def test_windows_hypervisor_unknown_still_says_how_to_turn_it_off():
    host = replace(WINDOWS_HYPERV_OFF, hypervisor=Hypervisor(None, "neither PowerShell nor systeminfo answered"))
    hv = _by_id(check(default_spec(), _facts(host)))["hyper-v"]
    assert hv.level == WARN and "bcdedit" in hv.fix


def test_windows_hyperv_with_an_old_virtualbox_fails():
    report = check(default_spec(), _facts(WINDOWS_HYPERV_ON, vagrant="2.2.19", vbox="6.0.24"))
    assert _by_id(report)["hyper-v"].level == FAIL and not report.ok


def test_windows_without_virtualbox_says_where_it_looked():
    f = _by_id(check(default_spec(), _facts(replace(WINDOWS_HYPERV_OFF, vboxmanage=None), vbox=None)))["virtualbox"]
    assert f.level == FAIL and "where the VirtualBox installer puts it" in f.message
    assert f.fix.startswith("install VirtualBox 7.2 ")  # Vagrant 2.4.9 drives 7.2


# ------------------------------------------------------------------ macOS


def test_mac_intel_needs_nothing_special():
    report = check(default_spec(), _facts(MAC_INTEL, vagrant="2.4.1", vbox="7.0.20"))
    f = _by_id(report)
    assert report.ok and "apple-silicon" not in f and "hyper-v" not in f
    assert f["box"].level == OK and "amd64" in f["box"].message


def test_apple_silicon_with_virtualbox_7_0_cannot_run_arm64_guests():
    report = check(_arm_spec(), _facts(MAC_ARM, vagrant="2.4.1", vbox="7.0.14"))
    f = _by_id(report)["apple-silicon"]
    assert f.level == FAIL and "cannot run arm64 guests" in f.message
    assert "VirtualBox 7.1.6 or newer" in f.fix and "--provider libvirt" in f.fix
    assert "bento/ubuntu-22.04 202510.26.0" in f.fix
    assert not report.ok


def test_apple_silicon_with_an_early_7_1_warns():
    f = _by_id(check(_arm_spec(), _facts(MAC_ARM, vagrant="2.4.3", vbox="7.1.4")))["apple-silicon"]
    assert f.level == WARN and "7.1.6" in f.message


def test_apple_silicon_with_virtualbox_7_1_6_and_the_arm64_box_is_ready():
    report = check(_arm_spec(), _facts(MAC_ARM, vagrant="2.4.3", vbox="7.1.6"))
    f = _by_id(report)
    assert report.ok, report.findings
    assert f["apple-silicon"].level == OK and f["box"].level == OK and "arm64" in f["box"].message
    assert "/Applications/VirtualBox.app" in f["virtualbox"].message


def test_apple_silicon_with_the_amd64_box_fails_and_names_the_arm64_one():
    f = _by_id(check(default_spec(), _facts(MAC_ARM, vagrant="2.4.9", vbox="7.2.4")))["box"]
    assert f.level == FAIL and "no virtualbox build for this macOS arm64" in f.message
    assert f.fix == "set box.name: bento/ubuntu-22.04 and box.version: 202510.26.0 in lab.yaml"


def test_apple_silicon_without_virtualbox_is_told_the_arm64_install():
    f = _by_id(check(_arm_spec(), _facts(MAC_ARM, vbox=None)))["virtualbox"]
    assert f.level == FAIL and "Apple Silicon" in f.fix and "--provider libvirt" in f.fix


def test_apple_silicon_with_libvirt_is_asked_for_an_arm64_box():
    spec = replace(default_spec(), provider="libvirt")
    report = check(spec, _facts(MAC_ARM))
    f = _by_id(report)
    assert "apple-silicon" not in f and "virtualbox" not in f
    assert f["box"].level == WARN and "arm64" in f["box"].message


# ------------------------------------------------------------------ Linux


def test_linux_amd64():
    report = check(default_spec(), _facts(LINUX_AMD64, vagrant="2.3.4", vbox="7.0.14"))
    f = _by_id(report)
    assert report.ok and {"apple-silicon", "hyper-v", "ssh-client"}.isdisjoint(f)
    assert f["host"].message.startswith("Linux amd64") and "Python 3.10.13" in f["host"].message


def test_linux_arm64_with_virtualbox_gets_the_arm64_box_too():
    f = _by_id(check(default_spec(), _facts(_host(LINUX, ARM64))))["box"]
    assert f.level == FAIL and "202510.26.0" in f.fix


def test_an_unknown_architecture_gets_no_box_verdict():
    f = _by_id(check(default_spec(), _facts(_host(LINUX, "riscv64"))))
    assert "box" not in f and f["host"].message.startswith("Linux riscv64")


# ------------------------------------------------------------------ gathered, not only judged


def test_a_vboxmanage_off_path_is_run_for_its_version(tmp_path):
    """HostInfo says where VBoxManage is (as on Windows, off PATH): gather runs that file."""
    tool = tmp_path / "VirtualBox" / "VBoxManage"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho 7.1.6r167084\n")
    tool.chmod(0o755)
    empty = tmp_path / "bin"
    empty.mkdir()
    host = replace(WINDOWS_HYPERV_OFF, vboxmanage=str(tool))
    facts = gather(env={"PATH": str(empty), "HOME": str(tmp_path)}, routes=(), host=host)
    assert facts.virtualbox.version == "7.1.6" and facts.virtualbox.path == str(tool)
    assert facts.host is host and facts.cpus == host.cpus and facts.memory_mb == host.memory_mb


# ------------------------------------------------------------------ the box table


def test_box_table_rows_are_pinned_and_distinct():
    assert set(BOXES) == {("virtualbox", AMD64), ("virtualbox", ARM64)}
    amd, arm = BOXES[("virtualbox", AMD64)], BOXES[("virtualbox", ARM64)]
    assert amd != arm and all(b.version.count(".") == 2 for b in (amd, arm))
    assert box_arch(arm.name, arm.version, "virtualbox") == ARM64
    assert default_box("libvirt", ARM64) is None  # none verified: the spec's own box stands


def test_the_spec_default_is_the_amd64_row():
    # The lead wires default_box() into the spec's default; until then they must agree on amd64.
    spec = default_spec()
    assert (spec.box.name, spec.box.version) == (default_box("virtualbox", AMD64).name, default_box("virtualbox", AMD64).version)

