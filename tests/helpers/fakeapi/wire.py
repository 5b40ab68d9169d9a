"""What the fake API server says on the wire: resources, Status objects, scripted
replies and watch streams, selectors, timestamps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# plural -> (kind, apiVersion, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "pods": ("Pod", "v1", True),
    "services": ("Service", "v1", True),
    "endpoints": ("Endpoints", "v1", True),
    "events": ("Event", "v1", True),
    "configmaps": ("ConfigMap", "v1", True),
    "nodes": ("Node", "v1", False),
    "namespaces": ("Namespace", "v1", False),
    "deployments": ("Deployment", "apps/v1", True),
    "daemonsets": ("DaemonSet", "apps/v1", True),
    "ipaddresspools": ("IPAddressPool", "metallb.io/v1beta1", True),
    "l2advertisements": ("L2Advertisement", "metallb.io/v1beta1", True),
}
PLURALS = {kind: plural for plural, (kind, _, _) in RESOURCES.items()}
SERVER_VERSION = {
    "major": "1", "minor": "27", "gitVersion": "v1.27.16", "gitCommit": "cbb86e0d7f4a049666fac0551e8b02ef3d6c3d9a",
    "gitTreeState": "clean", "buildDate": "2024-07-17T01:44:26Z", "goVersion": "go1.22.5", "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    text: str | None = None
    content_type: str = "application/json"


@dataclass
class Stream:
    """A watch response: events (dicts or a ndjson string), sent one per line."""

    events: Any
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict
    body: Any
    status: int
    authorization: str | None = field(default=None, repr=False)


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def now_rfc3339(offset: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def match_labels(obj: Mapping, selector: str | None) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def match_fields(obj: Mapping, selector: str | None) -> bool:
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        negate = "!=" in term
        k, v = term.replace("!=", "=").replace("==", "=").split("=", 1)
        value = _dig(obj, k.strip())
        equal = ("" if value is None else str(value)) == v.strip()
        if equal == negate:
            return False
    return True
