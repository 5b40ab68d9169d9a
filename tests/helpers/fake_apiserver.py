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

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fakeapi.server import FakeApiServer
from tests.helpers.fakeapi.wire import (  # noqa: F401 - the helpers' public names
    PLURALS, RESOURCES, SERVER_VERSION, RecordedRequest, Reply, Stream, match_fields, match_labels, now_rfc3339, status,
)

K8S_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"

__all__ = ["K8S_FIXTURES", "FakeApiServer", "FakeExec", "Reply", "Stream", "RecordedRequest", "SERVER_VERSION", "status",
           "fake_apiserver", "fake_exec"]


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
