"""Kubernetes 1.27 objects as `kubectl get -o json` shows them, for verify's tests.

Pods and Services start from the course's manifests (manifests/*.yaml) and get what
a 1.27 API server, scheduler and kubelet add (defaults, nodeName, status); the lab's
own objects (nodes, CoreDNS, calico-node) follow the shapes of a kubeadm 1.27 cluster.
Addresses are parameters: the tests pass loopback aliases so that probes reach real
servers. test_objects.py checks every builder against the 1.27 schema.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
T0 = "2026-11-20T09:14:05Z"
T1 = "2026-11-20T09:14:09Z"
IMAGES = {
    "kubetm/p8000": "docker.io/kubetm/p8000@sha256:8df9c3bf2c9bd31e2e6d1b9e2b8c1d3f4d0e4f8f0a5f3ab1e7c5c1f1e9c6a4f2",
    "kubetm/p8080": "docker.io/kubetm/p8080@sha256:1a0f5c7b3e2d4c6b8a9e0f1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a493",
    "kubetm/init": "docker.io/kubetm/init@sha256:2b1e4d6c8a0f2e4d6c8b0a2f4e6d8c0b2a4f6e8d0c2b4a6f8e0d2c4b6a8f0e21",
    "kubetm/app": "docker.io/kubetm/app@sha256:3c2f5e7d9b1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5c7b9a1f32",
}


def _uid(*parts: str) -> str:
    h = hashlib.sha1("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def manifest(name: str, kind: str | None = None, object_name: str | None = None) -> dict:
    """One document of manifests/<name>.yaml (by kind and name when it holds several)."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS / f"{name}.yaml").read_text()) if d]
    for d in docs:
        if (kind is None or d["kind"] == kind) and (object_name is None or d["metadata"]["name"] == object_name):
            return copy.deepcopy(d)
    raise KeyError(f"{name}.yaml has no {kind} {object_name}")


# ---------------------------------------------------------------- nodes


