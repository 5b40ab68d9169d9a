"""labctl.kube.client against the fake 1.27 API server, through the real client."""

from __future__ import annotations

import threading
import time

import pytest

from labctl.kube import exec as kube_exec
from labctl.kube.client import ExecResult, KubeClient, ObjectRef, contains
from labctl.errors import ClusterError, DeadlineExceeded, ExitCode, NotFound
from tests.helpers.fake_apiserver import Reply, Stream

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "pod-1", "labels": {"labctl.dev/exercise": "pod-1"}},
    "spec": {"containers": [
        {"name": "container1", "image": "kubetm/p8000", "ports": [{"containerPort": 8000}]},
        {"name": "container2", "image": "kubetm/p8080", "ports": [{"containerPort": 8080}]},
    ]},
}
SVC = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "svc-nodeport"},
    "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 9000, "targetPort": 8080}]},
}


@pytest.fixture
def client(fake_apiserver):
    with KubeClient(fake_apiserver.kubeconfig, poll=0.02) as c:
        yield c


def _schedule(fake, name, node="k8s-node1"):
    """What the scheduler would do: bind the Pod to a node (so deletion has a grace period)."""
    with fake.store.lock:
        fake.store.objects[("pods", "default", name)]["spec"]["nodeName"] = node


def test_apply_twice_creates_once_and_changes_nothing(client, fake_apiserver):
    first = client.apply(POD)
    assert (first.action, first.changed) == ("created", True)
    writes_before = len([r for r in fake_apiserver.requests if r.method != "GET"])
    second = client.apply(POD)
    assert (second.action, second.changed) == ("unchanged", False)
    assert len([r for r in fake_apiserver.requests if r.method != "GET"]) == writes_before
    live = fake_apiserver.get("Pod", "pod-1")
    # the server's defaults are there and did not count as a difference
    assert live["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert live["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP"


def test_changed_pod_is_deleted_with_short_grace_and_recreated(client, fake_apiserver):
    client.apply(POD)
    _schedule(fake_apiserver, "pod-1")
    uid = fake_apiserver.get("Pod", "pod-1")["metadata"]["uid"]
    changed = {**POD, "spec": {"containers": [{**POD["spec"]["containers"][0], "image": "kubetm/p8080"}, POD["spec"]["containers"][1]]}}
    result = client.apply(changed)
    assert result.action == "replaced"
    assert not fake_apiserver.calls("PUT")  # a Pod update would be refused by the server
    delete = fake_apiserver.calls("DELETE", "/api/v1/namespaces/default/pods/pod-1")
    assert [d.query.get("gracePeriodSeconds") for d in delete] == ["1"]
    live = fake_apiserver.get("Pod", "pod-1")
    assert live["metadata"]["uid"] != uid
    assert live["spec"]["containers"][0]["image"] == "kubetm/p8080"


def test_changed_service_is_replaced_keeping_allocated_ip_and_node_port(client, fake_apiserver):
    created = client.apply(SVC).object
    changed = {**SVC, "spec": {**SVC["spec"], "selector": {"app": "y"}}}
    result = client.apply(changed)
    assert result.action == "configured"
    live = fake_apiserver.get("Service", "svc-nodeport")
    assert live["spec"]["selector"] == {"app": "y"}
    assert live["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    assert live["spec"]["ports"][0]["nodePort"] == created["spec"]["ports"][0]["nodePort"]
    assert client.apply(changed).action == "unchanged"


def test_delete_waits_until_the_terminating_pod_is_gone(client, fake_apiserver):
    client.apply(POD)
    _schedule(fake_apiserver, "pod-1")
    ref = ObjectRef("Pod", "pod-1")
    assert client.delete(ref).action == "deleted"
    assert fake_apiserver.get("Pod", "pod-1")["metadata"]["deletionGracePeriodSeconds"] == 1
    client.wait_gone([ref], deadline=10)
    assert fake_apiserver.get("Pod", "pod-1") is None
    after = fake_apiserver.requests[[r.method for r in fake_apiserver.requests].index("DELETE") + 1:]
    gets = [r.status for r in after if r.method == "GET"]
    assert gets[0] == 200 and gets[-1] == 404  # it saw the Pod terminating, then gone
    assert client.delete(ref).action == "absent"


def test_wait_gone_gives_up_at_the_deadline_naming_the_object(client, fake_apiserver):
    client.apply(POD)
    _schedule(fake_apiserver, "pod-1")
    fake_apiserver.grace_scale = 1000  # a kubelet that never finishes
    client.delete(ObjectRef("Pod", "pod-1"))
    with pytest.raises(DeadlineExceeded) as err:
        client.wait_gone([ObjectRef("Pod", "pod-1")], deadline=0.2)
    assert "Pod default/pod-1" in err.value.message
    assert err.value.exit_code == ExitCode.TIMEOUT


def test_missing_object_is_not_found_with_hint(client):
    with pytest.raises(NotFound) as err:
        client.get("Pod", "pod-9")
    assert err.value.message == "Pod default/pod-9 not found"
    assert "labctl apply" in err.value.hint
    assert client.find("Pod", "pod-9") is None


def test_server_errors_carry_the_status_message(client, fake_apiserver):
    fake_apiserver.route("GET", "/api/v1/nodes", Reply(503, fake_apiserver.status(503, "ServiceUnavailable", "etcdserver: leader changed")))
    with pytest.raises(ClusterError) as err:
        client.nodes()
    assert "503" in err.value.message and "etcdserver: leader changed" in err.value.message
    assert err.value.hint


def test_wrong_token_is_refused_with_a_kubeconfig_hint(fake_apiserver, tmp_path):
    fake_apiserver.token = "rotated"
    with KubeClient(fake_apiserver.kubeconfig) as c, pytest.raises(ClusterError) as err:
        c.nodes()
    assert "401" in err.value.message
    assert "labctl up" in err.value.hint


def test_lab_down_says_connection_refused_and_points_to_status(fake_apiserver):
    c = KubeClient(fake_apiserver.kubeconfig)
    fake_apiserver.stop()
    with pytest.raises(ClusterError) as err:
        c.get("Pod", "pod-1")
    assert "connection refused" in err.value.message
    assert err.value.hint == "is the lab up? `labctl status`"


def test_missing_kubeconfig_points_to_up(tmp_path):
    with pytest.raises(NotFound) as err:
        KubeClient(tmp_path / "kubeconfig")
    assert "labctl up" in err.value.hint


def test_client_never_touches_the_global_default_configuration(fake_apiserver):
    from kubernetes import client

    before = client.Configuration.get_default_copy().host
    with KubeClient(fake_apiserver.kubeconfig) as c:
        c.nodes()
        assert c.host == fake_apiserver.url
    assert client.Configuration.get_default_copy().host == before != fake_apiserver.url


def test_list_filters_by_label_and_adds_kind(client, fake_apiserver):
    client.apply(POD)
    client.apply({**POD, "metadata": {"name": "other"}})
    names = [p["metadata"]["name"] for p in client.list("Pod", label_selector="labctl.dev/exercise=pod-1")]
    assert names == ["pod-1"]
    assert client.list("Pod")[0]["kind"] == "Pod"
    lists = [r for r in fake_apiserver.calls("GET") if r.path == "/api/v1/namespaces/default/pods"]
    assert lists[0].query["labelSelector"] == "labctl.dev/exercise=pod-1"


def test_events_for_one_object_oldest_first(client, fake_apiserver):
    def event(name, obj, ts, reason):
        return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": obj, "namespace": "default", "apiVersion": "v1"},
                "reason": reason, "message": reason, "type": "Normal", "lastTimestamp": ts, "firstTimestamp": ts}

    fake_apiserver.add(event("a", "pod-3", "2024-01-01T00:00:05Z", "Late"))
    fake_apiserver.add(event("b", "pod-3", "2024-01-01T00:00:01Z", "Early"))
    fake_apiserver.add(event("c", "pod-1", "2024-01-01T00:00:03Z", "Other"))
    assert [e["reason"] for e in client.events_for("Pod", "pod-3")] == ["Early", "Late"]
    sel = fake_apiserver.calls("GET", "/api/v1/namespaces/default/events")[-1].query["fieldSelector"]
    assert "involvedObject.name=pod-3" in sel and "involvedObject.kind=Pod" in sel


def test_pod_logs_container_previous_and_tail(client, fake_apiserver):
    client.apply(POD)
    fake_apiserver.set_logs("pod-1", "one\ntwo\nthree\n", container="container2")
    fake_apiserver.set_logs("pod-1", "old\n", container="container2", previous=True)
    assert client.pod_logs("pod-1", container="container2", tail_lines=2) == "two\nthree\n"
    assert client.pod_logs("pod-1", container="container2", previous=True) == "old\n"
    with pytest.raises(ClusterError) as err:  # two containers: the server wants a name
        client.pod_logs("pod-1")
    assert "choose one of: [container1 container2]" in err.value.message


def test_watch_sees_live_changes(client, fake_apiserver):
    seen: list[tuple[str, str]] = []

    def watch():
        for ev in client.watch("Pod", timeout_seconds=2):
            seen.append((ev.type, ev.object["metadata"]["name"]))
            if ev.type == "DELETED":
                return

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.2)
    client.apply(POD)
    client.delete(ObjectRef("Pod", "pod-1"))  # unscheduled: gone at once
    t.join(5)
    assert seen == [("ADDED", "pod-1"), ("DELETED", "pod-1")]


