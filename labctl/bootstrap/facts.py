"""The facts a node reports, declared once, and reading the lines that facts.sh prints.

CATALOGUE is the one list of fact keys. playbooks/facts.sh.j2 prints exactly these
(the control-plane ones only on the master), steps declare the ones they read, and
the emulated test node answers with them; tests hold all three to this list.

facts.sh runs read-only probes in one SSH round trip. Every probe is guarded, so a
fact is either a value or the empty string; any other line (a warning from a tool, a
blank line) is ignored rather than guessed at.
"""

from __future__ import annotations

import re

from labctl.bootstrap.model import Facts

_LINE = re.compile(r"^([a-z][a-z0-9_]*)=(.*)$")

YES, NO = "yes", "no"

# What the spec (and the artifact set) expect: printed from the rendering, not probed.
EXPECTED = {
    "node_name": "the node's name in the spec",
    "role": "master or worker",
    "node_ip": "the node's host-only address",
    "host_only": "the host-only network (CIDR)",
    "pod_cidr": "the Pod network (CIDR)",
    "kube_expected_version": "the Kubernetes version the artifact set pins (1.27.16)",
    "metallb_expected_pool": "MetalLB's address range",
    "expected_nodes": "every node of the lab as name/ip, comma-separated",
}

PROBED = {
    "hostname": "hostname",
    "os": "PRETTY_NAME of /etc/os-release",
    "arch": "the node's architecture as the artifact set names it (amd64, arm64)",
    "node_ip_present": "yes when an interface carries node_ip",
    "node_ip_iface": "the interface that carries node_ip",
    "swap_active": "yes when swap is on",
    "swap_fstab": "yes when /etc/fstab has a swap line",
    "mod_overlay": "overlay module loaded",
    "mod_br_netfilter": "br_netfilter module loaded",
    "modules_persisted": "labctl's modules-load.d file is in place",
    "sysctl_bridge_nf_call_iptables": "its /proc/sys value",
    "sysctl_bridge_nf_call_ip6tables": "its /proc/sys value",
    "sysctl_ip_forward": "its /proc/sys value",
    "sysctl_persisted": "labctl's sysctl.d file is in place",
    "artifacts_pushed": "sha256 names of the files in /var/lib/labctl/artifacts (pushed, not yet installed)",
    "artifacts_missing": "ids of artifact-set files not installed with their pinned sha256",
    "distro_packages": "yes when conntrack, socat, ebtables and ethtool are installed",
    "containerd_installed": "containerd on PATH",
    "containerd_version": "containerd --version",
    "containerd_systemd_cgroup": "SystemdCgroup = true in /etc/containerd/config.toml",
    "containerd_active": "the containerd unit is active",
    "kubelet_version": "kubelet --version",
    "kubeadm_version": "kubeadm version -o short",
    "kubectl_version": "kubectl's client version",
    "kubelet_env_file": "yes when the kubelet unit reads /etc/default/kubelet (systemctl cat kubelet)",
    "kubelet_enabled": "the kubelet unit is enabled",
    "kubelet_node_ip": "--node-ip in /etc/default/kubelet",
    "kubelet_resolv_conf": "--resolv-conf in /etc/default/kubelet",
    "resolved_stub": "yes when resolv.conf points at systemd-resolved's stub",
    "kubelet_active": "the kubelet unit is active",
    "images_missing": "images the lab shares (calico, metallb, course) not in containerd's k8s.io namespace",
    "images_pushed": "image tarballs pushed from the host cache, not yet imported (sha256 names)",
    "images_exported": "images this node pulled and exported for the others, not yet collected (refs)",
    "admin_conf": "/etc/kubernetes/admin.conf exists",
    "init_marker": "kubeadm init finished (labctl's marker)",
    "kubelet_conf": "/etc/kubernetes/kubelet.conf exists",
    "join_marker": "kubeadm join finished (labctl's marker)",
}

# Asked of the API server, so only on the master and only once it answers.
CONTROL_PLANE = {
    "cluster_reachable": "the API server answers /readyz",
    "calico_daemonset": "calico-node exists",
    "calico_ipv4pool_cidr": "calico-node's CALICO_IPV4POOL_CIDR",
    "calico_ip_autodetection": "calico-node's IP_AUTODETECTION_METHOD",
    "calico_image": "calico-node's image",
    "metallb_controller": "MetalLB's controller has an available replica",
    "metallb_pool": "addresses of the lab-pool IPAddressPool",
    "metallb_l2advertisement": "the lab-l2 L2Advertisement exists",
    "nodes": "every registered node as name/Ready|NotReady/InternalIP, comma-separated",
}

CATALOGUE: dict[str, str] = {**EXPECTED, **PROBED, **CONTROL_PLANE}


def keys_for(role: str) -> set[str]:
    """The keys facts.sh prints on a node of ``role``."""
    return set(CATALOGUE) if role == "master" else set(EXPECTED) | set(PROBED)


def parse_facts(stdout: str) -> dict[str, str]:
    """``key=value`` lines -> dict. A key printed twice keeps its last value."""
    facts: dict[str, str] = {}
    for raw in stdout.splitlines():
        m = _LINE.match(raw.rstrip("\r"))
        if m:
            facts[m.group(1)] = m.group(2).strip()
    return facts


def is_yes(facts: Facts, key: str) -> bool:
    return facts.get(key, "") == YES


def words(facts: Facts, key: str) -> set[str]:
    """A comma-separated fact as a set (an empty fact is the empty set)."""
    return {w for w in facts.get(key, "").split(",") if w}


def node_list(value: str) -> dict[str, tuple[str, ...]]:
    """``a/Ready/1.2.3.4,b/NotReady/1.2.3.5`` -> {"a": ("Ready", "1.2.3.4"), ...}.

    facts.sh prints the cluster's nodes in this one-line form (and the expected ones as
    ``name/ip``) so that a fact stays a single line."""
    nodes: dict[str, tuple[str, ...]] = {}
    for item in value.split(","):
        parts = tuple(p for p in item.strip().split("/"))
        if parts and parts[0]:
            nodes[parts[0]] = parts[1:]
    return nodes
