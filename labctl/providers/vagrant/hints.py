"""Hints for the `vagrant` failures labctl knows: what the person should do next."""

from __future__ import annotations

import re

# Known failures: (pattern over the output, hint). First match wins, so the specific
# ones come before the generic ones.
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I | re.S), h)
    for p, h in (
        (
            r"VirtualBoxInvalidHostSubnet|not within the\s+allowed ranges",
            "VirtualBox >= 6.1.28 only allows host-only addresses in 192.168.56.0/21: "
            "put network.host_only inside it in lab.yaml, or allow the range in "
            "/etc/vbox/networks.conf (e.g. `* 10.0.0.0/8 192.168.0.0/16`) and set "
            "network.vbox_networks_conf_allows",
        ),
        (
            r"VERR_VMX_IN_VMX_ROOT_MODE|VERR_SVM_IN_USE|being used by another hypervisor",
            "another hypervisor holds VT-x/AMD-V: on Linux unload KVM (`sudo modprobe -r "
            "kvm_intel kvm_amd`), on Windows turn off Hyper-V/WSL2's virtual machine platform",
        ),
        (
            r"VT-x is not available|AMD-V is not available|VERR_VMX_NO_VMX|VERR_SVM_NO_SVM"
            r"|VERR_VMX_MSR_ALL_VMX_DISABLED|VERR_SVM_DISABLED",
            "hardware virtualization is off: enable VT-x/AMD-V (Intel VT / SVM) in the "
            "BIOS/UEFI settings, or on a cloud VM enable nested virtualization",
        ),
        (
            r"kernel module is not loaded|vboxdrv|VERR_VM_DRIVER_NOT_INSTALLED",
            "VirtualBox's kernel modules are not loaded: run `sudo /sbin/vboxconfig` "
            "(with Secure Boot, sign the modules first)",
        ),
        (
            r"BoxAddShortNotFound|BoxNotFound|could not be found or\s+could not be accessed"
            r"|box '[^']*' (?:could not be found|does not exist)|BoxAddNoMatchingVersion",
            "the box in lab.yaml (box.name, box.version) is not installed and could not "
            "be downloaded: check the name and your network, or add it by hand with "
            "`vagrant box add NAME --box-version VERSION`",
        ),
        (
            r"Vagrant could not detect VirtualBox|VirtualBoxNotDetected",
            "install VirtualBox (https://www.virtualbox.org/wiki/Downloads) and check "
            "`VBoxManage --version`, then run `labctl doctor`",
        ),
        (
            r"version of VirtualBox installed that is not supported|VirtualBoxUnsupportedVersion"
            r"|VirtualBoxVersionUnsupported",
            "this Vagrant release does not support the installed VirtualBox: upgrade "
            "Vagrant (e.g. VirtualBox 7.1 needs Vagrant >= 2.4.2); `labctl doctor` shows the pair",
        ),
        (
            r"ProviderNotUsable|isn't usable on this system",
            "the provider cannot run on this host: see the reason above and run `labctl doctor`",
        ),
        (
            r"VMBootTimeout|Timed out while waiting for the machine to boot",
            "the VM did not answer SSH in time: look at its console (VirtualBox GUI), "
            "check that hardware virtualization is on and the host is not overloaded, "
            "or raise the boot timeout",
        ),
        (
            r"would collide with some other|ForwardPortCollision|port collision",
            "a forwarded port is taken on the host: stop what listens there, or "
            "`labctl destroy` and `labctl up` so Vagrant picks free ports",
        ),
        (
            r"MachineActionLockedError|MachineLocked|machine because it is locked"
            r"|already executing an action on the machine",
            "another vagrant process is working on this machine: wait for it or stop it",
        ),
        (
            r"MachineNotFound|was not found configured for",
            "the Vagrantfile has no such machine: run `labctl render` after changing lab.yaml",
        ),
        (
            r"NoEnvironmentError|A Vagrant environment or target machine is required",
            "the lab folder has no Vagrantfile: run `labctl render` (or `labctl up`) there",
        ),
        (
            r"SnapshotNotFound|snapshot name `[^`]*` was not found",
            "no snapshot by that name: `labctl snapshot list` shows the existing ones",
        ),
        (
            r"SnapshotConflictFailed|option to replace an existing snapshot",
            "a snapshot by that name exists: choose another name or replace it with --force",
        ),
        (
            r"SSHNotReady|not yet ready for SSH",
            "the machine is not running: `labctl up` starts it",
        ),
        (
            r"FogLibvirtConnectionError|virConnectOpen failed",
            "libvirt is not reachable: start libvirtd (and virtlogd) and check its socket",
        ),
        (
            r"VBoxManageError|error while executing `VBoxManage`",
            "VBoxManage failed: the VBoxManage command and its error are shown above",
        ),
    )
)


def hint_for(output: str) -> str | None:
    for pattern, hint in _HINTS:
        if pattern.search(output):
            return hint
    return None
