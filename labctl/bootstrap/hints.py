"""Known causes of a failed step, recognised from its output or the node's facts.

Each rule turns evidence into the hint a failure message carries. Download and
registry failures are told apart by their real cause (checksum, TLS, 404/410, Docker
Hub's rate limit, DNS, no route) with the same classifier the host cache uses
(labctl.artifacts.classify), so a failure reads the same on the host and on a node.
Order matters: the most specific cause first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from labctl.artifacts import classify as cl

NAT_ADDRESS = "10.0.2.15"  # every VirtualBox NAT adapter's address

# apt's and bash's own words for an unreachable site (curl's and ctr's are classified).
_UNREACHABLE = re.compile(
    r"labctl: cannot reach|Could not resolve|Temporary failure resolving|Failed to fetch https?://"
    r"|Could not connect to|Network is unreachable|Connection timed out",
    re.IGNORECASE,
)
_PREFLIGHT = re.compile(r"\[ERROR ([A-Za-z0-9_.-]+)\]")
_DPKG_LOCK = re.compile(r"Could not get lock /var/lib/dpkg|held dpkg's lock")
_PREFLIGHT_FIX = {
    "NumCPU": "give the master at least 2 CPUs in lab.yaml (nodes[].cpus) and run `labctl destroy` + `labctl up`",
    "Mem": "give the master at least 1700 MB in lab.yaml (nodes[].memory) and recreate the lab",
    "Swap": "swap is on: the swap step did not stick; run `labctl ssh NODE -- swapon --show` and `labctl up` again",
    "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables": "br_netfilter is not loaded; run `labctl up` again so the kernel step reloads it",
    "FileContent--proc-sys-net-ipv4-ip_forward": "net.ipv4.ip_forward is 0; run `labctl up` again so the kernel step sets it",
    "CRI": "containerd is not answering; see `labctl ssh NODE -- sudo journalctl -u containerd`",
    "FileExisting-conntrack": "conntrack is missing: the kube-packages step installs it from the box's archive; run `labctl up` again",
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


def _nat_address(node: str, output: str) -> str | None:
    if NAT_ADDRESS not in output:
        return None
    named = re.search(r"(\S+) has InternalIP " + re.escape(NAT_ADDRESS), output)
    return node_ip_hint(named.group(1) if named else node)


def _preflight(node: str, output: str) -> str | None:
    found = _PREFLIGHT.findall(output)
    if not found:
        return None
    return f"kubeadm's preflight check {found[0]} failed: {_PREFLIGHT_FIX.get(found[0], 'read the [ERROR ...] lines above')}"


# Rules a step opts into by name (Step.hints): evidence that means something only in
# that step's output (10.0.2.15 is harmless in most outputs).
RULES: dict[str, Callable[[str, str], str | None]] = {"nat-address": _nat_address, "preflight": _preflight}


# apt's "W: Failed to fetch" reads as sha256sum's ": FAILED" to the classifier.
_APT_FETCH = re.compile(r"^([WE]): Failed to fetch", re.MULTILINE)


# The images and kubeadm-init scripts' last line when a pull fails.
_CANNOT_PULL = re.compile(r"labctl: cannot pull (\S+) from ")
_IMAGES_BUNDLE = ("or bring the images in: `labctl bundle export` on a host where a lab came up, then "
                  "`labctl up --bundle FILE`")
# Where the host's words (a file, LABCTL_MIRROR, SSL_CERT_FILE) do not fit a pull by a
# node's containerd.
_IMAGE_HINTS = {
    cl.WITHDRAWN: "the registry does not serve it (withdrawn, renamed or made private); update labctl, "
                  + _IMAGES_BUNDLE,
    cl.RATE_LIMITED: "the registry rate-limits this address (Docker Hub limits anonymous pulls per IP: a classroom "
                     "behind one NAT hits it fast); wait an hour, " + _IMAGES_BUNDLE,
    cl.TLS: "the TLS handshake failed: a proxy or firewall that intercepts HTTPS (the VM must trust its CA "
            "certificate), or a wrong clock in the VM (check `date` there); " + _IMAGES_BUNDLE,
    cl.DNS: "the registry's name did not resolve in the VM: check its DNS (`getent hosts NAME` on the node); "
            "offline, " + _IMAGES_BUNDLE,
    cl.REFUSED: "the registry's address (or the VM's proxy) refused the connection; " + _IMAGES_BUNDLE,
    cl.SERVER: "the registry failed (HTTP 5xx); retry later, " + _IMAGES_BUNDLE,
    cl.HTTP: "the registry answered with an unexpected HTTP status; retry, " + _IMAGES_BUNDLE,
    cl.FORBIDDEN: "the registry or a proxy refused access (HTTP 401/403/407): a proxy needing credentials; "
                  + _IMAGES_BUNDLE,
    cl.CHECKSUM: "the content received does not match its digest (a proxy or mirror serving other content); "
                 "retry, " + _IMAGES_BUNDLE,
    cl.DISK_FULL: "give the VM a larger disk, or free space there (`sudo crictl rmi --prune`)",
}
_NETWORK = frozenset({cl.TLS, cl.TLS_CLOCK, cl.DNS, cl.REFUSED, cl.NO_ROUTE, cl.TIMEOUT, cl.RESET, cl.TRUNCATED,
                      cl.SERVER, cl.RATE_LIMITED, cl.HTTP})
_AGAIN = "then run `labctl up` again: it continues from this step"


def download_hint(node: str, output: str) -> str | None:
    """The real cause of a failed download, pull or checksum check on ``node``."""
    found = cl.classify_text(_APT_FETCH.sub(r"\1 - failed to fetch", output))
    if found is None:
        return None
    phrase = cl.PHRASE[found.reason]
    pull = _CANNOT_PULL.search(output)
    if pull is not None:
        return f"{node} cannot pull {pull.group(1)} ({phrase}): {_IMAGE_HINTS.get(found.reason, found.hint)}; {_AGAIN}"
    if found.reason == cl.CHECKSUM:
        return (f"a file on {node} does not match its pinned sha256 (damaged on the way or on disk); the script removed "
                "it, so `labctl up` pushes it again from the host cache")
    if found.reason == cl.DISK_FULL:
        return f"{node}'s disk is full: {_IMAGE_HINTS[cl.DISK_FULL]}; {_AGAIN}"
    if found.reason not in _NETWORK:
        return f"a download on {node} failed ({phrase}): {found.hint}; {_AGAIN}"
    return f"{node} cannot reach a package repository or registry ({phrase}): {found.hint}; {_AGAIN}"


def hint_for(node: str, rc: int | None, output: str, *, rules: Sequence[str] = (), fallback: str | None = None,
             exit_unreachable: int = 75) -> str | None:
    if rc is None:
        return f"the command on {node} did not finish in time; check the VM is running (`labctl status`) and run `labctl up` again"
    for name in rules:
        hint = RULES[name](node, output)
        if hint:
            return hint
    if _DPKG_LOCK.search(output):
        return (f"another package manager held dpkg's lock on {node} (unattended-upgrades runs after a first boot): "
                f"wait a few minutes, or see `labctl ssh {node} -- ps -C apt-get,dpkg,unattended-upgr`; {_AGAIN}")
    hint = download_hint(node, output)
    if hint:
        return hint
    pull = _CANNOT_PULL.search(output)
    if pull is not None:
        return (f"{node} cannot pull {pull.group(1)}: ctr's words above name the cause; check the VM's internet access "
                f"(NAT adapter, DNS, proxy), {_IMAGES_BUNDLE}; {_AGAIN}")
    if rc == exit_unreachable or _UNREACHABLE.search(output):
        return (
            f"{node} cannot reach a package repository (the distribution's mirror or a registry): "
            "check the VM's internet access (NAT adapter, DNS, proxy) and run `labctl up` again; it continues from this step"
        )
    if fallback:
        return f"{fallback}"
    return None
