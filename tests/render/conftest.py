from __future__ import annotations

from dataclasses import replace

from labctl.spec import LabSpec, Libvirt, MetalLB, Network, Node, default_spec


def custom_network_spec() -> LabSpec:
    """Another host-only /24 inside VirtualBox's range, other Pod/Service CIDRs."""
    nodes = (
        Node("cp", "master", "192.168.58.10", 2, 2048),
        Node("k8s-node1", "worker", "192.168.58.11", 1, 1536),
        Node("w2", "worker", "192.168.58.12", 1, 1024),
    )
    return replace(
        default_spec(),
        name="net-lab",
        network=Network(host_only="192.168.58.0/24", pod_cidr="172.16.0.0/16", service_cidr="10.112.0.0/16"),
        metallb=MetalLB(pool="192.168.58.100-192.168.58.120"),
        nodes=nodes,
    )


def libvirt_spec() -> LabSpec:
    return replace(
        default_spec(workers=1),
        name="virt-lab",
        provider="libvirt",
        libvirt=Libvirt(driver="qemu", cpu_mode="custom", cpu_model="qemu64", boot_timeout=900),
    )


SPECS = {
    "default": lambda: default_spec(),
    "0-workers": lambda: default_spec(workers=0),
    "1-worker": lambda: default_spec(workers=1),
    "5-workers": lambda: default_spec(workers=5),
    "custom-network": custom_network_spec,
    "libvirt": libvirt_spec,
}
