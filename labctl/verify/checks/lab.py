"""Lab health: nodes Ready, node addresses on the host-only network, DNS, the CNI."""

from __future__ import annotations

import ipaddress
import shlex

from labctl.verify.assertions import get_path, must_not_match
from labctl.verify.checks.common import expect, fetch
from labctl.verify.model import MISSING, Attempt, Evidence

VBOX_NAT_IP = "10.0.2.15"
NODE_IP_HINT = (
    "kubelet registered the NAT address 10.0.2.15: set kubelet --node-ip to the node's host-only address "
    "(KUBELET_EXTRA_ARGS in /etc/default/kubelet) and restart kubelet; `labctl up` does this"
)
CALICO_IP_HINT = (
    "Calico picked the wrong interface: set IP_AUTODETECTION_METHOD=cidr=<host-only network> on the "
    "calico-node DaemonSet; `labctl up` does this"
)
CLUSTER_DOMAIN = "cluster.local"
COURSE_MINOR = "27"  # the course: kubernetes v1.27

# A DNS A query with nothing but python3 (every lab box has it; dig and nslookup are
# not always installed). Prints "rcode=N" then one address per line.
DNS_QUERY = r"""
import random, socket, struct, sys
server, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(q, (server, port))
r = s.recv(4096)
print("rcode=%d" % (r[3] & 15))
i = 12
while r[i]:
    i += r[i] + 1
i += 5
for _ in range(struct.unpack(">H", r[6:8])[0]):
    if r[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while r[i]:
            i += r[i] + 1
        i += 1
    rtype, _, _, size = struct.unpack(">HHIH", r[i:i + 10])
    i += 10
    if rtype == 1:
        print(socket.inet_ntoa(r[i:i + size]))
    i += size
"""


def dns_query_command(server: str, name: str, port: int = 53) -> str:
    return f"python3 -c {shlex.quote(DNS_QUERY)} {shlex.quote(server)} {int(port)} {shlex.quote(name)}"


def parse_dns_answer(stdout: str) -> tuple[int | None, list[str]]:
    rcode: int | None = None
    addresses: list[str] = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("rcode="):
            rcode = int(line.split("=", 1)[1])
        elif line:
            addresses.append(line)
    return rcode, addresses


def _nodes_by_name(ctx) -> dict[str, dict]:
    return {(n.get("metadata") or {}).get("name"): n for n in ctx.cluster.list("Node", None)}


def _missing_nodes(att: Attempt, ctx, live: dict[str, dict]) -> None:
    known = [n.name for n in ctx.spec.nodes]
    missing = [name for name in known if name not in live]
    for name in missing:
        att.fail(f"nodes[{name}]", note="not registered with the API server")
    strangers = sorted(set(live) - set(known))
    if missing and strangers:
        att.hint(
            f"the API server knows node(s) {', '.join(strangers)} that are not in the lab: "
            f"a VM's hostname must be exactly its lab name ({', '.join(missing)})"
        )
    elif missing:
        att.hint("the node never joined the cluster: run `labctl up` again (it resumes where it stopped)")


def nodes_ready(ctx) -> Attempt:
    att = Attempt()
    live = _nodes_by_name(ctx)
    _missing_nodes(att, ctx, live)
    for node in ctx.spec.nodes:
        obj = live.get(node.name)
        if obj is not None and not expect(att, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, obj, f"nodes[{node.name}]"):
            att.about("Node", node.name, None)
    return att


def node_ips(ctx) -> Attempt:
    """Every registered node, in the lab or not (a VM with the wrong hostname still
    shows which address kubelet picked), has its InternalIP on the host-only network."""
    att = Attempt()
    live = _nodes_by_name(ctx)
    host_only = ipaddress.ip_network(ctx.spec.network.host_only)
    wanted = {n.name: n.ip for n in ctx.spec.nodes}
    seen = []
    for name, obj in sorted(live.items()):
        path = f"nodes[{name}]"
        addresses = get_path(obj, "status.addresses", []) or []
        seen.append(f"{name}: " + ", ".join(f"{a.get('type')}={a.get('address')}" for a in addresses))
        nat = must_not_match({"status": {"addresses": [{"type": "InternalIP", "address": VBOX_NAT_IP}]}}, obj, path)
        if nat:
            att.extend(nat)
            att.hint(NODE_IP_HINT)
        elif name in wanted:
            expect(att, {"status": {"addresses": [{"type": "InternalIP", "address": wanted[name]}]}}, obj, path)
        for addr in addresses:
            if addr.get("type") == "InternalIP" and addr.get("address") != VBOX_NAT_IP and not _inside(addr.get("address"), host_only):
                att.fail(f"{path}.status.addresses[type=InternalIP].address", f"an address inside {host_only}", addr.get("address"))
        annotations = get_path(obj, "metadata.annotations", {}) or {}
        calico_ip = annotations.get("projectcalico.org/IPv4Address")
        if calico_ip and not _inside(calico_ip.split("/")[0], host_only):
            att.fail(f"{path}.metadata.annotations.projectcalico.org/IPv4Address", f"an address inside {host_only}", calico_ip)
            att.hint(CALICO_IP_HINT)
    missing = [n for n in wanted if n not in live]
    if missing:
        att.fail("nodes", f"registered nodes {', '.join(wanted)}", sorted(live), note="see lab-nodes-ready")
    att.evidence.append(Evidence("node addresses", tuple(seen)))
    return att


