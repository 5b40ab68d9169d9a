"""The fake API server behaves like a 1.27 API server where labctl relies on it."""

from __future__ import annotations

import json

import pytest

from labctl.kube.client import KubeClient, ObjectRef
from labctl.errors import ClusterError, NotFound
from tests.helpers.fake_apiserver import K8S_FIXTURES, Reply, match_fields, match_labels

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-3"},
       "spec": {"nodeSelector": {"kubernetes.io/hostname": "k8s-node1"}, "containers": [{"name": "container", "image": "kubetm/init"}]}}


@pytest.fixture
def kube(fake_apiserver):
    with KubeClient(fake_apiserver.kubeconfig, poll=0.02) as c:
        yield c


def test_create_fills_server_defaults_like_1_27(kube):
    pod = kube.create(POD)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"].endswith("Z")
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["schedulerName"], spec["terminationGracePeriodSeconds"]) == (
        "Always", "ClusterFirst", "default-scheduler", 30)
    assert [t["key"] for t in spec["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert spec["volumes"][0]["name"].startswith("kube-api-access-")
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    svc = kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                       "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 9000}]}})
    port = svc["spec"]["ports"][0]
    assert port["targetPort"] == 9000 and 30000 <= port["nodePort"] <= 32767 and svc["spec"]["clusterIP"].startswith("10.96.")


def test_create_twice_is_409_already_exists(kube):
    kube.create(POD)
    with pytest.raises(ClusterError) as err:
        kube.create(POD)
    assert "409 AlreadyExists" in err.value.message and 'pods "pod-3" already exists' in err.value.message


def test_pod_spec_update_is_refused_with_the_real_message(kube):
    kube.create(POD)
    live = kube.get("Pod", "pod-3")
    live["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "k8s-node2"}
    with pytest.raises(ClusterError) as err:
        kube.replace(live)
    assert "422" in err.value.message and "pod updates may not change fields other than" in err.value.message


def test_stale_resource_version_is_a_conflict(kube):
    svc = kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    kube.replace({**svc, "metadata": {**svc["metadata"], "labels": {"x": "1"}}})
    with pytest.raises(ClusterError) as err:
        kube.replace(svc)  # still carries the old resourceVersion
    assert "409 Conflict" in err.value.message and "the object has been modified" in err.value.message


def test_unscheduled_pod_goes_at_once_scheduled_pod_after_its_grace(kube, fake_apiserver):
    kube.create(POD)
    kube.delete(ObjectRef("Pod", "pod-3"), grace_period_seconds=30)
    assert fake_apiserver.get("Pod", "pod-3") is None
    fake_apiserver.add({**POD, "spec": {**POD["spec"], "nodeName": "k8s-node1"}})
    fake_apiserver.grace_scale = 0.01
    kube.delete(ObjectRef("Pod", "pod-3"), grace_period_seconds=30)
    terminating = fake_apiserver.get("Pod", "pod-3")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30 and terminating["metadata"]["deletionTimestamp"]
    kube.wait_gone([ObjectRef("Pod", "pod-3")], deadline=5)
    with pytest.raises(NotFound):
        kube.get("Pod", "pod-3")


def test_routed_replies_come_in_order_and_the_last_repeats(kube, fake_apiserver):
    path = "/api/v1/namespaces/default/pods/pod-3"
    pending = {**POD, "status": {"phase": "Pending"}}
    running = {**POD, "status": {"phase": "Running"}}
    fake_apiserver.route("GET", path, pending, pending, running)
    assert [kube.get("Pod", "pod-3")["status"]["phase"] for _ in range(4)] == ["Pending", "Pending", "Running", "Running"]


def test_routed_error_status(kube, fake_apiserver):
    status = json.loads((K8S_FIXTURES / "status" / "422-pod-update.json").read_text())
    fake_apiserver.serve({("POST", "/api/v1/namespaces/default/pods"): Reply(422, status)})
    with pytest.raises(ClusterError) as err:
        kube.create(POD)
    assert "422 Invalid" in err.value.message and "check the manifest" in err.value.hint


def test_watch_from_a_too_old_resource_version_is_410(kube, fake_apiserver):
    for i in range(3):
        fake_apiserver.add({**POD, "metadata": {"name": f"p{i}", "namespace": "default"}})
    with pytest.raises(ClusterError) as err:
        list(kube.watch("Pod", resource_version="1", timeout_seconds=1))
    assert "410" in err.value.message


def test_watch_from_a_resource_version_sees_only_later_changes(kube, fake_apiserver):
    fake_apiserver.add({**POD, "metadata": {"name": "before", "namespace": "default"}})
    rv = fake_apiserver.get("Pod", "before")["metadata"]["resourceVersion"]
    fake_apiserver.add({**POD, "metadata": {"name": "after", "namespace": "default"}})
    names = [e.object["metadata"]["name"] for e in kube.watch("Pod", resource_version=rv, timeout_seconds=1)]
    assert names == ["after"]


def test_unknown_resource_is_404_and_unknown_token_401(fake_apiserver, kube):
    fake_apiserver.load(K8S_FIXTURES / "passing")
    import urllib.request

    req = urllib.request.Request(fake_apiserver.url + "/api/v1/namespaces/default/widgets", headers={"Authorization": f"Bearer {fake_apiserver.token}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 404 and json.loads(err.value.read())["kind"] == "Status"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(fake_apiserver.url + "/api/v1/nodes", timeout=5)
    assert err.value.code == 401
    assert fake_apiserver.requests[-1].status == 401


def test_version_endpoint_says_1_27(fake_apiserver, kube):
    from kubernetes import client

    info = client.VersionApi(kube.api_client).get_code()
    assert (info.major, info.minor) == ("1", "27") and info.git_version.startswith("v1.27.")


@pytest.mark.parametrize(
    "selector, expected",
    [("type=web", True), ("type==web,lo=dev", True), ("type!=web", False), ("lo", True), ("!lo", False), ("type=db", False), ("", True)],
)
def test_label_selectors(selector, expected):
    assert match_labels({"metadata": {"labels": {"type": "web", "lo": "dev"}}}, selector) is expected


def test_field_selectors():
    ev = {"involvedObject": {"kind": "Pod", "name": "pod-3"}, "metadata": {"namespace": "default"}}
    assert match_fields(ev, "involvedObject.kind=Pod,involvedObject.name=pod-3")
    assert not match_fields(ev, "involvedObject.name=pod-4")
    assert match_fields(ev, "involvedObject.name!=pod-4")


def test_what_the_fake_stores_is_valid_1_27(kube, fake_apiserver):
    import kubernetes_validate

    from labctl.course import exercises as catalogue

    for ex in catalogue.EXERCISES:
        for obj in catalogue.load_objects(ex):
            kube.apply(obj)
    stored = fake_apiserver.objects()
    assert len(stored) == sum(len(e.objects) for e in catalogue.EXERCISES)
    for obj in stored:
        assert kubernetes_validate.validate(obj, "1.27", strict=True) == "1.27"
