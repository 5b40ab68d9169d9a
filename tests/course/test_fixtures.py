"""The Kubernetes 1.27 API fixtures, hand-built by tests/fixtures/k8s/_make.py (no 1.27
cluster runs here; nothing in them was recorded from one): schema-true for 1.27
(strict), consistent with each other and with the shipped manifests, and readable by
the real client."""

from __future__ import annotations

import copy
import ipaddress
import json
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
from referencing import Registry, Resource

from labctl.course import exercises as catalogue
from labctl.kube.client import KubeClient, contains
from tests.helpers.fake_apiserver import K8S_FIXTURES, Stream

JSON_FILES = sorted(p for p in K8S_FIXTURES.rglob("*.json") if p.parent.name != "status")
STATUS_FILES = sorted((K8S_FIXTURES / "status").glob("*.json"))
WATCH_FILES = sorted((K8S_FIXTURES / "watch").glob("*.ndjson"))
NO_SCHEMA_GROUPS = ("metallb.io/",)  # CRDs: kubernetes-validate has no schema for them


def rel(p: Path) -> str:
    return str(p.relative_to(K8S_FIXTURES))


def objects_in(doc: dict) -> list[dict]:
    """A fixture's objects; list items get back the kind/apiVersion the list implies."""
    if doc["kind"].endswith("List"):
        return [{"kind": doc["kind"][: -len("List")], "apiVersion": doc["apiVersion"], **item} for item in doc["items"]]
    return [doc]


def validate(obj: dict) -> None:
    if obj["apiVersion"].startswith(NO_SCHEMA_GROUPS):
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(obj, "1.27", strict=True)
        return
    assert kubernetes_validate.validate(obj, "1.27", strict=True) == "1.27"


@cache
def _meta_schema(name: str) -> tuple[dict, Registry]:
    """kubernetes-validate's 1.27 strict schema for a meta/v1 type it cannot select by
    kind (Status, WatchEvent), with its definitions, as its own validate() loads them."""
    import importlib.resources as res

    base = res.files("kubernetes_validate") / "kubernetes-json-schema" / "v1.27.0-local-strict"
    schema = json.loads((base / name).read_text())
    defs = json.loads((base / "_definitions.json").read_text())
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return schema, registry


def validate_meta(obj: dict, name: str) -> None:
    schema, registry = _meta_schema(name)
    jsonschema.validators.Draft202012Validator(schema, registry=registry).validate(obj)


def load_lab(name: str) -> dict[tuple[str, str], dict]:
    out = {}
    for f in sorted((K8S_FIXTURES / name).glob("*.json")):
        for obj in objects_in(json.loads(f.read_text())):
            out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


def internal_ip(node: dict) -> str:
    return next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")


# -- schema --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", JSON_FILES, ids=rel)
def test_every_fixture_object_is_valid_1_27_strict(path):
    doc = json.loads(path.read_text())
    if doc["kind"].endswith("List"):
        # The list as the API server returns it; the strict schema checks every item
        # through its $ref (an unknown field in any item fails it).
        validate(doc)
        assert all("kind" not in i and "apiVersion" not in i for i in doc["items"])
    else:
        validate(doc)


@pytest.mark.parametrize("path", STATUS_FILES, ids=rel)
def test_status_objects_are_valid_meta_v1_status(path):
    status = json.loads(path.read_text())
    validate_meta(status, "status-meta-v1.json")
    assert status["kind"] == "Status" and status["status"] == "Failure"
    assert path.name.startswith(str(status["code"]))


@pytest.mark.parametrize("path", WATCH_FILES, ids=rel)
def test_watch_streams_are_valid_events_of_valid_objects(path):
    lines = path.read_text().splitlines()
    assert lines and all(lines)
    for line in lines:
        event = json.loads(line)
        validate_meta(event, "watchevent-meta-v1.json")
        assert event["type"] in ("ADDED", "MODIFIED", "DELETED", "ERROR", "BOOKMARK")
        if event["type"] == "ERROR":
            validate_meta(event["object"], "status-meta-v1.json")
        else:
            validate(event["object"])


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda p: p["status"].__setitem__("hostIPs", [{"ip": p["status"]["hostIP"]}]), id="1.28-field-hostIPs"),
        pytest.param(lambda p: p["spec"].__setitem__("nodeSelecter", {"a": "b"}), id="typo"),
        pytest.param(lambda p: p["status"]["containerStatuses"][0].__setitem__("restartCount", "0"), id="wrong-type"),
    ],
)
def test_the_schema_check_can_fail(mutate):
    pods = json.loads((K8S_FIXTURES / "passing" / "pods.json").read_text())
    pod = copy.deepcopy(load_lab("passing")[("Pod", "pod-1")])
    mutate(pod)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, "1.27", strict=True)
    index = [i["metadata"]["name"] for i in pods["items"]].index("pod-1")
    pods["items"][index] = {k: v for k, v in pod.items() if k not in ("kind", "apiVersion")}
    with pytest.raises(kubernetes_validate.ValidationError):  # also when it hides inside a list
        validate(pods)


