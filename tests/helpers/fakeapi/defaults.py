"""What a 1.27 API server fills in on create and update (Pods, Services)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping

from tests.helpers.fakeapi.store import _Store


def _pod_spec_without_images(pod: Mapping) -> dict:
    spec = copy.deepcopy(pod.get("spec") or {})
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            c.pop("image", None)
    spec.pop("activeDeadlineSeconds", None)
    spec.pop("nodeName", None)  # set by the scheduler through the binding subresource
    return spec


def _fill_defaults(obj: dict, store: _Store, live: dict | None) -> str | None:
    """Defaults a 1.27 API server adds on create/update; returns an error text or None."""
    kind = obj["kind"]
    if kind == "Pod":
        _pod_defaults(obj, live)
    elif kind == "Service":
        return _service_defaults(obj, store, live)
    return None


def _pod_defaults(pod: dict, live: dict | None) -> None:
    spec = pod.setdefault("spec", {})
    for key, value in (("restartPolicy", "Always"), ("terminationGracePeriodSeconds", 30), ("dnsPolicy", "ClusterFirst"),
                       ("serviceAccountName", "default"), ("serviceAccount", "default"), ("securityContext", {}),
                       ("schedulerName", "default-scheduler"), ("priority", 0), ("enableServiceLinks", True),
                       ("preemptionPolicy", "PreemptLowerPriority")):
        spec.setdefault(key, value)
    if live is None:
        spec.setdefault("tolerations", [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
        volume = f"kube-api-access-{uuid.uuid4().hex[:5]}"
        spec.setdefault("volumes", []).append({"name": volume, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}})
    else:
        for key in ("tolerations", "volumes"):
            if key not in spec and key in live.get("spec", {}):
                spec[key] = live["spec"][key]
        volume = next((v["name"] for v in spec.get("volumes", []) if v["name"].startswith("kube-api-access-")), None)
    qos = set()
    for c in spec.get("containers", []):
        image = c.get("image", "")
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
        c.setdefault("imagePullPolicy", "Always" if tag == "latest" else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        res = c.setdefault("resources", {})
        if res.get("limits") and not res.get("requests"):
            res["requests"] = dict(res["limits"])
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")
        if volume and live is None:
            c.setdefault("volumeMounts", []).append({"name": volume, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if not req and not lim:
            qos.add("BestEffort")
        elif set(lim) >= {"cpu", "memory"} and req == lim:
            qos.add("Guaranteed")
        else:
            qos.add("Burstable")
    status_ = pod.setdefault("status", {"phase": "Pending"})
    status_.setdefault("qosClass", "BestEffort" if qos == {"BestEffort"} else "Guaranteed" if qos == {"Guaranteed"} else "Burstable")


def _service_defaults(svc: dict, store: _Store, live: dict | None) -> str | None:
    spec = svc.setdefault("spec", {})
    live_spec = (live or {}).get("spec") or {}
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if live is not None:
        if spec.get("clusterIP") and spec["clusterIP"] != live_spec.get("clusterIP"):
            return f"spec.clusterIPs[0]: Invalid value: []string{{\"{spec['clusterIP']}\"}}: may not change once set"
        spec.setdefault("clusterIP", live_spec.get("clusterIP"))
        spec.setdefault("clusterIPs", live_spec.get("clusterIPs"))
    elif "clusterIP" not in spec:
        n = next(store.ips)
        spec["clusterIP"] = f"10.96.{n // 254}.{n % 254 + 1}"
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    external = spec["type"] in ("NodePort", "LoadBalancer")
    if external:
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    used = {p.get("nodePort") for (pl, _, _), o in store.objects.items() if pl == "services" and o is not live
            for p in (o.get("spec") or {}).get("ports", [])}
    live_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in live_spec.get("ports", [])}
    for i, p in enumerate(spec.get("ports", [])):
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p.get("port"))
        if not external:
            p.pop("nodePort", None)
            continue
        if "nodePort" not in p:
            old = live_ports.get((p.get("port"), p["protocol"]))
            p["nodePort"] = old["nodePort"] if old and old.get("nodePort") else next(n for n in store.node_ports if n not in used)
        elif p["nodePort"] in used:
            return f"spec.ports[{i}].nodePort: Invalid value: {p['nodePort']}: provided port is already allocated"
    if spec["type"] == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local":
        spec.setdefault("healthCheckNodePort", live_spec.get("healthCheckNodePort") or next(store.node_ports))
    svc.setdefault("status", {"loadBalancer": {}})
    return None
