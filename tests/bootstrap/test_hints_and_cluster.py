"""Failure hints from evidence, and the kubeconfig/node-status helpers, as data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labctl.bootstrap import cluster, hints

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"


@pytest.mark.parametrize("rc,output,rules,expected", [
    (75, "labctl: cannot reach https://deb.debian.org/debian", (), "cannot reach a package repository"),
    (100, "Err:1 http://archive.ubuntu.com InRelease\n  Could not resolve 'archive.ubuntu.com'", (), "cannot reach a package repository"),
    (100, "W: Failed to fetch http://archive.ubuntu.com/ubuntu/dists/jammy/InRelease  Temporary failure resolving 'archive.ubuntu.com'", (), "cannot reach a package repository"),
    # the real cause, as the host cache tells it (labctl.artifacts.classify)
    (1, "ctr: failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/kubetm/p8000/manifests/latest: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.", (), "rate-limited"),
    (1, "ctr: failed to resolve reference \"quay.io/calico/node:v3.26.4\": failed to do request: Head \"https://quay.io/v2/calico/node/manifests/v3.26.4\": dial tcp: lookup quay.io on 10.0.2.3:53: no such host", (), "DNS lookup failed"),
    (1, "ctr: failed to resolve reference: tls: failed to verify certificate: x509: certificate signed by unknown authority", (), "TLS failed"),
    (1, "curl: (22) The requested URL returned error: 404", (), "not found upstream"),
    (1, "dial tcp 151.101.0.223:443: connect: no route to host", (), "no route to host"),
    (1, "labctl: kubeadm: checksum mismatch in /var/lib/labctl/artifacts/ab: expected sha256 ab, got cd (removed; labctl up pushes it again)", (), "does not match its pinned sha256"),
    (1, "labctl: k8s-node2 has InternalIP 10.0.2.15, expected 192.168.56.32", ("nat-address",), "k8s-node2 registered with VirtualBox's NAT address"),
    (1, "labctl: k8s-node2 has InternalIP 10.0.2.15, expected 192.168.56.32", (), None),  # only where the step asks
    (1, "\t[ERROR Mem]: the system RAM (981 MB) is less than the minimum 1700 MB", ("preflight",), "preflight check Mem failed"),
    (1, "\t[ERROR SomethingNew]: ...", ("preflight",), "preflight check SomethingNew failed: read the [ERROR"),
    (None, "", (), "did not finish in time"),
    (1, "E: dpkg was interrupted", (), None),
    # an image pull (the images and kubeadm-init scripts' last line) is told as one, in the VM's terms
    (75, 'ctr: failed to resolve reference "docker.io/kubetm/p8000:latest": pull access denied, repository does not '
         'exist or may require authorization\nlabctl: cannot pull docker.io/kubetm/p8000:latest from k8s-master', (),
     "k8s-master cannot pull docker.io/kubetm/p8000:latest (not found upstream): the registry does not serve it"),
    (75, "ctr: failed to extract layer sha256:5f70: write /var/lib/containerd/x: no space left on device\n"
         "labctl: cannot pull quay.io/calico/node:v3.26.4 from k8s-master", (), "(disk full): give the VM a larger disk"),
    (75, "ctr: failed to copy: 429 Too Many Requests - Server message: toomanyrequests\n"
         "labctl: cannot pull docker.io/kubetm/app:latest from k8s-master", (), "wait an hour, or bring the images in"),
    (75, "ctr: something new\nlabctl: cannot pull quay.io/calico/cni:v3.26.4 from k8s-master", (),
     "cannot pull quay.io/calico/cni:v3.26.4: ctr's words above name the cause"),
    (100, "E: You don't have enough free space in /var/cache/apt/archives/.", (), "k8s-master's disk is full: give the VM"),
])
def test_hint_for(rc, output, rules, expected):
    got = hints.hint_for("k8s-master", rc, output, rules=rules)
    if expected is None:
        assert got is None
    else:
        assert expected in got


def test_a_steps_own_hint_when_no_cause_is_known():
    assert hints.hint_for("n", 1, "E: dpkg was interrupted", fallback="read journalctl") == "read journalctl"


ADMIN_CONF = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://10.0.2.15:6443
  name: k8s-lab
contexts:
- context:
    cluster: k8s-lab
    user: kubernetes-admin
  name: kubernetes-admin@k8s-lab
current-context: kubernetes-admin@k8s-lab
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""


def test_lab_kubeconfig_points_at_the_host_only_address_and_is_named_after_the_lab():
    cfg = cluster.lab_kubeconfig(ADMIN_CONF, lab="course", server="https://192.168.56.30:6443")
    assert cfg["current-context"] == "course"
    assert cfg["clusters"] == [{"name": "course", "cluster": {"certificate-authority-data": "Q0E=", "server": "https://192.168.56.30:6443"}}]
    assert cfg["users"][0] == {"name": "course-admin", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}}
    assert cfg["contexts"][0]["context"] == {"cluster": "course", "user": "course-admin"}


def test_merge_replaces_only_the_labs_entries_and_is_idempotent(tmp_path):
    target = tmp_path / "kube" / "config"
    lab = cluster.lab_kubeconfig(ADMIN_CONF, lab="k8s-lab", server="https://192.168.56.30:6443")
    assert cluster.merge_kubeconfig(lab, target) is True
    assert yaml.safe_load(target.read_text())["current-context"] == "k8s-lab"
    assert (target.stat().st_mode & 0o777) == 0o600
    assert cluster.merge_kubeconfig(lab, target) is False
    cfg = yaml.safe_load(target.read_text())
    cfg["contexts"].append({"name": "work", "context": {"cluster": "w", "user": "u"}})
    cfg["current-context"] = "work"
    target.write_text(yaml.safe_dump(cfg))
    moved = cluster.lab_kubeconfig(ADMIN_CONF, lab="k8s-lab", server="https://192.168.56.40:6443")
    assert cluster.merge_kubeconfig(moved, target) is True
    cfg = yaml.safe_load(target.read_text())
    assert cfg["current-context"] == "work"
    assert [c["name"] for c in cfg["contexts"]] == ["work", "k8s-lab"]
    assert [c["cluster"]["server"] for c in cfg["clusters"]] == ["https://192.168.56.40:6443"]


def test_merge_refuses_a_file_that_is_not_a_kubeconfig(tmp_path):
    from labctl.errors import ClusterError

    target = tmp_path / "config"
    target.write_text("- just\n- a list\n")
    with pytest.raises(ClusterError, match="not a kubeconfig"):
        cluster.merge_kubeconfig(cluster.lab_kubeconfig(ADMIN_CONF, lab="l", server="https://x:6443"), target)


def test_parse_nodes_from_recorded_1_27_lists():
    ok = cluster.parse_nodes((FIXTURES / "passing" / "nodes.json").read_text())
    assert [(n["name"], n["ready"], n["internal_ip"], n["kubelet_version"]) for n in ok] == [
        ("k8s-master", True, "192.168.56.30", "v1.27.16"),
        ("k8s-node1", True, "192.168.56.31", "v1.27.16"),
        ("k8s-node2", True, "192.168.56.32", "v1.27.16"),
    ]
    assert ok[0]["roles"] == "control-plane" and ok[1]["roles"] == "<none>"
    bad = cluster.parse_nodes((FIXTURES / "failing" / "nodes.json").read_text())
    assert {n["internal_ip"] for n in bad if n["name"] != "k8s-master"} == {"10.0.2.15"}


def test_fake_nodes_answer_kubectl_in_the_recorded_shape():
    """The fake node's `kubectl get nodes -o json` has the recorded fixture's keys."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_node_shell", Path(__file__).resolve().parents[1] / "helpers" / "fake_node_shell.py")
    shell = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shell)
    recorded = json.loads((FIXTURES / "passing" / "nodes.json").read_text())["items"][1]
    fake = shell.node_json({"name": "k8s-node1", "role": "worker", "ip": "192.168.56.31", "ready": True, "since": 0}, 1)

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k not in ("labels", "annotations", "capacity", "allocatable"):
                out |= keys(v, prefix + k + ".")
        return out

    # kubectl hides managedFields unless --show-managed-fields; the fixture is API JSON.
    assert keys(recorded) - keys(fake) <= {"spec.providerID", "metadata.managedFields"}
    import kubernetes_validate

    kubernetes_validate.validate(fake, "1.27", strict=True)
    assert cluster.parse_nodes(json.dumps({"items": [fake]}))[0]["internal_ip"] == "192.168.56.31"
