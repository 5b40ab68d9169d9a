"""The course's Service kinds, each probed from where the course says it answers:
ClusterIP from inside (the master), NodePort and LoadBalancer from the host, and
`externalTrafficPolicy: Local` from the host (a probe on the node itself bypasses it).
kube-proxy picks a backend at random, so no check counts which Pod answered."""

from __future__ import annotations

import ipaddress

from labctl.verify.assertions import Satisfies, get_path
from labctl.verify.checks.common import expect, fetch, in_parallel
from labctl.verify.model import MISSING, Attempt, Evidence
from labctl.verify.probes import (
    HttpAnswer,
    answer_evidence,
    expect_http,
    expect_no_answer,
    http_from_host,
    http_from_node,
)

CLUSTERIP = "svc-clusterip"
NODEPORT = "svc-nodeport"
NODEPORT_LOCAL = "svc-nodeport-local"
LOADBALANCER = "svc-loadbalancer"
# The backing Pods run kubetm/app, which answers /hostname with "Hostname : <pod>":
# the body says which Pod answered, so a check can tell it is one of the Service's.
PATH = "/hostname"
NO_ENDPOINTS_HINT = "the Service selects no ready Pod: apply its backing Pods (`labctl apply {exercise}`) and compare the selector with the Pods' labels"
METALLB_HINT = (
    "no address from MetalLB: check that MetalLB runs and has an IPAddressPool and an L2Advertisement "
    "(`kubectl -n metallb-system get pods,ipaddresspools,l2advertisements`); `labctl up` installs them"
)


def _service(ctx, att: Attempt, name: str, kind: str) -> dict | None:
    svc = fetch(ctx, att, "Service", name, exercise=name)
    if svc is None:
        return None
    if not expect(att, {"spec": {"type": kind}}, svc, f"Service {name}"):
        return None
    return svc


def _endpoint_addresses(ctx, att: Attempt, name: str) -> list[dict]:
    endpoints = ctx.cluster.find("Endpoints", name, ctx.namespace)
    addresses = [a for s in (endpoints or {}).get("subsets") or [] for a in s.get("addresses") or []]
    if not addresses:
        att.fail(f"Endpoints {name}.subsets[].addresses", "at least one ready Pod", [])
        att.hint(NO_ENDPOINTS_HINT.format(exercise=name))
        for pod in _selected_pods(ctx, name):
            att.about("Pod", pod["metadata"]["name"], ctx.namespace)
    return addresses


def _selected_pods(ctx, name: str) -> list[dict]:
    svc = ctx.cluster.find("Service", name, ctx.namespace) or {}
    selector = get_path(svc, "spec.selector", {}) or {}
    if not selector:
        return []
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return ctx.cluster.list("Pod", ctx.namespace, label_selector=labels)


def _expect_backend(att: Attempt, answer: HttpAnswer, pods: list[str]) -> None:
    """The answer must come from one of ``pods`` (any of them: kube-proxy picks at random)."""
    found = expect_http(answer)
    if found:
        att.extend(found)
        return
    got = answer.body.strip()
    if not any(got == f"Hostname : {p}" for p in pods):
        att.fail(answer.where() + " body", "Hostname : <one of " + ", ".join(sorted(pods)) + ">", got)


def _pod_names(addresses: list[dict]) -> list[str]:
    return [get_path(a, "targetRef.name", "") for a in addresses]


def _port(svc: dict, key: str = "port"):
    ports = get_path(svc, "spec.ports", []) or []
    return ports[0].get(key) if ports else None


def clusterip(ctx) -> Attempt:
    att = Attempt()
    svc = _service(ctx, att, CLUSTERIP, "ClusterIP")
    addresses = _endpoint_addresses(ctx, att, CLUSTERIP) if svc else []
    if not addresses:
        return att
    ip, port = get_path(svc, "spec.clusterIP"), _port(svc)
    master = ctx.spec.master.name
    answer = http_from_node(ctx.nodes, master, f"http://{ip}:{port}{PATH}", timeout=ctx.http_timeout)
    _expect_backend(att, answer, _pod_names(addresses))
    att.evidence.append(answer_evidence([answer]))
    if not att.passed:
        att.hint(f"a ClusterIP answers only inside the cluster (this check curls it from {master}); if it does not, check kube-proxy: `kubectl -n kube-system get pods -l k8s-app=kube-proxy`")
    return att


def clusterip_not_from_host(ctx) -> Attempt:
    """The course: a ClusterIP is reachable only inside the cluster, never from outside."""
    att = Attempt()
    svc = _service(ctx, att, CLUSTERIP, "ClusterIP")
    if svc is None:
        return att
    ip, port = get_path(svc, "spec.clusterIP"), _port(svc)
    answer = http_from_host(f"http://{ip}:{port}{PATH}", timeout=ctx.http_timeout)
    found = expect_no_answer(answer)
    att.extend(found)
    att.evidence.append(answer_evidence([answer]))
    if found:
        att.hint("the host reached a ClusterIP: the host must have no route into the Service network "
                 "(`ip route get <ClusterIP>` on the host should not go through a lab node); or is this Service really type ClusterIP?")
    return att


def _probe_nodes(ctx, port: int) -> list[tuple[str, HttpAnswer]]:
    nodes = list(ctx.spec.nodes)
    answers = in_parallel(lambda n: http_from_host(f"http://{n.ip}:{port}{PATH}", timeout=ctx.http_timeout), nodes)
    return [(n.name, a) for n, a in zip(nodes, answers)]


