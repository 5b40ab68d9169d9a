"""The lab spec: what a lab is, its built-in default (the course's lab) and validation.

A lab lives in a folder. ``lab.yaml`` there is optional; without it the course's lab
is used. Everything is validated before anything is written or started, and every
rule names the offending field and the fix (SpecError).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from labctl.errors import SpecError

SPEC_FILE = "lab.yaml"

# Kubernetes minor -> newest patch release; labctl pins the package version to these.
SUPPORTED_KUBERNETES = {"1.27": "1.27.16"}
# Patch releases of 1.27 that were published on pkgs.k8s.io.
SUPPORTED_PATCHES = {f"1.27.{p}" for p in range(0, 17)}
PROVIDERS = ("virtualbox", "libvirt")
ROLES = ("master", "worker")
MIN_WORKERS, MAX_WORKERS = 0, 9  # .31-.39 stay below the MetalLB pool in the default net
# kubeadm preflight (NumCPU, Mem) for the control plane.
MASTER_MIN_CPUS, MASTER_MIN_MEMORY_MB = 2, 1700
# pod-4 requests 1Gi on k8s-node1; kubelet reserves ~100Mi and Calico, kube-proxy and
# MetalLB's speaker take some more, so a worker below this cannot schedule it.
WORKER_MIN_MEMORY_MB = 1536
# VirtualBox >= 6.1.28 on Linux/macOS accepts host-only addresses only here unless
# /etc/vbox/networks.conf says otherwise.
VBOX_DEFAULT_RANGE = ipaddress.ip_network("192.168.56.0/21")
# Every VirtualBox NAT adapter has this address; a lab network containing it breaks nodes.
VBOX_NAT_NET = ipaddress.ip_network("10.0.2.0/24")
COURSE_NODE = "k8s-node1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    ip: str
    cpus: int
    memory: int  # MB

    @property
    def is_master(self) -> bool:
        return self.role == "master"


@dataclass(frozen=True)
class Box:
    name: str = "bento/ubuntu-22.04"
    # A bento release with VirtualBox and libvirt-free builds; pinned so every student
    # of a class boots the same image.
    version: str = "202401.31.0"


@dataclass(frozen=True)
class Network:
    host_only: str = "192.168.56.0/24"
    pod_cidr: str = "20.96.0.0/12"
    service_cidr: str = "10.96.0.0/16"
    # Set true only when the host's /etc/vbox/networks.conf allows the chosen range.
    vbox_networks_conf_allows: bool = False


@dataclass(frozen=True)
class Kubernetes:
    version: str = SUPPORTED_KUBERNETES["1.27"]

    @property
    def minor(self) -> str:
        return ".".join(self.version.lstrip("v").split(".")[:2])

    @property
    def package_version(self) -> str:
        # pkgs.k8s.io names its debs "<version>-1.1" (no "v": validation accepts v1.27.16).
        return f"{self.version.lstrip('v')}-1.1"


@dataclass(frozen=True)
class Calico:
    version: str = "v3.26.4"  # 3.26 is the release tested against Kubernetes 1.27


@dataclass(frozen=True)
class MetalLB:
    version: str = "v0.13.12"
    pool: str = "192.168.56.200-192.168.56.220"

    def pool_range(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        first, _, last = self.pool.partition("-")
        return ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())


@dataclass(frozen=True)
class Libvirt:
    """Settings of the libvirt provider (ignored by VirtualBox)."""

    driver: str = "kvm"  # "qemu" where KVM is unusable (software emulation)
    cpu_mode: str = "host-passthrough"
    cpu_model: str = ""
    boot_timeout: int = 600  # seconds Vagrant waits for SSH


@dataclass(frozen=True)
class LabSpec:
    name: str = "k8s-lab"
    provider: str = "virtualbox"
    box: Box = field(default_factory=Box)
    kubernetes: Kubernetes = field(default_factory=Kubernetes)
    network: Network = field(default_factory=Network)
    calico: Calico = field(default_factory=Calico)
    metallb: MetalLB = field(default_factory=MetalLB)
    libvirt: Libvirt = field(default_factory=Libvirt)
    nodes: tuple[Node, ...] = ()

    @property
    def master(self) -> Node:
        return next(n for n in self.nodes if n.is_master)

    @property
    def workers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_master)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        from labctl.errors import NotFound

        raise NotFound(
            f"no node named {name!r} in lab {self.name!r}",
            hint="nodes: " + ", ".join(n.name for n in self.nodes),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes"] = [asdict(n) for n in self.nodes]
        return d


# Per-role defaults: fit a 16 GB laptop (1+2 nodes = 6 GB) and kubeadm's preflight.
ROLE_DEFAULTS = {"master": {"cpus": 2, "memory": 2048}, "worker": {"cpus": 2, "memory": 2048}}
MASTER_NAME = "k8s-master"
FIRST_IP_OFFSET = 30  # the course's master is .30, node1 .31, node2 .32


def default_nodes(workers: int = 2, network: Network | None = None) -> tuple[Node, ...]:
    net = ipaddress.ip_network((network or Network()).host_only)
    base = net.network_address + FIRST_IP_OFFSET
    nodes = [Node(MASTER_NAME, "master", str(base), **ROLE_DEFAULTS["master"])]
    for i in range(1, workers + 1):
        nodes.append(Node(f"k8s-node{i}", "worker", str(base + i), **ROLE_DEFAULTS["worker"]))
    return tuple(nodes)


def default_spec(workers: int = 2, name: str | None = None) -> LabSpec:
    """The course's lab: k8s-master .30, k8s-node1 .31, k8s-node2 .32."""
    check_worker_count(workers, "--nodes")
    spec = LabSpec(nodes=default_nodes(workers))
    if name is not None:
        spec = replace(spec, name=name)
    return spec


