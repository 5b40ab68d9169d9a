"""`labctl doctor` for the libvirt provider: plugin, libvirtd, and the driver settings.

Gathered facts (LibvirtFacts) come from the real commands on PATH; ``findings`` judges
them against the spec, each finding with its fix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.host.findings import FAIL, OK, WARN, Finding

if TYPE_CHECKING:
    from labctl.spec.model import LabSpec

# vagrant-libvirt connects here unless told otherwise (its `uri`/`qemu_use_session`).
DEFAULT_URI = "qemu:///system"
PLUGIN_FIX = "install Vagrant's libvirt plugin: `apt-get install vagrant-libvirt` (Debian/Ubuntu) or `vagrant plugin install vagrant-libvirt`"
VIRSH_FIX = "install libvirt: `apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86`"
EMULATION_SETTINGS = "libvirt.driver: qemu, libvirt.cpu_mode: custom, libvirt.cpu_model: qemu64"
_PLUGIN = re.compile(r"^vagrant-libvirt \(([^,)]+)", re.M)


@dataclass(frozen=True)
class LibvirtFacts:
    plugin_version: str | None  # None: vagrant-libvirt not listed
    plugin_error: str | None  # `vagrant plugin list` itself failed
    virsh: bool
    uri: str
    hypervisor: str | None  # e.g. "QEMU 7.2.0" when libvirtd answered
    connect_error: str | None
    kvm_device: bool  # /dev/kvm exists and this user may open it


def gather(env: Mapping[str, str]) -> LibvirtFacts:
    path = env.get("PATH", "")
    plugin_version = plugin_error = None
    vagrant = shutil.which("vagrant", path=path)
    if vagrant:
        try:
            proc = subprocess.run([vagrant, "plugin", "list"], env=dict(env), capture_output=True, text=True, timeout=120)
            m = _PLUGIN.search(proc.stdout)
            plugin_version = m.group(1).strip() if m else None
            if proc.returncode != 0:
                plugin_error = f"`vagrant plugin list` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-200:]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            plugin_error = f"`vagrant plugin list` failed: {exc}"
    uri = env.get("LIBVIRT_DEFAULT_URI") or DEFAULT_URI
    virsh = shutil.which("virsh", path=path)
    hypervisor = connect_error = None
    if virsh:
        try:
            proc = subprocess.run([virsh, "-c", uri, "version"], env=dict(env), capture_output=True, text=True, timeout=30)
            if proc.returncode == 0:
                m = re.search(r"Running hypervisor:\s*(.+)", proc.stdout)
                hypervisor = m.group(1).strip() if m else "libvirt"
            else:
                lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
                connect_error = lines[-1].strip() if lines else f"exit {proc.returncode}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            connect_error = str(exc)
    kvm = Path("/dev/kvm")
    return LibvirtFacts(
        plugin_version=plugin_version,
        plugin_error=plugin_error,
        virsh=virsh is not None,
        uri=uri,
        hypervisor=hypervisor,
        connect_error=connect_error,
        kvm_device=kvm.exists() and os.access(kvm, os.R_OK | os.W_OK),
    )


def findings(spec: "LabSpec", facts: LibvirtFacts | None, vagrant_installed: bool) -> list[Finding]:
    if facts is None:
        return [Finding("provider", WARN, "provider libvirt: the host's libvirt was not probed", "run `labctl doctor`")]
    out: list[Finding] = []
    if vagrant_installed:
        if facts.plugin_version:
            out.append(Finding("vagrant-libvirt", OK, f"vagrant-libvirt {facts.plugin_version}"))
        else:
            msg = facts.plugin_error or "Vagrant's libvirt plugin (vagrant-libvirt) is not installed"
            out.append(Finding("vagrant-libvirt", FAIL, msg, PLUGIN_FIX))
    if not facts.virsh:
        out.append(Finding("libvirt", FAIL, "libvirt is not installed (virsh not found on PATH)", VIRSH_FIX))
    elif facts.hypervisor:
        out.append(Finding("libvirt", OK, f"libvirtd answers at {facts.uri} ({facts.hypervisor})"))
    else:
        out.append(Finding(
            "libvirt", FAIL, f"libvirtd does not answer at {facts.uri}: {facts.connect_error}",
            "start it (`sudo systemctl enable --now libvirtd`, or `sudo libvirtd -d` without systemd) "
            "and join the libvirt group (`sudo usermod -aG libvirt $USER`, then log in again)",
        ))
    lv = spec.libvirt
    if lv.driver == "kvm" and not facts.kvm_device:
        out.append(Finding("libvirt.driver", FAIL, "libvirt.driver is kvm but /dev/kvm is missing or not accessible",
                           f"enable virtualisation in the BIOS/firmware and join the kvm group, or emulate: set {EMULATION_SETTINGS} in lab.yaml (slow)"))
    if lv.driver == "qemu" and lv.cpu_mode == "host-passthrough":
        out.append(Finding("libvirt.cpu_mode", FAIL, "libvirt.cpu_mode host-passthrough needs KVM; with libvirt.driver qemu the VM cannot start",
                           f"set {EMULATION_SETTINGS} in lab.yaml"))
    elif lv.driver == "qemu":
        out.append(Finding("libvirt.driver", WARN, "libvirt.driver is qemu: software emulation, every VM is several times slower",
                           f"use libvirt.driver: kvm where /dev/kvm works; keep libvirt.boot_timeout >= 600 (now {lv.boot_timeout})"))
    return out
