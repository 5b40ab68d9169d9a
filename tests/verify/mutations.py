"""One broken lab per course claim, made from the passing hand-built fixtures.

Each mutation takes the passing lab (tests/fixtures/k8s/passing, moved onto loopback
and answering like a healthy lab: ``FixtureLab.answer_like_a_healthy_lab()``) and
breaks exactly one claim, the way a real lab breaks it. test_mutations.py asserts
that the claim's check fails and that the checks sharing its objects still pass.

``MUTATIONS[check_id] = Mutation(break_it, siblings, says)``: ``says`` is a piece of
the first mismatch, so the check fails for the right reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.helpers.fake_apiserver import SERVER_VERSION
from tests.verify.netfakes import loopback_address


@dataclass(frozen=True)
class Mutation:
    apply: Callable  # (FixtureLab) -> None
    siblings: tuple[str, ...]
    says: str


def _pod(lab, name: str, namespace: str = "default") -> dict:
    return lab.obj("Pod", name, namespace)


def _calico_on(lab, node: str) -> dict:
    return next(p for p in lab.fake.objects("Pod") if (p["metadata"].get("labels") or {}).get("k8s-app") == "calico-node"
                and p["spec"].get("nodeName") == node)


def _not_ready(pod: dict) -> dict:
    for cond in pod["status"]["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady",
                        message=f"containers with unready status: [{' '.join(c['name'] for c in pod['spec']['containers'])}]")
    for cs in pod["status"]["containerStatuses"]:
        cs.update(ready=False, started=False)
    return pod


def _replace_server(lab, key: str, address: str, port: int, body: str | None) -> None:
    """Stop what serves ``key`` and, with a body, serve that instead (same address and port)."""
    lab.http.pop(key).stop()
    if body is not None:
        lab.http[key] = lab.servers.http(address, port, body)


# -- lab ------------------------------------------------------------------------------------


def node_not_ready(lab) -> None:
    node = lab.obj("Node", "k8s-node2")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    ready.update(status="False", reason="KubeletNotReady", message="container runtime network not ready: NetworkReady=false")
    lab.put(node)


def node_nat_ip(lab) -> None:
    node = lab.obj("Node", "k8s-node2")
    next(a for a in node["status"]["addresses"] if a["type"] == "InternalIP")["address"] = "10.0.2.15"
    lab.put(node)


def dns_nxdomain(lab) -> None:
    lab.dns.records.clear()  # CoreDNS answers, but knows no kubernetes.default


def server_1_28(lab) -> None:
    lab.fake.route("GET", "/version/", {**SERVER_VERSION, "minor": "28", "gitVersion": "v1.28.9"})


def calico_not_ready_on_node2(lab) -> None:
    lab.put(_not_ready(_calico_on(lab, "k8s-node2")))


# -- pods -----------------------------------------------------------------------------------


def _pod1_localhost(lab, ports: tuple[int, ...]) -> str:
    """pod-1's network namespace gets its own servers for ``ports`` (what localhost
    reaches inside the Pod), apart from what its IP answers from outside."""
    inside = loopback_address()
    for port in ports:
        lab.http[f"pod-1 localhost:{port}"] = lab.servers.http(inside, port, f"containerPort : {port}\n")
    lab.localhost = inside
    return inside


def pod1_ip_unreachable(lab) -> None:
    # No route to the Pod IP from the master (CNI); inside the Pod all is well.
    _pod1_localhost(lab, (8000, 8080))
    for port in (8000, 8080):
        lab.http.pop(f"pod-1:{port}").stop()


def container2_not_on_localhost(lab) -> None:
    # container2 listens on the Pod IP only: localhost:8080 refuses, the Pod IP answers.
    _pod1_localhost(lab, (8000,))


def container1_not_on_localhost(lab) -> None:
    _pod1_localhost(lab, (8080,))


def same_port_runs(lab) -> None:
    pod = _pod(lab, "pod-same-port")
    for cond in pod["status"]["conditions"]:
        cond.update(status="True")
        cond.pop("reason", None)
        cond.pop("message", None)
    for cs in pod["status"]["containerStatuses"]:
        cs.update(ready=True, started=True, restartCount=0, lastState={}, state={"running": {"startedAt": "2024-07-20T06:02:40Z"}})
    lab.put(pod)
    lab.fake.set_logs("pod-same-port", "", container="container2", previous=False)
    lab.fake.set_logs("pod-same-port", "", container="container2", previous=True)


def pod2_relabelled(lab) -> None:
    pod = _pod(lab, "pod-2")
    pod["metadata"]["labels"]["type"] = "db"
    lab.put(pod)
    ep = lab.obj("Endpoints", "svc-for-web")
    for subset in ep["subsets"]:
        subset["addresses"] = [a for a in subset["addresses"] if a["targetRef"]["name"] != "pod-2"]
    lab.put(ep)


def pod3_without_node_selector(lab) -> None:
    pod = _pod(lab, "pod-3")
    del pod["spec"]["nodeSelector"]
    pod["spec"]["nodeName"] = "k8s-node2"
    pod["status"]["hostIP"] = lab.node_ip("k8s-node2")
    lab.put(pod)


def pod4_limits_2gi(lab) -> None:
    pod = _pod(lab, "pod-4")
    pod["spec"]["containers"][0]["resources"]["limits"]["memory"] = "2Gi"
    lab.put(pod)


# -- services -------------------------------------------------------------------------------


def clusterip_silent_on_master(lab) -> None:
    lab.http.pop("svc-clusterip").stop()  # kube-proxy does not program the ClusterIP


def clusterip_reached_from_host(lab) -> None:
    svc = lab.obj("Service", "svc-clusterip")
    _replace_server(lab, "svc-clusterip", svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"], "Hostname : pod-clusterip-1\n")


def nodeport_silent_on_node2(lab) -> None:
    lab.http.pop("svc-nodeport@k8s-node2").stop()


def nodeport_local_answers_everywhere(lab) -> None:
    port = lab.obj("Service", "svc-nodeport-local")["spec"]["ports"][0]["nodePort"]
    _replace_server(lab, "svc-nodeport-local@k8s-node2", lab.node_ip("k8s-node2"), port, "Hostname : pod-nodeport-local\n")


def loadbalancer_ip_silent(lab) -> None:
    lab.http.pop("svc-loadbalancer").stop()  # MetalLB's speaker does not answer ARP


def loadbalancer_nodeport_silent_on_node1(lab) -> None:
    lab.http.pop("svc-loadbalancer-nodeport@k8s-node1").stop()


MUTATIONS: dict[str, Mutation] = {
    "lab-nodes-ready": Mutation(node_not_ready, ("lab-node-ips", "lab-cni"), "nodes[k8s-node2].status.conditions[type=Ready].status: expected True, got False"),
    "lab-node-ips": Mutation(node_nat_ip, ("lab-nodes-ready", "lab-cni"), "nodes[k8s-node2].status.addresses[type=InternalIP].address: expected anything but 10.0.2.15"),
    "lab-dns": Mutation(dns_nxdomain, ("lab-nodes-ready", "lab-cni"), "rcode: expected 0, got 3"),
    "lab-version": Mutation(server_1_28, ("lab-nodes-ready",), "server version.minor: expected 27, got 28"),
    "lab-cni": Mutation(calico_not_ready_on_node2, ("lab-nodes-ready", "lab-node-ips"), "on k8s-node2.status.conditions[type=Ready].status: expected True, got False"),
    "pod-1": Mutation(pod1_ip_unreachable, ("pod-1-localhost", "pod-1-localhost-8000", "pod-1-same-port"), ":8000/ from k8s-master: expected HTTP 200, got no answer"),
    "pod-1-localhost": Mutation(container2_not_on_localhost, ("pod-1", "pod-1-localhost-8000"), "exec curl -s -m 3 localhost:8080 in pod-1/container1 exit code: expected 0, got 7"),
    "pod-1-localhost-8000": Mutation(container1_not_on_localhost, ("pod-1", "pod-1-localhost"), "exec curl -s -m 3 localhost:8000 in pod-1/container2 exit code: expected 0, got 7"),
    "pod-1-same-port": Mutation(same_port_runs, ("pod-1", "pod-1-localhost"), "status.conditions[type=Ready].status: expected anything but True, got True"),
    "pod-2-selector": Mutation(pod2_relabelled, ("pod-4", "pod-3"), "Pod pod-2.metadata.labels.type: expected web, got db"),
    "pod-3": Mutation(pod3_without_node_selector, ("pod-4", "pod-2-selector"), "spec.nodeSelector: expected an object, got <missing>"),
    "pod-4": Mutation(pod4_limits_2gi, ("pod-3", "pod-2-selector"), "spec.containers[name=container].resources.limits.memory: expected 1Gi, got 2Gi"),
    "svc-clusterip": Mutation(clusterip_silent_on_master, ("svc-clusterip-not-from-host",), "/hostname from k8s-master: expected HTTP 200, got no answer (connection refused)"),
    "svc-clusterip-not-from-host": Mutation(clusterip_reached_from_host, ("svc-clusterip",), "/hostname from host: expected no answer, got HTTP 200 'Hostname : pod-clusterip-1'"),
    "svc-nodeport": Mutation(nodeport_silent_on_node2, ("svc-nodeport-local", "svc-loadbalancer-nodeport"), "/hostname from host: expected HTTP 200, got no answer (connection refused)"),
    "svc-nodeport-local": Mutation(nodeport_local_answers_everywhere, ("svc-nodeport",), "/hostname from host: expected no answer, got HTTP 200"),
    "svc-loadbalancer": Mutation(loadbalancer_ip_silent, ("svc-loadbalancer-nodeport",), "/hostname from host: expected HTTP 200, got no answer (connection refused)"),
    "svc-loadbalancer-nodeport": Mutation(loadbalancer_nodeport_silent_on_node1, ("svc-loadbalancer", "svc-nodeport"), "/hostname from host: expected HTTP 200, got no answer (connection refused)"),
}
