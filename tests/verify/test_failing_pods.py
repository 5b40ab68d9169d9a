"""The Pod exercises' checks fail with the right findings, evidence and hints."""

import pytest

from labctl.verify.model import Status
from tests.verify import objects as o
from tests.verify.conftest import run_one, text_of

pytestmark = pytest.mark.slow


def test_pod1_missing_says_how_to_create_it_without_waiting(lab, vctx):
    lab.drop("Pod", "pod-1")
    lab.publish()
    r = run_one(vctx, "pod-1", deadline=30)
    assert r.status is Status.FAIL and r.attempts == 1
    assert [str(m) for m in r.mismatches] == ["Pod default/pod-1: not found"]
    assert r.hints[0] == "create it: `labctl apply pod-1`"


def test_pod1_fails_when_a_port_does_not_answer_from_the_master(lab, vctx):
    lab.stop("pod-1:8080")
    lab.publish()
    r = run_one(vctx, "pod-1")
    assert r.status is Status.FAIL
    [m] = r.mismatches
    assert m.path == f"GET http://{lab.pod1_ip}:8080/ from k8s-master"
    assert m.got == "no answer (connection refused)"
    probes = next(ev for ev in r.evidence if ev.title == "probes")
    assert any(":8000/ from k8s-master: HTTP 200 'containerPort : 8000'" in line for line in probes.lines)
    assert any("curls it from k8s-master" in h for h in r.hints)


def test_pod1_fails_on_a_wrong_body(lab, vctx):
    lab.http["pod-1:8000"].body = "containerPort : 8080\n"  # the images were swapped
    lab.publish()
    r = run_one(vctx, "pod-1")
    assert [str(m) for m in r.mismatches] == [f"GET http://{lab.pod1_ip}:8000/ from k8s-master body: expected containerPort : 8000, got containerPort : 8080"]


def test_pod1_fails_on_a_container_not_ready(lab, vctx):
    lab.put(o.pod(o.manifest("pod-1"), node="k8s-node1", ip=lab.pod1_ip, containers={"container2": "waiting"}))
    lab.put(o.event("Pod", "pod-1", "Failed", 'Failed to pull image "kubetm/p8080": rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/kubetm/p8080:latest": dial tcp: lookup registry-1.docker.io: Temporary failure in name resolution', source="kubelet"))
    lab.publish()
    r = run_one(vctx, "pod-1")
    assert [str(m) for m in r.mismatches] == ["status.containerStatuses[name=container2].ready: expected True, got False"]
    text = text_of(r)
    assert "Failed: Failed to pull image" in text and "state=waiting ContainerCreating" in text
    assert "hint: the node could not pull the image: check the node's internet access and DNS" in text
    assert "hint: `kubectl describe pod pod-1` shows its node, its containers' states and its events" in text


def test_pod1_localhost_fails_when_container2_does_not_listen(lab, vctx):
    lab.stop("pod-1:8080")
    lab.publish()
    r = run_one(vctx, "pod-1-localhost")
    assert r.status is Status.FAIL
    assert str(r.mismatches[0]).startswith("exec curl -s -m 3 localhost:8080 in pod-1/container1 exit code: expected 0, got 7")
    assert lab.fake_exec.calls == [("default", "pod-1", "container1", ("curl", "-s", "-m", "3", "localhost:8080"))]
    assert any("share its network namespace" in h for h in r.hints)


def test_pod1_localhost_reports_a_failed_exec(lab, vctx):
    from labctl.errors import ClusterError

    def refuses(*_):
        raise ClusterError('exec failed: container not found ("container1")', hint="check the container name")

    lab.fake_exec.on("pod-1", "container1", ["curl"], refuses)
    lab.publish()
    r = run_one(vctx, "pod-1-localhost")
    assert r.status is Status.FAIL
    assert 'exec failed (exec failed: container not found ("container1"))' in str(r.mismatches[0])


def test_same_port_fails_when_nothing_crashes(lab, vctx):
    # e.g. the student "fixed" the exercise by giving container2 another port
    lab.put(o.pod(o.manifest("pod-same-port"), node="k8s-node2", ip="127.0.0.9"))
    lab.logs.clear()
    lab.publish()
    r = run_one(vctx, "pod-1-same-port")
    assert r.status is Status.FAIL
    text = text_of(r)
    # the negative assertion: the Pod must not be Ready
    assert "status.conditions[type=Ready].status: expected anything but True, got True" in text
    assert "status.containerStatuses: expected a container crashing with EADDRINUSE" in text
    assert any("1.27 the API accepts the Pod" in h for h in r.hints)


def test_same_port_fails_when_the_crash_is_not_eaddrinuse(lab, vctx):
    lab.logs[:] = [("pod-same-port", "panic: out of memory\n", "container2", True)]
    lab.publish()
    r = run_one(vctx, "pod-1-same-port")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == ["logs of container2: expected a line with EADDRINUSE / address already in use, got panic: out of memory"]
    assert any("logs of Pod default/pod-same-port container container2 (previous)" == ev.title for ev in r.evidence)


def test_same_port_passes_on_eaddrinuse_and_shows_it_on_failure_elsewhere(lab, vctx):
    lab.publish()
    assert run_one(vctx, "pod-1-same-port").status is Status.PASS


def test_pod2_selector_fails_on_wrong_labels(lab, vctx):
    m = o.manifest("pod-2")
    m["metadata"]["labels"]["type"] = "db"
    lab.put(o.pod(m, node="k8s-node2", ip=lab.pod2_ip))
    lab.put(o.endpoints("svc-for-web", [(lab.pod4_ip, "pod-4", "k8s-node1")]))
    lab.publish()
    r = run_one(vctx, "pod-2-selector")
    assert r.status is Status.FAIL
    assert [str(x) for x in r.mismatches] == [
        "Pod pod-2.metadata.labels.type: expected web, got db",
        "Pod pod-2 (selected by svc-for-web).metadata.labels.type: expected web, got db",
        "Endpoints svc-for-web.subsets[].addresses[].targetRef.name: expected a list containing pod-2, got [\"pod-4\"]",
    ]
    assert any(ev.title == "selector of Service svc-for-web" for ev in r.evidence)
    assert any("selector's key=value pairs" in h for h in r.hints)


def test_pod2_selector_waits_for_endpoints_then_passes(lab, vctx):
    """Endpoints lag the Pod: the check retries until they list it."""
    lab.put(o.endpoints("svc-for-web", []))
    lab.publish()
    path = "/api/v1/namespaces/default/endpoints/svc-for-web"
    lab.fake.route("GET", path, o.endpoints("svc-for-web", []), o.endpoints("svc-for-web", []),
                   o.endpoints("svc-for-web", [(lab.pod2_ip, "pod-2", "k8s-node2")]))
    from labctl.verify.catalogue import CHECKS
    from labctl.verify.runner import run_check

    check = next(c for c in CHECKS if c.id == "pod-2-selector")
    r = run_check(check, vctx, deadline=10, sleep=lambda s: None)
    assert r.status is Status.PASS and r.attempts == 3


def test_pod3_pending_shows_the_scheduling_event_and_the_hostname_hint(lab, vctx):
    lab.put(o.pod(o.manifest("pod-3"), phase="Pending"))
    lab.put(o.event("Pod", "pod-3", "FailedScheduling",
                    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling..",
                    count=7))
    lab.publish()
    r = run_one(vctx, "pod-3")
    assert r.status is Status.FAIL
    assert [str(m) for m in r.mismatches] == [
        "spec.nodeName: expected k8s-node1, got <missing>",
        "status.phase: expected Running, got Pending",
    ]
    events = next(ev for ev in r.evidence if ev.title == "events of Pod default/pod-3")
    assert events.lines == ("Warning FailedScheduling (x7): 0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling..",)
    assert r.hints[0].startswith("the worker's hostname must be exactly k8s-node1")


