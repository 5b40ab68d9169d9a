"""Does a host route overlap the lab's networks? (a LAN or VPN on the host-only range
breaks the lab; one over the Pod or Service range breaks Pods' reach to it)."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from labctl.host.findings import FAIL, OK, WARN, Finding
from labctl.host.hostfacts import HostFacts

if TYPE_CHECKING:
    from labctl.spec.model import LabSpec

# Interfaces a hypervisor creates for a host-only network: a route of the lab's own
# network through one of them is the lab itself (or another lab of the same course).
_HOST_ONLY_DEVS = re.compile(r"^(vboxnet\d+|virbr\d+|vnet\d+)$|-hostonly$")


def _is_host_only(dev: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    # Windows names the interface by its address: VirtualBox's host-only adapter holds
    # the network's first address (192.168.56.1), where a LAN's DHCP gives the router.
    return bool(_HOST_ONLY_DEVS.search(dev)) or dev == f"if {next(net.hosts(), '')}"


def check_routes(spec: LabSpec, host: HostFacts) -> list[Finding]:
    if host.routes is None:
        return [Finding("routes", WARN, "could not read the host's routing table", "check by hand that no host network overlaps " + spec.network.host_only)]
    nets = {
        "network.host_only": ipaddress.ip_network(spec.network.host_only),
        "network.pod_cidr": ipaddress.ip_network(spec.network.pod_cidr),
        "network.service_cidr": ipaddress.ip_network(spec.network.service_cidr),
    }
    out: list[Finding] = []
    for route in host.routes:
        if route.dst in ("default", "", "0.0.0.0/0"):
            continue
        try:
            dst = ipaddress.ip_network(route.dst, strict=False)
        except ValueError:
            continue
        if dst.version != 4:
            continue
        for field_name, net in nets.items():
            if not dst.overlaps(net):
                continue
            # The lab's own adapter: its network route (and, on Windows, its /32 host routes).
            if field_name == "network.host_only" and dst.subnet_of(net) and _is_host_only(route.dev, net):
                continue
            if field_name == "network.host_only":
                out.append(Finding("routes", FAIL, f"the host routes {dst} via {route.dev}, which overlaps {field_name} {net}",
                                   f"pick another {field_name} in lab.yaml (inside 192.168.56.0/21), or disconnect the network on {route.dev}"))
            else:
                out.append(Finding("routes", WARN, f"the host routes {dst} via {route.dev}, which overlaps {field_name} {net}",
                                   f"pick a {field_name} that does not overlap {dst}, or Pods cannot reach that network"))
    if not out:
        out.append(Finding("routes", OK, "no host route overlaps the lab's networks"))
    return out
