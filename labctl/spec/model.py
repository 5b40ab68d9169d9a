"""The lab spec's types: what a lab is made of.

Pydantic dataclasses: every instance is type-checked when it is built (from lab.yaml,
by `dataclasses.replace`, or in code), unknown keys are refused, and they stay plain
frozen dataclasses for the rest of labctl (`replace`, `asdict`, positional `Node(...)`).
The rules between fields (networks, addresses, sizes) live in labctl.spec.rules.

Types are strict where YAML could silently change a meaning: an int is never a bool or
"2048", a bool is never "yes"; a str accepts a bare number (``version: 1.27`` is read as
the text it looks like, and the rules then say what is wrong with it).
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, field
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, StrictBool, StrictInt, model_validator
from pydantic.dataclasses import dataclass

from labctl.errors import NotFound
from labctl.spec.limits import ROLE_DEFAULTS, SUPPORTED_KUBERNETES


def _number_as_text(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_number_as_text)]
_CONFIG = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_CONFIG)
class Node:
    name: Text
    role: Text
    ip: Text
    cpus: StrictInt = ROLE_DEFAULTS["worker"]["cpus"]
    memory: StrictInt = ROLE_DEFAULTS["worker"]["memory"]  # MB

    @model_validator(mode="before")
    @classmethod
    def _role_defaults(cls, data: Any) -> Any:
        # In lab.yaml role may be left out (a worker), and cpus/memory follow the role.
        if isinstance(data, dict):
            role = data.get("role", "worker")
            defaults = ROLE_DEFAULTS.get(role, ROLE_DEFAULTS["worker"]) if isinstance(role, str) else {}
            return {"role": role, **defaults, **data}
        return data

    @property
    def is_master(self) -> bool:
        return self.role == "master"


@dataclass(frozen=True, config=_CONFIG)
class Box:
    name: Text = "bento/ubuntu-22.04"
    # A bento release with VirtualBox and libvirt-free builds; pinned so every student
    # of a class boots the same image.
    version: Text = "202401.31.0"


@dataclass(frozen=True, config=_CONFIG)
class Network:
    host_only: Text = "192.168.56.0/24"
    pod_cidr: Text = "20.96.0.0/12"
    service_cidr: Text = "10.96.0.0/16"
    # Set true only when the host's /etc/vbox/networks.conf allows the chosen range.
    vbox_networks_conf_allows: StrictBool = False


@dataclass(frozen=True, config=_CONFIG)
class Kubernetes:
    version: Text = SUPPORTED_KUBERNETES["1.27"]

    @property
    def minor(self) -> str:
        return ".".join(self.version.lstrip("v").split(".")[:2])

    @property
    def package_version(self) -> str:
        # pkgs.k8s.io names its debs "<version>-1.1" (no "v": validation accepts v1.27.16).
        return f"{self.version.lstrip('v')}-1.1"


@dataclass(frozen=True, config=_CONFIG)
class Calico:
    version: Text = "v3.26.4"  # 3.26 is the release tested against Kubernetes 1.27


@dataclass(frozen=True, config=_CONFIG)
class MetalLB:
    version: Text = "v0.13.12"
    pool: Text = "192.168.56.200-192.168.56.220"

    def pool_range(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        first, _, last = self.pool.partition("-")
        return ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())


@dataclass(frozen=True, config=_CONFIG)
class Libvirt:
    """Settings of the libvirt provider (ignored by VirtualBox)."""

    driver: Text = "kvm"  # "qemu" where KVM is unusable (software emulation)
    cpu_mode: Text = "host-passthrough"
    cpu_model: Text = ""
    boot_timeout: StrictInt = 600  # seconds Vagrant waits for SSH


# lab.yaml's sections, in the order they are written and checked.
SECTIONS = {"box": Box, "kubernetes": Kubernetes, "network": Network, "calico": Calico,
            "metallb": MetalLB, "libvirt": Libvirt}


@dataclass(frozen=True, config=_CONFIG)
class LabSpec:
    name: Text = "k8s-lab"
    provider: Text = "virtualbox"
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
        raise NotFound(
            f"no node named {name!r} in lab {self.name!r}",
            hint="nodes: " + ", ".join(n.name for n in self.nodes),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes"] = [asdict(n) for n in self.nodes]
        return d
