"""Every check labctl knows, in the order a student meets them.

Ids are stable (graders and scripts use them). `labctl verify pod-1` runs pod-1 and
its group (pod-1-localhost, pod-1-localhost-8000, pod-1-same-port); `labctl verify lab`
runs lab-*; `labctl verify svc-loadbalancer` runs svc-loadbalancer and
svc-loadbalancer-nodeport.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from labctl.verify.checks import lab, pods, services
from labctl.verify.model import Check
from labctl.errors import UsageError

DESCRIBE = "`kubectl describe pod {name}` shows its node, its containers' states and its events"

CHECKS: tuple[Check, ...] = (
    Check(
        "lab-nodes-ready",
        "every node of the lab is registered and Ready",
        lab.nodes_ready,
        deadline=60.0,
        hints=("a NotReady node usually has no CNI yet or a stopped kubelet: `labctl status`, then `labctl up` to resume",),
    ),
    Check(
        "lab-node-ips",
        "every node's InternalIP is its host-only address (never 10.0.2.15)",
        lab.node_ips,
        deadline=10.0,
        hints=("kubelet must run with --node-ip=<host-only address>; `labctl up` sets it",),
    ),
    Check(
        "lab-dns",
        "CoreDNS answers kubernetes.default from inside the cluster",
        lab.dns,
        deadline=60.0,
        hints=("CoreDNS needs the CNI and a resolv.conf without 127.0.0.53: `kubectl -n kube-system get pods -l k8s-app=kube-dns`",),
    ),
    Check(
        "lab-version",
        "the API server is Kubernetes v1.27, the course's version",
        lab.server_version,
        deadline=30.0,
        hints=("`kubectl version` shows the Server Version",),
    ),
    Check(
        "lab-cni",
        "the CNI (calico-node) runs Ready on every node",
        lab.cni,
        deadline=90.0,
        hints=("calico-node must pick the host-only interface (IP_AUTODETECTION_METHOD); `kubectl -n kube-system logs ds/calico-node` shows why it is not Ready",),
    ),
    Check(
        "pod-1",
        "pod-1's Pod IP answers on 8000 and 8080 from the master",
        pods.pod1,
        deadline=60.0,
        exercise="pod-1",
        hints=(DESCRIBE.format(name="pod-1"),),
    ),
    Check(
        "pod-1-localhost",
        "pod-1's container1 reaches container2 on localhost:8080",
        pods.pod1_localhost,
        deadline=60.0,
        exercise="pod-1",
        hints=("try it yourself: `kubectl exec pod-1 -c container1 -- curl -s localhost:8080`",),
    ),
    Check(
        "pod-1-localhost-8000",
        "pod-1's container2 reaches container1 on localhost:8000",
        pods.pod1_localhost_8000,
        deadline=60.0,
        exercise="pod-1",
        hints=("try it yourself: `kubectl exec pod-1 -c container2 -- curl -s localhost:8000`",),
    ),
    Check(
        "pod-1-same-port",
        "a Pod with two containers on the same port fails (EADDRINUSE)",
        pods.same_port,
        deadline=90.0,
        interval=3.0,
        exercise=pods.SAME_PORT_EXERCISE,
        hints=("on Kubernetes 1.27 the API accepts the Pod; the failure shows in the second container's status and logs",),
    ),
    Check(
        "pod-2-selector",
        "pod-2's labels select it into svc-for-web's endpoints",
        pods.pod2_selector,
        deadline=60.0,
        exercise="pod-2",
        hints=("a Service selects Pods whose labels contain all of its selector's key=value pairs",),
    ),
    Check(
        "pod-3",
        "pod-3 runs on k8s-node1 (nodeSelector kubernetes.io/hostname)",
        pods.pod3,
        deadline=60.0,
        exercise="pod-3",
        hints=(DESCRIBE.format(name="pod-3"),),
        skip_reason=pods.needs_course_node,
    ),
    Check(
        "pod-4",
        "pod-4 requests and is limited to 1Gi of memory and runs on k8s-node1",
        pods.pod4,
        deadline=60.0,
        exercise="pod-4",
        hints=(DESCRIBE.format(name="pod-4"),),
        skip_reason=pods.needs_course_node,
    ),
    Check(
        "svc-clusterip",
        "a ClusterIP Service answers from inside the cluster",
        services.clusterip,
        deadline=60.0,
        exercise=services.CLUSTERIP,
        hints=("`kubectl get svc,endpoints svc-clusterip -o wide` shows its addresses and the Pods behind it",),
    ),
    Check(
        "svc-clusterip-not-from-host",
        "a ClusterIP Service does not answer from outside the cluster (the host)",
        services.clusterip_not_from_host,
        deadline=30.0,
        exercise=services.CLUSTERIP,
        hints=("a ClusterIP is only for inside the cluster: the course reaches it from a node, never from outside",),
    ),
    Check(
        "svc-nodeport",
        "a NodePort Service answers on every node's address from the host",
        services.nodeport,
        deadline=60.0,
        exercise=services.NODEPORT,
        hints=("`kubectl get svc,endpoints svc-nodeport -o wide` shows its addresses and the Pods behind it",),
    ),
    Check(
        "svc-nodeport-local",
        "with externalTrafficPolicy: Local only nodes running a Pod answer",
        services.nodeport_local,
        deadline=60.0,
        exercise=services.NODEPORT_LOCAL,
        hints=("`kubectl get svc,endpoints svc-nodeport-local -o wide` shows its addresses and the Pods behind it",),
    ),
    Check(
        "svc-loadbalancer",
        "a LoadBalancer Service gets an address from the MetalLB pool that answers",
        services.loadbalancer,
        deadline=90.0,
        exercise=services.LOADBALANCER,
        hints=("`kubectl get svc,endpoints svc-loadbalancer -o wide` shows its addresses and the Pods behind it",),
    ),
    Check(
        "svc-loadbalancer-nodeport",
        "a LoadBalancer Service's own NodePort answers on every node's address from the host",
        services.loadbalancer_nodeport,
        deadline=60.0,
        exercise=services.LOADBALANCER,
        hints=("`kubectl get svc svc-loadbalancer` shows its ports as <port>:<nodePort>/TCP",),
    ),
)

assert len({c.id for c in CHECKS}) == len(CHECKS), "check ids must be unique"


def ids() -> list[str]:
    return [c.id for c in CHECKS]


def select(selectors: Iterable[str], checks: Sequence[Check] = CHECKS) -> list[Check]:
    """The checks named by ``selectors`` (ids or group prefixes), in catalogue order.

    An unknown selector is a usage error that lists the valid ids.
    """
    wanted = list(dict.fromkeys(selectors))
    unknown = [s for s in wanted if not any(c.matches(s) for c in checks)]
    if unknown:
        raise UsageError(
            f"unknown check {', '.join(repr(u) for u in unknown)}",
            hint="valid checks: " + ", ".join(c.id for c in checks),
        )
    return [c for c in checks if any(c.matches(s) for s in wanted)]
