"""The fake API server's objects and their change log (for watches)."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable

from tests.helpers.fakeapi.wire import RESOURCES, now_rfc3339


class _Store:
    """Objects keyed by (plural, namespace, name), with a change log for watches."""

    def __init__(self, grace_scale: Callable[[], float]):
        self.lock = threading.Condition()
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.log: list[tuple[int, str, str, dict]] = []  # (rv, type, plural, obj)
        self.rv = 1000
        self.expire: dict[tuple[str, str, str], float] = {}
        self.grace_scale = grace_scale
        self.ips = iter(range(10, 65000))
        self.node_ports = iter(range(30000 + 150, 32767))

    def _bump(self, type_: str, plural: str, obj: dict) -> None:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.log.append((self.rv, type_, plural, copy.deepcopy(obj)))
        self.lock.notify_all()

    def put(self, plural: str, obj: dict, type_: str = "ADDED") -> dict:
        meta = obj.setdefault("metadata", {})
        namespaced = RESOURCES[plural][2]
        if namespaced:
            meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        key = (plural, meta.get("namespace", "") if namespaced else "", meta["name"])
        self.objects[key] = obj
        self._bump(type_, plural, obj)
        return obj

    def remove(self, key: tuple[str, str, str]) -> dict | None:
        obj = self.objects.pop(key, None)
        self.expire.pop(key, None)
        if obj is not None:
            self._bump("DELETED", key[0], obj)
        return obj

    def reap(self) -> None:
        """Finish deletions whose grace period has run out (the kubelet's part)."""
        t = time.monotonic()
        for key, when in list(self.expire.items()):
            if when <= t:
                self.remove(key)
