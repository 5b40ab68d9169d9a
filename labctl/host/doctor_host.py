"""`labctl doctor` about the machine itself: what it is, its CPUs, memory and disk, an
SSH client, and whether the lab's box has a build for its CPU architecture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labctl.host.boxes import box_arch, default_box
from labctl.host.findings import FAIL, OK, WARN, Finding
from labctl.host.hostfacts import HostFacts
from labctl.host.platform import AMD64, ARM64, MACOS, WINDOWS

if TYPE_CHECKING:
    from labctl.spec.model import LabSpec

# Room per VM: the box's linked clone grows by the node's packages and images (~3 GB
# with the control-plane images); below the minimum a node's disk fills during `up`.
DISK_PER_NODE_MB = 5 * 1024
DISK_MIN_PER_NODE_MB = 2 * 1024
# The host's own OS needs this much (below it VMs get swapped out) ...
HOST_MIN_MEMORY_MB = 1024
# ... and a desktop with a browser comfortably this much.
HOST_COMFORT_MEMORY_MB = 3072
SSH_CLIENT_FIX = {
    WINDOWS: "add Windows' OpenSSH client (Settings > System > Optional features > OpenSSH Client, or in an "
             "administrator PowerShell `Add-WindowsCapability -Online -Name OpenSSH.Client~~~~0.0.1.0`)",
    MACOS: "macOS ships /usr/bin/ssh: put /usr/bin back on PATH",
}


def check_host(spec: LabSpec, facts: HostFacts) -> list[Finding]:
    host = facts.host
    if host is None:
        return []
    out = [Finding("host", OK, f"{host.label}, {host.cpus} CPUs, {host.memory_mb} MB, Python {host.python}")]
    if host.ssh_client is None:
        out.append(Finding("ssh-client", WARN, "no OpenSSH client (ssh) on PATH: `labctl ssh NODE -- COMMAND` works "
                           "without it, an interactive `labctl ssh NODE` does not",
                           SSH_CLIENT_FIX.get(host.os, "install your distribution's openssh-client package")))
    out += _box(spec, facts)
    return out


def _box(spec: LabSpec, facts: HostFacts) -> list[Finding]:
    host = facts.host
    assert host is not None
    if host.arch not in (AMD64, ARM64):
        return []  # an architecture labctl has no box table for: nothing to judge
    box = f"box {spec.box.name} {spec.box.version}"
    built_for = box_arch(spec.box.name, spec.box.version, spec.provider)
    want = default_box(spec.provider, host.arch)
    if built_for == host.arch:
        return [Finding("box", OK, f"{box} has a {spec.provider} build for {host.arch}")]
    if built_for is not None:
        fix = (f"set box.name: {want.name} and box.version: {want.version} in lab.yaml" if want
               else f"name a box with a {spec.provider} build for {host.arch} in lab.yaml")
        return [Finding("box", FAIL, f"{box} has no {spec.provider} build for this {host.label} "
                        f"(labctl uses it for {built_for})", fix)]
    if host.arch == ARM64:
        return [Finding("box", WARN, f"{box}: labctl does not know whether it has a {spec.provider} build for arm64",
                        "if `vagrant up` says the box does not support the architecture, name an arm64 box in lab.yaml"
                        + (f" ({want.name} {want.version})" if want else ""))]
    return []


def check_resources(spec: LabSpec, host: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    cpus = sum(n.cpus for n in spec.nodes)
    widest = max(spec.nodes, key=lambda n: n.cpus)
    if widest.cpus > host.cpus:
        out.append(Finding("cpus", FAIL, f"{widest.name} wants {widest.cpus} CPUs, the host has {host.cpus}", f"set nodes' cpus to at most {host.cpus} in lab.yaml"))
    elif cpus > host.cpus:
        out.append(Finding("cpus", WARN, f"the lab's {cpus} vCPUs share the host's {host.cpus} CPUs (slower, still works)", "fewer workers (`labctl init --nodes 1 --force`) make bring-up faster"))
    else:
        out.append(Finding("cpus", OK, f"{cpus} vCPUs of the host's {host.cpus}"))

    mem = sum(n.memory for n in spec.nodes)
    if mem > host.memory_mb - HOST_MIN_MEMORY_MB:
        out.append(Finding("memory", FAIL, f"the lab needs {mem} MB of memory, the host has {host.memory_mb} MB (and keeps {HOST_MIN_MEMORY_MB} MB for itself)",
                           "use fewer workers (`labctl init --nodes 1 --force`) or less memory per worker (>= 1536 MB for k8s-node1)"))
    elif mem > host.memory_mb - HOST_COMFORT_MEMORY_MB:
        out.append(Finding("memory", WARN, f"the lab takes {mem} MB of the host's {host.memory_mb} MB", "close other applications while the lab runs"))
    else:
        out.append(Finding("memory", OK, f"{mem} MB of the host's {host.memory_mb} MB"))

    disk = DISK_PER_NODE_MB * len(spec.nodes)
    if host.disk_free_mb < DISK_MIN_PER_NODE_MB * len(spec.nodes):
        out.append(Finding("disk", FAIL, f"{host.disk_free_mb} MB free under {host.disk_path}, the lab needs about {disk} MB", "free some disk space"))
    elif host.disk_free_mb < disk:
        out.append(Finding("disk", WARN, f"{host.disk_free_mb} MB free under {host.disk_path}, the lab may grow to about {disk} MB", "free some disk space"))
    else:
        out.append(Finding("disk", OK, f"{host.disk_free_mb} MB free under {host.disk_path} (lab needs about {disk} MB)"))
    return out