def test_watch_replays_a_fixture_stream_that_ends(client, fake_apiserver):
    pod = {**POD, "metadata": {**POD["metadata"], "namespace": "default", "resourceVersion": "7"}}
    fake_apiserver.route("GET", "/api/v1/namespaces/default/pods", Stream([
        {"type": "ADDED", "object": pod},
        {"type": "MODIFIED", "object": {**pod, "status": {"phase": "Running"}}},
    ]))
    events = list(client.watch("Pod", timeout_seconds=1))
    assert [(e.type, e.object.get("status", {}).get("phase")) for e in events] == [("ADDED", None), ("MODIFIED", "Running")]


def test_exec_goes_through_the_one_adapter(client, fake_exec):
    fake_exec.on("pod-1", "container1", ["curl", "-s"], ExecResult(("curl",), 0, "containerPort : 8080\n"))
    result = client.exec("pod-1", ["curl", "-s", "localhost:8080"], container="container1")
    assert result.succeeded and result.stdout == "containerPort : 8080\n"
    assert fake_exec.calls == [("default", "pod-1", "container1", ("curl", "-s", "localhost:8080"))]
    assert not client.exec("pod-1", ["ls"], container="container1").succeeded


def test_exec_rc_comes_from_the_error_channel_status():
    assert kube_exec._exec_rc("") is None  # the stream ended without its final Status
    assert kube_exec._exec_rc('{"metadata":{},"status":"Success"}') == 0
    failure = ('{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command '
               '[sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}')
    assert kube_exec._exec_rc(failure) == 7
    with pytest.raises(ClusterError):
        kube_exec._exec_rc('{"metadata":{},"status":"Failure","message":"container not found (\\"nope\\")","reason":"InternalError"}')


