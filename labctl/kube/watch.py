"""Watching a kind through the generated client, as plain-dict WatchEvents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from labctl.errors import LabError
from labctl.kube.errors import translate
from labctl.kube.kinds import DEFAULT_NAMESPACE, WatchEvent, kind_info


def watch(client, kind: str, namespace: str | None = DEFAULT_NAMESPACE, *, label_selector: str | None = None,
          field_selector: str | None = None, resource_version: str | None = None,
          timeout_seconds: int = 10) -> Iterator[WatchEvent]:
    """Events of a watch on ``client`` (a KubeClient) until the server ends it
    (``timeout_seconds``); the read timeout leaves the server that long plus the
    client's own timeout."""
    from kubernetes import watch as kwatch

    info = kind_info(kind)
    if info.custom:
        raise LabError(f"watching {kind} is not supported", hint="poll with `get` instead")
    scope = "namespaced_" if info.namespaced else ""
    func = getattr(client._api(info.api), f"list_{scope}{info.snake}")
    kw: dict[str, Any] = {"timeout_seconds": timeout_seconds, "_request_timeout": client.request_timeout(timeout_seconds + client.timeout)}
    for key, value in (("label_selector", label_selector), ("field_selector", field_selector), ("resource_version", resource_version)):
        if value:
            kw[key] = value
    w = kwatch.Watch()
    try:
        for event in w.stream(func, *client._ns_args(info, namespace), **kw):
            yield WatchEvent(event["type"], event["raw_object"])
    except Exception as exc:
        raise translate(exc, f"watch {info.plural}") from exc
    finally:
        w.stop()
