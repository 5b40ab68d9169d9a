"""The shipped manifests: schema-valid for 1.27 (strict) and faithful to the course."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml

from labctl.course import exercises as catalogue
from labctl.resources import manifests_dir

MANIFESTS = sorted(manifests_dir().glob("*.yaml"))
OBJECTS = [(f.name, i, doc) for f in MANIFESTS for i, doc in enumerate(yaml.safe_load_all(f.read_text())) if doc]


def by_name(kind: str, name: str) -> dict:
    found = [d for _, _, d in OBJECTS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} appears {len(found)} times in manifests/"
    return found[0]


def containers(pod: dict) -> list[tuple[str, str, list[int]]]:
    return [(c["name"], c["image"], [p["containerPort"] for p in c.get("ports", [])]) for c in pod["spec"]["containers"]]


def test_one_manifest_per_exercise():
    assert sorted(f.name for f in MANIFESTS) == sorted(e.file for e in catalogue.EXERCISES)


@pytest.mark.parametrize("file, index, obj", OBJECTS, ids=[f"{f}#{i}" for f, i, _ in OBJECTS])
def test_every_object_is_valid_kubernetes_1_27_strict(file, index, obj):
    assert kubernetes_validate.validate(obj, "1.27", strict=True) == "1.27"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda pod: pod["spec"].__setitem__("nodeSelecter", pod["spec"].pop("nodeSelector")), id="nodeSelecter"),
        pytest.param(lambda pod: pod["spec"]["containers"][0]["ports"][0].__setitem__("containerport", 8080), id="containerport"),
        pytest.param(lambda pod: pod["spec"]["containers"][0]["resources"]["limits"].__setitem__("memory", [1]), id="memory-list"),
    ],
)
def test_the_validation_catches_typos(mutate):
    """The check above can fail: a misspelt field is refused in strict mode."""
    pod = copy.deepcopy(by_name("Pod", "pod-4"))
    mutate(pod)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, "1.27", strict=True)


def test_catalogue_objects_are_exactly_the_files_objects():
    for ex in catalogue.EXERCISES:
        in_file = [(d["kind"], d["metadata"]["name"]) for d in catalogue.load_objects(ex)]
        assert sorted(in_file) == sorted((o.kind, o.name) for o in ex.objects), ex.id


@pytest.mark.parametrize("file, index, obj", OBJECTS, ids=[f"{f}#{i}" for f, i, _ in OBJECTS])
def test_every_object_is_labelled_with_its_exercise(file, index, obj):
    labels = obj["metadata"]["labels"]
    assert labels[catalogue.PART_OF_LABEL] == catalogue.PART_OF_VALUE
    assert labels[catalogue.EXERCISE_LABEL] == file.removesuffix(".yaml")
    assert "namespace" not in obj["metadata"]  # the lab's default namespace


def test_pod_1_two_containers_two_ports():
    assert containers(by_name("Pod", "pod-1")) == [("container1", "kubetm/p8000", [8000]), ("container2", "kubetm/p8080", [8080])]


def test_same_port_pod_runs_two_servers_on_8000():
    # Two kubetm/p8000: both bind :8000, so the second really dies with EADDRINUSE.
    assert containers(by_name("Pod", "pod-same-port")) == [("container1", "kubetm/p8000", [8000]), ("container2", "kubetm/p8000", [8000])]


def test_pod_2_labels_and_image():
    pod = by_name("Pod", "pod-2")
    assert {k: pod["metadata"]["labels"][k] for k in ("type", "lo")} == {"type": "web", "lo": "dev"}
    assert containers(pod) == [("container", "kubetm/init", [])]


def test_svc_for_web_selects_type_web_on_8080_and_matches_pod_2():
    svc = by_name("Service", "svc-for-web")
    assert svc["spec"] == {"selector": {"type": "web"}, "ports": [{"port": 8080}]}
    labels = by_name("Pod", "pod-2")["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert catalogue.get("svc-for-web").needs == ("pod-2",)


def test_pod_3_node_selector():
    pod = by_name("Pod", "pod-3")
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "k8s-node1"}
    assert containers(pod) == [("container", "kubetm/init", [])]


def test_pod_4_as_the_course_writes_it():
    pod = by_name("Pod", "pod-4")
    assert {k: pod["metadata"]["labels"][k] for k in ("type", "lo")} == {"type": "web", "lo": "dev"}
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "k8s-node1"}
    assert containers(pod) == [("container", "kubetm/init", [8080])]
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}


@pytest.mark.parametrize(
    "service, svc_type, node_port, policy, pinned",
    [
        ("svc-clusterip", "ClusterIP", None, None, False),
        ("svc-nodeport", "NodePort", 30000, None, True),
        ("svc-nodeport-local", "NodePort", 30001, "Local", True),
        ("svc-loadbalancer", "LoadBalancer", 30002, None, False),
    ],
)
def test_service_exercises_serve_their_own_kubetm_app_pods(service, svc_type, node_port, policy, pinned):
    svc = by_name("Service", service)
    assert svc["spec"]["type"] == svc_type
    assert svc["spec"].get("externalTrafficPolicy") == policy
    [port] = svc["spec"]["ports"]
    assert (port["port"], port["targetPort"], port.get("nodePort")) == (9000, 8080, node_port)
    pods = [o for o in catalogue.get(service).objects if o.kind == "Pod"]
    assert pods
    for ref in pods:
        pod = by_name("Pod", ref.name)
        labels = pod["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), ref.name
        assert containers(pod) == [("container", "kubetm/app", [8080])]
        assert (pod["spec"].get("nodeSelector") == {"kubernetes.io/hostname": "k8s-node1"}) is pinned
    # No other shipped Pod is selected by accident.
    others = [d for _, _, d in OBJECTS if d["kind"] == "Pod" and d["metadata"]["name"] not in {p.name for p in pods}]
    assert not [d for d in others if all(d["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())]


def test_node_ports_are_distinct_and_in_range():
    ports = [p["nodePort"] for _, _, d in OBJECTS if d["kind"] == "Service" for p in d["spec"]["ports"] if "nodePort" in p]
    assert len(ports) == len(set(ports)) and all(30000 <= p <= 32767 for p in ports)


def test_unknown_exercise_lists_the_valid_ones():
    from labctl.errors import ExitCode, UsageError

    with pytest.raises(UsageError) as err:
        catalogue.choose(["pod-9"], all_=False)
    assert err.value.exit_code == ExitCode.USAGE
    assert "pod-9" in err.value.message and "pod-1, pod-same-port" in err.value.hint


def test_needs_come_first_and_once():
    chosen = catalogue.with_needs([catalogue.get("svc-for-web"), catalogue.get("pod-2")])
    assert [e.id for e in chosen] == ["pod-2", "svc-for-web"]


def _docker_ref(image: str) -> str:
    """containerd's spelling of an image name (kubetm/p8000 -> docker.io/kubetm/p8000:latest)."""
    name = image if "/" in image.split(":")[0] and "." in image.split("/")[0] else f"docker.io/{image}"
    return name if ":" in name.rsplit("/", 1)[1] else f"{name}:latest"


def test_every_container_runs_an_image_the_lab_preloads_without_asking_the_registry():
    """labctl up puts the set's course images in every node's containerd; IfNotPresent
    lets an offline class (or one past Docker Hub's rate limit) start the Pods."""
    from labctl.bootstrap.artifacts import load_for, shared_images
    from labctl.bootstrap.steps import SHARED_IMAGES
    from labctl.spec import default_spec

    preloaded = set(shared_images(load_for(default_spec()), SHARED_IMAGES))
    seen = [c for _, _, d in OBJECTS if d["kind"] == "Pod" for c in d["spec"]["containers"]]
    assert seen
    for c in seen:
        assert c.get("imagePullPolicy") == "IfNotPresent", c
        assert _docker_ref(c["image"]) in preloaded, c["image"]


def test_docker_ref_spelling():
    assert _docker_ref("kubetm/app") == "docker.io/kubetm/app:latest"
    assert _docker_ref("quay.io/calico/node:v3.26.4") == "quay.io/calico/node:v3.26.4"
