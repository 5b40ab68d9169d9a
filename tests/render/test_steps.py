"""The steps catalogue as data: given a node's facts, each step plans its command or
its reason to skip; and every fact a decision reads is one that facts.sh prints."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from labctl.bootstrap import steps as cat
from labctl.bootstrap import facts as facts_catalogue
from labctl.bootstrap.facts import node_list, parse_facts
from labctl.bootstrap.model import PHASES, Step, UndeclaredFact
from labctl.lab.paths import LabPaths
from labctl.render.lab import render_lab, render_node_scripts
from labctl.spec import default_spec
from labctl.resources import playbooks_dir

# What facts.sh prints on a fresh Ubuntu 22.04 box before any step ran.
FRESH = """\
node_name=k8s-node1
role=worker
node_ip=192.168.56.31
host_only=192.168.56.0/24
pod_cidr=20.96.0.0/12
kube_expected_version=1.27.16
metallb_expected_pool=192.168.56.200-192.168.56.220
expected_nodes=k8s-master/192.168.56.30,k8s-node1/192.168.56.31,k8s-node2/192.168.56.32
hostname=k8s-node1
os=Ubuntu 22.04.3 LTS
arch=amd64
node_ip_present=yes
node_ip_iface=eth1
swap_active=yes
swap_fstab=yes
mod_overlay=yes
mod_br_netfilter=no
modules_persisted=no
sysctl_bridge_nf_call_iptables=
sysctl_bridge_nf_call_ip6tables=
sysctl_ip_forward=0
sysctl_persisted=no
artifacts_pushed=
artifacts_missing=kubeadm,kubelet,kubectl,crictl,cni-plugins,containerd,containerd-service,runc,kubelet-service,kubeadm-dropin,calico-manifest,metallb-manifest
distro_packages=no
images_missing=quay.io/calico/node:v3.26.4,docker.io/kubetm/p8000:latest
images_pushed=
images_exported=
containerd_installed=no
containerd_version=
containerd_systemd_cgroup=no
containerd_active=no
kubelet_version=
kubeadm_version=
kubectl_version=
kubelet_env_file=no
kubelet_enabled=no
kubelet_node_ip=
kubelet_resolv_conf=
resolved_stub=yes
kubelet_active=no
admin_conf=no
init_marker=no
kubelet_conf=no
join_marker=no
"""

# The same lab's master once everything ran.
DONE_MASTER = FRESH.replace("node_name=k8s-node1", "node_name=k8s-master").replace("role=worker", "role=master").replace(
    "node_ip=192.168.56.31", "node_ip=192.168.56.30") + """\
