"""The kinds labctl reads and writes, how each is reached through the generated client,
and the small results the connector hands back (refs, apply/delete outcomes, watch events)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabError

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class Kind:
    """How one kind is reached through the generated client.

    ``snake`` builds the generated method names (``read_namespaced_<snake>``...);
    ``group``/``version``/``plural`` are set for custom resources (MetalLB's), which
    go through CustomObjectsApi instead.
    """

    kind: str
    api_version: str
    plural: str
    namespaced: bool = True
    api: str = "CoreV1Api"
    snake: str = ""
    # Pods reject most spec changes (422), so a changed Pod is deleted and re-created.
    replaceable: bool = True

    @property
    def custom(self) -> bool:
        return self.api == "CustomObjectsApi"

    @property
    def group_version(self) -> tuple[str, str]:
        group, _, version = self.api_version.rpartition("/")
        return group, version


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("Pod", "v1", "pods", snake="pod", replaceable=False),
        Kind("Service", "v1", "services", snake="service"),
        Kind("Endpoints", "v1", "endpoints", snake="endpoints"),
        Kind("Event", "v1", "events", snake="event"),
        Kind("ConfigMap", "v1", "configmaps", snake="config_map"),
        Kind("Node", "v1", "nodes", namespaced=False, snake="node"),
        Kind("Namespace", "v1", "namespaces", namespaced=False, snake="namespace"),
        Kind("Deployment", "apps/v1", "deployments", api="AppsV1Api", snake="deployment"),
        Kind("DaemonSet", "apps/v1", "daemonsets", api="AppsV1Api", snake="daemon_set"),
        Kind("IPAddressPool", "metallb.io/v1beta1", "ipaddresspools", api="CustomObjectsApi"),
        Kind("L2Advertisement", "metallb.io/v1beta1", "l2advertisements", api="CustomObjectsApi"),
    )
}


def kind_info(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise LabError(
            f"kind {kind!r} is not supported by labctl's Kubernetes connector",
            hint=f"supported kinds: {', '.join(sorted(KINDS))}",
        ) from None


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str | None = DEFAULT_NAMESPACE

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> "ObjectRef":
        info = kind_info(obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or DEFAULT_NAMESPACE) if info.namespaced else None
        return cls(info.kind, meta.get("name", ""), ns)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class ApplyResult:
    ref: ObjectRef
    action: str  # created | unchanged | configured | replaced
    object: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"


@dataclass(frozen=True)
class DeleteResult:
    ref: ObjectRef
    action: str  # deleted | absent


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict
