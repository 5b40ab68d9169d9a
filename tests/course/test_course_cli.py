"""labctl exercises / apply / reset through the CLI, against the fake 1.27 API server."""

from __future__ import annotations

import json

import pytest

from labctl.course import exercises as catalogue
from labctl.lab.lock import lab_lock
from labctl.lab.paths import LabPaths
from labctl.cli import main
from labctl.errors import ExitCode


@pytest.fixture
def run(capsys):
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def lab(fake_apiserver):
    return str(fake_apiserver.lab_dir)


def writes(fake) -> list:
    return [r for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def schedule_all(fake, node="k8s-node1"):
    """The scheduler's part: bind every Pod, so deleting one takes its grace period."""
    with fake.store.lock:
        for (plural, _, _), obj in fake.store.objects.items():
            if plural == "pods":
                obj["spec"]["nodeName"] = node


def test_exercises_lists_every_id_with_a_description(run):
    code, out, _ = run("exercises")
    assert code == 0
    for ex in catalogue.EXERCISES:
        assert any(line.startswith(ex.id + " ") and ex.description in line for line in out.splitlines())
    code, out, _ = run("exercises", "--json")
    data = json.loads(out)
    assert [e["id"] for e in data["exercises"]] == catalogue.ids()
    assert data["exercises"][0]["objects"] == [{"kind": "Pod", "name": "pod-1", "namespace": "default"}]


def test_apply_creates_then_changes_nothing(run, lab, fake_apiserver):
    code, out, _ = run("-C", lab, "apply", "pod-1")
    assert code == 0 and "pod-1: pod/pod-1 created" in out
    live = fake_apiserver.get("Pod", "pod-1")
    assert [c["image"] for c in live["spec"]["containers"]] == ["kubetm/p8000", "kubetm/p8080"]
    before = len(writes(fake_apiserver))
    code, out, _ = run("-C", lab, "apply", "pod-1")
    assert code == 0 and "pod/pod-1 unchanged" in out and "nothing to apply" in out
    assert len(writes(fake_apiserver)) == before
    assert fake_apiserver.get("Pod", "pod-1")["metadata"]["uid"] == live["metadata"]["uid"]


def test_apply_brings_what_an_exercise_needs_first(run, lab, fake_apiserver):
    code, out, _ = run("-C", lab, "apply", "svc-for-web", "--json")
    assert code == 0
    data = json.loads(out)
    assert [(o["kind"], o["name"], o["action"]) for o in data["objects"]] == [("Pod", "pod-2", "created"), ("Service", "svc-for-web", "created")]
    assert fake_apiserver.get("Service", "svc-for-web")["spec"]["selector"] == {"type": "web"}


def test_apply_all_creates_every_object_once(run, lab, fake_apiserver):
    code, out, _ = run("-C", lab, "apply", "--all", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["changed"] is True
    expected = sorted((o.kind, o.name) for e in catalogue.EXERCISES for o in e.objects)
    assert sorted((o["kind"], o["name"]) for o in data["objects"]) == expected
    assert sorted((o["kind"], o["metadata"]["name"]) for o in fake_apiserver.objects()) == expected
    lb = fake_apiserver.get("Service", "svc-loadbalancer")
    assert lb["spec"]["ports"][0]["nodePort"] == 30002
    code, out, _ = run("-C", lab, "apply", "--all", "--json")
    assert json.loads(out)["changed"] is False


def test_apply_replaces_a_pod_that_differs_from_the_manifest(run, lab, fake_apiserver):
    fake_apiserver.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-3", "namespace": "default"},
                        "spec": {"nodeName": "k8s-node2", "containers": [{"name": "container", "image": "kubetm/init"}]}})
    code, out, _ = run("-C", lab, "apply", "pod-3")
    assert code == 0 and "pod/pod-3 replaced" in out
    assert fake_apiserver.get("Pod", "pod-3")["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "k8s-node1"}
    assert [r.query.get("gracePeriodSeconds") for r in fake_apiserver.calls("DELETE")] == ["1"]


def test_reset_deletes_with_one_second_grace_and_waits_until_gone(run, lab, fake_apiserver):
    run("-C", lab, "apply", "svc-nodeport")
    schedule_all(fake_apiserver)
    fake_apiserver.grace_scale = 0.3  # the kubelet needs 0.3 s to stop a 1 s-grace Pod
    code, out, _ = run("-C", lab, "reset", "svc-nodeport")
    assert code == 0
    assert "svc-nodeport: service/svc-nodeport deleted" in out and "svc-nodeport: pod/pod-nodeport deleted" in out
    deletes = fake_apiserver.calls("DELETE")
    assert [r.path.rsplit("/", 1)[-1] for r in deletes] == ["svc-nodeport", "pod-nodeport"]
    assert {r.query["gracePeriodSeconds"] for r in deletes} == {"1"}
    # It polled while the Pod was terminating and returned only after the 404.
    pod_path = "/api/v1/namespaces/default/pods/pod-nodeport"
    polls = [r.status for r in fake_apiserver.requests[fake_apiserver.requests.index(deletes[-1]):] if r.method == "GET" and r.path == pod_path]
    assert polls[0] == 200 and polls[-1] == 404
    assert fake_apiserver.objects() == []
    code, out, _ = run("-C", lab, "reset", "svc-nodeport")
    assert code == 0 and "nothing to reset" in out and "pod/pod-nodeport absent" in out


def test_reset_also_finds_objects_by_their_exercise_label(run, lab, fake_apiserver):
    labels = {catalogue.PART_OF_LABEL: catalogue.PART_OF_VALUE, catalogue.EXERCISE_LABEL: "svc-clusterip"}
    fake_apiserver.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-clusterip-old", "namespace": "default", "labels": labels},
                        "spec": {"containers": [{"name": "container", "image": "kubetm/app"}]}})
    fake_apiserver.add({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "student-pod", "namespace": "default",
                        "labels": {**labels, catalogue.EXERCISE_LABEL: "pod-1"}},
                        "spec": {"containers": [{"name": "container", "image": "kubetm/app"}]}})
    code, out, _ = run("-C", lab, "reset", "svc-clusterip")
    assert code == 0 and "pod/pod-clusterip-old deleted" in out
    assert [o["metadata"]["name"] for o in fake_apiserver.objects()] == ["student-pod"]


