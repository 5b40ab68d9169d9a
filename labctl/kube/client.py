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
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import ClusterError, DeadlineExceeded, LabError, NotFound

DEFAULT_NAMESPACE = "default"
LAB_DOWN_HINT = "is the lab up? `labctl status`"


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


@dataclass(frozen=True)
class ExecResult:
    command: tuple[str, ...]
    rc: int | None  # None: no exit status (timed out, or the stream broke off)
    stdout: str
    stderr: str = ""

    @property
    def succeeded(self) -> bool:
        return self.rc == 0


def exec_in_pod(api_client, namespace: str, pod: str, container: str | None, command: Sequence[str], *, timeout: float = 30.0) -> ExecResult:
    """Run ``command`` in a container over the exec websocket: THE adapter tests replace."""
    from kubernetes import client
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    # stream() swaps ``request`` on the ApiClient it is given while the call runs; a
    # private ApiClient keeps that swap away from other threads' GETs on the shared one.
    private = client.ApiClient(configuration=api_client.configuration)
    core = client.CoreV1Api(private)
    argv = tuple(command)
    kwargs = dict(command=list(argv), stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    if container:
        kwargs["container"] = container
    try:
        resp = stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
    except Exception as exc:  # the websocket handshake fails with ApiException(status=0) or a socket error
        raise translate(_handshake_status(exc), f"exec in Pod {namespace}/{pod}", ObjectRef("Pod", pod, namespace)) from exc
    try:
        resp.run_forever(timeout=timeout)
        timed_out = resp.is_open()
        stdout = resp.read_stdout(timeout=0) if resp.peek_stdout() else ""
        stderr = resp.read_stderr(timeout=0) if resp.peek_stderr() else ""
        rc = None if timed_out else _exec_rc(resp.read_channel(ERROR_CHANNEL, timeout=0))
    finally:
        resp.close()
        private.close()
    return ExecResult(argv, rc, stdout or "", stderr or "")


def _handshake_status(exc: BaseException) -> BaseException:
    """The websocket client reports a refused upgrade as ApiException(status=0) whose
    reason holds "Handshake status 404 ... -+-+- <headers> -+-+- <Status JSON>":
    recover the HTTP status and the Status body, so 404 reads as NotFound."""
    from kubernetes.client.exceptions import ApiException

    text = str(getattr(exc, "reason", "") or exc)
    match = re.search(r"Handshake status (\d{3})", text)
    if not isinstance(exc, ApiException) or not match:
        return exc
    parts = text.split(" -+-+- ")
    rebuilt = ApiException(status=int(match.group(1)), reason=parts[0].removeprefix("Handshake status ")[4:] or None)
    if len(parts) >= 3:
        body = parts[2].removeprefix("b'")
        try:
            rebuilt.body = json.dumps(json.JSONDecoder().raw_decode(body)[0])
        except ValueError:
            pass
    return rebuilt


def _exec_rc(status_text: str) -> int | None:
    """The exit code from the exec error channel's Status. The v4 protocol always ends
    with one; none means the stream broke off, so the outcome is unknown (None)."""
    if not status_text:
        return None
    status = json.loads(status_text)
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1))
    # Not an exit code: the runtime could not start the command at all.
    raise ClusterError(f"exec failed: {status.get('message', status_text)}", hint="check the container name and that the command exists in the image")


def translate(exc: BaseException, action: str, ref: ObjectRef | None = None) -> LabError:
    """An API or transport failure as a one-line LabError with a hint."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    import urllib3.exceptions

    if isinstance(exc, LabError):
        return exc
    if isinstance(exc, ApiException):
        status: dict = {}
        try:
            status = json.loads(exc.body) if exc.body else {}
        except (TypeError, ValueError):
            pass
        message = status.get("message") or exc.reason or "no message"
        code = exc.status
        if code == 404:
            if ref is None:
                return NotFound(f"{action}: {message}", hint="check the name; `labctl exercises` lists what labctl creates")
            return NotFound(f"{ref} not found", hint="create it with `labctl apply EXERCISE` (`labctl exercises` lists them)")
        hint = {
            401: "the lab's kubeconfig is not accepted; re-export it with `labctl up`",
            403: "the kubeconfig's user may not do this; use the lab's admin kubeconfig",
            409: "someone changed the object at the same time; run the command again",
            422: "the object is invalid; check the manifest (`labctl exercises`)",
            500: "the API server failed; `labctl status` shows the control plane",
            503: "the API server is not ready; wait a moment or check `labctl status`",
        }.get(code, LAB_DOWN_HINT)
        return ClusterError(f"{action}: API server answered {code} {status.get('reason') or exc.reason}: {message}", hint=hint)
    if isinstance(exc, urllib3.exceptions.HTTPError) or isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        reason = getattr(exc, "reason", None) or exc
        text = str(reason)
        if "Connection refused" in text or "Errno 111" in text:
            text = "connection refused"
        elif "timed out" in text.lower():
            text = "timed out"
        return ClusterError(f"{action}: cannot reach the Kubernetes API ({text})", hint=LAB_DOWN_HINT)
    if isinstance(exc, ConfigException):
        return ClusterError(f"the lab's kubeconfig is unusable: {exc}", hint="re-export it with `labctl up`")
    raise exc


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
        # `verify --all` runs up to ~14 checks at once; urllib3's default pool of 10 would
        # drop and reopen connections under that load.
        cfg.connection_pool_maxsize = 16
        self.api_client = client.ApiClient(configuration=cfg)
        # One retry on a dropped connection; more only makes a dead lab slower to report.
        self.api_client.configuration.retries = 1
        self.timeout = timeout
        self.poll = poll
        self._apis: dict[str, Any] = {}

    @classmethod
    def for_lab(cls, paths, **kw) -> "KubeClient":
        """The client for a lab folder (``labctl.lab.paths.LabPaths``)."""
        return cls(paths.kubeconfig, **kw)

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
            resp = getattr(api, method)(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
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
            return ev.get("lastTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp") or ""

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
                name, namespace, _preload_content=False, _request_timeout=self.timeout, **kw)
            return resp.data.decode("utf-8", "replace")
        except Exception as exc:
            raise translate(exc, f"read {'previous ' if previous else ''}logs of {what} in {ref}", ref) from exc

    def watch(self, kind: str, namespace: str | None = DEFAULT_NAMESPACE, *, label_selector: str | None = None,
              field_selector: str | None = None, resource_version: str | None = None,
              timeout_seconds: int = 10) -> Iterator[WatchEvent]:
        """Events of a watch until the server ends it (``timeout_seconds``)."""
        from kubernetes import watch

        info = kind_info(kind)
        if info.custom:
            raise LabError(f"watching {kind} is not supported", hint="poll with `get` instead")
        scope = "namespaced_" if info.namespaced else ""
        func = getattr(self._api(info.api), f"list_{scope}{info.snake}")
        kw: dict[str, Any] = {"timeout_seconds": timeout_seconds, "_request_timeout": timeout_seconds + self.timeout}
        for key, value in (("label_selector", label_selector), ("field_selector", field_selector), ("resource_version", resource_version)):
            if value:
                kw[key] = value
        w = watch.Watch()
        try:
            for event in w.stream(func, *self._ns_args(info, namespace), **kw):
                yield WatchEvent(event["type"], event["raw_object"])
        except Exception as exc:
            raise translate(exc, f"watch {info.plural}") from exc
        finally:
            w.stop()

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
