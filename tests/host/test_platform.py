"""Host facts as data: architecture and OS names, where VBoxManage is found, and the
Windows hypervisor probe, each driven by injected platform names, environment,
file-existence and command outputs (what Windows and macOS really print)."""

from __future__ import annotations

import ntpath
import sys

import pytest

from labctl.host.platform import (
    AMD64,
    ARM64,
    LINUX,
    MACOS,
    MACOS_VBOXMANAGE,
    POWERSHELL_HYPERVISOR,
    WINDOWS,
    CommandOutput,
    find_vboxmanage,
    gather_host,
    normalise_arch,
    normalise_os,
    probe_windows_hypervisor,
    run_command,
)

# `systeminfo` on Windows 11 with Hyper-V / Virtual Machine Platform on (tail of the output).
SYSTEMINFO_HYPERV_ON = (
    "Network Card(s):          1 NIC(s) Installed.\r\n"
    "                          [01]: Intel(R) Wi-Fi 6 AX201 160MHz\r\n"
    "Hyper-V Requirements:     A hypervisor has been detected. Features required for Hyper-V will not be displayed.\r\n"
)
# ... and with no hypervisor running: the CPU's own virtualisation features.
SYSTEMINFO_HYPERV_OFF = (
    "Hyper-V Requirements:     VM Monitor Mode Extensions: Yes\r\n"
    "                          Virtualization Enabled In Firmware: Yes\r\n"
    "                          Second Level Address Translation: Yes\r\n"
    "                          Data Execution Prevention Available: Yes\r\n"
)


@pytest.mark.parametrize("machine,arch", [
    ("AMD64", AMD64),  # Windows
    ("x86_64", AMD64),  # macOS Intel, Linux
    ("arm64", ARM64),  # macOS Apple Silicon
    ("ARM64", ARM64),  # Windows on Arm
    ("aarch64", ARM64),  # Linux
    ("riscv64", "riscv64"),
    ("", "unknown"),
])
def test_architecture_names(machine, arch):
    assert normalise_arch(machine) == arch


def test_os_names():
    assert [normalise_os(s) for s in ("Windows", "Darwin", "Linux", "FreeBSD")] == [WINDOWS, MACOS, LINUX, "freebsd"]


def _runner(outputs: dict[str, CommandOutput]):
    calls: list[list[str]] = []

    def run(argv):
        calls.append(list(argv))
        return outputs.get(argv[0], CommandOutput(None, "", f"`{argv[0]}` failed: not found"))

    run.calls = calls
    return run


def _exists(*paths):
    return lambda p: p in paths


def test_windows_vboxmanage_from_the_installers_variable():
    # The MSI sets VBOX_MSI_INSTALL_PATH with a trailing backslash and never touches PATH.
    env = {"PATH": "", "VBOX_MSI_INSTALL_PATH": "C:\\Program Files\\Oracle\\VirtualBox\\",
           "ProgramFiles": "C:\\Program Files"}
    want = "C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"
    assert find_vboxmanage(WINDOWS, env, exists=_exists(want)) == (want, False)


def test_windows_vboxmanage_in_program_files_without_the_variable():
    env = {"PATH": "", "ProgramFiles": "D:\\Apps"}
    want = ntpath.join("D:\\Apps", "Oracle", "VirtualBox", "VBoxManage.exe")
    assert find_vboxmanage(WINDOWS, env, exists=_exists(want)) == (want, False)
    assert find_vboxmanage(WINDOWS, env, exists=_exists()) == (None, False)


def test_macos_vboxmanage_in_the_app_bundle():
    assert find_vboxmanage(MACOS, {"PATH": ""}, exists=_exists(MACOS_VBOXMANAGE)) == (MACOS_VBOXMANAGE, False)


def test_vboxmanage_on_path_wins(tmp_path):
    tool = tmp_path / "VBoxManage"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    path, on_path = find_vboxmanage(MACOS, {"PATH": str(tmp_path)}, exists=_exists(MACOS_VBOXMANAGE))
    assert (path, on_path) == (str(tool), True)


@pytest.mark.parametrize("outputs,present,evidence", [
    ({"powershell": CommandOutput(0, "True\r\n")}, True, "HypervisorPresent = True"),
    ({"powershell": CommandOutput(0, "False\r\n")}, False, "HypervisorPresent = False"),
    # PowerShell blocked by policy: the English systeminfo line.
    ({"powershell": CommandOutput(1, "", "execution of scripts is disabled"),
      "systeminfo": CommandOutput(0, SYSTEMINFO_HYPERV_ON)}, True, "A hypervisor has been detected"),
    ({"systeminfo": CommandOutput(0, SYSTEMINFO_HYPERV_OFF)}, False, "Hyper-V Requirements"),
    ({}, None, "failed"),
])
def test_windows_hypervisor_probe(outputs, present, evidence):
    run = _runner(outputs)
    hv = probe_windows_hypervisor(run)
    assert hv.present is present and evidence in hv.evidence
    assert run.calls[0] == POWERSHELL_HYPERVISOR  # no admin-only command (bcdedit) is ever run


def test_gather_a_windows_host_from_injected_facts():
    env = {"PATH": "", "VBOX_MSI_INSTALL_PATH": "C:\\Program Files\\Oracle\\VirtualBox\\"}
    host = gather_host(env, _runner({"powershell": CommandOutput(0, "True\r\n")}), system="Windows", machine="AMD64",
                       exists=_exists("C:\\Program Files\\Oracle\\VirtualBox\\VBoxManage.exe"))
    assert (host.os, host.arch, host.label) == (WINDOWS, AMD64, "Windows amd64")
    assert host.vboxmanage.endswith("VBoxManage.exe") and not host.vboxmanage_on_path
    assert host.hypervisor.present is True and host.ssh_client is None


def test_gather_a_mac_probes_no_windows_hypervisor():
    run = _runner({})
    host = gather_host({"PATH": ""}, run, system="Darwin", machine="arm64", exists=_exists(MACOS_VBOXMANAGE))
    assert host.apple_silicon and host.vboxmanage == MACOS_VBOXMANAGE
    assert host.hypervisor.present is None and run.calls == []


def test_this_host_for_real():
    host = gather_host()
    assert host.cpus >= 1 and host.memory_mb > 100  # psutil, not os.sysconf
    assert host.python == ".".join(map(str, sys.version_info[:3]))
    assert host.arch in (AMD64, ARM64)


def test_run_command_never_raises():
    out = run_command(["/nonexistent/powershell"])
    assert out.rc is None and "failed" in out.error
    assert run_command([sys.executable, "-c", "print('True')"]).stdout.strip() == "True"
