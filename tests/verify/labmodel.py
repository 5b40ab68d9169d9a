"""A whole lab for verify's tests: 1.27 objects in the fake API server, and real
servers on loopback aliases where the lab's addresses would answer.

``LabModel.healthy()`` is the course done right: every exercise applied, every probe
answered. Tests then break one thing (``model.objects[...]`` edits, ``stop(...)`` a
server) before ``publish()``.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from labctl.kube.client import ExecResult
from tests.verify import objects as o
from tests.verify.netfakes import free_port_on, loopback_address

EADDRINUSE_LOG = """node:events:497
      throw er; // Unhandled 'error' event
      ^

Error: listen EADDRINUSE: address already in use :::8000
    at Server.setupListenHandle [as _listen2] (node:net:1872:16)
    at listenInCluster (node:net:1920:12)
    at Server.listen (node:net:2008:7)
    at Object.<anonymous> (/app.js:5:8)
Emitted 'error' event on Server instance at:
    at emitErrorNT (node:net:1899:8) {
  code: 'EADDRINUSE',
  errno: -98,
  syscall: 'listen',
  address: '::',
  port: 8000
}
"""


class LabModel:
    def __init__(self, spec, fake, servers, fake_exec):
        self.spec, self.fake, self.servers, self.fake_exec = spec, fake, servers, fake_exec
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.http: dict[str, object] = {}
        self.node1 = spec.node("k8s-node1")
        self.node2 = spec.node("k8s-node2")
        self.master = spec.master
        self.logs: list[tuple] = []

    # -- building ---------------------------------------------------------------

    def put(self, obj: dict) -> dict:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def drop(self, kind: str, name: str, namespace: str = "default") -> None:
        del self.objects[(kind, namespace if kind != "Node" else "", name)]

    def obj(self, kind: str, name: str, namespace: str = "default") -> dict:
        return self.objects[(kind, namespace if kind != "Node" else "", name)]

    def serve(self, key: str, address: str, port: int, body: str, **kw):
        self.http[key] = self.servers.http(address, port, body, **kw)
        return self.http[key]

    def stop(self, key: str) -> None:
        self.http.pop(key).stop()

    def healthy(self) -> "LabModel":
        spec = self.spec
        for n in o.lab_nodes(spec):
            self.put(n)
        self.api_ip = loopback_address()
        self.dns_ip = loopback_address()
        self.dns = self.servers.dns(self.dns_ip, {"kubernetes.default.svc.cluster.local": self.api_ip}, port=0)
        for obj in o.kube_system(spec, dns_ip=self.dns_ip, dns_pod_ips=[loopback_address(), loopback_address()],
                                 api_ip=self.api_ip, dns_port=self.dns.port):
            self.put(obj)
        self._pods()
        self._services()
        return self

    def _pods(self) -> None:
        node1 = self.node1
        self.pod1_ip = loopback_address()
        self.put(o.pod(o.manifest("pod-1"), node=node1.name, ip=self.pod1_ip, host_ip=node1.ip))
        self.serve("pod-1:8000", self.pod1_ip, 8000, "containerPort : 8000\n")
        self.serve("pod-1:8080", self.pod1_ip, 8080, "containerPort : 8080\n")
        # "localhost" inside pod-1 is pod-1's own address: the exec stand-in runs the
        # request against the test's server for container2.
        self.fake_exec.on("pod-1", "container1", ["curl"], self._curl_in_pod1)
        self.fake_exec.on("pod-1", "container2", ["curl"], self._curl_in_pod1)
        same = o.pod(o.manifest("pod-same-port"), node=self.node2.name, ip=loopback_address(), host_ip=self.node2.ip,
                     containers={"container2": "crashloop"})
        self.put(same)
        self.logs.append(("pod-same-port", EADDRINUSE_LOG, "container2", True))
        self.logs.append(("pod-same-port", "", "container2", False))
        self.pod2_ip, self.pod4_ip = loopback_address(), loopback_address()
        self.put(o.pod(o.manifest("pod-2"), node=self.node2.name, ip=self.pod2_ip, host_ip=self.node2.ip))
        self.put(o.pod(o.manifest("pod-3"), node=node1.name, ip=loopback_address(), host_ip=node1.ip))
        self.put(o.pod(o.manifest("pod-4"), node=node1.name, ip=self.pod4_ip, host_ip=node1.ip))
        self.put(o.service(o.manifest("svc-for-web"), cluster_ip=loopback_address()))
        self.put(o.endpoints("svc-for-web", [(self.pod2_ip, "pod-2", self.node2.name), (self.pod4_ip, "pod-4", node1.name)]))

    def _curl_in_pod1(self, namespace, pod, container, argv):
        # "localhost" inside pod-1: its own address unless a test gave the Pod's network
        # namespace servers of its own (``localhost``), apart from what its IP answers.
        url = "http://" + argv[-1].replace("localhost", getattr(self, "localhost", None) or self.pod1_ip)
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2) as resp:
                return ExecResult(tuple(argv), 0, resp.read().decode())
        except OSError:
            return ExecResult(tuple(argv), 7, "")  # curl: (7) Failed to connect

    def _services(self) -> None:
        spec = self.spec
        node_ips = [n.ip for n in spec.nodes]
        # svc-clusterip: answered by either of its two Pods
        self.clusterip = loopback_address()
        backends = []
        for i in (1, 2):
            ip = loopback_address()
            name = f"pod-clusterip-{i}"
            self.put(o.pod(o.manifest("svc-clusterip", "Pod", name), node=self.node1.name if i == 1 else self.node2.name, ip=ip))
            backends.append((ip, name, self.node1.name if i == 1 else self.node2.name))
        self.put(o.service(o.manifest("svc-clusterip", "Service"), cluster_ip=self.clusterip))
        self.put(o.endpoints("svc-clusterip", backends))
        self.serve("svc-clusterip", self.clusterip, 9000, "Hostname : pod-clusterip-2\n", inside_only=True)
        # svc-nodeport: the Pod is on k8s-node1; every node answers
        self.nodeport = free_port_on(node_ips)
        ip = loopback_address()
        self.put(o.pod(o.manifest("svc-nodeport", "Pod"), node=self.node1.name, ip=ip, host_ip=self.node1.ip))
        self.put(o.service(o.manifest("svc-nodeport", "Service"), cluster_ip=loopback_address(), node_port=self.nodeport))
        self.put(o.endpoints("svc-nodeport", [(ip, "pod-nodeport", self.node1.name)]))
        for n in spec.nodes:
            self.serve(f"svc-nodeport@{n.name}", n.ip, self.nodeport, "Hostname : pod-nodeport\n")
        # svc-nodeport-local: only k8s-node1 (which runs the Pod) answers; the others drop
        self.local_port = free_port_on(node_ips)
        ip = loopback_address()
        self.put(o.pod(o.manifest("svc-nodeport-local", "Pod"), node=self.node1.name, ip=ip, host_ip=self.node1.ip))
        self.put(o.service(o.manifest("svc-nodeport-local", "Service"), cluster_ip=loopback_address(), node_port=self.local_port))
        self.put(o.endpoints("svc-nodeport-local", [(ip, "pod-nodeport-local", self.node1.name)]))
        self.serve(f"svc-nodeport-local@{self.node1.name}", self.node1.ip, self.local_port, "Hostname : pod-nodeport-local\n")
        for n in spec.nodes:
            if n.name != self.node1.name:
                self.http[f"svc-nodeport-local@{n.name}"] = self.servers.silent(n.ip, self.local_port)
        # svc-loadbalancer: MetalLB gave it the pool's first address
        first, _ = spec.metallb.pool_range()
        self.lb_ip = str(first)
        ip = loopback_address()
        self.put(o.pod(o.manifest("svc-loadbalancer", "Pod"), node=self.node2.name, ip=ip, host_ip=self.node2.ip))
        self.lb_node_port = free_port_on(node_ips)
        self.put(o.service(o.manifest("svc-loadbalancer", "Service"), cluster_ip=loopback_address(), node_port=self.lb_node_port, ingress_ip=self.lb_ip))
        self.put(o.endpoints("svc-loadbalancer", [(ip, "pod-loadbalancer", self.node2.name)]))
        self.serve("svc-loadbalancer", self.lb_ip, 9000, "Hostname : pod-loadbalancer\n")
        for n in spec.nodes:  # a LoadBalancer is a NodePort Service too
            self.serve(f"svc-loadbalancer-nodeport@{n.name}", n.ip, self.lb_node_port, "Hostname : pod-loadbalancer\n")

    # -- publishing -------------------------------------------------------------------

    def publish(self) -> "LabModel":
        for obj in self.objects.values():
            self.fake.add(obj)
        for pod, text, container, previous, *ns in self.logs:
            self.fake.set_logs(pod, text, container=container, previous=previous, namespace=ns[0] if ns else "default")
        return self


# ---------------------------------------------------------------- the hand-built fixture labs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d.])")
COURSE_NET = "192.168.56."
NAT_IP = "10.0.2.15"  # kept as it is: it is only ever compared, never contacted


class FixtureLab:
    """A hand-built, schema-checked 1.27 lab (tests/fixtures/k8s/passing or failing: built
    by _make.py in the shape a 1.27 API server returns, validated strict against 1.27
    by kubernetes-validate; not recorded from a live cluster) with its
    addresses moved onto loopback: the host-only network onto the test spec's network
    (same last octet), every Pod IP and ClusterIP onto its own 127.x address; and real
    servers where such a lab would answer."""

    def __init__(self, spec, fake, servers, fake_exec, name: str):
        self.spec, self.fake, self.servers, self.fake_exec = spec, fake, servers, fake_exec
        self.http: dict[str, object] = {}
        self.ipmap: dict[str, str] = {}
        prefix = spec.network.host_only.rsplit(".", 1)[0] + "."
        base = FIXTURES / name

        def move(m: re.Match) -> str:
            ip = m.group(1)
            if ip == NAT_IP:
                return ip
            if ip.startswith(COURSE_NET):
                return prefix + ip.rsplit(".", 1)[1]
            return self.ipmap.setdefault(ip, loopback_address())

        out = Path(fake.workdir) / f"fixture-{name}"
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(base.glob("*.json")):
            (out / f.name).write_text(_IPV4.sub(move, f.read_text()))
        fake.load(out)
        for log in sorted((base / "logs").glob("*.log")):
            pod, container, *prev = log.name[: -len(".log")].split(".")
            fake.set_logs(pod, log.read_text(), container=container, previous=bool(prev))
        self._cluster_dns()

    def ip(self, original: str) -> str:
        return self.ipmap[original]

    def obj(self, kind: str, name: str, namespace: str = "default") -> dict:
        """A copy of a live object: edit it, then ``put`` it back."""
        return self.fake.get(kind, name, namespace)

    def put(self, obj: dict) -> None:
        self.fake.add(obj)

    def node_ip(self, name: str) -> str:
        return self.spec.node(name).ip

    def _cluster_dns(self) -> None:
        """The kube-dns Service and its Endpoints (not in the fixtures) over the
        fixtures' CoreDNS Pods, and a DNS server on its ClusterIP."""
        if self.fake.get("Service", "kube-dns", "kube-system") is not None:
            return
        api_ip = self.fake.get("Service", "kubernetes")["spec"]["clusterIP"]
        self.dns_ip = loopback_address()
        self.dns = self.servers.dns(self.dns_ip, {"kubernetes.default.svc.cluster.local": api_ip}, port=0)
        coredns = [p for p in self.fake.objects("Pod") if (p["metadata"].get("labels") or {}).get("k8s-app") == "kube-dns"]
        for obj in o.kube_system(self.spec, dns_ip=self.dns_ip, dns_pod_ips=[], api_ip=api_ip, dns_port=self.dns.port):
            if obj["kind"] == "Service" and obj["metadata"]["name"] == "kube-dns":
                self.fake.add(obj)
        ready = [(p["status"]["podIP"], p["metadata"]["name"], p["spec"]["nodeName"]) for p in coredns]
        self.fake.add(o.endpoints("kube-dns", ready, port=53, namespace="kube-system", port_name="dns", protocol="UDP"))

    def answer_like_a_healthy_lab(self) -> "FixtureLab":
        """Servers where the (passing) fixture lab answers, and the exec stand-in."""
        get = self.fake.get
        pod1 = get("Pod", "pod-1")["status"]["podIP"]
        self.pod1_ip = pod1
        for port in (8000, 8080):
            self.http[f"pod-1:{port}"] = self.servers.http(pod1, port, f"containerPort : {port}\n")
        self.fake_exec.on("pod-1", "container1", ["curl"], self._curl_in_pod1)
        self.fake_exec.on("pod-1", "container2", ["curl"], self._curl_in_pod1)
        svc = get("Service", "svc-clusterip")
        self.http["svc-clusterip"] = self.servers.http(svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["port"], "Hostname : pod-clusterip-1\n",
                                                       inside_only=True)
        nodes = list(self.spec.nodes)
        np = get("Service", "svc-nodeport")["spec"]["ports"][0]["nodePort"]
        for n in nodes:
            self.http[f"svc-nodeport@{n.name}"] = self.servers.http(n.ip, np, "Hostname : pod-nodeport\n")
        local = get("Service", "svc-nodeport-local")["spec"]["ports"][0]["nodePort"]
        with_pod = {a.get("nodeName") for s in get("Endpoints", "svc-nodeport-local").get("subsets") or [] for a in s.get("addresses") or []}
        for n in nodes:
            if n.name in with_pod:
                self.http[f"svc-nodeport-local@{n.name}"] = self.servers.http(n.ip, local, "Hostname : pod-nodeport-local\n")
            else:
                self.http[f"svc-nodeport-local@{n.name}"] = self.servers.silent(n.ip, local)
        lb = get("Service", "svc-loadbalancer")
        for n in nodes:
            self.http[f"svc-loadbalancer-nodeport@{n.name}"] = self.servers.http(n.ip, lb["spec"]["ports"][0]["nodePort"], "Hostname : pod-loadbalancer\n")
        for ing in lb["status"]["loadBalancer"].get("ingress") or []:
            self.http["svc-loadbalancer"] = self.servers.http(ing["ip"], lb["spec"]["ports"][0]["port"], "Hostname : pod-loadbalancer\n")
        return self

    _curl_in_pod1 = LabModel._curl_in_pod1