def check_worker_count(workers: int, field_name: str = "nodes") -> None:
    if not MIN_WORKERS <= workers <= MAX_WORKERS:
        raise SpecError(
            field_name,
            f"{workers} workers is outside {MIN_WORKERS}..{MAX_WORKERS}",
            hint=f"choose between {MIN_WORKERS} and {MAX_WORKERS} worker nodes",
        )


# ---------------------------------------------------------------- loading


def _known(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def _reject_unknown(data: dict, cls, where: str) -> None:
    import difflib

    for key in data:
        if key not in _known(cls):
            close = difflib.get_close_matches(str(key), sorted(_known(cls)), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(sorted(_known(cls)))
            raise SpecError(f"{where}{key}", "unknown key", hint=hint)


def _section(cls, data: Any, where: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise SpecError(where.rstrip("."), "must be a mapping", hint=f"see `labctl init` for the layout of {where.rstrip('.')}")
    _reject_unknown(data, cls, where)
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = _coerce(data[f.name], f.type, f"{where}{f.name}")
    return cls(**kwargs)


def _coerce(value: Any, type_name: str, where: str) -> Any:
    t = str(type_name)
    if t == "bool":
        if not isinstance(value, bool):
            raise SpecError(where, f"expected true or false, got {value!r}", hint="write true or false without quotes")
        return value
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(where, f"expected a whole number, got {value!r}", hint="write a number without quotes or units, like 2048")
        return value
    if t == "str":
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SpecError(where, f"expected a string, got {value!r}", hint="write a single value in quotes")
        return str(value)
    return value


def spec_from_dict(data: Any) -> LabSpec:
    """Build and validate a spec from parsed YAML. Missing keys take the defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("lab.yaml", "must be a mapping of keys to values", hint="run `labctl init` for a template")
    _reject_unknown(data, LabSpec, "")
    sections = {
        "box": Box,
        "kubernetes": Kubernetes,
        "network": Network,
        "calico": Calico,
        "metallb": MetalLB,
        "libvirt": Libvirt,
    }
    kwargs: dict[str, Any] = {}
    for key, cls in sections.items():
        kwargs[key] = _section(cls, data.get(key), f"{key}.")
    for key in ("name", "provider"):
        if key in data:
            kwargs[key] = _coerce(data[key], "str", key)
    network = kwargs["network"]
    if "nodes" in data:
        kwargs["nodes"] = _nodes_from(data["nodes"])
    else:
        kwargs["nodes"] = default_nodes(2, network)
    spec = LabSpec(**kwargs)
    validate(spec)
    return spec


def _nodes_from(raw: Any) -> tuple[Node, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError("nodes", "must be a non-empty list of nodes", hint="run `labctl init` for an example")
    nodes = []
    for i, item in enumerate(raw):
        where = f"nodes[{i}]"
        if not isinstance(item, dict):
            raise SpecError(where, "must be a mapping with name, role and ip", hint="write it like {name: k8s-node1, role: worker, ip: 192.168.56.31}")
        _reject_unknown(item, Node, where + ".")
        for required in ("name", "ip"):
            if required not in item:
                raise SpecError(f"{where}.{required}", "is required", hint="every node needs a name and an ip")
        role = _coerce(item.get("role", "worker"), "str", f"{where}.role")
        defaults = ROLE_DEFAULTS.get(role, ROLE_DEFAULTS["worker"])
        nodes.append(
            Node(
                name=_coerce(item["name"], "str", f"{where}.name"),
                role=role,
                ip=_coerce(item["ip"], "str", f"{where}.ip"),
                cpus=_coerce(item.get("cpus", defaults["cpus"]), "int", f"{where}.cpus"),
                memory=_coerce(item.get("memory", defaults["memory"]), "int", f"{where}.memory"),
            )
        )
    return tuple(nodes)


def load_spec(lab_dir: Path) -> LabSpec:
    """The lab's spec: lab.yaml when present, else the built-in course lab."""
    path = Path(lab_dir) / SPEC_FILE
    if not path.exists():
        spec = default_spec()
        validate(spec)
        return spec
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"lab.yaml line {mark.line + 1}" if mark else "lab.yaml"
        raise SpecError(where, f"is not valid YAML ({getattr(exc, 'problem', exc)})", hint="fix the syntax or regenerate it with `labctl init --force`") from None
    return spec_from_dict(data)


# ---------------------------------------------------------------- validation


def _net(value: str, where: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise SpecError(where, f"{value!r} is not a network in CIDR form ({exc})", hint="write it like 192.168.56.0/24") from None
    if net.version != 4:
        raise SpecError(where, f"{value} is IPv6; labs are IPv4 only", hint="use an IPv4 network")
    return net


def _addr(value: str, where: str) -> ipaddress.IPv4Address:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise SpecError(where, f"{value!r} is not an IPv4 address", hint="write it like 192.168.56.31") from None
    if addr.version != 4:
        raise SpecError(where, f"{value} is IPv6; labs are IPv4 only", hint="use an IPv4 address")
    return addr


def validate(spec: LabSpec) -> list[str]:
    """Raise SpecError on the first rule broken; return warnings (non-fatal findings)."""
    warnings: list[str] = []
    if not _DNS_LABEL.match(spec.name):
        raise SpecError("name", f"{spec.name!r} is not a valid lab name", hint="use lowercase letters, digits and '-', like k8s-lab")
    if spec.provider not in PROVIDERS:
        raise SpecError("provider", f"{spec.provider!r} is not supported", hint="use one of: " + ", ".join(PROVIDERS))
    if not spec.box.name.strip():
        raise SpecError("box.name", "is empty", hint="name a Vagrant box like bento/ubuntu-22.04")
    if not spec.box.version.strip():
        raise SpecError("box.version", "is empty", hint="pin the box version so every student gets the same image")

    version = spec.kubernetes.version.lstrip("v")
    if version not in SUPPORTED_PATCHES:
        raise SpecError(
            "kubernetes.version",
            f"{spec.kubernetes.version} is not supported",
            hint="supported: " + ", ".join(f"1.27.0-{v}" for v in SUPPORTED_KUBERNETES.values()),
        )
    for where, v in (("calico.version", spec.calico.version), ("metallb.version", spec.metallb.version)):
        if not _VERSION.match(v):
            raise SpecError(where, f"{v!r} is not a release version", hint="write it like v3.26.4")
    if not spec.calico.version.lstrip("v").startswith(("3.26.", "3.25.")):
        raise SpecError("calico.version", f"{spec.calico.version} is not tested with Kubernetes 1.27", hint="use a 3.26.x or 3.25.x release, e.g. v3.26.4")

    host = _net(spec.network.host_only, "network.host_only")
    pods = _net(spec.network.pod_cidr, "network.pod_cidr")
    services = _net(spec.network.service_cidr, "network.service_cidr")
    if spec.provider == "virtualbox" and not spec.network.vbox_networks_conf_allows and not host.subnet_of(VBOX_DEFAULT_RANGE):
        raise SpecError(
            "network.host_only",
            f"{host} is outside {VBOX_DEFAULT_RANGE}, the only range VirtualBox allows by default",
            hint="pick a network inside 192.168.56.0/21, or allow it in /etc/vbox/networks.conf and set network.vbox_networks_conf_allows: true",
        )
    if host.prefixlen > 29:
        raise SpecError("network.host_only", f"{host} is too small for a lab", hint="use a /24 like 192.168.56.0/24")
    named = [("network.host_only", host), ("network.pod_cidr", pods), ("network.service_cidr", services)]
    if spec.provider == "virtualbox":
        named.append(("VirtualBox's NAT network", VBOX_NAT_NET))
    for i, (a_name, a) in enumerate(named):
        for b_name, b in named[i + 1 :]:
            if a.overlaps(b):
                field_name = a_name if not a_name.startswith("VirtualBox") else b_name
                other = b_name if field_name == a_name else a_name
                raise SpecError(field_name, f"{a} overlaps {other} ({b})", hint="choose networks that do not overlap")

    _validate_nodes(spec, host)
    _validate_libvirt(spec.libvirt)
    _validate_pool(spec, host, named)

    names = {n.name for n in spec.nodes}
    if COURSE_NODE not in names:
        warnings.append(f"no node named {COURSE_NODE}: the course's pod-3 and pod-4 exercises will stay Pending")
    return warnings


def _validate_nodes(spec: LabSpec, host: ipaddress.IPv4Network) -> None:
    masters = [n for n in spec.nodes if n.role == "master"]
    seen_names: dict[str, int] = {}
    seen_ips: dict[ipaddress.IPv4Address, int] = {}
    for i, node in enumerate(spec.nodes):
        where = f"nodes[{i}]"
        if node.role not in ROLES:
            raise SpecError(f"{where}.role", f"{node.role!r} is not a role", hint="use master or worker")
        if not _DNS_LABEL.match(node.name):
            raise SpecError(f"{where}.name", f"{node.name!r} is not a valid hostname", hint="use lowercase letters, digits and '-' (at most 63), like k8s-node1")
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
        if node.cpus < 1:
            raise SpecError(f"{where}.cpus", f"{node.cpus} CPUs", hint="give the node at least 1 CPU")
        if node.memory < 512:
            raise SpecError(f"{where}.memory", f"{node.memory} MB is too little to run a node", hint="give it at least 1024 MB")
        if node.is_master:
            if node.cpus < MASTER_MIN_CPUS:
                raise SpecError(f"{where}.cpus", f"{node.cpus} CPU is below kubeadm's minimum for a control plane", hint=f"set it to {MASTER_MIN_CPUS} or more")
            if node.memory < MASTER_MIN_MEMORY_MB:
                raise SpecError(f"{where}.memory", f"{node.memory} MB is below kubeadm's minimum for a control plane ({MASTER_MIN_MEMORY_MB} MB)", hint="set it to 2048")
        elif node.name == COURSE_NODE and node.memory < WORKER_MIN_MEMORY_MB:
            raise SpecError(f"{where}.memory", f"{node.memory} MB cannot fit pod-4's 1Gi memory request", hint=f"set it to {WORKER_MIN_MEMORY_MB} or more (2048 recommended)")
    if len(masters) != 1:
        raise SpecError("nodes", f"a lab has exactly one master, this one has {len(masters)}", hint="set role: master on one node and role: worker on the others")
    workers = len(spec.nodes) - 1
    check_worker_count(workers)


LIBVIRT_DRIVERS = ("kvm", "qemu")
LIBVIRT_CPU_MODES = ("host-passthrough", "host-model", "custom")


def _validate_libvirt(lv: Libvirt) -> None:
    # Checked for every provider: a typo must not wait until someone switches to libvirt.
    if lv.driver not in LIBVIRT_DRIVERS:
        raise SpecError("libvirt.driver", f"{lv.driver!r} is not a vagrant-libvirt driver", hint="use kvm, or qemu for software emulation")
    if lv.cpu_mode not in LIBVIRT_CPU_MODES:
        raise SpecError("libvirt.cpu_mode", f"{lv.cpu_mode!r} is not a CPU mode", hint="use one of: " + ", ".join(LIBVIRT_CPU_MODES))
    if lv.cpu_model and lv.cpu_mode != "custom":
        raise SpecError("libvirt.cpu_model", f"{lv.cpu_model!r} needs libvirt.cpu_mode: custom", hint="set cpu_mode: custom, or leave cpu_model empty")
    if lv.boot_timeout < 60:
        raise SpecError("libvirt.boot_timeout", f"{lv.boot_timeout} s is too short for a VM to boot", hint="use 600 (900 under software emulation)")


def _validate_pool(spec: LabSpec, host: ipaddress.IPv4Network, named) -> None:
    try:
        first, last = spec.metallb.pool_range()
    except ValueError:
        raise SpecError("metallb.pool", f"{spec.metallb.pool!r} is not a range", hint="write it like 192.168.56.200-192.168.56.220") from None
    if first.version != 4 or last.version != 4 or first > last:
        raise SpecError("metallb.pool", f"{spec.metallb.pool} is not an ascending IPv4 range", hint="write it like 192.168.56.200-192.168.56.220")
    if first not in host or last not in host:
        raise SpecError("metallb.pool", f"{spec.metallb.pool} is not inside network.host_only {host}", hint="MetalLB's L2 mode answers only on the host-only network: pick a range inside it")
    if host.network_address + 1 >= first and host.network_address + 1 <= last:
        raise SpecError("metallb.pool", f"{spec.metallb.pool} contains the host's address {host.network_address + 1}", hint="start the pool above it, like .200")
    for i, node in enumerate(spec.nodes):
        addr = ipaddress.ip_address(node.ip)
        if first <= addr <= last:
            raise SpecError("metallb.pool", f"{spec.metallb.pool} contains {node.name}'s address {addr} (nodes[{i}].ip)", hint="move the pool above the node addresses, like .200-.220")
