"""`labctl doctor` for the VirtualBox provider: VirtualBox itself, the Vagrant/VirtualBox
pair, Apple Silicon, and a hypervisor already running Windows (Hyper-V)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.host.boxes import ARM64_MIN_VIRTUALBOX, default_box
from labctl.host.findings import FAIL, OK, WARN, Finding, version_tuple
from labctl.host.hostfacts import HostFacts, ToolVersion
from labctl.host.platform import ARM64, LINUX, WINDOWS, HostInfo

if TYPE_CHECKING:
    from labctl.spec.model import LabSpec

# Newest VirtualBox minor each Vagrant release line drives (Vagrant refuses any other
# with "a version of VirtualBox installed that is not supported"). Sources: Vagrant's
# CHANGELOG.md: 2.3.2 (2022-10-18) "Add support for VirtualBox 7.0" GH-12947, 2.4.2
# (2024-11-01) 7.1 GH-13513, 2.4.9 (2025-08-21) 7.2 GH-13709; hashicorp/vagrant#13501
# (2.4.1 refuses 7.1); plugins/providers/virtualbox/driver/meta.rb maps 7.0, 7.1, 7.2
# (checked at hashicorp/vagrant 35f3160f, 2026-08-03).
# Rows: (first Vagrant version, newest VirtualBox).
VAGRANT_VBOX_TABLE: tuple[tuple[tuple[int, int, int], tuple[int, int]], ...] = (
    ((2, 2, 7), (6, 1)),
    ((2, 3, 2), (7, 0)),
    ((2, 4, 2), (7, 1)),
    ((2, 4, 9), (7, 2)),
)
_DOWNLOAD = {
    (7, 0): "https://www.virtualbox.org/wiki/Download_Old_Builds_7_0",
    (7, 1): "https://www.virtualbox.org/wiki/Download_Old_Builds_7_1",
}
NEWEST_DOWNLOAD = "https://www.virtualbox.org/wiki/Downloads"
VAGRANT_INSTALL_FIX = "install Vagrant 2.4 (https://developer.hashicorp.com/vagrant/install) or your distribution's vagrant package"
APPLE_SILICON_FIX = (
    "install VirtualBox {min} or newer for macOS / Apple Silicon hosts ({url}) with Vagrant >= 2.4.2 "
    "(VirtualBox 7.2 needs Vagrant >= 2.4.9) and an arm64 box{box}, or use `--provider libvirt` (qemu)"
)
HYPERV_FIX = (
    "for full speed, turn the hypervisor off: in an administrator prompt run `bcdedit /set hypervisorlaunchtype off` "
    "and reboot (`bcdedit /set hypervisorlaunchtype auto` turns it back on), or turn off the Windows features "
    "\"Hyper-V\", \"Virtual Machine Platform\" and \"Windows Hypervisor Platform\" (optionalfeatures.exe) and "
    "Core isolation > Memory integrity, then reboot; WSL2 and Docker Desktop need the hypervisor: keep it on if you "
    "use them and expect slower VMs"
)


def newest_virtualbox_for(vagrant_version: str) -> tuple[int, int] | None:
    v = version_tuple(vagrant_version)
    newest = None
    for first, vbox in VAGRANT_VBOX_TABLE:
        if v >= first:
            newest = vbox
    return newest


def _v(t: tuple[int, ...]) -> str:
    return ".".join(map(str, t))


def install_fix(host: HostInfo | None, vagrant: ToolVersion) -> str:
    """Which VirtualBox to install: one the installed Vagrant drives, the arm64 build on
    Apple Silicon."""
    if host is not None and host.apple_silicon:
        return apple_silicon_fix()
    newest = newest_virtualbox_for(vagrant.version) if vagrant.version else None
    if newest in _DOWNLOAD:
        return f"install VirtualBox {_v(newest)} ({_DOWNLOAD[newest]}): Vagrant {vagrant.version} drives VirtualBox up to {_v(newest)}"
    if newest == VAGRANT_VBOX_TABLE[-1][1]:
        return f"install VirtualBox {_v(newest)} ({NEWEST_DOWNLOAD})"
    return (f"install VirtualBox 7.2 ({NEWEST_DOWNLOAD}) with Vagrant >= 2.4.9 "
            "(or VirtualBox 7.1 with Vagrant >= 2.4.2, 7.0 with >= 2.3.2)")


def apple_silicon_fix() -> str:
    box = default_box("virtualbox", ARM64)
    return APPLE_SILICON_FIX.format(min=_v(ARM64_MIN_VIRTUALBOX), url=NEWEST_DOWNLOAD,
                                    box=f" ({box.name} {box.version})" if box else "")


def findings(spec: LabSpec, facts: HostFacts) -> list[Finding]:
    vb, vg, host = facts.virtualbox, facts.vagrant, facts.host
    if not vb.installed:
        where = "on PATH" + (" or where the VirtualBox installer puts it" if host and host.os != LINUX else "")
        return [Finding("virtualbox", FAIL, f"VirtualBox is not installed (VBoxManage not found {where})", install_fix(host, vg))]
    if vb.error:
        return [Finding("virtualbox", FAIL, f"VirtualBox does not work: {vb.error}",
                        "reinstall VirtualBox and reboot so its kernel modules load")]
    found = f"VirtualBox {vb.version}"
    if host is not None and vb.path and not host.vboxmanage_on_path:
        # The Windows installer never adds VBoxManage to PATH; Vagrant looks in the same places.
        found += f" (VBoxManage at {vb.path}, not on PATH: labctl and Vagrant find it there)"
    out = [Finding("virtualbox", OK, found)]
    out += _pair(vb, vg)
    if host is not None and host.apple_silicon:
        out += _apple_silicon(vb)
    if host is not None and host.os == WINDOWS:
        out += _windows_hypervisor(vb, host)
    return out


def _pair(vb: ToolVersion, vg: ToolVersion) -> list[Finding]:
    if not vg.version:
        return []
    vbox_minor = version_tuple(vb.version)[:2]
    newest = newest_virtualbox_for(vg.version)
    pair = f"Vagrant {vg.version} with VirtualBox {vb.version}"
    if newest is None:
        return [Finding("pair", FAIL, f"{pair}: this Vagrant is too old for labctl", VAGRANT_INSTALL_FIX)]
    if vbox_minor <= newest:
        return [Finding("pair", OK, f"{pair} is a known working pair")]
    need = next((first for first, v in VAGRANT_VBOX_TABLE if v >= vbox_minor), None)
    if need:
        return [Finding("pair", FAIL, f"{pair}: this Vagrant refuses VirtualBox {_v(vbox_minor)}",
                        f"upgrade Vagrant to >= {_v(need)}, or install VirtualBox {_v(newest)}")]
    return [Finding("pair", WARN, f"{pair}: VirtualBox {_v(vbox_minor)} is newer than labctl's compatibility table",
                    f"if `vagrant up` says the VirtualBox version is not supported, upgrade Vagrant or install VirtualBox {_v(VAGRANT_VBOX_TABLE[-1][1])}")]


def _apple_silicon(vb: ToolVersion) -> list[Finding]:
    v = version_tuple(vb.version)
    if v < (7, 1):
        return [Finding("apple-silicon", FAIL, f"VirtualBox {vb.version} cannot run arm64 guests on Apple Silicon "
                        "(VirtualBox supports Apple Silicon hosts from 7.1)", apple_silicon_fix())]
    if v < ARM64_MIN_VIRTUALBOX:
        return [Finding("apple-silicon", WARN, f"VirtualBox {vb.version} on Apple Silicon: the arm64 boxes are built for "
                        f"VirtualBox {_v(ARM64_MIN_VIRTUALBOX)} or newer", apple_silicon_fix())]
    return [Finding("apple-silicon", OK, f"VirtualBox {vb.version} runs arm64 guests on Apple Silicon")]


def _windows_hypervisor(vb: ToolVersion, host: HostInfo) -> list[Finding]:
    hv = host.hypervisor
    if hv.present is None:
        return [Finding("hyper-v", WARN, f"could not tell whether Hyper-V runs Windows ({hv.evidence})",
                        "if VMs are very slow or do not start: " + HYPERV_FIX)]
    if not hv.present:
        return [Finding("hyper-v", OK, f"no hypervisor runs Windows ({hv.evidence}): VirtualBox has the CPU to itself")]
    if version_tuple(vb.version) < (6, 1):
        return [Finding("hyper-v", FAIL, f"a hypervisor runs Windows ({hv.evidence}) and VirtualBox {vb.version} cannot run VMs beside it",
                        "install VirtualBox 7, or " + HYPERV_FIX)]
    return [Finding("hyper-v", WARN,
                    f"a hypervisor runs Windows ({hv.evidence}): VirtualBox {vb.version} runs the VMs on top of it through "
                    "the Windows Hypervisor Platform: noticeably slower (a turtle icon in the VM window), and some guests fail to boot", HYPERV_FIX)]