def nodeport(ctx) -> Attempt:
    att = Attempt()
    svc = _service(ctx, att, NODEPORT, "NodePort")
    addresses = _endpoint_addresses(ctx, att, NODEPORT) if svc else []
    if not addresses:
        return att
    probes = _probe_nodes(ctx, _port(svc, "nodePort"))
    for _, answer in probes:
        _expect_backend(att, answer, _pod_names(addresses))
    att.evidence.append(answer_evidence([a for _, a in probes]))
    if not att.passed:
        att.hint("a NodePort answers on EVERY node's address, with or without a Pod there: a node that does not answer has a kube-proxy or firewall problem (`kubectl -n kube-system get pods -o wide`)")
    return att


def nodeport_local(ctx) -> Attempt:
    att = Attempt()
    svc = _service(ctx, att, NODEPORT_LOCAL, "NodePort")
    if svc is None:
        return att
    expect(att, {"spec": {"externalTrafficPolicy": "Local"}}, svc, f"Service {NODEPORT_LOCAL}")
    addresses = _endpoint_addresses(ctx, att, NODEPORT_LOCAL)
    if not att.passed:
        return att
    # Which lab node runs each ready Pod. An address whose nodeName is missing or names
    # no lab node cannot be placed: it would silently put every node in "must not
    # answer", and a lab where nothing answers would pass.
    lab_nodes = [n.name for n in ctx.spec.nodes]
    local: dict[str, list[str]] = {}
    for a in addresses:
        pod, node = get_path(a, "targetRef.name", ""), a.get("nodeName")
        if node in lab_nodes:
            local.setdefault(node, []).append(pod)
        else:
            att.fail(f"Endpoints {NODEPORT_LOCAL}.subsets[].addresses[targetRef.name={pod}].nodeName",
                     "one of " + ", ".join(lab_nodes), node if node is not None else MISSING)
    if not local:
        att.fail(f"Endpoints {NODEPORT_LOCAL}", note="no endpoint names a lab node that runs its Pod, so no node can be required to answer")
    if not att.passed:
        att.hint("the Pods behind svc-nodeport-local must run on lab nodes: `kubectl get pods -o wide` and `labctl verify lab-nodes-ready`")
        return att
    probes = _probe_nodes(ctx, _port(svc, "nodePort"))
    lines = []
    for node, answer in probes:
        if node in local:
            # Local: the node's own Pod answers, never one elsewhere.
            _expect_backend(att, answer, local[node])
            lines.append(f"{node}: runs a Pod, must answer -> {answer.describe()}")
        else:
            found = expect_no_answer(answer)
            if found:
                att.extend(found)
                att.hint(f"{node} runs no Pod of {NODEPORT_LOCAL} but answered: is externalTrafficPolicy really Local? (probes from a node itself bypass the policy; this one came from the host)")
            lines.append(f"{node}: runs no Pod, must not answer -> {answer.describe()}")
    att.evidence.append(Evidence("probes from the host (externalTrafficPolicy: Local)", tuple(lines)))
    return att


def loadbalancer_nodeport(ctx) -> Attempt:
    """The course: a LoadBalancer has every NodePort property; its nodePort answers on
    every node's address from the host, with or without MetalLB's address."""
    att = Attempt()
    svc = _service(ctx, att, LOADBALANCER, "LoadBalancer")
    if svc is None:
        return att
    node_port = _port(svc, "nodePort")
    if not node_port:
        att.fail(f"Service {LOADBALANCER}.spec.ports[0].nodePort", "a port (allocateLoadBalancerNodePorts)", node_port if node_port is not None else MISSING)
        return att
    addresses = _endpoint_addresses(ctx, att, LOADBALANCER)
    if not addresses:
        return att
    probes = _probe_nodes(ctx, node_port)
    for _, answer in probes:
        _expect_backend(att, answer, _pod_names(addresses))
    att.evidence.append(answer_evidence([a for _, a in probes]))
    if not att.passed:
        att.hint("a LoadBalancer Service is also a NodePort Service: its nodePort must answer on every node like svc-nodeport's (kube-proxy)")
    return att


def _in_pool(ctx):
    first, last = ctx.spec.metallb.pool_range()

    def test(value) -> bool:
        return first <= ipaddress.ip_address(value) <= last

    return Satisfies(test, f"an address in the MetalLB pool {ctx.spec.metallb.pool}")


def loadbalancer(ctx) -> Attempt:
    att = Attempt()
    svc = _service(ctx, att, LOADBALANCER, "LoadBalancer")
    if svc is None:
        return att
    ingress = get_path(svc, "status.loadBalancer.ingress", []) or []
    if not ingress:
        att.fail(f"Service {LOADBALANCER}.status.loadBalancer.ingress", "an address (EXTERNAL-IP)", "<pending>")
        att.hint(METALLB_HINT)
        return att
    ip = ingress[0].get("ip")
    if not expect(att, {"status": {"loadBalancer": {"ingress": [{"ip": _in_pool(ctx)}]}}}, svc, f"Service {LOADBALANCER}"):
        return att
    addresses = _endpoint_addresses(ctx, att, LOADBALANCER)
    if not addresses:
        return att
    answer = http_from_host(f"http://{ip}:{_port(svc)}{PATH}", timeout=ctx.http_timeout)
    _expect_backend(att, answer, _pod_names(addresses))
    att.evidence.append(answer_evidence([answer]))
    if not att.passed:
        att.hint("MetalLB assigned the address but it does not answer from the host: MetalLB's L2 speaker must run on the nodes (`kubectl -n metallb-system get pods -o wide`) and the pool must be inside the host-only network")
    return att
