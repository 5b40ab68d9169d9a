"""The lab's Kubernetes API, through the official client, as plain dicts.

One :class:`KubeClient` per lab, built from the lab's own kubeconfig with
``new_client_from_config``: the client's process-wide default configuration is never
read or written, so several labs (and the tests' fake API servers) can be used from
one process at once.

Objects come back as the JSON the API server sent (``kubectl get -o json`` shape,
camelCase keys), not as generated models: checks compare them by path
(``spec.nodeName``) and nothing is lost in a model round trip.

Exec goes through ONE module-level adapter, :func:`exec_in_pod`; tests replace that
function (``monkeypatch.setattr(kube, "exec_in_pod", fake)``) because the fake API
server does not speak the exec websocket protocol. A replacement must accept
``(api_client, namespace, pod, container, command, *, timeout)`` and return an
:class:`ExecResult`. :meth:`KubeClient.exec` looks the function up at call time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from labctl.errors import DeadlineExceeded, NotFound
from labctl.kube.errors import LAB_DOWN_HINT, translate
from labctl.kube.exec import ExecResult, exec_in_pod
from labctl.kube.kinds import DEFAULT_NAMESPACE, KINDS, ApplyResult, DeleteResult, Kind, ObjectRef, WatchEvent, kind_info
from labctl.kube.merge import _carry_allocated, _with_metadata, contains

__all__ = [
    "DEFAULT_NAMESPACE", "KINDS", "LAB_DOWN_HINT", "ApplyResult", "DeleteResult", "ExecResult", "Kind", "KubeClient",
    "ObjectRef", "WatchEvent", "contains", "exec_in_pod", "kind_info", "translate",
]


class KubeClient:
    """A lab's API connection. Cheap to create; safe to share between threads for
    get/list/apply/delete (exec uses its own connection, see :func:`exec_in_pod`)."""

    def __init__(self, kubeconfig: Path, *, context: str | None = None, timeout: float = 10.0, poll: float = 0.2):
        from kubernetes import client, config

        self.kubeconfig = Path(kubeconfig)
        if not self.kubeconfig.is_file():
            raise NotFound(f"no kubeconfig at {self.kubeconfig}", hint="create the lab first: `labctl up`")
        try:
            # Our own Configuration (never the process-wide default), loaded like
            # new_client_from_config does; persist_config=False: never rewrite the file.
            cfg = client.Configuration()
            config.load_kube_config(
                config_file=str(self.kubeconfig), context=context, client_configuration=cfg, persist_config=False
            )
        except Exception as exc:
            raise translate(exc, "load kubeconfig") from exc
        # `verify --all` runs up to ~18 checks at once; urllib3's default pool of 10 would
        # drop and reopen connections under that load.
        cfg.connection_pool_maxsize = 20
        # One retry on a dropped connection; more only makes a dead lab slower to report.
        # Set before the ApiClient exists: its pool reads it once (set after, urllib3's
        # default of 3 retries applied, and a hung API cost 4 timeouts per call).
        cfg.retries = 1
        self.api_client = client.ApiClient(configuration=cfg)
        self.timeout = timeout
        self.poll = poll
        self._apis: dict[str, Any] = {}

    @classmethod
    def for_lab(cls, paths, **kw) -> "KubeClient":
        """The client for a lab folder (``labctl.lab.paths.LabPaths``)."""
        return cls(paths.kubeconfig, **kw)

    def request_timeout(self, read: float | None = None) -> tuple[float, float]:
        """``_request_timeout`` for a call: (connect, read) seconds. Always a tuple: the
        1.27-era client (27.x) silently ignores a float given alone (it only turns an
        int into a timeout), which left every call free to wait forever."""
        return (float(self.timeout), float(self.timeout if read is None else read))

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> "KubeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------

    def _api(self, name: str):
        if name not in self._apis:
            from kubernetes import client

            self._apis[name] = getattr(client, name)(self.api_client)
        return self._apis[name]

    def _call(self, info: Kind, verb: str, action: str, ref: ObjectRef | None, *args, **kwargs) -> Any:
        """Call the generated method for ``verb`` on ``info`` and decode the raw JSON."""
        api = self._api(info.api)
        if info.custom:
            group, version = info.group_version
            scope = "namespaced_" if info.namespaced and verb != "list_all" else "cluster_"
            method = {"read": f"get_{scope}custom_object", "list": f"list_{scope}custom_object",
                      "list_all": "list_cluster_custom_object", "create": f"create_{scope}custom_object",
                      "replace": f"replace_{scope}custom_object", "delete": f"delete_{scope}custom_object"}[verb]
            ns_args = args[:1] if info.namespaced and verb != "list_all" else ()
            rest = args[1:] if info.namespaced and verb != "list_all" else args
            args = (group, version, *ns_args, info.plural, *rest)
        else:
            scope = "namespaced_" if info.namespaced else ""
            method = {"read": f"read_{scope}{info.snake}", "list": f"list_{scope}{info.snake}",
                      "list_all": f"list_{info.snake}_for_all_namespaces" if info.namespaced else f"list_{info.snake}",
                      "create": f"create_{scope}{info.snake}", "replace": f"replace_{scope}{info.snake}",
                      "delete": f"delete_{scope}{info.snake}"}[verb]
        try:
            resp = getattr(api, method)(*args, _preload_content=False, _request_timeout=self.request_timeout(), **kwargs)
            return json.loads(resp.data or b"{}")
        except Exception as exc:
            raise translate(exc, action, ref) from exc

    @staticmethod
    def _ns_args(info: Kind, namespace: str | None) -> tuple:
        return (namespace or DEFAULT_NAMESPACE,) if info.namespaced else ()

    # -- reading ----------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = DEFAULT_NAMESPACE) -> dict:
        """The live object; raises NotFound."""
        info = kind_info(kind)
        ref = ObjectRef(info.kind, name, (namespace or DEFAULT_NAMESPACE) if info.namespaced else None)
        if info.namespaced:
            args = (name, ref.namespace) if not info.custom else (ref.namespace, name)
        else:
            args = (name,)
        return self._call(info, "read", f"get {ref}", ref, *args)

    def find(self, kind: str, name: str, namespace: str | None = DEFAULT_NAMESPACE) -> dict | None:
        """Like :meth:`get`, but None when absent."""
        try:
            return self.get(kind, name, namespace)
        except NotFound:
            return None

    def list(self, kind: str, namespace: str | None = DEFAULT_NAMESPACE, *, label_selector: str | None = None,
             field_selector: str | None = None, all_namespaces: bool = False) -> list[dict]:
        """Items of a list; each item gets ``kind``/``apiVersion`` as kubectl shows them."""
        info = kind_info(kind)
        kw = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        where = "all namespaces" if all_namespaces or not info.namespaced else f"namespace {namespace}"
        if all_namespaces and info.namespaced:
            body = self._call(info, "list_all", f"list {info.plural} in {where}", None, **kw)
        else:
            body = self._call(info, "list", f"list {info.plural} in {where}", None, *self._ns_args(info, namespace), **kw)
        items = body.get("items") or []
        for item in items:
            item.setdefault("kind", info.kind)
            item.setdefault("apiVersion", info.api_version)
        return items

    def version(self) -> dict:
        """The server's /version (``gitVersion``, ``major``, ``minor``), as `kubectl version` reads it."""
        from kubernetes import client

        try:
            resp = client.VersionApi(self.api_client).get_code(_preload_content=False, _request_timeout=self.request_timeout())
            return json.loads(resp.data or b"{}")
        except Exception as exc:
            raise translate(exc, "read the server version") from exc

    def nodes(self) -> list[dict]:
        return self.list("Node")

    def endpoints(self, name: str, namespace: str = DEFAULT_NAMESPACE) -> dict:
        return self.get("Endpoints", name, namespace)

    def events_for(self, kind: str, name: str, namespace: str = DEFAULT_NAMESPACE) -> list[dict]:
        """Events about one object, oldest first (what `kubectl describe` shows)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        if kind_info(kind).namespaced:
            selector += f",involvedObject.namespace={namespace}"
        items = self.list("Event", namespace or DEFAULT_NAMESPACE, field_selector=selector)

        def when(ev: dict) -> str:
            # A 1.27 scheduler's events have no lastTimestamp: a series, or only eventTime.
            return ((ev.get("series") or {}).get("lastObservedTime") or ev.get("lastTimestamp") or ev.get("eventTime")
                    or (ev.get("metadata") or {}).get("creationTimestamp") or "")

        return sorted(items, key=when)

    def pod_logs(self, name: str, namespace: str = DEFAULT_NAMESPACE, *, container: str | None = None,
                 previous: bool = False, tail_lines: int | None = None) -> str:
        ref = ObjectRef("Pod", name, namespace)
        kw: dict[str, Any] = {"previous": previous}
        if container:
            kw["container"] = container
        if tail_lines is not None:
            kw["tail_lines"] = tail_lines
        what = f"{container}" if container else "the container"
        try:
            resp = self._api("CoreV1Api").read_namespaced_pod_log(
                name, namespace, _preload_content=False, _request_timeout=self.request_timeout(), **kw)
            return resp.data.decode("utf-8", "replace")
        except Exception as exc:
            raise translate(exc, f"read {'previous ' if previous else ''}logs of {what} in {ref}", ref) from exc

    def watch(self, kind: str, namespace: str | None = DEFAULT_NAMESPACE, *, label_selector: str | None = None,
              field_selector: str | None = None, resource_version: str | None = None,
              timeout_seconds: int = 10) -> Iterator[WatchEvent]:
        """Events of a watch until the server ends it (``timeout_seconds``)."""
        from labctl.kube.watch import watch

        return watch(self, kind, namespace, label_selector=label_selector, field_selector=field_selector,
                     resource_version=resource_version, timeout_seconds=timeout_seconds)

    # -- changing ---------------------------------------------------------------

    def create(self, obj: Mapping[str, Any]) -> dict:
        ref = ObjectRef.of(obj)
        info = kind_info(ref.kind)
        return self._call(info, "create", f"create {ref}", ref, *self._ns_args(info, ref.namespace), dict(obj))

    def replace(self, obj: Mapping[str, Any]) -> dict:
        ref = ObjectRef.of(obj)
        info = kind_info(ref.kind)
        if info.custom:
            args = (*self._ns_args(info, ref.namespace), ref.name, dict(obj))
        else:
            args = (ref.name, *self._ns_args(info, ref.namespace), dict(obj))
        return self._call(info, "replace", f"replace {ref}", ref, *args)

    def apply(self, obj: Mapping[str, Any], *, deadline: float = 60.0) -> ApplyResult:
        """Make the live object match ``obj``; applying the same object twice changes nothing.

        "Match" means every field ``obj`` sets has that value live (the API server adds
        defaults, which do not count as a difference). A differing Pod is deleted (short
        grace period) and re-created, since Pods reject most spec updates.
        """
        ref = ObjectRef.of(obj)
        info = kind_info(ref.kind)
        live = self.find(ref.kind, ref.name, ref.namespace)
        if live is not None and (live.get("metadata") or {}).get("deletionTimestamp"):
            # Still terminating from an earlier delete: creating now would 409.
            self.wait_gone([ref], deadline=deadline)
            live = None
        if live is None:
            return ApplyResult(ref, "created", self.create(obj))
        if contains(live, obj):
            return ApplyResult(ref, "unchanged", live)
        if not info.replaceable:
            if contains(live.get("spec"), obj.get("spec") or {}):
                # Only labels/annotations differ, and those a Pod accepts in place: the
                # running Pod keeps its IP (what the course's label exercise shows).
                return ApplyResult(ref, "configured", self.replace(_with_metadata(live, obj)))
            self.delete(ref)
            self.wait_gone([ref], deadline=deadline)
            return ApplyResult(ref, "replaced", self.create(obj))
        return ApplyResult(ref, "configured", self.replace(_carry_allocated(obj, live)))

    def delete(self, ref: ObjectRef, *, grace_period_seconds: int = 1) -> DeleteResult:
        """Ask for deletion; the kubetm images ignore SIGTERM, hence the short grace."""
        info = kind_info(ref.kind)
        if info.custom:
            args = (*self._ns_args(info, ref.namespace), ref.name)
        else:
            args = (ref.name, *self._ns_args(info, ref.namespace))
        try:
            self._call(info, "delete", f"delete {ref}", ref, *args, grace_period_seconds=grace_period_seconds)
        except NotFound:
            return DeleteResult(ref, "absent")
        return DeleteResult(ref, "deleted")

    def wait_gone(self, refs: Iterable[ObjectRef], *, deadline: float = 60.0) -> None:
        """Return once every object is gone; DeadlineExceeded names those still there."""
        pending = list(refs)
        until = time.monotonic() + deadline
        while True:
            pending = [r for r in pending if self.find(r.kind, r.name, r.namespace) is not None]
            if not pending:
                return
            if time.monotonic() >= until:
                names = ", ".join(str(r) for r in pending)
                raise DeadlineExceeded(
                    f"still terminating after {deadline:g}s: {names}",
                    hint="a node may be down (`labctl status`); `kubectl describe` shows finalizers; run the command again to keep waiting",
                )
            time.sleep(self.poll)

    def exec(self, pod: str, command: Sequence[str], *, container: str | None = None,
             namespace: str = DEFAULT_NAMESPACE, timeout: float = 30.0) -> ExecResult:
        # Looked up through the module at call time so tests can replace the adapter.
        import labctl.kube.client as this

        return this.exec_in_pod(self.api_client, namespace, pod, container, list(command), timeout=timeout)
