"""The objects verify's tests build by hand are schema-true for Kubernetes 1.27
(kubernetes-validate, strict: an unknown or misspelt field fails)."""

import kubernetes_validate
import pytest

from tests.verify import objects as o
from tests.verify.conftest import loopback_spec


def every_object():
    spec = loopback_spec()
    yield from o.lab_nodes(spec)
    yield o.node("k8s-node2", "10.0.2.15", ready=False)
    yield from o.kube_system(spec, dns_ip="127.1.0.10", dns_pod_ips=["127.1.0.11"], api_ip="127.1.0.1", calico_not_ready=("k8s-node2",))
    yield o.pod(o.manifest("pod-1"), node="k8s-node1", ip="127.1.0.2", containers={"container2": "waiting"})
    yield o.pod(o.manifest("pod-same-port"), node="k8s-node2", ip="127.1.0.3", containers={"container2": "crashloop"})
    yield o.pod(o.manifest("pod-3"), phase="Pending")
    yield o.pod(o.manifest("pod-4"), node="k8s-node1", ip="127.1.0.4")
    for resources in ({"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}, {"requests": {"memory": "1Gi"}, "limits": {"cpu": "500m"}}):
        wrong = o.manifest("pod-4")
        wrong["spec"]["containers"][0]["resources"] = resources
        yield o.pod(wrong, node="k8s-node1", ip="127.1.0.4")
    for name in ("svc-clusterip", "svc-nodeport", "svc-nodeport-local", "svc-loadbalancer"):
        yield o.service(o.manifest(name, "Service"), cluster_ip="127.1.0.5", node_port=30080, ingress_ip="127.1.0.6" if "loadbalancer" in name else None)
    yield o.service(o.manifest("svc-for-web"), cluster_ip="127.1.0.7")
    yield o.endpoints("svc-for-web", [("127.1.0.8", "pod-2", "k8s-node2")], not_ready=[("127.1.0.9", "pod-4", "k8s-node1")])
    yield o.endpoints("svc-nodeport", [])
    yield o.event("Pod", "pod-3", "FailedScheduling", "0/3 nodes are available")
    yield o.event("Pod", "pod-3", "FailedScheduling", "0/3 nodes are available", count=7)
    yield o.event("Pod", "pod-1", "Failed", "Failed to pull image", source="kubelet", count=3)


@pytest.mark.parametrize("obj", list(every_object()), ids=lambda obj: f"{obj['kind']}-{obj['metadata']['name']}")
def test_object_is_valid_for_1_27(obj):
    assert kubernetes_validate.validate(obj, "1.27", strict=True) == "1.27"