def node(name: str, ip: str, *, ready: bool = True, role: str = "worker", hostname: str | None = None, calico_ip: str | None = None) -> dict:
    hostname = hostname or name
    labels = {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": hostname, "kubernetes.io/os": "linux",
    }
    taints = []
    if role == "master":
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        taints.append({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"})
    if not ready:
        taints.append({"effect": "NoSchedule", "key": "node.kubernetes.io/not-ready", "timeAdded": T1})
    cond = lambda t, s, reason, msg: {  # noqa: E731
        "lastHeartbeatTime": T1, "lastTransitionTime": T0, "message": msg, "reason": reason, "status": s, "type": t}
    ready_cond = (cond("Ready", "True", "KubeletReady", "kubelet is posting ready status. AppArmor enabled") if ready else
                  cond("Ready", "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"))
    annotations = {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if calico_ip:
        annotations["projectcalico.org/IPv4Address"] = calico_ip
        annotations["projectcalico.org/IPv4VXLANTunnelAddr"] = "20.109.1.0"
    obj = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"annotations": annotations, "creationTimestamp": T0, "labels": labels, "name": name,
                     "resourceVersion": "1201", "uid": _uid("node", name)},
        "spec": {"podCIDR": "20.96.1.0/24", "podCIDRs": ["20.96.1.0/24"]},
        "status": {
            "addresses": [{"address": ip, "type": "InternalIP"}, {"address": hostname, "type": "Hostname"}],
            "allocatable": {"cpu": "2", "ephemeral-storage": "28756894127", "hugepages-2Mi": "0", "memory": "1912108Ki", "pods": "110"},
            "capacity": {"cpu": "2", "ephemeral-storage": "31202304Ki", "hugepages-2Mi": "0", "memory": "2014508Ki", "pods": "110"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ready_cond,
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": _uid("boot", name), "containerRuntimeVersion": "containerd://1.6.28",
                         "kernelVersion": "5.15.0-91-generic", "kubeProxyVersion": "v1.27.16", "kubeletVersion": "v1.27.16",
                         "machineID": _uid("machine", name).replace("-", ""), "operatingSystem": "linux",
                         "osImage": "Ubuntu 22.04.3 LTS", "systemUUID": _uid("sys", name)},
        },
    }
    if taints:
        obj["spec"]["taints"] = taints
    return obj


def lab_nodes(spec, *, ips: dict | None = None, not_ready=(), hostnames: dict | None = None, calico: bool = True) -> list[dict]:
    ips, hostnames = ips or {}, hostnames or {}
    out = []
    for n in spec.nodes:
        ip = ips.get(n.name, n.ip)
        out.append(node(hostnames.get(n.name, n.name), ip, ready=n.name not in not_ready, role=n.role,
                        calico_ip=f"{ip}/24" if calico else None))
    return out


# ---------------------------------------------------------------- pods


def _container_status(c: dict, *, state: dict, ready: bool, restarts: int = 0, last: dict | None = None, node: str = "k8s-node1") -> dict:
    image = c["image"]
    out = {
        "containerID": f"containerd://{hashlib.sha256((node + c['name'] + str(restarts)).encode()).hexdigest()}",
        "image": f"docker.io/{image}:latest", "imageID": IMAGES.get(image, IMAGES["kubetm/init"]),
        "lastState": last or {}, "name": c["name"], "ready": ready, "restartCount": restarts,
        "started": ready, "state": state,
    }
    return out


def pod(manifest_obj: dict, *, node: str | None = None, ip: str | None = None, host_ip: str | None = None,
        phase: str = "Running", containers: dict | None = None) -> dict:
    """A Pod as the API returns it. ``containers`` maps a container name to "running",
    "crashloop" (restarted, waiting CrashLoopBackOff, lastState terminated exit 1) or
    "waiting" (ContainerCreating); default: all running and ready."""
    obj = copy.deepcopy(manifest_obj)
    meta = obj["metadata"]
    meta.update(namespace=meta.get("namespace", "default"), uid=_uid("pod", meta["name"]), resourceVersion="2201", creationTimestamp=T0)
    spec = obj["spec"]
    spec.update(dnsPolicy="ClusterFirst", enableServiceLinks=True, preemptionPolicy="PreemptLowerPriority", priority=0,
                restartPolicy="Always", schedulerName="default-scheduler", securityContext={}, serviceAccount="default",
                serviceAccountName="default", terminationGracePeriodSeconds=30)
    spec["tolerations"] = [
        {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
        {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
    ]
    vol = f"kube-api-access-{hashlib.sha1(meta['name'].encode()).hexdigest()[:5]}"
    spec["volumes"] = [{"name": vol, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]}}]
    qos = "BestEffort"
    for c in spec["containers"]:
        c.update(imagePullPolicy="Always", terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File")
        c.setdefault("resources", {})
        if c["resources"]:
            qos = "Burstable"
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")
        c["volumeMounts"] = [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": vol, "readOnly": True}]
    if node:
        spec["nodeName"] = node
    states = containers or {}
    if phase == "Pending" and not node:
        obj["status"] = {"phase": "Pending", "qosClass": qos, "conditions": [{
            "lastProbeTime": None, "lastTransitionTime": T0, "status": "False", "type": "PodScheduled", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."}]}
        return obj
    statuses = []
    for c in spec["containers"]:
        how = states.get(c["name"], "running")
        if how == "running":
            statuses.append(_container_status(c, state={"running": {"startedAt": T1}}, ready=True, node=node))
        elif how == "waiting":
            statuses.append(_container_status(c, state={"waiting": {"reason": "ContainerCreating"}}, ready=False, node=node))
        elif how == "crashloop":
            statuses.append(_container_status(
                c, ready=False, restarts=4, node=node,
                state={"waiting": {"message": f"back-off 1m20s restarting failed container={c['name']} pod={meta['name']}_{meta['namespace']}({meta['uid']})", "reason": "CrashLoopBackOff"}},
                last={"terminated": {"containerID": "containerd://" + "d" * 64, "exitCode": 1, "finishedAt": T1, "reason": "Error", "startedAt": T1}}))
        else:
            raise ValueError(how)
    all_ready = all(s["ready"] for s in statuses)
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    msg = f"containers with unready status: [{' '.join(not_ready)}]"
    cond = lambda t, ok: {"lastProbeTime": None, "lastTransitionTime": T1, "status": "True" if ok else "False", "type": t,  # noqa: E731
                          **({} if ok else {"reason": "ContainersNotReady", "message": msg})}
    obj["status"] = {
        "conditions": [cond("Initialized", True), cond("Ready", all_ready), cond("ContainersReady", all_ready), cond("PodScheduled", True)],
        "containerStatuses": statuses, "hostIP": host_ip or "127.0.0.1", "phase": phase,
        "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": qos, "startTime": T0,
    }
    return obj


# ---------------------------------------------------------------- services


def service(manifest_obj: dict, *, cluster_ip: str, node_port: int | None = None, ingress_ip: str | None = None,
            namespace: str = "default") -> dict:
    obj = copy.deepcopy(manifest_obj)
    meta = obj["metadata"]
    meta.update(namespace=meta.get("namespace", namespace), uid=_uid("svc", meta["name"]), resourceVersion="3101", creationTimestamp=T0)
    spec = obj["spec"]
    spec.setdefault("type", "ClusterIP")
    spec.update(clusterIP=cluster_ip, clusterIPs=[cluster_ip], internalTrafficPolicy="Cluster", ipFamilies=["IPv4"],
                ipFamilyPolicy="SingleStack", sessionAffinity="None")
    for p in spec.get("ports", []):
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p["port"])
        if spec["type"] in ("NodePort", "LoadBalancer"):
            p["nodePort"] = node_port or p.get("nodePort", 30080)
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec["allocateLoadBalancerNodePorts"] = True
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": ingress_ip}]} if ingress_ip else {}}
    return obj


def endpoints(name: str, backends: list[tuple[str, str, str]], *, port: int = 8080, namespace: str = "default",
              not_ready: list[tuple[str, str, str]] = (), port_name: str | None = None, protocol: str = "TCP") -> dict:
    """Endpoints of a Service: ``backends`` are (pod IP, pod name, node name)."""
    def addr(ip, pod_name, node_name):
        return {"ip": ip, "nodeName": node_name, "targetRef": {"kind": "Pod", "name": pod_name, "namespace": namespace, "uid": _uid("pod", pod_name)}}

    subset: dict = {"ports": [{"port": port, "protocol": protocol, **({"name": port_name} if port_name else {})}]}
    if backends:
        subset["addresses"] = [addr(*b) for b in backends]
    if not_ready:
        subset["notReadyAddresses"] = [addr(*b) for b in not_ready]
    obj = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": name, "namespace": namespace, "uid": _uid("ep", name), "resourceVersion": "3150",
                        "creationTimestamp": T0, "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": T1}}}
    if backends or not_ready:
        obj["subsets"] = [subset]
    return obj


def event(kind: str, name: str, reason: str, message: str, *, type_: str = "Warning", count: int = 1,
          namespace: str = "default", source: str = "default-scheduler") -> dict:
    """An Event as core/v1 serves it. The 1.27 scheduler writes events.k8s.io/v1, so its
    events come back with eventTime, action, reportingComponent/Instance, no count (a
    repeat is ``series.count``), null timestamps and an empty source; kubelet and
    MetalLB's controller still write core/v1 Events with ``count`` and ``source``."""
    ev_name = f"{name}.{hashlib.sha1((reason + message).encode()).hexdigest()[:16]}"
    out = {
        "apiVersion": "v1", "kind": "Event",
        "involvedObject": {"apiVersion": "v1", "kind": kind, "name": name, "namespace": namespace,
                           "resourceVersion": "2201", "uid": _uid(kind.lower(), name)},
        "message": message, "reason": reason, "type": type_,
        "metadata": {"name": ev_name, "namespace": namespace, "uid": _uid("ev", ev_name), "resourceVersion": "4001", "creationTimestamp": T0},
    }
    if source == "default-scheduler":
        out.update(action="Scheduling" if reason == "FailedScheduling" else "Binding", eventTime=T0.replace("Z", ".250113Z"),
                   firstTimestamp=None, lastTimestamp=None, reportingComponent=source,
                   reportingInstance=f"{source}-k8s-master", source={})
        if count > 1:
            out["series"] = {"count": count, "lastObservedTime": T1.replace("Z", ".731402Z")}
    else:
        out.update(count=count, firstTimestamp=T0, lastTimestamp=T1, reportingComponent="", reportingInstance="", source={"component": source})
    return out


# ---------------------------------------------------------------- the lab's own objects


def kube_system(spec, *, dns_ip: str, dns_pod_ips: list[str], api_ip: str, dns_ready: bool = True,
                calico_not_ready=(), calico_missing=(), dns_port: int = 53) -> list[dict]:
    """kube-dns Service/Endpoints, CoreDNS Pods, the `kubernetes` Service, calico-node."""
    objs: list[dict] = []
    dns_svc = {"apiVersion": "v1", "kind": "Service", "metadata": {
        "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
        "name": "kube-dns", "namespace": "kube-system"},
        "spec": {"ports": [{"name": "dns", "port": dns_port, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": dns_port, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}],
                 "selector": {"k8s-app": "kube-dns"}}}
    objs.append(service(dns_svc, cluster_ip=dns_ip, namespace="kube-system"))
    api = {"apiVersion": "v1", "kind": "Service", "metadata": {"labels": {"component": "apiserver", "provider": "kubernetes"}, "name": "kubernetes", "namespace": "default"},
           "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}
    objs.append(service(api, cluster_ip=api_ip))
    coredns = []
    for i, ip in enumerate(dns_pod_ips):
        m = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"coredns-5d78c9869d-{'abcde'[i]}x7q2", "namespace": "kube-system",
                                                              "labels": {"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"}},
             "spec": {"containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.10.1", "args": ["-conf", "/etc/coredns/Corefile"]}]}}
        p = pod(m, node=spec.master.name, ip=ip, host_ip=spec.master.ip, containers={"coredns": "running" if dns_ready else "waiting"})
        coredns.append(p)
    objs += coredns
    backends = [(p["status"]["podIP"], p["metadata"]["name"], spec.master.name) for p in coredns]
    ep = endpoints("kube-dns", backends if dns_ready else [], port=53, namespace="kube-system", port_name="dns", protocol="UDP",
                   not_ready=[] if dns_ready else backends)
    objs.append(ep)
    objs.append({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {
        "annotations": {"deprecated.daemonset.template.generation": "1"}, "generation": 1, "labels": {"k8s-app": "calico-node"},
        "name": "calico-node", "namespace": "kube-system", "uid": _uid("ds", "calico-node"), "resourceVersion": "900", "creationTimestamp": T0},
        "spec": {"revisionHistoryLimit": 10, "selector": {"matchLabels": {"k8s-app": "calico-node"}},
                 "template": {"metadata": {"labels": {"k8s-app": "calico-node"}},
                              "spec": {"containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.26.4"}], "hostNetwork": True}},
                 "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"}},
        "status": {"currentNumberScheduled": len(spec.nodes), "desiredNumberScheduled": len(spec.nodes), "numberAvailable": len(spec.nodes) - len(calico_not_ready),
                   "numberMisscheduled": 0, "numberReady": len(spec.nodes) - len(calico_not_ready), "observedGeneration": 1, "updatedNumberScheduled": len(spec.nodes)}})
    for i, n in enumerate(spec.nodes):
        if n.name in calico_missing:
            continue
        m = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"calico-node-{'bcdfg'[i]}{'hjklm'[i]}q{i}z", "namespace": "kube-system",
                                                              "labels": {"k8s-app": "calico-node", "controller-revision-hash": "6b9c8f7d4c", "pod-template-generation": "1"}},
             "spec": {"containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.26.4"}], "hostNetwork": True}}
        objs.append(pod(m, node=n.name, ip=n.ip, host_ip=n.ip, containers={"calico-node": "waiting" if n.name in calico_not_ready else "running"}))
    return objs
