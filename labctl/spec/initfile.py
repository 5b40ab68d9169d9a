"""`labctl init`: write a lab.yaml with every default spelled out and explained.

The text is formatted by hand (PyYAML's dumper drops comments), and every value is
written from the default spec, so parsing the file back gives exactly that spec
(tests/spec/test_initfile.py checks the round trip).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from labctl.lab.fsutil import atomic_write
from labctl.lab.paths import LabPaths
from labctl.spec.defaults import default_spec
from labctl.spec.limits import MAX_WORKERS, MIN_WORKERS, SUPPORTED_PATCHES
from labctl.spec.model import LabSpec
from labctl.spec.rules import validate
from labctl.errors import ExitCode, LabError, SpecError, UsageError


class SpecExists(LabError):
    """lab.yaml is already there and --force was not given."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class InitResult:
    path: Path
    spec: LabSpec
    overwritten: bool
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "name": self.spec.name,
            "nodes": [n.name for n in self.spec.nodes],
            "overwritten": self.overwritten,
            "warnings": list(self.warnings),
        }


def _q(value: object) -> str:
    # A JSON string is a valid YAML double-quoted scalar: no value is ever re-typed
    # (a version like 1.27 must not become a float).
    return json.dumps(str(value))


def _b(value: bool) -> str:
    return "true" if value else "false"


def spec_yaml(spec: LabSpec) -> str:
    """lab.yaml text for ``spec``: every field, each with a one-line comment."""
    b, k, n, c, m, lv = spec.box, spec.kubernetes, spec.network, spec.calico, spec.metallb, spec.libvirt
    lines = [
        "# labctl lab spec. Every key is optional: a missing key takes the default shown",
        "# here; an unknown key is an error. Check it with `labctl render`, start with `labctl up`.",
        "",
        f"name: {_q(spec.name)}  # lab name: VirtualBox group /<name>, VM names <name>-<node>",
        f"provider: {_q(spec.provider)}  # virtualbox or libvirt",
        "",
        "box:",
        f"  name: {_q(b.name)}  # Vagrant box (Debian-family guest)",
        f"  version: {_q(b.version)}  # pinned so every student boots the same image",
        "",
        "kubernetes:",
        f"  version: {_q(k.version)}  # kubeadm/kubelet/kubectl release; supported: "
        + ", ".join(sorted(SUPPORTED_PATCHES)) + " (pinned downloads ship for these)",
        "",
        "network:",
        f"  host_only: {_q(n.host_only)}  # host-only network of the nodes; VirtualBox allows 192.168.56.0/21",
        f"  pod_cidr: {_q(n.pod_cidr)}  # Pod addresses (Calico IP pool, kubeadm podSubnet)",
        f"  service_cidr: {_q(n.service_cidr)}  # ClusterIP addresses (kubeadm serviceSubnet)",
        f"  vbox_networks_conf_allows: {_b(n.vbox_networks_conf_allows)}  # true only if /etc/vbox/networks.conf allows host_only",
        "",
        "calico:",
        f"  version: {_q(c.version)}  # Calico manifest release (3.25/3.26 support Kubernetes 1.27)",
        "",
        "metallb:",
        f"  version: {_q(m.version)}  # MetalLB release (native manifest, L2 mode)",
        f"  pool: {_q(m.pool)}  # LoadBalancer addresses: inside host_only, away from the nodes",
        "",
        "libvirt:  # used only with provider: libvirt",
        f"  driver: {_q(lv.driver)}  # kvm, or qemu for software emulation",
        f"  cpu_mode: {_q(lv.cpu_mode)}  # host-passthrough, host-model or custom",
        f"  cpu_model: {_q(lv.cpu_model)}  # with cpu_mode custom, e.g. qemu64; empty: none",
        f"  boot_timeout: {lv.boot_timeout}  # seconds Vagrant waits for SSH after boot",
        "",
        f"# One master and {MIN_WORKERS}-{MAX_WORKERS} workers. Keep the course's names: pod-3 and pod-4",
        "# select the node named k8s-node1. memory is in MB; the master needs >= 2 CPUs, 1700 MB.",
        "nodes:",
    ]
    for node in spec.nodes:
        lines += [
            f"  - name: {_q(node.name)}  # hostname and Kubernetes node name",
            f"    role: {_q(node.role)}  # master or worker",
            f"    ip: {_q(node.ip)}  # host-only address (kubelet --node-ip)",
            f"    cpus: {node.cpus}",
            f"    memory: {node.memory}",
        ]
    return "\n".join(lines) + "\n"


def init_lab(paths: LabPaths, *, workers: int = 2, name: str | None = None, force: bool = False) -> InitResult:
    """Write <lab>/lab.yaml for the course's lab with ``workers`` workers."""
    spec = default_spec(workers=workers, name=name)
    try:
        warnings = tuple(validate(spec))  # a bad --name fails here, before anything is written
    except SpecError as err:
        # The default spec breaks no rule but the name: that is bad command-line input.
        raise UsageError(f"--{err.message}", hint=err.hint) from None
    exists = paths.spec.exists()
    if exists and not force:
        raise SpecExists(
            f"{paths.spec} already exists",
            hint="edit it, or run `labctl init --force` to replace it with the defaults",
        )
    paths.root.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.spec, spec_yaml(spec))
    return InitResult(path=paths.spec, spec=spec, overwritten=exists, warnings=warnings)
