"""The fake API server: lifecycle, the scenario API, HTTP dispatch and reads.
See tests/helpers/fake_apiserver.py for how tests use it."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.helpers.fakeapi.store import _Store
from tests.helpers.fakeapi.watch import Watches
from tests.helpers.fakeapi.wire import (
    PLURALS, RESOURCES, SERVER_VERSION, RecordedRequest, Reply, Stream, match_fields, match_labels, status,
)
from tests.helpers.fakeapi.writes import Writes


class _QuickStopServer(HTTPServer):
    # serve_forever's default 0.5 s poll makes every stop() (one per test) half a second.
    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


class FakeApiServer(Writes, Watches):
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
            return self._json(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
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
