"""A fake Kubernetes 1.27 API server for tests: the REAL client talks to it over HTTP.

No cluster can run on the test machines, so the API server is the boundary we fake.
It speaks the real wire format (JSON objects, lists, ``Status`` errors, watch streams
of newline-delimited events) and keeps enough state that the client's get / list /
create / replace / delete behave as on a real server.

Fixture API (for COURSE and VERIFY tests)
-----------------------------------------
``fake_apiserver`` (function scope) -> :class:`FakeApiServer`, already started on
``http://127.0.0.1:<free port>``, token auth, stopped at teardown.

Where things are:
  ``fake.url``          the server URL
  ``fake.token``        the bearer token it accepts (anything else -> 401 Status)
  ``fake.lab_dir``      a lab folder (``tmp_path/"lab"``) whose ``kubeconfig`` points here:
                        ``labctl -C fake.lab_dir apply pod-1`` works as-is
  ``fake.kubeconfig``   that kubeconfig file; ``fake.write_kubeconfig(path)`` writes another

Filling the store (the objects a GET / list / watch returns):
  ``fake.add(obj)``          put an object (fills uid, resourceVersion, creationTimestamp
                             when absent); returns the stored copy
  ``fake.load(path)``        a fixture file (one object or a ``*List``) or a directory of
                             them (``*.json``, sorted, plus ``logs/<pod>.<container>[.previous].log``);
                             ``Status`` files are skipped. Loading over a lab replaces objects
                             with the same kind/namespace/name (``variants/``).
                             Example: ``fake.load(K8S_FIXTURES / "passing")``
                             (``tests.helpers.fake_apiserver.K8S_FIXTURES``: tests/fixtures/k8s)
  ``fake.get(kind, name, namespace="default")`` / ``fake.objects(kind)`` read the store
  ``fake.set_logs(pod, text, container=None, previous=False, namespace="default")``
                             what ``pods/<pod>/log`` returns (honours tailLines)

Scripting responses (checked before the store; for failures and retries):
  ``fake.route(method, path, *replies)``  each reply is a dict (200 JSON), a
      :class:`Reply` (status, json or text body), or a :class:`Stream` (watch events).
      Several replies are served in order and the last one repeats, e.g. a Pod that
      is Pending twice then Running. ``path`` is the URL path without query.
  ``fake.serve({path: reply, (method, path): reply, ...})`` many routes at once.
  ``fake.status(code, reason, message)`` builds a ``Status`` dict like the server's.

Semantics of the store (as a 1.27 API server):
  * POST creates (201, defaults filled: Pod spec/container defaults and qosClass,
    Service clusterIP from 10.96.0.0/16, nodePorts 30000-32767, targetPort), 409 if it
    exists; ``?dryRun=All`` validates without storing.
  * PUT replaces; 409 on a stale ``metadata.resourceVersion``; a Pod spec change
    other than container images -> 422 like the real server; a Service keeps its
    clusterIP/nodePorts when the body omits them, 422 if it tries to change clusterIP.
  * DELETE returns the object. A scheduled Pod (``spec.nodeName`` set) with a grace
    period > 0 stays, with ``metadata.deletionTimestamp``, for ``grace * fake.grace_scale``
    seconds (default 0.1 s per grace second), then disappears; everything else goes
    at once. The grace period comes from ``?gracePeriodSeconds=``, the DeleteOptions
    body, or the Pod's ``terminationGracePeriodSeconds`` (30).
  * GET of a missing object -> 404 ``Status`` (``pods "x" not found``).
  * Lists honour ``labelSelector`` (``k=v``, ``k!=v``, ``k``, ``!k``) and
    ``fieldSelector`` (``a.b=v``, ``a.b!=v`` on any dotted path, e.g.
    ``involvedObject.name``); items carry no kind/apiVersion, like the real server.
  * ``?watch=true``: without ``resourceVersion`` first an ADDED event per matching
    object, then every change as it happens (ADDED / MODIFIED / DELETED), until
    ``timeoutSeconds`` (capped by ``fake.max_watch_seconds``); a too-old
    resourceVersion gets an ERROR event with a 410 Status. A routed :class:`Stream`
    replays a fixture's events instead (e.g. ``tests/fixtures/k8s/watch/*.ndjson``).
  * ``pods/<name>/exec`` answers 400: exec is faked one level up, by replacing
    ``labctl.kube.client.exec_in_pod`` (the ``fake_exec`` fixture does that).

What the tests can assert on:
  ``fake.requests``: every request as :class:`RecordedRequest` (method, path, query,
  body, status it got). ``fake.calls(method, path_prefix)`` filters them.
  ``fake.stop()`` makes the port refuse connections (a lab that is down).

``fake_exec`` (function scope) -> :class:`FakeExec`: replaces the exec adapter;
  ``fake_exec.on(pod, container, argv_prefix, ExecResult(...) | callable)``,
  unknown commands get rc 126 and a stderr naming them; ``fake_exec.calls`` records.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

K8S_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"

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


class _QuickStopServer(HTTPServer):
    # serve_forever's default 0.5 s poll makes every stop() (one per test) half a second.
    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


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


class FakeApiServer:
    """See the module docstring. Usable outside pytest too (``start()`` / ``stop()``)."""

    def __init__(self, workdir: Path, *, token: str = "labctl-test-token"):
        self.workdir = Path(workdir)
        self.token = token
        self.grace_scale = 0.1
        self.max_watch_seconds = 5.0
        self.requests: list[RecordedRequest] = []
        self._routes: dict[tuple[str, str], list] = {}
        self._logs: dict[tuple[str, str, str | None, bool], str] = {}
        self.store = _Store(lambda: self.grace_scale)
        self.server = _QuickStopServer(host="127.0.0.1", port=0, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.lab_dir = self.workdir / "lab"
        self.kubeconfig = self.lab_dir / "kubeconfig"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "FakeApiServer":
        # werkzeug logs every request to stderr; the recorded requests say more.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server.start()
        self.write_kubeconfig(self.kubeconfig)
        return self

    def stop(self) -> None:
        if self.server.is_running():
            self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "fake-lab", "cluster": {"server": self.url}}],
            "users": [{"name": "fake-admin", "user": {"token": self.token}}],
            "contexts": [{"name": "fake-admin@fake-lab", "context": {"cluster": "fake-lab", "user": "fake-admin"}}],
            "current-context": "fake-admin@fake-lab",
        }
        path.write_text(json.dumps(cfg, indent=2))  # JSON is YAML; the client reads either
        path.chmod(0o600)
        return path

    # -- scenario API --------------------------------------------------------------

    status = staticmethod(status)

    def add(self, obj: Mapping) -> dict:
        obj = copy.deepcopy(dict(obj))
        plural = PLURALS[obj["kind"]]
        with self.store.lock:
            return copy.deepcopy(self.store.put(plural, obj))

    def load(self, path: Path | str) -> list[dict]:
        path = Path(path)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        added = []
        for f in files:
            doc = json.loads(f.read_text())
            kind = doc.get("kind", "")
            if kind == "Status":
                continue
            if kind.endswith("List"):
                item_kind = kind[: -len("List")] or None
                for item in doc.get("items", []):
                    item = dict(item)
                    item.setdefault("kind", item_kind)
                    item.setdefault("apiVersion", doc.get("apiVersion", "v1"))
                    added.append(self.add(item))
            else:
                added.append(self.add(doc))
        if path.is_dir():
            # logs/<pod>.<container>[.previous].log: what pods/<pod>/log answers
            for f in sorted((path / "logs").glob("*.log")):
                pod, container, *rest = f.name[: -len(".log")].split(".")
                self.set_logs(pod, f.read_text(), container=container, previous=rest == ["previous"])
        return added

    def get(self, kind: str, name: str, namespace: str = "default") -> dict | None:
        plural = PLURALS[kind]
        ns = namespace if RESOURCES[plural][2] else ""
        with self.store.lock:
            self.store.reap()
            obj = self.store.objects.get((plural, ns, name))
            return copy.deepcopy(obj) if obj else None

    def objects(self, kind: str | None = None) -> list[dict]:
        with self.store.lock:
            self.store.reap()
            return [copy.deepcopy(o) for (p, _, _), o in sorted(self.store.objects.items())
                    if kind is None or RESOURCES[p][0] == kind]

    def set_logs(self, pod: str, text: str, *, container: str | None = None, previous: bool = False, namespace: str = "default") -> None:
        self._logs[(namespace, pod, container, previous)] = text

    def route(self, method: str, path: str, *replies: Any) -> None:
        if not replies:
            raise ValueError("route() needs at least one reply")
        self._routes[(method.upper(), path)] = list(replies)

    def serve(self, scenario: Mapping[Any, Any]) -> None:
        for key, reply in scenario.items():
            method, path = key if isinstance(key, tuple) else ("GET", key)
            replies = reply if isinstance(reply, list) else [reply]
            self.route(method, path, *replies)

    def calls(self, method: str | None = None, path: str = "") -> list[RecordedRequest]:
        return [r for r in list(self.requests) if (method is None or r.method == method.upper()) and r.path.startswith(path)]

    # -- HTTP ------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        query = {k: v[-1] for k, v in parse_qs(request.query_string.decode()).items()}
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        auth = request.headers.get("Authorization")
        if auth != f"Bearer {self.token}":
            resp = self._json(401, status(401, "Unauthorized", "Unauthorized"))
        else:
            try:
                resp = self._dispatch(request.method, request.path, query, body)
            except Exception as exc:  # a bug in the fake must show up as a 500 with its cause
                resp = self._json(500, status(500, "InternalError", f"fake apiserver: {type(exc).__name__}: {exc}"))
        self.requests.append(RecordedRequest(request.method, request.path, query, body, resp.status_code, auth))
        return resp

    @staticmethod
    def _json(code: int, payload: Any) -> Response:
        return Response(json.dumps(payload), status=code, content_type="application/json")

    def _reply(self, reply: Any, query: dict) -> Response:
        if isinstance(reply, Stream):
            return self._stream_events(reply)
        if isinstance(reply, Reply):
            if reply.text is not None:
                return Response(reply.text, status=reply.status, content_type=reply.content_type)
            return self._json(reply.status, reply.json)
        if isinstance(reply, tuple):
            return self._json(reply[0], reply[1])
        return self._json(200, reply)

    def _dispatch(self, method: str, path: str, query: dict, body: Any) -> Response:
        replies = self._routes.get((method, path))
        if replies:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            return self._reply(reply, query)
        if path.rstrip("/") == "/version":
            return self._json(200, SERVER_VERSION)
        target = self._parse(path)
        if target is None:
            return self._json(404, status(404, "NotFound", "the server could not find the requested resource"))
        plural, ns, name, sub = target
        with self.store.lock:
            self.store.reap()
        if name is None:
            if method == "GET":
                if str(query.get("watch", "")).lower() in ("true", "1"):
                    return self._watch(plural, ns, query)
                return self._list(plural, ns, query)
            if method == "POST":
                return self._create(plural, ns, body, query)
            return self._json(405, status(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource"))
        if sub == "log":
            return self._log(ns, name, query)
        if sub == "exec":
            return self._json(400, status(400, "BadRequest", "exec is not served by the fake API server; tests replace labctl.kube.client.exec_in_pod"))
        if method == "GET":
            return self._read(plural, ns, name)
        if method == "PUT":
            return self._replace(plural, ns, name, body)
        if method == "DELETE":
            return self._delete(plural, ns, name, query, body)
        return self._json(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))

    @staticmethod
    def _parse(path: str) -> tuple[str, str, str | None, str | None] | None:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            rest = parts[3:]
        else:
            return None
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in RESOURCES:
            return None
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return plural, ns, name, sub

    def _not_found(self, plural: str, name: str) -> Response:
        return self._json(404, status(404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural}))

    def _read(self, plural: str, ns: str, name: str) -> Response:
        with self.store.lock:
            obj = self.store.objects.get((plural, ns, name))
            return self._json(200, obj) if obj else self._not_found(plural, name)

    def _matching(self, plural: str, ns: str, query: dict) -> list[dict]:
        return [o for (p, n, _), o in sorted(self.store.objects.items())
                if p == plural and (not ns or n == ns)
                and match_labels(o, query.get("labelSelector")) and match_fields(o, query.get("fieldSelector"))]

    def _list(self, plural: str, ns: str, query: dict) -> Response:
        kind, api_version, _ = RESOURCES[plural]
        with self.store.lock:
            items = []
            for obj in self._matching(plural, ns, query):
                item = copy.deepcopy(obj)
                item.pop("kind", None)
                item.pop("apiVersion", None)
                items.append(item)
            rv = str(self.store.rv)
        return self._json(200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": {"resourceVersion": rv}, "items": items})

    def _log(self, ns: str, name: str, query: dict) -> Response:
        with self.store.lock:
            pod = self.store.objects.get(("pods", ns, name))
        if pod is None:
            return self._not_found("pods", name)
        container = query.get("container")
        names = [c["name"] for c in (pod.get("spec") or {}).get("containers", [])]
        if container is None and len(names) > 1:
            msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
            return self._json(400, status(400, "BadRequest", msg))
        if container is not None and container not in names:
            return self._json(400, status(400, "BadRequest", f"container {container} is not valid for pod {name}"))
        previous = str(query.get("previous", "")).lower() in ("true", "1")
        text = self._logs.get((ns, name, container, previous))
        if text is None and container is None and names:
            text = self._logs.get((ns, name, names[0], previous))
        if text is None and container is not None:
            text = self._logs.get((ns, name, None, previous))
        if text is None:
            if previous:
                return self._json(400, status(400, "BadRequest", f'previous terminated container "{container or names[0]}" in pod "{name}" not found'))
            text = ""
        if "tailLines" in query:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]):]) if int(query["tailLines"]) > 0 else ""
        return Response(text, status=200, content_type="text/plain")

    # -- writes ----------------------------------------------------------------------

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

    # -- watch -----------------------------------------------------------------------

    def _stream_events(self, stream: Stream) -> Response:
        events = stream.events
        if isinstance(events, str):
            lines = [line for line in events.splitlines() if line.strip()]
        else:
            lines = [json.dumps(e) for e in events]

        def gen():
            for line in lines:
                if stream.delay:
                    time.sleep(stream.delay)
                yield (line + "\n").encode()

        return Response(gen(), status=200, content_type="application/json", direct_passthrough=True)

    def _watch(self, plural: str, ns: str, query: dict) -> Response:
        timeout = min(float(query.get("timeoutSeconds", self.max_watch_seconds)), self.max_watch_seconds)
        start_rv = query.get("resourceVersion")
        store = self.store

        def visible(obj: dict) -> bool:
            meta = obj.get("metadata") or {}
            return ((not ns or meta.get("namespace") == ns) and match_labels(obj, query.get("labelSelector"))
                    and match_fields(obj, query.get("fieldSelector")))

        def strip(obj: dict) -> dict:
            return obj

        with store.lock:
            if start_rv in (None, "", "0"):
                initial = [{"type": "ADDED", "object": copy.deepcopy(o)} for o in self._matching(plural, ns, query)]
                last = store.rv
            else:
                initial = []
                last = int(start_rv)
                oldest = store.log[0][0] if store.log else store.rv
                if last < oldest - 1:
                    gone = status(410, "Expired", f"too old resource version: {last} ({oldest})")
                    return self._stream_events(Stream([{"type": "ERROR", "object": gone}]))

        def gen():
            nonlocal last
            for ev in initial:
                yield (json.dumps(ev) + "\n").encode()
            until = time.monotonic() + timeout
            while True:
                with store.lock:
                    store.reap()
                    fresh = [(rv, t, o) for rv, t, p, o in store.log if rv > last and p == plural]
                    if not fresh:
                        left = until - time.monotonic()
                        if left <= 0:
                            return
                        store.lock.wait(min(left, 0.05))
                        continue
                    last = max(rv for rv, _, _ in fresh)
                for _, type_, obj in fresh:
                    if visible(obj):
                        yield (json.dumps({"type": type_, "object": strip(obj)}) + "\n").encode()

        return Response(gen(), status=200, content_type="application/json", direct_passthrough=True)


# -- what the API server fills in ---------------------------------------------------------


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


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def fake_apiserver(tmp_path):
    server = FakeApiServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


class FakeExec:
    """Stands in for ``labctl.kube.client.exec_in_pod`` (exec is a websocket)."""

    def __init__(self):
        self.rules: list[tuple[str, str | None, tuple[str, ...], Any]] = []
        self.calls: list[tuple[str, str, str | None, tuple[str, ...]]] = []

    def on(self, pod: str, container: str | None, argv_prefix: Iterable[str], result: Any) -> None:
        """``result``: an ExecResult, or a callable(namespace, pod, container, argv) -> ExecResult."""
        self.rules.append((pod, container, tuple(argv_prefix), result))

    def __call__(self, api_client, namespace, pod, container, command, *, timeout: float = 30.0):
        from labctl.kube.client import ExecResult

        argv = tuple(command)
        self.calls.append((namespace, pod, container, argv))
        for rpod, rcontainer, prefix, result in reversed(self.rules):
            if rpod == pod and rcontainer in (None, container) and argv[: len(prefix)] == prefix:
                return result(namespace, pod, container, argv) if callable(result) else result
        return ExecResult(argv, 126, "", f"fake exec: no rule for {pod}/{container}: {' '.join(argv)}")


@pytest.fixture
def fake_exec(monkeypatch):
    from labctl.kube import client as kube

    fake = FakeExec()
    monkeypatch.setattr(kube, "exec_in_pod", fake)
    return fake
