"""The course's Pod exercises: pod-1 (two containers), the same-port Pod, pod-2's
labels, pod-3's nodeSelector and pod-4's resources."""

from __future__ import annotations

from labctl.verify.assertions import Quantity, get_path, must_not_match
from labctl.verify.checks.common import expect, fetch, in_parallel, ready_containers
from labctl.verify.evidence import restarted
from labctl.verify.model import Attempt, Evidence
from labctl.verify.probes import answer_evidence, exec_in_container, expect_exec, expect_http, http_from_node

COURSE_NODE = "k8s-node1"
POD1 = "pod-1"
POD1_CONTAINERS = {"container1": 8000, "container2": 8080}
SAME_PORT_POD = "pod-same-port"
SAME_PORT_EXERCISE = "pod-same-port"
POD2 = "pod-2"
POD2_LABELS = {"type": "web", "lo": "dev"}
WEB_SERVICE = "svc-for-web"
POD3 = "pod-3"
POD4 = "pod-4"
POD4_MEMORY = "1Gi"
EADDRINUSE = ("EADDRINUSE", "address already in use")


def body_of(port: int) -> str:
    """What the kubetm/p8000 and p8080 images answer on every path."""
    return f"containerPort : {port}"


def pod1(ctx) -> Attempt:
    att = Attempt()
    pod = fetch(ctx, att, "Pod", POD1, exercise=POD1)
    if pod is None or not expect(att, ready_containers(POD1_CONTAINERS), pod):
        return att
    ip = get_path(pod, "status.podIP", None)
    if not ip:
        att.fail("status.podIP", "an address", None)
        return att
    master = ctx.spec.master.name
    ports = list(POD1_CONTAINERS.values())
    answers = in_parallel(lambda port: http_from_node(ctx.nodes, master, f"http://{ip}:{port}/", timeout=ctx.http_timeout), ports)
    for port, answer in zip(ports, answers):
        att.extend(expect_http(answer, body=body_of(port)))
    att.evidence.append(answer_evidence(answers))
    if not att.passed:
        att.hint(f"a Pod IP answers only inside the cluster: this check curls it from {master}; if it does not answer, the CNI (Calico) is not routing Pod traffic (`labctl verify lab-cni`)")
    return att


def _localhost(ctx, client: str, server: str) -> Attempt:
    """From ``client``'s shell, localhost:<server's port> answers with server's body:
    the containers of one Pod share its network namespace."""
    att = Attempt()
    pod = fetch(ctx, att, "Pod", POD1, exercise=POD1)
    if pod is None or not expect(att, ready_containers([client, server]), pod):
        return att
    port = POD1_CONTAINERS[server]
    answers = [exec_in_container(ctx.cluster, POD1, client, ["curl", "-s", "-m", "3", f"localhost:{port}"], namespace=ctx.namespace)]
    if _no_such_command(answers[0]):
        # Not every image has curl; the kubetm images are Node.js servers, so node is there.
        answers.append(exec_in_container(ctx.cluster, POD1, client, ["node", "-e", NODE_GET.format(port=port)], namespace=ctx.namespace))
    answer = answers[-1]
    att.extend(expect_exec(answer, stdout=body_of(port)))
    att.evidence.append(Evidence("exec", tuple(f"{a.where()}: {a.describe()}" for a in answers)))
    if not att.passed:
        att.hint(f"the containers of one Pod share its network namespace: {server} listens on {port}, so localhost:{port} from {client} must answer")
    return att


# GET http://localhost:<port>/ with Node.js alone, body to stdout, exit 7 (curl's "could not connect") on error.
NODE_GET = ("require('http').get('http://localhost:{port}/',r=>r.pipe(process.stdout))"
            ".on('error',e=>{{console.error(e.message);process.exit(7)}}).setTimeout(3000,function(){{this.destroy()}})")


def _no_such_command(answer) -> bool:
    # The runtime's words when the command is missing from the image (not a missing container).
    text = f"{answer.error} {answer.stderr}".lower()
    return answer.rc == 127 or "executable file not found" in text or "no such file or directory" in text


def pod1_localhost(ctx) -> Attempt:
    return _localhost(ctx, "container1", "container2")


def pod1_localhost_8000(ctx) -> Attempt:
    return _localhost(ctx, "container2", "container1")


