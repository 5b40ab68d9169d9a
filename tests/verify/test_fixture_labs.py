"""verify --all against the hand-built, schema-checked 1.27 labs (tests/fixtures/k8s), moved onto
loopback: the passing lab passes every check, the failing lab fails where it is broken
and says why."""

import pytest

from labctl.verify.catalogue import CHECKS
from labctl.verify.model import Status
from labctl.verify.runner import run_checks
from labctl.report.verify import details

pytestmark = pytest.mark.slow


def by_id(report):
    return {r.id: r for r in report.results}


def test_passing_fixture_lab_passes_every_check(fixture_lab, vctx):
    fixture_lab("passing").answer_like_a_healthy_lab()
    report = run_checks(CHECKS, vctx, deadline=2, reraise_bugs=True)
    failed = {r.id: details(r) for r in report.results if r.status is not Status.PASS}
    assert failed == {}


def test_failing_fixture_lab_fails_where_it_is_broken(fixture_lab, vctx):
    """failing/: workers registered as node1/node2 with the NAT address, calico-node
    not ready on node2, Pods pinned to k8s-node1 Pending, MetalLB missing."""
    lab = fixture_lab("failing")
    report = run_checks(CHECKS, vctx, deadline=0, reraise_bugs=True)
    r = by_id(report)
    assert not report.ok

    nodes = r["lab-nodes-ready"]
    assert [str(m) for m in nodes.mismatches] == ["nodes[k8s-node1]: not registered with the API server", "nodes[k8s-node2]: not registered with the API server"]
    assert nodes.hints[0] == "the API server knows node(s) node1, node2 that are not in the lab: a VM's hostname must be exactly its lab name (k8s-node1, k8s-node2)"

    ips = r["lab-node-ips"]
    assert "nodes[node1].status.addresses[type=InternalIP].address: expected anything but 10.0.2.15, got 10.0.2.15" in [str(m) for m in ips.mismatches]
    assert any("--node-ip" in h for h in ips.hints)

    cni = r["lab-cni"]
    assert any(str(m).startswith("Pod kube-system/calico-node-42e3c on node2.status.conditions[type=Ready].status: expected True, got False") for m in cni.mismatches)

    for pinned in ("pod-3", "pod-4"):
        assert [str(m) for m in r[pinned].mismatches] == ["spec.nodeName: expected k8s-node1, got <missing>", "status.phase: expected Running, got Pending"]
        assert r[pinned].hints[0].startswith("the worker's hostname must be exactly k8s-node1")
        assert any("FailedScheduling" in line for ev in r[pinned].evidence for line in ev.lines)

    for svc in ("svc-nodeport", "svc-nodeport-local"):
        assert str(r[svc].mismatches[0]) == f"Endpoints {svc}.subsets[].addresses: expected at least one ready Pod, got []"
        assert any(h.startswith("the worker's hostname must be exactly k8s-node1") for h in r[svc].hints)

    lb = r["svc-loadbalancer"]
    assert str(lb.mismatches[0]) == "Service svc-loadbalancer.status.loadBalancer.ingress: expected an address (EXTERNAL-IP), got <pending>"
    assert lb.hints[0].startswith("no address from MetalLB")

    # what is not broken there still passes
    assert r["pod-1-same-port"].status is Status.PASS and r["pod-2-selector"].status is Status.PASS
    assert r["lab-dns"].status is Status.PASS
