"""Lab health checks fail with the right findings, evidence and hints."""

import pytest

from labctl.verify.model import Status
from tests.verify import objects as o
from tests.verify.conftest import run_one, text_of

pytestmark = pytest.mark.slow


def test_nodes_ready_fails_on_a_not_ready_node(lab, vctx):
    lab.put(o.node("k8s-node2", lab.node2.ip, ready=False))
    lab.put(o.event("Node", "k8s-node2", "NodeNotReady", "Node k8s-node2 status is now: NodeNotReady", type_="Normal", source="node-controller"))
    lab.publish()
    r = run_one(vctx, "lab-nodes-ready")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == ["nodes[k8s-node2].status.conditions[type=Ready].status: expected True, got False"]
    assert any(ev.title == "events of Node k8s-node2" and "NodeNotReady" in ev.lines[0] for ev in r.evidence)
    conditions = next(ev for ev in r.evidence if ev.title == "conditions of Node k8s-node2")
    assert "Ready=False KubeletNotReady: container runtime network not ready" in conditions.lines[-1]
    assert conditions.lines[0] == "MemoryPressure=False"
    assert any("labctl up" in h for h in r.hints)


def test_nodes_ready_names_a_node_registered_under_another_hostname(lab, vctx):
    lab.drop("Node", "k8s-node1")
    lab.put(o.node("ubuntu-jammy", lab.node1.ip))
    lab.publish()
    r = run_one(vctx, "lab-nodes-ready")
    assert r.status is Status.FAIL
    assert str(r.mismatches[0]) == "nodes[k8s-node1]: not registered with the API server"
    assert r.hints[0] == "the API server knows node(s) ubuntu-jammy that are not in the lab: a VM's hostname must be exactly its lab name (k8s-node1)"


def test_node_ips_flags_the_nat_address(lab, vctx):
    # only an object field: nothing is ever sent to 10.0.2.15
    lab.put(o.node("k8s-node1", "10.0.2.15", calico_ip="10.0.2.15/24"))
    lab.publish()
    r = run_one(vctx, "lab-node-ips")
    assert r.status is Status.FAIL
    text = text_of(r)
    assert r.mismatches[0].negated
    assert str(r.mismatches[0]) == "nodes[k8s-node1].status.addresses[type=InternalIP].address: expected anything but 10.0.2.15, got 10.0.2.15"
    assert "nodes[k8s-node1].metadata.annotations.projectcalico.org/IPv4Address: expected an address inside" in text
    assert any("--node-ip" in h for h in r.hints)
    assert any("IP_AUTODETECTION_METHOD" in h for h in r.hints)
    assert any(line.startswith("k8s-node1: InternalIP=10.0.2.15") for ev in r.evidence for line in ev.lines)


def test_dns_fails_without_ready_coredns(lab, vctx):
    ep = lab.obj("Endpoints", "kube-dns", "kube-system")
    subset = ep["subsets"][0]
    subset["notReadyAddresses"] = subset.pop("addresses")
    coredns = [k for k in lab.objects if k[0] == "Pod" and k[2].startswith("coredns-")]
    for key in coredns:
        pod = lab.objects[key]
        lab.put(o.pod({k: pod[k] for k in ("apiVersion", "kind")} | {"metadata": {"name": pod["metadata"]["name"], "namespace": "kube-system", "labels": pod["metadata"]["labels"]},
                       "spec": {"containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.10.1"}]}},
                      node=lab.master.name, ip=pod["status"]["podIP"], containers={"coredns": "crashloop"}))
    lab.logs.append((coredns[0][2], "[FATAL] plugin/loop: Loop (127.0.0.1:40543 -> :53) detected for zone \".\"", "coredns", True, "kube-system"))
    lab.publish()
    r = run_one(vctx, "lab-dns")
    assert r.status is Status.FAIL
    assert str(r.mismatches[0]) == "Endpoints kube-system/kube-dns.subsets[].addresses: expected at least one ready CoreDNS Pod, got []"
    text = text_of(r)
    assert "CrashLoopBackOff" in text and "plugin/loop: Loop" in text
    assert any(h.startswith("CoreDNS forwards to itself") for h in r.hints)  # from the log line
    assert any("127.0.0.53" in h for h in r.hints)


def test_dns_fails_when_the_name_does_not_resolve(lab, vctx):
    lab.dns.records.clear()  # CoreDNS answers NXDOMAIN
    lab.publish()
    r = run_one(vctx, "lab-dns")
    assert r.status is Status.FAIL
    [m] = r.mismatches
    assert m.path.startswith(f"DNS A kubernetes.default.svc.cluster.local at {lab.dns_ip}:{lab.dns.port} from k8s-master") and m.got == 3
    assert lab.dns.queries == ["kubernetes.default.svc.cluster.local"]


def test_dns_fails_when_nothing_answers(lab, vctx):
    lab.dns.stop()
    lab.servers.started.remove(lab.dns)
    lab.publish()
    r = run_one(vctx, "lab-dns")
    assert r.status is Status.FAIL
    assert "no answer" in str(r.mismatches[0])
    assert any("CoreDNS does not answer on its ClusterIP" in h for h in r.hints)


def test_cni_fails_when_calico_is_not_ready_on_a_node(lab, vctx):
    for key, obj in list(lab.objects.items()):
        if key[0] == "Pod" and key[2].startswith("calico-node-") and obj["spec"]["nodeName"] == "k8s-node2":
            name = key[2]
            bad = o.pod({"apiVersion": "v1", "kind": "Pod", "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "labels")},
                         "spec": {"containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.26.4"}], "hostNetwork": True}},
                        node="k8s-node2", ip=lab.node2.ip, host_ip=lab.node2.ip, containers={"calico-node": "waiting"})
            lab.put(bad)
            lab.put(o.event("Pod", name, "Unhealthy", "Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not established with 10.0.2.15", namespace="kube-system", source="kubelet"))
    lab.publish()
    r = run_one(vctx, "lab-cni")
    assert r.status is Status.FAIL
    assert str(r.mismatches[0]) == f"Pod kube-system/{name} on k8s-node2.status.conditions[type=Ready].status: expected True, got False"
    text = text_of(r)
    assert "BIRD is not ready" in text and "container calico-node: ready=False" in text
    assert any("IP_AUTODETECTION_METHOD" in h for h in r.hints)


def test_cni_fails_without_calico(lab, vctx):
    lab.drop("DaemonSet", "calico-node", "kube-system")
    for key in [k for k in lab.objects if k[0] == "Pod" and k[2].startswith("calico-node-")]:
        del lab.objects[key]
    lab.publish()
    r = run_one(vctx, "lab-cni")
    assert r.status is Status.FAIL
    assert str(r.mismatches[0]) == "Pods kube-system/calico-node-*: none: Calico is not installed"
    assert "Calico is not installed: `labctl up` installs it" in r.hints


def test_node_ips_flags_an_address_outside_the_host_only_network(lab, vctx):
    lab.put(o.node("k8s-node2", "127.99.0.32"))
    lab.publish()
    r = run_one(vctx, "lab-node-ips")
    assert [str(m) for m in r.mismatches] == [
        f"nodes[k8s-node2].status.addresses[type=InternalIP].address: expected {lab.node2.ip}, got 127.99.0.32",
        f"nodes[k8s-node2].status.addresses[type=InternalIP].address: expected an address inside {lab.spec.network.host_only}, got 127.99.0.32",
    ]
