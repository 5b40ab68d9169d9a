"""Known causes of a failed step, recognised from its output or the node's facts.

Each rule turns evidence into the hint a failure message carries. Order matters: the
most specific cause first.
"""

from __future__ import annotations

import re

NAT_ADDRESS = "10.0.2.15"  # every VirtualBox NAT adapter's address

_UNREACHABLE = re.compile(
    r"labctl: cannot reach|Could not resolve|Temporary failure resolving|Failed to fetch https?://"
    r"|Could not connect to|Network is unreachable|Connection timed out",
    re.IGNORECASE,
)
_PREFLIGHT = re.compile(r"\[ERROR ([A-Za-z0-9_.-]+)\]")
_PREFLIGHT_FIX = {
    "NumCPU": "give the master at least 2 CPUs in lab.yaml (nodes[].cpus) and run `labctl destroy` + `labctl up`",
    "Mem": "give the master at least 1700 MB in lab.yaml (nodes[].memory) and recreate the lab",
    "Swap": "swap is on: the swap step did not stick; run `labctl ssh NODE -- swapon --show` and `labctl up` again",
    "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables": "br_netfilter is not loaded; run `labctl up` again so the kernel step reloads it",
    "FileContent--proc-sys-net-ipv4-ip_forward": "net.ipv4.ip_forward is 0; run `labctl up` again so the kernel step sets it",
    "CRI": "containerd is not answering; see `labctl ssh NODE -- sudo journalctl -u containerd`",
    "Port-6443": "something already listens on 6443: a half-done init; run `labctl ssh k8s-master -- sudo kubeadm reset -f` then `labctl up`",
    "DirAvailable--etc-kubernetes-manifests": "a previous kubeadm run left files behind; `sudo kubeadm reset -f` on the node, then `labctl up`",
    "FileAvailable--etc-kubernetes-kubelet.conf": "the node joined before; `sudo kubeadm reset -f` on it, then `labctl up`",
}


def node_ip_hint(node: str) -> str:
    return (
        f"{node} registered with VirtualBox's NAT address {NAT_ADDRESS}: kubelet must run with "
        f"--node-ip set to the host-only address; check /etc/default/kubelet on {node} "
        "(the kubelet-config step) and run `labctl up` again"
    )


def hint_for(node: str, step: str, rc: int | None, output: str, *, exit_unreachable: int = 75) -> str | None:
    if rc is None:
        return f"the command on {node} did not finish in time; check the VM is running (`labctl status`) and run `labctl up` again"
    if rc == exit_unreachable or _UNREACHABLE.search(output):
        return (
            f"{node} cannot reach a package repository (pkgs.k8s.io, the distribution's mirror or a download site): "
            "check the VM's internet access (NAT adapter, DNS, proxy) and run `labctl up` again; it continues from this step"
        )
    if NAT_ADDRESS in output and step in ("nodes-ready", "kubeadm-join", "kubeadm-init", "calico"):
        named = re.search(r"(\S+) has InternalIP " + re.escape(NAT_ADDRESS), output)
        return node_ip_hint(named.group(1) if named else node)
    preflight = _PREFLIGHT.findall(output)
    if preflight:
        first = preflight[0]
        fix = _PREFLIGHT_FIX.get(first, "read the [ERROR ...] lines above")
        return f"kubeadm's preflight check {first} failed: {fix}"
    return None