def test_pod3_on_the_wrong_node(lab, vctx):
    m = o.manifest("pod-3")
    m["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "k8s-node2"}
    lab.put(o.pod(m, node="k8s-node2", ip="127.0.0.9"))
    lab.publish()
    r = run_one(vctx, "pod-3")
    assert [str(x) for x in r.mismatches] == [
        "spec.nodeSelector.kubernetes.io/hostname: expected k8s-node1, got k8s-node2",
        "spec.nodeName: expected k8s-node1, got k8s-node2",
    ]


def test_pod3_and_pod4_skip_without_k8s_node1(lab, vctx):
    from dataclasses import replace

    from labctl.spec import default_nodes

    vctx.spec = replace(vctx.spec, nodes=default_nodes(0, vctx.spec.network))
    lab.publish()
    for check_id in ("pod-3", "pod-4"):
        r = run_one(vctx, check_id)
        assert r.status is Status.SKIP and r.message == "the lab has no node named k8s-node1"


def test_pod4_fails_on_other_resources_and_unschedulable_memory(lab, vctx):
    m = o.manifest("pod-4")
    m["spec"]["containers"][0]["resources"] = {"requests": {"memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    lab.put(o.pod(m, phase="Pending"))
    lab.put(o.event("Pod", "pod-4", "FailedScheduling", "0/3 nodes are available: 1 Insufficient memory, 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.."))
    lab.publish()
    r = run_one(vctx, "pod-4")
    assert r.status is Status.FAIL
    assert [str(x) for x in r.mismatches][:2] == [
        "spec.containers[name=container].resources.requests.memory: expected 1Gi, got 512Mi",
        "spec.nodeName: expected k8s-node1, got <missing>",
    ]
    assert any(h.startswith("no node has the free memory the Pod requests") for h in r.hints)


def test_pod4_accepts_another_spelling_of_1gi(lab, vctx):
    m = o.manifest("pod-4")
    m["spec"]["containers"][0]["resources"] = {"requests": {"memory": "1024Mi"}, "limits": {"memory": "1073741824"}}
    lab.put(o.pod(m, node="k8s-node1", ip=lab.pod4_ip))
    lab.publish()
    assert run_one(vctx, "pod-4").status is Status.PASS


@pytest.mark.parametrize("resources, mismatch", [
    ({"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}},
     "spec.containers[name=container].resources.limits.memory: expected 1Gi, got 2Gi"),
    ({"requests": {"memory": "1Gi"}},
     "spec.containers[name=container].resources.limits: expected an object, got <missing>"),
    ({"requests": {"memory": "1Gi"}, "limits": {"cpu": "500m"}},
     "spec.containers[name=container].resources.limits.memory: expected 1Gi, got <missing>"),
    ({"requests": {"memory": "512Mi"}, "limits": {"memory": "1Gi"}},
     "spec.containers[name=container].resources.requests.memory: expected 1Gi, got 512Mi"),
], ids=["only-limits-2Gi", "only-limits-missing", "only-limits-cpu", "only-requests-512Mi"])
def test_pod4_fails_on_limits_alone_and_on_requests_alone(lab, vctx, resources, mismatch):
    """The Pod runs on k8s-node1 and only one of requests/limits is wrong: a check that
    ignored limits (or requests) would pass here."""
    m = o.manifest("pod-4")
    m["spec"]["containers"][0]["resources"] = resources
    lab.put(o.pod(m, node="k8s-node1", ip=lab.pod4_ip))
    lab.publish()
    r = run_one(vctx, "pod-4")
    assert r.status is Status.FAIL
    assert [str(x) for x in r.mismatches] == [mismatch]


def test_pod1_localhost_8000_falls_back_to_node_when_the_image_has_no_curl(lab, vctx):
    """container2's image may lack curl: the check asks Node.js (the kubetm images'
    runtime) instead, and still requires the answer of container1."""
    from labctl.errors import ClusterError
    from labctl.kube.client import ExecResult

    def no_curl(*_):
        raise ClusterError('exec failed: OCI runtime exec failed: exec failed: unable to start container process: exec: "curl": '
                           'executable file not found in $PATH: unknown')

    asked = []

    def node(namespace, pod, container, argv):
        asked.append(argv)
        return ExecResult(tuple(argv), 0, "containerPort : 8000")

    lab.fake_exec.on("pod-1", "container2", ["curl"], no_curl)
    lab.fake_exec.on("pod-1", "container2", ["node"], node)
    lab.publish()
    r = run_one(vctx, "pod-1-localhost-8000")
    assert r.status is Status.PASS, text_of(r)
    assert "http://localhost:8000/" in asked[0][2]
    lab.fake_exec.on("pod-1", "container2", ["node"], ExecResult(("node",), 7, "", "connect ECONNREFUSED 127.0.0.1:8000"))
    r = run_one(vctx, "pod-1-localhost-8000")
    assert r.status is Status.FAIL
    assert str(r.mismatches[0]).startswith("exec node -e ") and "exit code: expected 0, got 7" in str(r.mismatches[0])
    [ev] = [e for e in r.evidence if e.title == "exec"]
    assert "executable file not found" in ev.lines[0] and "ECONNREFUSED" in ev.lines[1]
