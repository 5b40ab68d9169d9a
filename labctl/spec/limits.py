"""What a lab may be: supported releases, roles, sizes and the networks to keep clear of.

Plain constants, shared by the model, the rules and the defaults (nothing here imports
the spec, so any of them can use these without a cycle).
"""

from __future__ import annotations

import ipaddress

# The one list of providers a lab may name lives with the providers.
from labctl.providers import PROVIDERS  # noqa: F401 - re-exported

SPEC_FILE = "lab.yaml"

# Kubernetes minor -> newest patch release; labctl pins the package version to these.
SUPPORTED_KUBERNETES = {"1.27": "1.27.16"}
# The patch releases a lab can be: those with a pinned artifact set shipped with labctl
# (labctl/artifacts/sets/k8s-<version>.yaml). Another 1.27.x would have nothing to install.
SUPPORTED_PATCHES = {"1.27.16"}
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
LIBVIRT_DRIVERS = ("kvm", "qemu")
LIBVIRT_CPU_MODES = ("host-passthrough", "host-model", "custom")

# Per-role defaults: fit a 16 GB laptop (1+2 nodes = 6 GB) and kubeadm's preflight.
ROLE_DEFAULTS = {"master": {"cpus": 2, "memory": 2048}, "worker": {"cpus": 2, "memory": 2048}}