def test_reset_gives_up_at_the_timeout_naming_what_is_left(run, lab, fake_apiserver):
    run("-C", lab, "apply", "pod-1")
    schedule_all(fake_apiserver)
    fake_apiserver.grace_scale = 1000
    code, _, err = run("-C", lab, "reset", "pod-1", "--timeout", "0.3")
    assert code == ExitCode.TIMEOUT
    assert "still terminating after 0.3s: Pod default/pod-1" in err
    assert "hint:" in err


def test_unknown_exercise_is_a_usage_error_listing_the_valid_ones(run, lab, fake_apiserver):
    for command in ("apply", "reset"):
        code, _, err = run("-C", lab, command, "pod-1", "pod-9")
        assert code == ExitCode.USAGE
        assert "unknown exercise 'pod-9'" in err
        assert "valid exercises: " + ", ".join(catalogue.ids()) in err
    assert fake_apiserver.requests == []


@pytest.mark.parametrize("argv", [("apply",), ("reset",), ("apply", "pod-1", "--all")])
def test_names_or_all_exactly_one(run, lab, argv):
    code, _, err = run("-C", lab, *argv)
    assert code == ExitCode.USAGE and "hint:" in err


def test_missing_kubeconfig_says_run_up(run, tmp_path):
    code, out, _ = run("-C", str(tmp_path), "apply", "pod-1", "--json")
    assert code == ExitCode.NOT_FOUND
    data = json.loads(out)
    assert data["error"] == "NotFound" and "kubeconfig" in data["message"] and "labctl up" in data["hint"]


def test_lab_down_is_a_cluster_error_with_the_status_hint(run, lab, fake_apiserver):
    fake_apiserver.stop()
    code, _, err = run("-C", lab, "reset", "pod-1")
    assert code == ExitCode.CLUSTER_FAILED
    assert "connection refused" in err and "labctl status" in err


def test_a_second_changing_command_is_refused_while_one_runs(run, lab, fake_apiserver):
    with lab_lock(LabPaths(fake_apiserver.lab_dir), "up"):
        code, _, err = run("-C", lab, "apply", "pod-1")
    assert code == ExitCode.LOCKED and "labctl up" in err
    assert writes(fake_apiserver) == []