def test_the_status_check_can_fail():
    status = json.loads((K8S_FIXTURES / "status" / "404-pod.json").read_text())
    status["reasn"] = status.pop("reason")
    with pytest.raises(jsonschema.ValidationError):
        validate_meta(status, "status-meta-v1.json")


# -- consistency ----------------------------------------------------------------------------


@pytest.mark.parametrize("lab", ["passing", "failing"])
def test_every_exercise_object_is_in_the_lab_as_its_manifest_says(lab):
    objects = load_lab(lab)
    for ex in catalogue.EXERCISES:
        for manifest in catalogue.load_objects(ex):
            live = objects[(manifest["kind"], manifest["metadata"]["name"])]
            assert contains(live, manifest), f"{lab}: {manifest['kind']}/{manifest['metadata']['name']} differs from manifests/{ex.file}"


def test_passing_lab_is_healthy_and_on_the_course_network():
    objects = load_lab("passing")
    nodes = {n: o for (k, n), o in objects.items() if k == "Node"}
    assert sorted(nodes) == ["k8s-master", "k8s-node1", "k8s-node2"]
    host_only = ipaddress.ip_network("192.168.56.0/24")
    for node in nodes.values():
        assert ipaddress.ip_address(internal_ip(node)) in host_only
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.27.")
    pod_cidr = ipaddress.ip_network("20.96.0.0/12")
    for (kind, name), pod in objects.items():
        if kind != "Pod":
            continue
        assert pod["status"]["phase"] == "Running", name
        assert pod["status"]["hostIP"] == internal_ip(nodes[pod["spec"]["nodeName"]])
        if not pod["spec"].get("hostNetwork"):
            assert ipaddress.ip_address(pod["status"]["podIP"]) in pod_cidr
        for cs in pod["status"]["containerStatuses"]:
            assert cs["containerID"].startswith("containerd://")
            assert "@sha256:" in cs["imageID"]
    assert objects[("Pod", "pod-3")]["spec"]["nodeName"] == "k8s-node1"
    lb = objects[("Service", "svc-loadbalancer")]["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert ipaddress.ip_address(lb) in ipaddress.ip_network("192.168.56.0/24")


def test_same_port_pod_crash_loops_with_eaddrinuse_in_both_labs():
    for lab in ("passing", "failing"):
        pod = load_lab(lab)[("Pod", "pod-same-port")]
        c1, c2 = pod["status"]["containerStatuses"]
        assert c1["ready"] and not c2["ready"]
        assert c2["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert c2["lastState"]["terminated"]["exitCode"] == 1 and c2["lastState"]["terminated"]["reason"] == "Error"
        log = (K8S_FIXTURES / lab / "logs" / "pod-same-port.container2.previous.log").read_text()
        assert "EADDRINUSE" in log and ":::8000" in log


@pytest.mark.parametrize("lab", ["passing", "failing"])
def test_endpoints_list_exactly_the_ready_pods_each_service_selects(lab):
    objects = load_lab(lab)
    for (kind, name), svc in objects.items():
        if kind != "Service" or "selector" not in svc["spec"]:
            continue
        selected = {n for (k, n), p in objects.items() if k == "Pod" and p["metadata"]["namespace"] == "default"
                    and all(p["metadata"].get("labels", {}).get(a) == b for a, b in svc["spec"]["selector"].items())}
        ready = {n for n in selected if objects[("Pod", n)]["status"].get("phase") == "Running"
                 and all(c["ready"] for c in objects[("Pod", n)]["status"]["containerStatuses"])}
        ep = objects[("Endpoints", name)]
        listed = {a["targetRef"]["name"] for s in ep.get("subsets", []) for a in s.get("addresses", [])}
        assert listed == ready, f"{lab}: Endpoints {name}"
    if lab == "passing":
        web = objects[("Endpoints", "svc-for-web")]["subsets"][0]["addresses"]
        assert {a["targetRef"]["name"] for a in web} == {"pod-2", "pod-4"}


def test_failing_lab_has_the_nat_address_and_unschedulable_pods():
    objects = load_lab("failing")
    workers = [o for (k, _), o in objects.items() if k == "Node" and "node-role.kubernetes.io/control-plane" not in o["metadata"]["labels"]]
    assert [internal_ip(n) for n in workers] == ["10.0.2.15", "10.0.2.15"]
    pod3 = objects[("Pod", "pod-3")]
    assert pod3["status"]["phase"] == "Pending" and "nodeName" not in pod3["spec"]
    [cond] = pod3["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
    events = [e for (k, _), e in objects.items() if k == "Event" and e["involvedObject"]["name"] == "pod-3"]
    assert [e["reason"] for e in events] == ["FailedScheduling"]
    assert events[0]["message"].startswith(
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match Pod's node affinity/selector.")
    assert objects[("Service", "svc-loadbalancer")]["status"] == {"loadBalancer": {}}
    assert "subsets" not in objects[("Endpoints", "svc-nodeport-local")]
    calico = [o for (k, n), o in objects.items() if k == "Pod" and n.startswith("calico-node-")]
    assert sorted(c["spec"]["nodeName"] for c in calico if not c["status"]["containerStatuses"][0]["ready"]) == ["node2"]


# -- the real client reads them ---------------------------------------------------------------


def test_the_real_client_reads_a_loaded_lab(fake_apiserver):
    fake_apiserver.load(K8S_FIXTURES / "passing")
    with KubeClient(fake_apiserver.kubeconfig) as kube:
        assert [n["metadata"]["name"] for n in kube.nodes()] == ["k8s-master", "k8s-node1", "k8s-node2"]
        assert len(kube.list("Pod", "kube-system", label_selector="k8s-app=calico-node")) == 3
        crash = kube.get("Pod", "pod-same-port")
        assert crash["status"]["containerStatuses"][1]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert "EADDRINUSE" in kube.pod_logs("pod-same-port", container="container2", previous=True, tail_lines=30)
        assert [e["reason"] for e in kube.events_for("Pod", "pod-same-port")][-1] == "BackOff"
        assert kube.get("IPAddressPool", "labctl-pool", "metallb-system")["spec"]["addresses"] == ["192.168.56.200-192.168.56.220"]
        # The generated 1.27 models accept every fixture (watch() deserializes through them).
        for kind, model in (("Pod", "V1Pod"), ("Node", "V1Node"), ("Service", "V1Service"), ("Endpoints", "V1Endpoints"), ("Event", "CoreV1Event")):
            for item in kube.list(kind, all_namespaces=True):
                response = type("Response", (), {"data": json.dumps(item)})()
                assert type(kube.api_client.deserialize(response, model)).__name__ == model


def test_apply_all_on_the_passing_fixture_lab_changes_nothing(fake_apiserver, capsys):
    """The manifests and the hand-built objects agree, server defaults and all."""
    from labctl.cli import main

    fake_apiserver.load(K8S_FIXTURES / "passing")
    main(["-C", str(fake_apiserver.lab_dir), "apply", "--all", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is False
    assert {o["action"] for o in result["objects"]} == {"unchanged"}


def test_fixture_watch_streams_through_the_client(fake_apiserver):
    text = (K8S_FIXTURES / "watch" / "pod-3-pending-to-running.ndjson").read_text()
    fake_apiserver.route("GET", "/api/v1/namespaces/default/pods", Stream(text))
    with KubeClient(fake_apiserver.kubeconfig) as kube:
        events = list(kube.watch("Pod", field_selector="metadata.name=pod-3", timeout_seconds=1))
    assert [(e.type, e.object["status"]["phase"], e.object["spec"].get("nodeName")) for e in events] == [
        ("ADDED", "Pending", None), ("MODIFIED", "Pending", "k8s-node1"), ("MODIFIED", "Pending", "k8s-node1"), ("MODIFIED", "Running", "k8s-node1")]


def test_expired_watch_is_a_cluster_error(fake_apiserver):
    from labctl.errors import ClusterError

    fake_apiserver.route("GET", "/api/v1/namespaces/default/pods", Stream((K8S_FIXTURES / "watch" / "expired.ndjson").read_text()))
    with KubeClient(fake_apiserver.kubeconfig) as kube, pytest.raises(ClusterError) as err:
        list(kube.watch("Pod", resource_version="4100", timeout_seconds=1))
    assert "410" in err.value.message and "too old resource version" in err.value.message


def test_fixture_404_status_becomes_not_found(fake_apiserver):
    from labctl.errors import NotFound
    from tests.helpers.fake_apiserver import Reply

    status = json.loads((K8S_FIXTURES / "status" / "404-service.json").read_text())
    fake_apiserver.route("GET", "/api/v1/namespaces/default/services/svc-for-web", Reply(404, status))
    with KubeClient(fake_apiserver.kubeconfig) as kube, pytest.raises(NotFound) as err:
        kube.get("Service", "svc-for-web")
    assert err.value.message == "Service default/svc-for-web not found"



def test_a_variant_loaded_over_a_lab_replaces_its_namesake(fake_apiserver):
    fake_apiserver.load(K8S_FIXTURES / "passing")
    fake_apiserver.load(K8S_FIXTURES / "variants" / "node-k8s-node2-notready.json")
    fake_apiserver.load(K8S_FIXTURES / "variants" / "endpoints-svc-clusterip-not-ready.json")
    with KubeClient(fake_apiserver.kubeconfig) as kube:
        nodes = {n["metadata"]["name"]: n for n in kube.nodes()}
        assert sorted(nodes) == ["k8s-master", "k8s-node1", "k8s-node2"]
        ready = {c["type"]: c for c in nodes["k8s-node2"]["status"]["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
        [subset] = kube.endpoints("svc-clusterip")["subsets"]
        assert "addresses" not in subset and len(subset["notReadyAddresses"]) == 2
