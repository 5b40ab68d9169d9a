"""The Service checks fail with the right findings, evidence and hints."""

import pytest

from labctl.verify.model import Status
from tests.verify import objects as o
from tests.verify.conftest import run_one, text_of

pytestmark = pytest.mark.slow


def test_clusterip_fails_without_endpoints_and_shows_the_pods(lab, vctx):
    lab.put(o.endpoints("svc-clusterip", []))
    lab.put(o.pod(o.manifest("svc-clusterip", "Pod", "pod-clusterip-1"), node="k8s-node1", ip="127.0.0.9", containers={"container": "waiting"}))
    lab.publish()
    r = run_one(vctx, "svc-clusterip")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == ["Endpoints svc-clusterip.subsets[].addresses: expected at least one ready Pod, got []"]
    assert "container container: ready=False" in text_of(r)
    assert r.hints[0].startswith("the Service selects no ready Pod: apply its backing Pods (`labctl apply svc-clusterip`)")


def test_clusterip_fails_when_it_does_not_answer_from_the_master(lab, vctx):
    lab.stop("svc-clusterip")
    lab.publish()
    r = run_one(vctx, "svc-clusterip")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == [f"GET http://{lab.clusterip}:9000/hostname from k8s-master: expected HTTP 200, got no answer (connection refused)"]
    assert any("kube-proxy" in h for h in r.hints)


def test_clusterip_fails_when_a_stranger_answers(lab, vctx):
    lab.http["svc-clusterip"].body = "Hostname : pod-2\n"
    lab.publish()
    r = run_one(vctx, "svc-clusterip")
    assert [str(m) for m in r.mismatches] == [
        f"GET http://{lab.clusterip}:9000/hostname from k8s-master body: expected Hostname : <one of pod-clusterip-1, pod-clusterip-2>, got Hostname : pod-2"]


def test_clusterip_wrong_type(lab, vctx):
    svc = lab.obj("Service", "svc-clusterip")
    svc["spec"]["type"] = "NodePort"
    svc["spec"]["ports"][0]["nodePort"] = 31000
    lab.publish()
    r = run_one(vctx, "svc-clusterip")
    assert [str(m) for m in r.mismatches] == ["Service svc-clusterip.spec.type: expected ClusterIP, got NodePort"]


def test_nodeport_fails_when_one_node_does_not_answer(lab, vctx):
    lab.stop("svc-nodeport@k8s-node2")
    lab.publish()
    r = run_one(vctx, "svc-nodeport")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == [
        f"GET http://{lab.node2.ip}:{lab.nodeport}/hostname from host: expected HTTP 200, got no answer (connection refused)"]
    probes = next(ev for ev in r.evidence if ev.title == "probes")
    assert len(probes.lines) == 3 and sum("HTTP 200" in line for line in probes.lines) == 2
    assert any("answers on EVERY node's address" in h for h in r.hints)


def test_nodeport_local_fails_when_a_node_without_a_pod_answers(lab, vctx):
    # the Service behaves like externalTrafficPolicy: Cluster on k8s-node2
    silent = lab.http.pop("svc-nodeport-local@k8s-node2")
    silent.stop()
    lab.serve("svc-nodeport-local@k8s-node2", lab.node2.ip, lab.local_port, "Hostname : pod-nodeport-local\n")
    lab.publish()
    r = run_one(vctx, "svc-nodeport-local")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == [
        f"GET http://{lab.node2.ip}:{lab.local_port}/hostname from host: expected no answer, got HTTP 200 'Hostname : pod-nodeport-local'"]
    ev = next(e for e in r.evidence if "externalTrafficPolicy" in e.title)
    assert any(line.startswith("k8s-master: runs no Pod, must not answer -> no answer (timed out)") for line in ev.lines)
    assert any(line.startswith("k8s-node1: runs a Pod, must answer -> HTTP 200") for line in ev.lines)
    assert any("k8s-node2 runs no Pod of svc-nodeport-local but answered" in h for h in r.hints)


def test_nodeport_local_fails_when_the_policy_is_cluster(lab, vctx):
    lab.obj("Service", "svc-nodeport-local")["spec"]["externalTrafficPolicy"] = "Cluster"
    lab.publish()
    r = run_one(vctx, "svc-nodeport-local")
    assert [str(m) for m in r.mismatches] == ["Service svc-nodeport-local.spec.externalTrafficPolicy: expected Local, got Cluster"]


