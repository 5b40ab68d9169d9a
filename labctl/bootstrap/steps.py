"""The bootstrap catalogue: every step, in run order, and how a node's plan is made.

Each step's script is rendered per node from ``playbooks/<script>.sh.j2`` into
``<lab>/scripts/<node>/NN-<id>.sh`` (NN = the step's position in STEPS, so a file name
never changes with the node's role). The engine uploads a node's rendered folder to
REMOTE_SCRIPTS on the node and runs a step with the command that ``plan_node`` gives.

Remote layout on a node (root-owned):
    /var/lib/labctl/scripts/NN-<id>.sh, facts.sh   the node's rendered scripts (0755)
    /etc/labctl/kubeadm-init.yaml                  written by the kubeadm-init script
    /etc/labctl/join.yaml                          uploaded by the engine (0600) right
                                                   before the join step; the script
                                                   deletes it after `kubeadm join`

Scripts exit EXIT_UNREACHABLE (75, EX_TEMPFAIL) and print a line starting with
``labctl: cannot reach`` when a download site is unreachable, so the engine can hint
about the node's internet access instead of showing a bare failure.

Every ``done`` is a pure function of the node's facts (see facts.py and
playbooks/facts.sh.j2): facts.sh prints the values the spec expects next to the ones
it finds (e.g. ``node_ip`` and ``kubelet_node_ip``), so no decision needs the spec.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from labctl.bootstrap.facts import NO, YES, is_yes, node_list, parse_facts
from labctl.bootstrap.model import Facts, Plan, Step

REMOTE_DIR = "/var/lib/labctl"
REMOTE_SCRIPTS = f"{REMOTE_DIR}/scripts"
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


# ------------------------------------------------------------------ decisions


def _swap_done(f: Facts) -> str | None:
    if f.get("swap_active") == NO and f.get("swap_fstab") == NO:
        return "swap is off and absent from /etc/fstab"
    return None


_SYSCTLS = ("sysctl_bridge_nf_call_iptables", "sysctl_bridge_nf_call_ip6tables", "sysctl_ip_forward")


def _kernel_done(f: Facts) -> str | None:
    loaded = is_yes(f, "mod_overlay") and is_yes(f, "mod_br_netfilter")
    persisted = is_yes(f, "modules_persisted") and is_yes(f, "sysctl_persisted")
    if loaded and persisted and all(f.get(k) == "1" for k in _SYSCTLS):
        return "overlay and br_netfilter loaded, sysctls set, both persisted"
    return None


def _containerd_done(f: Facts) -> str | None:
    if is_yes(f, "containerd_installed") and is_yes(f, "containerd_systemd_cgroup") and is_yes(f, "containerd_active"):
        return "containerd runs with SystemdCgroup = true"
    return None


def _kubelet_config_done(f: Facts) -> str | None:
    want_ip = f.get("node_ip", "")
    if not want_ip or f.get("kubelet_node_ip") != want_ip:
        return None
    want_resolv = "/run/systemd/resolve/resolv.conf" if is_yes(f, "resolved_stub") else ""
    if f.get("kubelet_resolv_conf", "") != want_resolv:
        return None
    return f"kubelet --node-ip={want_ip} already configured"


def _packages_done(f: Facts) -> str | None:
    want = f.get("kube_expected_version", "")
    if not want:
        return None
    if all(f.get(f"{p}_version") == want for p in ("kubelet", "kubeadm", "kubectl")) and is_yes(f, "kube_held"):
        return f"kubelet, kubeadm, kubectl {want} installed and held"
    return None


def _init_done(f: Facts) -> str | None:
    # admin.conf appears halfway through `kubeadm init`; the marker only after success.
    if is_yes(f, "admin_conf") and is_yes(f, "init_marker"):
        return "control plane already initialized"
    return None


def _calico_done(f: Facts) -> str | None:
    if not is_yes(f, "calico_daemonset"):
        return None
    if f.get("calico_ipv4pool_cidr") != f.get("pod_cidr"):
        return None
    if f.get("calico_ip_autodetection") != f"cidr={f.get('host_only', '')}":
        return None
    return "calico-node is installed with the lab's pod CIDR and host-only autodetection"


def _join_done(f: Facts) -> str | None:
    if is_yes(f, "kubelet_conf") and is_yes(f, "join_marker"):
        return "already joined"
    return None


def _metallb_done(f: Facts) -> str | None:
    if is_yes(f, "metallb_controller") and f.get("metallb_pool") == f.get("metallb_expected_pool") and is_yes(f, "metallb_l2advertisement"):
        return f"MetalLB answers with pool {f.get('metallb_pool')}"
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
    if not f.get("expected_nodes") or not is_yes(f, "admin_conf"):
        return None
    if nodes_ready_problems(f):
        return None
    return "every node is Ready on its host-only address"


STEPS: tuple[Step, ...] = (
    Step("swap", "Turn swap off (now and in /etc/fstab)", "prepare", BOTH, "swap", _swap_done),
    Step("kernel", "Kernel modules and sysctls for Kubernetes networking", "prepare", BOTH, "kernel", _kernel_done),
    Step("containerd", "containerd with the systemd cgroup driver", "prepare", BOTH, "containerd", _containerd_done),
    Step("kubelet-config", "kubelet --node-ip on the host-only address", "prepare", BOTH, "kubelet-config", _kubelet_config_done),
    Step("kube-packages", "kubelet, kubeadm, kubectl pinned and held", "prepare", BOTH, "kube-packages", _packages_done),
    Step("kubeadm-init", "kubeadm init (control plane)", "init", MASTER, "kubeadm-init", _init_done),
    Step("calico", "Calico CNI pinned to the host-only network", "cni", MASTER, "calico", _calico_done),
    Step("kubeadm-join", "kubeadm join with a fresh token", "join", WORKER, "kubeadm-join", _join_done),
    Step("metallb", "MetalLB with the lab's L2 address pool", "loadbalancer", MASTER, "metallb", _metallb_done),
    Step("nodes-ready", "Wait until every node is Ready", "ready", MASTER, "nodes-ready", _ready_done),
    # The engine copies admin.conf to <lab>/kubeconfig itself (KUBECONFIG_COMMAND);
    # always re-read, since it is cheap and the host's copy may be stale.
    Step("kubeconfig", "Export the admin kubeconfig to the lab folder", "kubeconfig", MASTER, None),
)


def step(step_id: str) -> Step:
    for s in STEPS:
        if s.id == step_id:
            return s
    raise KeyError(step_id)


def script_name(s: Step) -> str | None:
    """The rendered file name of a step's script: ``NN-<id>.sh`` (NN from STEPS order)."""
    if s.script is None:
        return None
    return f"{STEPS.index(s) + 1:02d}-{s.id}.sh"


def remote_script(s: Step) -> str:
    name = script_name(s)
    if name is None:
        raise ValueError(f"step {s.id} has no script; the engine runs it")
    return f"{REMOTE_SCRIPTS}/{name}"


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
        reason = s.done(facts)
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
    "script_name",
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
