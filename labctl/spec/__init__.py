"""The lab spec: what a lab is, its built-in default (the course's lab), its rules, and
loading lab.yaml as untrusted input.

The public surface; import from here, not from the modules:

    from labctl.spec import LabSpec, load_spec, default_spec, validate

Importing this package imports pydantic (the model's types): the CLI imports it only
inside command bodies, so `labctl --help` stays light.
"""

from labctl.spec.defaults import FIRST_IP_OFFSET, MASTER_NAME, default_nodes, default_spec
from labctl.spec.limits import (
    COURSE_NODE,
    LIBVIRT_CPU_MODES,
    LIBVIRT_DRIVERS,
    MASTER_MIN_CPUS,
    MASTER_MIN_MEMORY_MB,
    MAX_WORKERS,
    MIN_WORKERS,
    PROVIDERS,
    ROLE_DEFAULTS,
    ROLES,
    SPEC_FILE,
    SUPPORTED_KUBERNETES,
    SUPPORTED_PATCHES,
    VBOX_DEFAULT_RANGE,
    VBOX_NAT_NET,
    WORKER_MIN_MEMORY_MB,
)
from labctl.spec.load import load_spec, spec_from_dict
from labctl.spec.model import Box, Calico, Kubernetes, LabSpec, Libvirt, MetalLB, Network, Node
from labctl.spec.rules import check_worker_count, validate

__all__ = [
    "Box", "Calico", "Kubernetes", "LabSpec", "Libvirt", "MetalLB", "Network", "Node",
    "load_spec", "spec_from_dict", "validate", "check_worker_count", "default_spec", "default_nodes",
    "MASTER_NAME", "FIRST_IP_OFFSET", "SPEC_FILE", "SUPPORTED_KUBERNETES", "SUPPORTED_PATCHES", "PROVIDERS",
    "ROLES", "ROLE_DEFAULTS", "MIN_WORKERS", "MAX_WORKERS", "MASTER_MIN_CPUS", "MASTER_MIN_MEMORY_MB",
    "WORKER_MIN_MEMORY_MB", "VBOX_DEFAULT_RANGE", "VBOX_NAT_NET", "COURSE_NODE", "LIBVIRT_DRIVERS",
    "LIBVIRT_CPU_MODES",
]
