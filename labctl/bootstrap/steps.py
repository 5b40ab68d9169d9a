"""The bootstrap catalogue: every step as data, and how a node's plan is made.

Each step's script is rendered per node from ``playbooks/<script>.sh.j2`` into
``<lab>/scripts/<node>/<id>.sh``. The engine uploads a node's scripts to
REMOTE_SCRIPTS on the node and runs a step with the command that ``plan_node`` gives.

Remote layout on a node (root-owned):
    /var/lib/labctl/scripts/<id>.sh, facts.sh     the node's rendered scripts (0755)
    /var/lib/labctl/artifacts/<sha256>            files pushed from the host cache, named
                                                  by digest; removed once installed
    /var/lib/labctl/installed/<artifact id>       the sha256 each artifact was installed from
    /etc/labctl/kubeadm-init.yaml                 written by the kubeadm-init script
    /etc/labctl/join.yaml                         uploaded by the engine (0600) right
                                                  before the join step; the script
                                                  deletes it after `kubeadm join`

Every ``done`` is a pure function of the facts the step declares (facts.CATALOGUE):
facts.sh prints the values the spec expects next to the ones it finds (e.g.
``node_ip`` and ``kubelet_node_ip``), so no decision needs the spec.

Order: a node runs its steps one at a time, in this order; ``after`` adds the waits
on other nodes (a worker joins once the master's CNI is done). A step may only wait
for steps listed before it, which keeps the graph free of cycles.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from labctl.bootstrap.facts import NO, YES, is_yes, node_list, parse_facts, words
from labctl.bootstrap.model import After, Facts, Plan, Step

REMOTE_DIR = "/var/lib/labctl"
REMOTE_SCRIPTS = f"{REMOTE_DIR}/scripts"
REMOTE_ARTIFACTS = f"{REMOTE_DIR}/artifacts"
REMOTE_INSTALLED = f"{REMOTE_DIR}/installed"
REMOTE_IMAGES = f"{REMOTE_DIR}/images"  # <sha256>.tar pushed; export/<ref, / as +>.tar made here
# Images pulled once per lab and moved between nodes: the artifact set's images of these
# groups (its "used_by"). The control plane's too: their layers then come once per lab
# (kubeadm init's own pull only re-reads the manifests from registry.k8s.io).
SHARED_IMAGES = ("calico", "metallb", "course", "control-plane")
JOIN_CONFIG_PATH = "/etc/labctl/join.yaml"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
FACTS_SCRIPT = "facts.sh"
EXIT_UNREACHABLE = 75

BOTH = frozenset({"master", "worker"})
MASTER = frozenset({"master"})
WORKER = frozenset({"worker"})

# Run on the master (no secrets in the command; its output IS a secret: run it with
# log_output=False and register it with SSHSession.add_secret before anything else).
JOIN_TOKEN_COMMAND = "sudo kubeadm token create --ttl 15m0s"
# sha256 of the cluster CA's public key, for JoinConfiguration caCertHashes (not secret).
CA_CERT_HASH_COMMAND = (
    "sudo openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt"
    " | openssl pkey -pubin -outform der"
    " | openssl dgst -sha256 -hex | sed 's/^.* /sha256:/'"
)
KUBECONFIG_COMMAND = f"sudo cat {ADMIN_CONF}"

# Engine work a step names (labctl/bootstrap/work.py carries it out).
PUSH_ARTIFACTS = "push-artifacts"
PUSH_IMAGES = "push-images"
COLLECT_IMAGES = "collect-images"
JOIN_CONFIG = "join-config"
EXPORT_KUBECONFIG = "export-kubeconfig"

_NETWORK_HINT = "check the node's internet access (NAT adapter, DNS, proxy), then run `labctl up` again"


# ------------------------------------------------------------------ decisions


def _swap_done(f: Facts) -> str | None:
    if f["swap_active"] == NO and f["swap_fstab"] == NO:
        return "swap is off and absent from /etc/fstab"
    return None


_SYSCTLS = ("sysctl_bridge_nf_call_iptables", "sysctl_bridge_nf_call_ip6tables", "sysctl_ip_forward")


def _kernel_done(f: Facts) -> str | None:
    loaded = is_yes(f, "mod_overlay") and is_yes(f, "mod_br_netfilter")
    persisted = is_yes(f, "modules_persisted") and is_yes(f, "sysctl_persisted")
    if loaded and persisted and all(f[k] == "1" for k in _SYSCTLS):
        return "overlay and br_netfilter loaded, sysctls set, both persisted"
    return None


def _installed(f: Facts, ids: Sequence[str]) -> bool:
    return not words(f, "artifacts_missing") & set(ids)


CONTAINERD_ARTIFACTS = ("containerd", "runc", "containerd-service")
KUBE_ARTIFACTS = ("kubeadm", "kubelet", "kubectl", "crictl", "cni-plugins", "kubelet-service", "kubeadm-dropin")


def _containerd_done(f: Facts) -> str | None:
    if _installed(f, CONTAINERD_ARTIFACTS) and is_yes(f, "containerd_systemd_cgroup") and is_yes(f, "containerd_active"):
        return f"containerd {f['containerd_version']} (pinned) runs with SystemdCgroup = true"
    return None


def _kubelet_config_done(f: Facts) -> str | None:
    want_ip = f["node_ip"]
    if not want_ip or f["kubelet_node_ip"] != want_ip:
        return None
    want_resolv = "/run/systemd/resolve/resolv.conf" if is_yes(f, "resolved_stub") else ""
    if f["kubelet_resolv_conf"] != want_resolv:
        return None
    return f"kubelet --node-ip={want_ip} already configured"


def _kube_done(f: Facts) -> str | None:
    if not _installed(f, KUBE_ARTIFACTS) or not is_yes(f, "distro_packages"):
        return None
    if not (is_yes(f, "kubelet_env_file") and is_yes(f, "kubelet_enabled")):
        return None
    return f"kubelet, kubeadm, kubectl {f['kube_expected_version']} installed from pinned files; kubelet reads /etc/default/kubelet"


def _images_done(f: Facts) -> str | None:
    if f["images_missing"] or f["images_exported"]:
        return None
    return "every shared image is in containerd"


def _init_done(f: Facts) -> str | None:
    # admin.conf appears halfway through `kubeadm init`; the marker only after success.
    if is_yes(f, "admin_conf") and is_yes(f, "init_marker"):
        return "control plane already initialized"
    return None


def _calico_done(f: Facts) -> str | None:
    if not is_yes(f, "calico_daemonset"):
        return None
    if f["calico_ipv4pool_cidr"] != f["pod_cidr"]:
        return None
    if f["calico_ip_autodetection"] != f"cidr={f['host_only']}":
        return None
    if not f["calico_image"].startswith("quay.io/calico/"):
        return None  # docker.io's anonymous pull limit breaks a classroom behind one NAT
    return "calico-node runs quay.io images with the lab's pod CIDR and host-only autodetection"


def _join_done(f: Facts) -> str | None:
    if is_yes(f, "kubelet_conf") and is_yes(f, "join_marker"):
        return "already joined"
    return None


def _metallb_done(f: Facts) -> str | None:
    if is_yes(f, "metallb_controller") and f["metallb_pool"] == f["metallb_expected_pool"] and is_yes(f, "metallb_l2advertisement"):
        return f"MetalLB answers with pool {f['metallb_pool']}"
    return None


def nodes_ready_problems(f: Facts) -> list[str]:
    """What keeps the cluster from being the lab: missing or NotReady nodes, wrong IPs."""
    expected = node_list(f.get("expected_nodes", ""))
    actual = node_list(f.get("nodes", ""))
    problems = []
    for name, (ip, *_) in ((n, v or ("",)) for n, v in expected.items()):
        if name not in actual:
            problems.append(f"{name} has not registered")
            continue
        status = actual[name] + ("", "")
        if status[0] != "Ready":
            problems.append(f"{name} is {status[0] or 'not Ready'}")
        if status[1] != ip:
            problems.append(f"{name} has InternalIP {status[1] or '?'}, expected {ip}")
    return problems


def _ready_done(f: Facts) -> str | None:
    if not f["expected_nodes"] or not is_yes(f, "admin_conf"):
        return None
    if nodes_ready_problems(f):
        return None
    return "every node is Ready on its host-only address"


_PREPARED = After("prepare")

STEPS: tuple[Step, ...] = (
    Step("swap", "Turn swap off (now and in /etc/fstab)", "prepare", BOTH, "swap", _swap_done,
         facts=("swap_active", "swap_fstab")),
    Step("kernel", "Kernel modules and sysctls for Kubernetes networking", "prepare", BOTH, "kernel", _kernel_done,
         facts=("mod_overlay", "mod_br_netfilter", "modules_persisted", "sysctl_persisted", *_SYSCTLS)),
    Step("containerd", "containerd 1.7 + runc from the host cache, systemd cgroup driver", "prepare", BOTH, "containerd",
         _containerd_done, facts=("artifacts_missing", "containerd_version", "containerd_systemd_cgroup", "containerd_active"),
         before=(PUSH_ARTIFACTS,), artifacts=CONTAINERD_ARTIFACTS, hint="read `journalctl -u containerd` on the node"),
    Step("kubelet-config", "kubelet --node-ip on the host-only address", "prepare", BOTH, "kubelet-config", _kubelet_config_done,
         facts=("node_ip", "kubelet_node_ip", "kubelet_resolv_conf", "resolved_stub")),
    # The id is kept from the apt-based step it replaces: labs record steps by id.
    Step("kube-packages", "kubelet, kubeadm, kubectl, crictl, CNI plugins from the host cache", "prepare", BOTH,
         "kube-packages", _kube_done,
         facts=("artifacts_missing", "distro_packages", "kubelet_env_file", "kubelet_enabled", "kube_expected_version"),
         before=(PUSH_ARTIFACTS,), artifacts=KUBE_ARTIFACTS, hint=_NETWORK_HINT),
    # The master pulls each image once for the lab; the engine files the exports in the
    # host cache, and the workers import them from there (as does the next lab).
    Step("images", "Container images: pulled once per lab, shared through the host cache", "prepare", BOTH, "images",
         _images_done, facts=("images_missing", "images_exported"), after=(After("containerd"), After("images", "master")),
         before=(PUSH_IMAGES,), then=(COLLECT_IMAGES,), hint=_NETWORK_HINT),
    Step("kubeadm-init", "kubeadm init (control plane)", "init", MASTER, "kubeadm-init", _init_done,
         facts=("admin_conf", "init_marker"), after=(_PREPARED,), hints=("preflight", "nat-address")),
    Step("calico", "Calico CNI (quay.io images) pinned to the host-only network", "cni", MASTER, "calico", _calico_done,
         facts=("calico_daemonset", "calico_ipv4pool_cidr", "pod_cidr", "calico_ip_autodetection", "host_only", "calico_image"),
         after=(After("init"),), before=(PUSH_ARTIFACTS,), artifacts=("calico-manifest",), hints=("nat-address",)),
    Step("kubeadm-join", "kubeadm join with a fresh token", "join", WORKER, "kubeadm-join", _join_done,
         facts=("kubelet_conf", "join_marker"), after=(_PREPARED, After("cni", "master")), before=(JOIN_CONFIG,),
         hints=("preflight", "nat-address")),
    Step("metallb", "MetalLB with the lab's L2 address pool", "loadbalancer", MASTER, "metallb", _metallb_done,
         facts=("metallb_controller", "metallb_pool", "metallb_expected_pool", "metallb_l2advertisement"),
         after=(After("cni"), After("join", "worker")), before=(PUSH_ARTIFACTS,), artifacts=("metallb-manifest",)),
    Step("nodes-ready", "Wait until every node is Ready", "ready", MASTER, "nodes-ready", _ready_done,
         facts=("expected_nodes", "admin_conf", "nodes"), after=(After("loadbalancer"), After("join", "worker")),
         explain=nodes_ready_problems, hints=("nat-address",)),
    # The engine copies admin.conf to <lab>/kubeconfig itself (KUBECONFIG_COMMAND);
    # always re-read, since it is cheap and the host's copy may be stale.
    Step("kubeconfig", "Export the admin kubeconfig to the lab folder", "kubeconfig", MASTER, None,
         after=(After("ready"),), work=EXPORT_KUBECONFIG, records="kubeconfig_changed"),
)


def remote_script(s: Step) -> str:
    if s.script_name is None:
        raise ValueError(f"step {s.id} has no script; the engine runs it")
    return f"{REMOTE_SCRIPTS}/{s.script_name}"


def facts_command() -> str:
    return f"sudo bash {shlex.quote(REMOTE_SCRIPTS + '/' + FACTS_SCRIPT)}"


def step_command(s: Step) -> str:
    return f"sudo bash {shlex.quote(remote_script(s))}"


def plan_node(node, role: str, facts: Facts, steps: Sequence[Step] = STEPS) -> list[Plan]:
    """The node's plan in run order: for each step of its role, the command to run, or
    the reason it is already done. Engine-run steps (script None) come back with no
    commands and no skip reason: the engine carries them out itself.

    ``node`` is a node name or a spec Node."""
    name = getattr(node, "name", node)
    plans = []
    for s in steps:
        if not s.applies_to(role):
            continue
        reason = s.check(facts)
        if reason is not None:
            plans.append(Plan(step=s.id, node=name, skip_reason=reason))
        elif s.script is None:
            plans.append(Plan(step=s.id, node=name))
        else:
            plans.append(Plan(step=s.id, node=name, commands=(step_command(s),)))
    return plans


__all__ = [
    "STEPS",
    "parse_facts",
    "plan_node",
    "step_command",
    "facts_command",
    "nodes_ready_problems",
    "REMOTE_SCRIPTS",
    "JOIN_CONFIG_PATH",
    "JOIN_TOKEN_COMMAND",
    "CA_CERT_HASH_COMMAND",
    "KUBECONFIG_COMMAND",
    "EXIT_UNREACHABLE",
    "YES",
    "NO",
]
