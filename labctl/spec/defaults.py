"""The course's lab, the built-in default: k8s-master .30, k8s-node1 .31, k8s-node2 .32."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from labctl.errors import UsageError
from labctl.spec.limits import MAX_WORKERS, MIN_WORKERS, ROLE_DEFAULTS
from labctl.spec.model import Box, LabSpec, Network, Node

MASTER_NAME = "k8s-master"
FIRST_IP_OFFSET = 30  # the course's master is .30, node1 .31, node2 .32


def default_nodes(workers: int = 2, network: Network | None = None) -> tuple[Node, ...]:
    """A master and ``workers`` workers at .30, .31, ... of the host-only network.
    Raises ValueError when the network has no such addresses (the loader says which field)."""
    net = ipaddress.ip_network((network or Network()).host_only)
    base = net.network_address + FIRST_IP_OFFSET
    nodes = [Node(MASTER_NAME, "master", str(base), **ROLE_DEFAULTS["master"])]
    for i in range(1, workers + 1):
        nodes.append(Node(f"k8s-node{i}", "worker", str(base + i), **ROLE_DEFAULTS["worker"]))
    return tuple(nodes)


def default_spec(workers: int = 2, name: str | None = None) -> LabSpec:
    """The course's lab with ``workers`` workers (what `init --nodes N` and `up --nodes N`
    ask for: a count out of range is bad command-line input, exit USAGE)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not MIN_WORKERS <= workers <= MAX_WORKERS:
        raise UsageError(
            f"--nodes: {workers} workers is outside {MIN_WORKERS}..{MAX_WORKERS}",
            hint=f"choose between {MIN_WORKERS} and {MAX_WORKERS} worker nodes",
        )
    spec = LabSpec(nodes=default_nodes(workers))
    spec = replace(spec, box=host_default_box(spec.provider))
    if name is not None:
        spec = replace(spec, name=name)
    return spec


def host_default_box(provider: str, machine: str | None = None) -> Box:
    """The box a lab gets when lab.yaml names none: the published build for this host's
    CPU (a Mac with Apple Silicon cannot boot an amd64 box under VirtualBox), else the
    model's default. ``machine`` is platform.machine()'s answer, for tests."""
    import platform

    from labctl.host.boxes import default_box
    from labctl.host.platform import normalise_arch

    choice = default_box(provider, normalise_arch(machine if machine is not None else platform.machine()))
    return Box(choice.name, choice.version) if choice else Box()
