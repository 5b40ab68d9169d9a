"""kubeadm's configurations as data (dicts in the v1beta3 / kubelet v1beta1 schemas),
dumped as YAML only at the edge.

Building them as dicts means a value is never spliced into YAML text: an address or
a name with a character YAML cares about stays a string.
"""

from __future__ import annotations

import re

from labctl.spec.model import LabSpec, Node

CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
API_PORT = 6443
KUBEADM_API = "kubeadm.k8s.io/v1beta3"

_TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
_CA_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def _registration(node: Node) -> dict:
    return {"name": node.name, "criSocket": CRI_SOCKET, "kubeletExtraArgs": {"node-ip": node.ip}}


def init_configuration(spec: LabSpec) -> dict:
    m = spec.master
    return {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": m.ip, "bindPort": API_PORT},
        "nodeRegistration": _registration(m),
    }


def cluster_configuration(spec: LabSpec) -> dict:
    m = spec.master
    return {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": spec.name,
        "kubernetesVersion": f"v{spec.kubernetes.version.lstrip('v')}",
        "controlPlaneEndpoint": f"{m.ip}:{API_PORT}",
        "networking": {"podSubnet": spec.network.pod_cidr, "serviceSubnet": spec.network.service_cidr},
    }


def kubelet_configuration() -> dict:
    # containerd runs with SystemdCgroup = true; kubelet must use the same driver.
    return {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "cgroupDriver": "systemd"}


def join_configuration_data(spec: LabSpec, node: Node, token: str, ca_cert_hash: str) -> dict:
    if not _TOKEN.fullmatch(token):
        raise ValueError("not a kubeadm bootstrap token")  # message must not echo it
    if not _CA_HASH.fullmatch(ca_cert_hash):
        raise ValueError(f"not a CA certificate hash: {ca_cert_hash!r}")
    return {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": f"{spec.master.ip}:{API_PORT}",
                "token": token,
                "caCertHashes": [ca_cert_hash],
            }
        },
        "nodeRegistration": _registration(node),
    }


def dump(*docs: dict) -> str:
    """Documents as one YAML stream, keys in the order built (as kubeadm's docs show them)."""
    import yaml

    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)


def kubeadm_init_config(spec: LabSpec) -> str:
    """The config for `kubeadm init` (no secrets in it)."""
    return dump(init_configuration(spec), cluster_configuration(spec), kubelet_configuration())


def join_configuration(spec: LabSpec, node: Node, token: str, ca_cert_hash: str) -> str:
    """The JoinConfiguration the engine uploads (mode 0600) to the node.

    It holds the bootstrap token: never write it to the host, never log it."""
    return dump(join_configuration_data(spec, node, token, ca_cert_hash))