def test_nodeport_local_fails_when_the_pod_node_does_not_answer(lab, vctx):
    lab.stop("svc-nodeport-local@k8s-node1")
    lab.publish()
    r = run_one(vctx, "svc-nodeport-local")
    assert [str(m) for m in r.mismatches] == [
        f"GET http://{lab.node1.ip}:{lab.local_port}/hostname from host: expected HTTP 200, got no answer (connection refused)"]


def test_loadbalancer_pending_points_at_metallb(lab, vctx):
    lab.obj("Service", "svc-loadbalancer")["status"] = {"loadBalancer": {}}
    lab.put(o.event("Service", "svc-loadbalancer", "AllocationFailed", "Failed to allocate IP for \"default/svc-loadbalancer\": no available IPs", source="metallb-controller"))
    lab.publish()
    r = run_one(vctx, "svc-loadbalancer")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == ["Service svc-loadbalancer.status.loadBalancer.ingress: expected an address (EXTERNAL-IP), got <pending>"]
    assert "AllocationFailed: Failed to allocate IP" in text_of(r)
    assert r.hints[0].startswith("no address from MetalLB")
    assert any(h.startswith("MetalLB could not give the Service an address") for h in r.hints)


def test_loadbalancer_address_outside_the_pool(lab, vctx):
    outside = lab.spec.nodes[0].ip  # in the host-only network, not in the pool
    lab.obj("Service", "svc-loadbalancer")["status"] = {"loadBalancer": {"ingress": [{"ip": outside}]}}
    lab.publish()
    r = run_one(vctx, "svc-loadbalancer")
    assert [str(m) for m in r.mismatches] == [
        f"Service svc-loadbalancer.status.loadBalancer.ingress[0].ip: expected an address in the MetalLB pool {lab.spec.metallb.pool}, got {outside}"]


def test_loadbalancer_address_that_does_not_answer(lab, vctx):
    lab.stop("svc-loadbalancer")
    lab.publish()
    r = run_one(vctx, "svc-loadbalancer")
    assert [str(m) for m in r.mismatches] == [f"GET http://{lab.lb_ip}:9000/hostname from host: expected HTTP 200, got no answer (connection refused)"]
    assert any("L2 speaker" in h for h in r.hints)


def test_service_missing(lab, vctx):
    lab.drop("Service", "svc-loadbalancer")
    lab.publish()
    r = run_one(vctx, "svc-loadbalancer")
    assert [str(m) for m in r.mismatches] == ["Service default/svc-loadbalancer: not found"]
    assert r.hints[0] == "create it: `labctl apply svc-loadbalancer`"


@pytest.mark.parametrize("node_name", [None, "node1"], ids=["nodeName-missing", "nodeName-not-a-lab-node"])
def test_nodeport_local_fails_when_no_endpoint_names_a_lab_node_even_if_nothing_answers(lab, vctx, node_name):
    """Nothing answers anywhere: with the Pod's node unknown, every node would be in
    "must not answer" and the check would pass. It must fail and say why."""
    ep = lab.obj("Endpoints", "svc-nodeport-local")
    for a in ep["subsets"][0]["addresses"]:
        if node_name is None:
            a.pop("nodeName")
        else:
            a["nodeName"] = node_name
    lab.stop("svc-nodeport-local@k8s-node1")
    lab.publish()
    r = run_one(vctx, "svc-nodeport-local")
    assert r.status is Status.FAIL
    got = "<missing>" if node_name is None else node_name
    assert [str(m) for m in r.mismatches] == [
        f"Endpoints svc-nodeport-local.subsets[].addresses[targetRef.name=pod-nodeport-local].nodeName: expected one of k8s-master, k8s-node1, k8s-node2, got {got}",
        "Endpoints svc-nodeport-local: no endpoint names a lab node that runs its Pod, so no node can be required to answer"]
    assert any("must run on lab nodes" in h for h in r.hints)


def test_nodeport_local_fails_when_nothing_answers(lab, vctx):
    lab.stop("svc-nodeport-local@k8s-node1")
    lab.http.pop("svc-nodeport-local@k8s-node2").stop()
    lab.publish()
    r = run_one(vctx, "svc-nodeport-local")
    assert r.status is Status.FAIL
    assert [m.path for m in r.mismatches] == [f"GET http://{lab.node1.ip}:{lab.local_port}/hostname from host"]