def same_port(ctx) -> Attempt:
    """Passes when the Pod is seen failing: on 1.27 the API accepts it, and the second
    container crash-loops with EADDRINUSE (the course's "Pod creation error")."""
    att = Attempt()
    pod = fetch(ctx, att, "Pod", SAME_PORT_POD, exercise=SAME_PORT_EXERCISE)
    if pod is None:
        return att
    att.extend(must_not_match({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, pod))
    statuses = get_path(pod, "status.containerStatuses", []) or []
    crashing = [cs for cs in statuses if restarted(cs) or get_path(cs, "state.waiting.reason", "") in ("CrashLoopBackOff", "Error")
                or get_path(cs, "state.terminated.exitCode", 0)]
    if not crashing:
        summary = {cs.get("name"): f"ready={cs.get('ready')} restarts={cs.get('restartCount', 0)}" for cs in statuses}
        att.fail("status.containerStatuses", "a container crashing with EADDRINUSE (restarts > 0 or CrashLoopBackOff)", summary or None)
        return att
    logs = []
    for cs in crashing:
        for previous in (True, False):
            text = _logs(ctx, SAME_PORT_POD, cs.get("name"), previous)
            if text:
                logs.append(text)
    joined = "\n".join(logs)
    if not any(word.lower() in joined.lower() for word in EADDRINUSE):
        names = ", ".join(cs.get("name", "?") for cs in crashing)
        att.fail(f"logs of {names}", "a line with EADDRINUSE / address already in use", (joined.strip().splitlines() or ["<no logs>"])[-1])
    return att


def _logs(ctx, pod: str, container: str, previous: bool) -> str:
    from labctl.errors import LabError

    try:
        return ctx.cluster.pod_logs(pod, ctx.namespace, container=container, previous=previous, tail_lines=50)
    except LabError:
        return ""  # no previous instance yet: the next attempt looks again


def pod2_selector(ctx) -> Attempt:
    att = Attempt()
    pod = fetch(ctx, att, "Pod", POD2, exercise=POD2)
    svc = fetch(ctx, att, "Service", WEB_SERVICE, exercise=WEB_SERVICE)
    if pod is None or svc is None:
        return att
    expect(att, {"metadata": {"labels": POD2_LABELS}}, pod, f"Pod {POD2}")
    selector = get_path(svc, "spec.selector", {}) or {}
    if not selector:
        att.fail(f"Service {WEB_SERVICE}.spec.selector", {"type": "web"}, selector)
        return att
    expect(att, {"metadata": {"labels": selector}}, pod, f"Pod {POD2} (selected by {WEB_SERVICE})")
    expect(att, ready_containers([]), pod, f"Pod {POD2}")
    endpoints = ctx.cluster.find("Endpoints", WEB_SERVICE, ctx.namespace)
    addresses = [a for s in (endpoints or {}).get("subsets") or [] for a in s.get("addresses") or []]
    names = [get_path(a, "targetRef.name", None) for a in addresses]
    if POD2 not in names:
        att.fail(f"Endpoints {WEB_SERVICE}.subsets[].addresses[].targetRef.name", f"a list containing {POD2}", names)
        att.about("Service", WEB_SERVICE, ctx.namespace)
        att.evidence.append(Evidence(f"selector of Service {WEB_SERVICE}", (f"{selector} vs labels of {POD2}: {get_path(pod, 'metadata.labels', {})}",)))
    return att


def pod3(ctx) -> Attempt:
    att = Attempt()
    pod = fetch(ctx, att, "Pod", POD3, exercise=POD3)
    if pod is None:
        return att
    expect(att, {"spec": {"nodeSelector": {"kubernetes.io/hostname": COURSE_NODE}}}, pod)
    expect(att, {"spec": {"nodeName": COURSE_NODE}, "status": {"phase": "Running"}}, pod)
    return att


def pod4(ctx) -> Attempt:
    att = Attempt()
    pod = fetch(ctx, att, "Pod", POD4, exercise=POD4)
    if pod is None:
        return att
    memory = {"memory": Quantity(POD4_MEMORY)}
    expect(att, {"spec": {"containers": [{"name": "container", "resources": {"requests": memory, "limits": memory}}]}}, pod)
    expect(att, {"spec": {"nodeName": COURSE_NODE}, "status": {"phase": "Running"}}, pod)
    return att


def needs_course_node(spec) -> str | None:
    if any(n.name == COURSE_NODE for n in spec.nodes):
        return None
    return f"the lab has no node named {COURSE_NODE}"