swap_active=no
swap_fstab=no
mod_br_netfilter=yes
modules_persisted=yes
sysctl_bridge_nf_call_iptables=1
sysctl_bridge_nf_call_ip6tables=1
sysctl_ip_forward=1
sysctl_persisted=yes
artifacts_missing=
distro_packages=yes
images_missing=
containerd_installed=yes
containerd_version=1.7.22
containerd_systemd_cgroup=yes
containerd_active=yes
kubelet_version=v1.27.16
kubeadm_version=v1.27.16
kubectl_version=v1.27.16
kubelet_env_file=yes
kubelet_enabled=yes
kubelet_node_ip=192.168.56.30
kubelet_resolv_conf=/run/systemd/resolve/resolv.conf
kubelet_active=yes
admin_conf=yes
init_marker=yes
kubelet_conf=yes
cluster_reachable=yes
calico_daemonset=yes
calico_ipv4pool_cidr=20.96.0.0/12
calico_ip_autodetection=cidr=192.168.56.0/24
calico_image=quay.io/calico/node:v3.26.4
metallb_controller=yes
metallb_pool=192.168.56.200-192.168.56.220
metallb_l2advertisement=yes
nodes=k8s-master/Ready/192.168.56.30,k8s-node1/Ready/192.168.56.31,k8s-node2/Ready/192.168.56.32
"""


def _plan(node, role, facts):
    return {p.step: p for p in cat.plan_node(node, role, parse_facts(facts) if isinstance(facts, str) else facts)}


def test_steps_run_in_phase_order_with_unique_ids_and_scripts():
    ids = [s.id for s in cat.STEPS]
    assert len(set(ids)) == len(ids)
    phases = [PHASES.index(s.phase) for s in cat.STEPS]
    assert phases == sorted(phases)
    assert {s.phase for s in cat.STEPS} == set(PHASES)
    for s in cat.STEPS:
        if s.script is not None:
            assert (playbooks_dir() / f"{s.script}.sh.j2").is_file(), s.id
            assert s.script_name == f"{s.id}.sh"


def test_fresh_worker_runs_every_worker_step_with_sudo_bash():
    plan = _plan("k8s-node1", "worker", FRESH)
    assert list(plan) == ["swap", "kernel", "containerd", "kubelet-config", "kube-packages", "images", "kubeadm-join"]
    assert plan["swap"].commands == ("sudo bash /var/lib/labctl/scripts/swap.sh",)
    assert plan["kubeadm-join"].commands == ("sudo bash /var/lib/labctl/scripts/kubeadm-join.sh",)
    assert not any(p.skipped for p in plan.values())
    assert all(p.node == "k8s-node1" for p in plan.values())


def test_fresh_master_plans_master_steps_and_the_engine_step():
    plan = _plan(default_spec().master, "master", FRESH)
    assert list(plan) == ["swap", "kernel", "containerd", "kubelet-config", "kube-packages", "images", "kubeadm-init", "calico",
                          "metallb", "nodes-ready", "kubeconfig"]
    assert plan["kubeconfig"].commands == () and not plan["kubeconfig"].skipped  # the engine's own work
    assert plan["kubeadm-init"].node == "k8s-master"


def test_finished_master_skips_everything_with_reasons():
    plan = _plan("k8s-master", "master", DONE_MASTER)
    skipped = {k: p.skip_reason for k, p in plan.items() if p.skipped}
    assert set(skipped) == set(plan) - {"kubeconfig"}
    assert "node-ip=192.168.56.30" in skipped["kubelet-config"]
    assert "1.27.16" in skipped["kube-packages"] and "/etc/default/kubelet" in skipped["kube-packages"]
    assert all(p.commands == () for p in plan.values())


@pytest.mark.parametrize(
    "step,changes",
    [
        ("swap", {"swap_active": "yes"}),
        ("swap", {"swap_fstab": "yes"}),
        ("kernel", {"mod_br_netfilter": "no"}),
        ("kernel", {"sysctl_ip_forward": "0"}),
        ("kernel", {"sysctl_persisted": "no"}),
        ("containerd", {"containerd_systemd_cgroup": "no"}),
        ("containerd", {"containerd_active": "no"}),
        ("containerd", {"artifacts_missing": "runc"}),
        ("kubelet-config", {"kubelet_node_ip": "10.0.2.15"}),
        ("kubelet-config", {"kubelet_resolv_conf": ""}),
        ("kube-packages", {"artifacts_missing": "kubelet"}),
        ("kube-packages", {"artifacts_missing": "kubeadm-dropin"}),
        ("kube-packages", {"distro_packages": "no"}),
        ("kube-packages", {"kubelet_env_file": "no"}),
        ("kube-packages", {"kubelet_enabled": "no"}),
        ("images", {"images_missing": "docker.io/kubetm/p8000:latest"}),
        ("images", {"images_exported": "quay.io/calico/node:v3.26.4"}),  # not yet in the host cache
        ("kubeadm-init", {"init_marker": "no"}),  # admin.conf from an init that stopped halfway
        ("calico", {"calico_daemonset": "no"}),
        ("calico", {"calico_ip_autodetection": ""}),
        ("calico", {"calico_ipv4pool_cidr": "192.168.0.0/16"}),
        ("calico", {"calico_image": "docker.io/calico/node:v3.26.4"}),
        ("metallb", {"metallb_pool": ""}),
        ("metallb", {"metallb_controller": "no"}),
        ("nodes-ready", {"nodes": "k8s-master/Ready/192.168.56.30,k8s-node1/Ready/192.168.56.31"}),
        ("nodes-ready", {"nodes": "k8s-master/Ready/192.168.56.30,k8s-node1/NotReady/192.168.56.31,k8s-node2/Ready/192.168.56.32"}),
        ("nodes-ready", {"nodes": "k8s-master/Ready/192.168.56.30,k8s-node1/Ready/10.0.2.15,k8s-node2/Ready/192.168.56.32"}),
    ],
)
def test_one_missing_fact_makes_exactly_that_step_run(step, changes):
    facts = {**parse_facts(DONE_MASTER), **changes}
    plan = _plan("k8s-master", "master", facts)
    to_run = [k for k, p in plan.items() if not p.skipped and p.commands]
    assert to_run == [step]


def test_kubelet_config_without_systemd_resolved_needs_no_resolv_conf():
    facts = {**parse_facts(DONE_MASTER), "resolved_stub": "no", "kubelet_resolv_conf": ""}
    assert _plan("k8s-master", "master", facts)["kubelet-config"].skipped


def test_joined_worker_skips_join_only_with_its_marker():
    facts = parse_facts(FRESH)
    facts.update(kubelet_conf="yes", join_marker="yes")
    assert _plan("k8s-node1", "worker", facts)["kubeadm-join"].skipped
    facts.update(join_marker="no")
    assert not _plan("k8s-node1", "worker", facts)["kubeadm-join"].skipped


def test_ready_problems_name_the_nat_address():
    facts = {**parse_facts(DONE_MASTER), "nodes": "k8s-master/Ready/192.168.56.30,k8s-node1/NotReady/10.0.2.15"}
    problems = cat.nodes_ready_problems(facts)
    assert "k8s-node1 is NotReady" in problems
    assert "k8s-node1 has InternalIP 10.0.2.15, expected 192.168.56.31" in problems
    assert "k8s-node2 has not registered" in problems
    assert cat.nodes_ready_problems(parse_facts(DONE_MASTER)) == []


def test_parse_facts_keeps_only_key_value_lines():
    text = "a=1\r\nwarning: something odd\n\nb=x=y\nB=upper\nkey with space=no\na=2\nempty=\n"
    assert parse_facts(text) == {"a": "2", "b": "x=y", "empty": ""}
    assert node_list("a/Ready/1.2.3.4,b/NotReady/") == {"a": ("Ready", "1.2.3.4"), "b": ("NotReady", "")}


def test_commands_are_quoted_and_fixed():
    assert cat.facts_command() == "sudo bash /var/lib/labctl/scripts/facts.sh"
    assert cat.JOIN_CONFIG_PATH.startswith("/etc/labctl/")


def _printed_facts(text: str) -> set[str]:
    return set(re.findall(r'^\s*fact ([a-z0-9_]+) ', text, re.M))


def test_facts_sh_prints_exactly_the_catalogue():
    spec = default_spec()
    master = _printed_facts(render_node_scripts(spec, spec.master)["facts.sh"])
    worker = _printed_facts(render_node_scripts(spec, spec.node("k8s-node1"))["facts.sh"])
    assert master == facts_catalogue.keys_for("master") == set(facts_catalogue.CATALOGUE)
    assert worker == facts_catalogue.keys_for("worker")
    assert {"nodes", "calico_daemonset", "metallb_pool"}.isdisjoint(worker)


def test_every_step_declares_catalogued_facts_and_reads_only_those():
    for s in cat.STEPS:
        assert set(s.facts) <= set(facts_catalogue.CATALOGUE), s.id
        for facts in (FRESH, DONE_MASTER):
            s.check(parse_facts(facts))  # raises UndeclaredFact on a key it did not declare
    sneaky = Step("x", "x", "prepare", cat.BOTH, "x", lambda f: f["swap_active"], facts=("swap_fstab",))
    with pytest.raises(UndeclaredFact, match="swap_active"):
        sneaky.check(parse_facts(DONE_MASTER))


def test_the_fake_node_answers_with_the_catalogue(tmp_path):
    """The emulated node (tests/helpers/fake_node_shell.py) prints the same keys as the
    real facts.sh: on a fresh node and on a master whose cluster answers."""
    import importlib.util
    import json

    path = Path(__file__).resolve().parents[1] / "helpers" / "fake_node_shell.py"
    spec_ = importlib.util.spec_from_file_location("fake_node_shell", path)
    shell = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(shell)
    spec = default_spec(workers=1)
    for n in spec.nodes:
        root = tmp_path / n.name
        (root / "fs" / "var/lib/labctl/scripts").mkdir(parents=True)
        (root / "node.json").write_text(json.dumps({"name": n.name, "role": n.role, "ip": n.ip}))
        (root / "fs/var/lib/labctl/scripts/facts.sh").write_text(render_node_scripts(spec, n)["facts.sh"])
    worker = shell.facts(shell.Node(tmp_path / "k8s-node1"))
    assert set(worker) == facts_catalogue.keys_for("worker")
    master = shell.Node(tmp_path / "k8s-master")
    with master.locked_state() as st:
        st["done"] = ["kubeadm-init"]
    assert set(shell.facts(master)) == facts_catalogue.keys_for("master")


def test_facts_sh_is_read_only_and_prints_only_facts(tmp_path):
    """Run the rendered facts.sh on this machine: it must finish, exit 0 and print only
    key=value lines (its probes only read; it is safe on any host)."""
    paths = LabPaths(tmp_path)
    spec = default_spec()
    render_lab(spec, paths)
    proc = subprocess.run(["bash", str(paths.node_scripts("k8s-master") / "facts.sh")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*=.*", l) for l in lines), lines
    facts = parse_facts(proc.stdout)
    assert facts["node_ip"] == "192.168.56.30" and facts["kube_expected_version"] == "1.27.16"
    assert facts["arch"] in ("amd64", "arm64") and "kubeadm" in facts["artifacts_missing"].split(",")
    assert facts["swap_active"] in ("yes", "no") and facts["admin_conf"] in ("yes", "no")
    assert facts_catalogue.keys_for("worker") <= set(facts)
