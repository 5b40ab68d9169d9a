"""The rules between a spec's fields: networks, addresses, sizes, releases.

The types are checked when a spec is built (labctl.spec.model); these rules run when it
is loaded. ``validate`` is memoised on the (frozen, hashable) spec: the first call runs
the rules, every later call for an equal spec (render, doctor, up) returns its warnings
without running them again. A broken rule raises SpecError naming the field and the fix;
a value is quoted through ``shown`` so an error line stays short whatever the input.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from labctl.errors import SpecError, clip, shown
from labctl.spec.limits import (
    COURSE_NODE,
    LIBVIRT_CPU_MODES,
    LIBVIRT_DRIVERS,
    MASTER_MIN_CPUS,
    MASTER_MIN_MEMORY_MB,
    MAX_WORKERS,
    MIN_WORKERS,
    PROVIDERS,
    ROLES,
    SUPPORTED_PATCHES,
    VBOX_DEFAULT_RANGE,
    VBOX_NAT_NET,
    WORKER_MIN_MEMORY_MB,
)
from labctl.spec.model import LabSpec, Libvirt, Network

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")


def validate(spec: LabSpec) -> list[str]:
    """Raise SpecError on the first rule broken; return warnings (non-fatal findings)."""
    return list(_checked(spec))


def rule_runs() -> int:
    """How many times the rules really ran in this process (not answered from memory);
    tests and benchmarks use it to show a spec is checked once per command."""
    return _checked.cache_info().misses


@functools.lru_cache(maxsize=32)
def _checked(spec: LabSpec) -> tuple[str, ...]:
    # lru_cache keeps only results: a spec that breaks a rule raises again on every call.
    _check_identity(spec)
    named = check_networks(spec.network, spec.provider)
    host = named[0][1]
    _check_nodes(spec, host)
    _check_libvirt(spec.libvirt)
    _check_pool(spec, host)
    warnings = []
    if COURSE_NODE not in {n.name for n in spec.nodes}:
        warnings.append(f"no node named {COURSE_NODE}: the course's pod-3 and pod-4 exercises will stay Pending")
    return tuple(warnings)


def check_worker_count(workers: int, field_name: str = "nodes") -> None:
    if not MIN_WORKERS <= workers <= MAX_WORKERS:
        raise SpecError(
            field_name,
            f"{workers} workers is outside {MIN_WORKERS}..{MAX_WORKERS}",
            hint=f"choose between {MIN_WORKERS} and {MAX_WORKERS} worker nodes",
        )


def _check_identity(spec: LabSpec) -> None:
    if not _DNS_LABEL.match(spec.name):
        raise SpecError("name", f"{shown(spec.name)} is not a valid lab name", hint="use lowercase letters, digits and '-', like k8s-lab")
    if spec.provider not in PROVIDERS:
        raise SpecError("provider", f"{shown(spec.provider)} is not supported", hint="use one of: " + ", ".join(PROVIDERS))
    if not spec.box.name.strip():
        raise SpecError("box.name", "is empty", hint="name a Vagrant box like bento/ubuntu-22.04")
    if not spec.box.version.strip():
        raise SpecError("box.version", "is empty", hint="pin the box version so every student gets the same image")
    if spec.kubernetes.version.lstrip("v") not in SUPPORTED_PATCHES:
        raise SpecError(
            "kubernetes.version",
            f"{shown(spec.kubernetes.version)} is not supported",
            hint="use " + " or ".join(sorted(SUPPORTED_PATCHES)) + " (the releases labctl ships pinned downloads for)",
        )
    for where, v in (("calico.version", spec.calico.version), ("metallb.version", spec.metallb.version)):
        if not _VERSION.match(v):
            raise SpecError(where, f"{shown(v)} is not a release version", hint="write it like v3.26.4")
    if not spec.calico.version.lstrip("v").startswith(("3.26.", "3.25.")):
        raise SpecError("calico.version", f"{spec.calico.version} is not tested with Kubernetes 1.27", hint="use a 3.26.x or 3.25.x release, e.g. v3.26.4")


def _net(value: str, where: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise SpecError(where, f"{shown(value)} is not a network in CIDR form ({clip(exc, 90)})", hint="write it like 192.168.56.0/24") from None
    if net.version != 4:
        raise SpecError(where, f"{shown(value)} is IPv6; labs are IPv4 only", hint="use an IPv4 network")
    return net


def _addr(value: str, where: str) -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise SpecError(where, f"{shown(value)} is not an IPv4 address", hint="write it like 192.168.56.31") from None
    if addr.version != 4:
        raise SpecError(where, f"{shown(value)} is IPv6; labs are IPv4 only", hint="use an IPv4 address")
    return addr


def check_networks(network: Network, provider: str) -> list[tuple[str, ipaddress.IPv4Network]]:
    """The lab's networks, checked and named, host-only first (the loader needs it to place
    default nodes)."""
    host = _net(network.host_only, "network.host_only")
    pods = _net(network.pod_cidr, "network.pod_cidr")
    services = _net(network.service_cidr, "network.service_cidr")
    if provider == "virtualbox" and not network.vbox_networks_conf_allows and not host.subnet_of(VBOX_DEFAULT_RANGE):
        raise SpecError(
            "network.host_only",
            f"{host} is outside {VBOX_DEFAULT_RANGE}, the only range VirtualBox allows by default",
            hint="pick a network inside 192.168.56.0/21, or allow it in /etc/vbox/networks.conf and set network.vbox_networks_conf_allows: true",
        )
    if host.prefixlen > 29:
        raise SpecError("network.host_only", f"{host} is too small for a lab", hint="use a /24 like 192.168.56.0/24")
    named = [("network.host_only", host), ("network.pod_cidr", pods), ("network.service_cidr", services)]
    if provider == "virtualbox":
        named.append(("VirtualBox's NAT network", VBOX_NAT_NET))
    for i, (a_name, a) in enumerate(named):
        for b_name, b in named[i + 1 :]:
            if a.overlaps(b):
                field_name = a_name if not a_name.startswith("VirtualBox") else b_name
                other = b_name if field_name == a_name else a_name
                raise SpecError(field_name, f"{a} overlaps {other} ({b})", hint="choose networks that do not overlap")
    return named


def _check_nodes(spec: LabSpec, host: ipaddress.IPv4Network) -> None:
    masters = [n for n in spec.nodes if n.role == "master"]
    seen_names: dict[str, int] = {}
    seen_ips: dict[ipaddress.IPv4Address, int] = {}
    for i, node in enumerate(spec.nodes):
        where = f"nodes[{i}]"
        if node.role not in ROLES:
            raise SpecError(f"{where}.role", f"{shown(node.role)} is not a role", hint="use master or worker")
        if not _DNS_LABEL.match(node.name):
            raise SpecError(f"{where}.name", f"{shown(node.name)} is not a valid hostname", hint="use lowercase letters, digits and '-' (at most 63), like k8s-node1")
        if node.name in seen_names:
            raise SpecError(f"{where}.name", f"{node.name!r} is used by nodes[{seen_names[node.name]}] too", hint="give every node its own name")
        seen_names[node.name] = i
        addr = _addr(node.ip, f"{where}.ip")
        if addr not in host or addr in (host.network_address, host.broadcast_address):
            raise SpecError(f"{where}.ip", f"{addr} is not a host address of network.host_only {host}", hint=f"pick an address inside {host}")
        if addr == host.network_address + 1:
            raise SpecError(f"{where}.ip", f"{addr} is the host's own address on the host-only network", hint="start node addresses above .1, like .30")
        if addr in seen_ips:
            raise SpecError(f"{where}.ip", f"{addr} is used by nodes[{seen_ips[addr]}] too", hint="give every node its own address")
        seen_ips[addr] = i
        _check_size(node, where)
    if len(masters) != 1:
        raise SpecError("nodes", f"a lab has exactly one master, this one has {len(masters)}", hint="set role: master on one node and role: worker on the others")
    check_worker_count(len(spec.nodes) - 1)


def _check_size(node, where: str) -> None:
    if node.cpus < 1:
        raise SpecError(f"{where}.cpus", f"{shown(node.cpus)} CPUs", hint="give the node at least 1 CPU")
    if node.memory < 512:
        raise SpecError(f"{where}.memory", f"{shown(node.memory)} MB is too little to run a node", hint="give it at least 1024 MB")
    if node.is_master:
        if node.cpus < MASTER_MIN_CPUS:
            raise SpecError(f"{where}.cpus", f"{node.cpus} CPU is below kubeadm's minimum for a control plane", hint=f"set it to {MASTER_MIN_CPUS} or more")
        if node.memory < MASTER_MIN_MEMORY_MB:
            raise SpecError(f"{where}.memory", f"{node.memory} MB is below kubeadm's minimum for a control plane ({MASTER_MIN_MEMORY_MB} MB)", hint="set it to 2048")
    elif node.name == COURSE_NODE and node.memory < WORKER_MIN_MEMORY_MB:
        raise SpecError(f"{where}.memory", f"{node.memory} MB cannot fit pod-4's 1Gi memory request", hint=f"set it to {WORKER_MIN_MEMORY_MB} or more (2048 recommended)")


def _check_libvirt(lv: Libvirt) -> None:
    # Checked for every provider: a typo must not wait until someone switches to libvirt.
    if lv.driver not in LIBVIRT_DRIVERS:
        raise SpecError("libvirt.driver", f"{shown(lv.driver)} is not a vagrant-libvirt driver", hint="use kvm, or qemu for software emulation")
    if lv.cpu_mode not in LIBVIRT_CPU_MODES:
        raise SpecError("libvirt.cpu_mode", f"{shown(lv.cpu_mode)} is not a CPU mode", hint="use one of: " + ", ".join(LIBVIRT_CPU_MODES))
    if lv.cpu_model and lv.cpu_mode != "custom":
        raise SpecError("libvirt.cpu_model", f"{shown(lv.cpu_model)} needs libvirt.cpu_mode: custom", hint="set cpu_mode: custom, or leave cpu_model empty")
    if lv.boot_timeout < 60:
        raise SpecError("libvirt.boot_timeout", f"{shown(lv.boot_timeout)} s is too short for a VM to boot", hint="use 600 (900 under software emulation)")


def _check_pool(spec: LabSpec, host: ipaddress.IPv4Network) -> None:
    pool = spec.metallb.pool
    try:
        first, last = spec.metallb.pool_range()
    except ValueError:
        raise SpecError("metallb.pool", f"{shown(pool)} is not a range", hint="write it like 192.168.56.200-192.168.56.220") from None
    if first.version != 4 or last.version != 4 or first > last:
        raise SpecError("metallb.pool", f"{shown(pool)} is not an ascending IPv4 range", hint="write it like 192.168.56.200-192.168.56.220")
    if first not in host or last not in host:
        raise SpecError("metallb.pool", f"{shown(pool)} is not inside network.host_only {host}", hint="MetalLB's L2 mode answers only on the host-only network: pick a range inside it")
    if first <= host.network_address + 1 <= last:
        raise SpecError("metallb.pool", f"{shown(pool)} contains the host's address {host.network_address + 1}", hint="start the pool above it, like .200")
    for i, node in enumerate(spec.nodes):
        addr = ipaddress.ip_address(node.ip)
        if first <= addr <= last:
            raise SpecError("metallb.pool", f"{shown(pool)} contains {node.name}'s address {addr} (nodes[{i}].ip)", hint="move the pool above the node addresses, like .200-.220")
