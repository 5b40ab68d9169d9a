"""POST, PUT and DELETE of the fake API server (a mixin of FakeApiServer)."""

from __future__ import annotations

import copy
import time
from typing import Any

from werkzeug import Response

from tests.helpers.fakeapi.defaults import _fill_defaults, _pod_spec_without_images
from tests.helpers.fakeapi.wire import RESOURCES, now_rfc3339, status


class Writes:
    """Needs ``self.store``, ``self._json`` and ``self._not_found`` (FakeApiServer)."""

    def _create(self, plural: str, ns: str, body: Any, query: dict) -> Response:
        if not isinstance(body, dict) or not (body.get("metadata") or {}).get("name"):
            return self._json(422, status(422, "Invalid", f"{RESOURCES[plural][0]} is invalid: metadata.name: Required value: name or generateName is required"))
        kind, api_version, namespaced = RESOURCES[plural]
        obj = copy.deepcopy(body)
        obj["kind"], obj["apiVersion"] = kind, api_version
        meta = obj["metadata"]
        if namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                return self._json(400, status(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request"))
            meta["namespace"] = ns
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(server_field, None)
        with self.store.lock:
            if (plural, ns, meta["name"]) in self.store.objects:
                return self._json(409, status(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists', {"name": meta["name"], "kind": plural}))
            error = _fill_defaults(obj, self.store, None)
            if error:
                return self._json(422, status(422, "Invalid", f'{kind} "{meta["name"]}" is invalid: {error}'))
            if query.get("dryRun") == "All":
                return self._json(201, obj)
            stored = self.store.put(plural, obj)
            return self._json(201, stored)

    def _replace(self, plural: str, ns: str, name: str, body: Any) -> Response:
        kind = RESOURCES[plural][0]
        with self.store.lock:
            live = self.store.objects.get((plural, ns, name))
            if live is None:
                return self._not_found(plural, name)
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != live["metadata"]["resourceVersion"]:
                msg = f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; please apply your changes to the latest version and try again'
                return self._json(409, status(409, "Conflict", msg, {"name": name, "kind": plural}))
            for kept in ("uid", "creationTimestamp", "namespace"):
                if kept in live["metadata"]:
                    meta[kept] = live["metadata"][kept]
            obj["kind"], obj["apiVersion"] = kind, RESOURCES[plural][1]
            error = _fill_defaults(obj, self.store, live)
            if not error and kind == "Pod" and _pod_spec_without_images(obj) != _pod_spec_without_images(live):
                error = ("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                         "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
                         "(only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
            if error:
                return self._json(422, status(422, "Invalid", f'{kind} "{name}" is invalid: {error}'))
            if "status" in live:
                obj["status"] = live["status"]
            return self._json(200, self.store.put(plural, obj, "MODIFIED"))

    def _delete(self, plural: str, ns: str, name: str, query: dict, body: Any) -> Response:
        with self.store.lock:
            key = (plural, ns, name)
            live = self.store.objects.get(key)
            if live is None:
                return self._not_found(plural, name)
            grace = query.get("gracePeriodSeconds")
            if grace is None and isinstance(body, dict):
                grace = body.get("gracePeriodSeconds")
            if plural == "pods":
                if grace is None:
                    grace = (live.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                grace = int(grace)
                # The kubelet only has something to stop on a scheduled Pod.
                if grace > 0 and (live.get("spec") or {}).get("nodeName"):
                    if "deletionTimestamp" not in live["metadata"]:
                        live["metadata"]["deletionTimestamp"] = now_rfc3339(grace)
                        live["metadata"]["deletionGracePeriodSeconds"] = grace
                        self.store.expire[key] = time.monotonic() + grace * self.grace_scale
                        self.store._bump("MODIFIED", plural, live)
                    return self._json(200, live)
            gone = self.store.remove(key)
            return self._json(200, gone)