def _inside(address, network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except (TypeError, ValueError):
        return False


def dns(ctx) -> Attempt:
    att = Attempt()
    svc = fetch(ctx, att, "Service", "kube-dns", namespace="kube-system")
    api = fetch(ctx, att, "Service", "kubernetes", namespace="default")
    endpoints = fetch(ctx, att, "Endpoints", "kube-dns", namespace="kube-system")
    if svc is None or api is None or endpoints is None:
        return att
    ready = [a for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
    if not ready:
        att.fail("Endpoints kube-system/kube-dns.subsets[].addresses", "at least one ready CoreDNS Pod", [])
        for pod in ctx.cluster.list("Pod", "kube-system", label_selector="k8s-app=kube-dns"):
            att.about("Pod", pod["metadata"]["name"], "kube-system")
        return att
    server = get_path(svc, "spec.clusterIP")
    port = next((p.get("port") for p in get_path(svc, "spec.ports", []) or [] if p.get("protocol", "TCP") == "UDP"), 53)
    name = f"kubernetes.default.svc.{CLUSTER_DOMAIN}"
    want = get_path(api, "spec.clusterIP")
    master = ctx.spec.master.name
    result = ctx.nodes.run(master, dns_query_command(server, name, port), 15.0)
    where = f"DNS A {name} at {server}:{port} from {master}"
    if result.rc != 0:
        att.fail(where, f"an answer {want}", f"no answer (rc={result.rc}: {(result.stderr or '').strip()[-200:]})")
        att.hint("CoreDNS does not answer on its ClusterIP: check kube-proxy and the CNI on the master (`kubectl -n kube-system get pods -o wide`)")
        return att
    rcode, addresses = parse_dns_answer(result.stdout)
    att.evidence.append(Evidence("DNS query", (f"{where}: rcode={rcode} answers={addresses}",)))
    if rcode != 0:
        att.fail(where + " rcode", 0, rcode)
    elif want not in addresses:
        att.fail(where, want, addresses)
    return att


def server_version(ctx) -> Attempt:
    """The course's environment: Kubernetes v1.27 (what `kubectl version` shows as Server Version)."""
    att = Attempt()
    version = ctx.cluster.version()
    expect(att, {"major": "1", "minor": COURSE_MINOR}, version, "server version")
    git = version.get("gitVersion", MISSING)
    if not (isinstance(git, str) and git.startswith(f"v1.{COURSE_MINOR}.")):
        att.fail("server version.gitVersion", f"v1.{COURSE_MINOR}.x", git)
    att.evidence.append(Evidence("server version", (f"gitVersion={git} major={version.get('major')} minor={version.get('minor')} platform={version.get('platform')}",)))
    if not att.passed:
        att.hint(f"the course is written for Kubernetes 1.{COURSE_MINOR} and labctl installs 1.{COURSE_MINOR}.x: is the lab's kubeconfig "
                 "pointing at another cluster (`labctl kubeconfig`, `kubectl version`)? Otherwise recreate the lab (`labctl destroy`, `labctl up`)")
    return att


def cni(ctx) -> Attempt:
    att = Attempt()
    pods = ctx.cluster.list("Pod", "kube-system", label_selector="k8s-app=calico-node")
    if not pods:
        att.fail("Pods kube-system/calico-node-*", note="none: Calico is not installed")
        att.hint("Calico is not installed: `labctl up` installs it")
        if ctx.cluster.find("DaemonSet", "calico-node", "kube-system") is not None:
            att.about("DaemonSet", "calico-node", "kube-system")
        return att
    by_node = {get_path(p, "spec.nodeName"): p for p in pods}
    for node in ctx.spec.nodes:
        if node.name not in by_node:
            att.fail(f"calico-node on {node.name}", note="no calico-node Pod runs there")
    want = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    for node_name, pod in sorted(by_node.items(), key=lambda kv: str(kv[0])):
        name = pod["metadata"]["name"]
        if not expect(att, want, pod, f"Pod kube-system/{name} on {node_name}"):
            att.about("Pod", name, "kube-system")
    return att
