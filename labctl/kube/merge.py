"""How `apply` compares a manifest with the live object and builds a replacement body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def contains(live: Any, want: Any) -> bool:
    """True when every field of ``want`` is present in ``live`` with the same value.

    Dicts are compared key by key (extra live keys are defaults and do not count);
    lists position by position with the same length (order matters for containers
    and ports); scalars as strings, since the API server echoes ``8080`` and ``"1Gi"``
    exactly as sent but YAML may have parsed them differently.
    """
    if isinstance(want, Mapping):
        return isinstance(live, Mapping) and all(k in live and contains(live[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(live) == len(want) and all(contains(a, b) for a, b in zip(live, want))
    if want is None:
        return live is None
    if isinstance(want, bool) or isinstance(live, bool):
        return isinstance(live, bool) and isinstance(want, bool) and live == want
    return str(live) == str(want)


def _with_metadata(live: Mapping[str, Any], obj: Mapping[str, Any]) -> dict:
    """The live object with ``obj``'s labels and annotations laid over its own."""
    body = json.loads(json.dumps(live))
    meta, want = body.setdefault("metadata", {}), obj.get("metadata") or {}
    for key in ("labels", "annotations"):
        if want.get(key):
            meta[key] = {**(meta.get(key) or {}), **want[key]}
    return body


def _carry_allocated(obj: Mapping[str, Any], live: Mapping[str, Any]) -> dict:
    """The replacement body: ``obj`` plus what the server allocated and must keep.

    A Service's clusterIP(s) are immutable and its nodePorts would be re-allocated if
    omitted; the resourceVersion makes the replace fail instead of overwrite a
    concurrent change.
    """
    body = json.loads(json.dumps(obj))
    meta = body.setdefault("metadata", {})
    meta["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
    if body.get("kind") == "Service":
        spec, live_spec = body.setdefault("spec", {}), live.get("spec") or {}
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort"):
            if key in live_spec and key not in spec:
                spec[key] = live_spec[key]
        live_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in live_spec.get("ports") or []}
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                old = live_ports.get((port.get("port"), port.get("protocol", "TCP")))
                if old and "nodePort" not in port and "nodePort" in old:
                    port["nodePort"] = old["nodePort"]
        if spec.get("type") != "LoadBalancer" or spec.get("externalTrafficPolicy") != "Local":
            spec.pop("healthCheckNodePort", None)
    return body