@pytest.mark.parametrize(
    "live, want, expected",
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]}, True),
        ({"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 1}]}, False),  # an extra container is a difference
        ({"a": [{"x": 2}, {"x": 1}]}, {"a": [{"x": 1}, {"x": 2}]}, False),
        ({"m": "1Gi"}, {"m": "1Gi"}, True),
        ({"p": 8080}, {"p": "8080"}, True),
        ({}, {"a": None}, False),
        ({"f": False}, {"f": 0}, False),
    ],
)
def test_contains(live, want, expected):
    assert contains(live, want) is expected


def test_a_pod_whose_labels_changed_is_updated_in_place(client, fake_apiserver):
    client.apply(POD)
    _schedule(fake_apiserver, "pod-1")
    uid = fake_apiserver.get("Pod", "pod-1")["metadata"]["uid"]
    relabelled = {**POD, "metadata": {"name": "pod-1", "labels": {**POD["metadata"]["labels"], "type": "web"}}}
    result = client.apply(relabelled)
    assert result.action == "configured"
    live = fake_apiserver.get("Pod", "pod-1")
    assert live["metadata"]["uid"] == uid and live["metadata"]["labels"]["type"] == "web"
    assert not fake_apiserver.calls("DELETE")
    assert client.apply(relabelled).action == "unchanged"
