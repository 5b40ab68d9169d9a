"""Evidence gathered when a check fails for good: what kubectl describe/logs would show.

For a Pod: its events, each container's state (with the last termination, which is
where a crash loop's exit code lives) and the last log lines, including the previous
instance's for a container that restarted. For any other object: its events. Known
event reasons and log lines also produce hints that name the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from labctl.verify.model import Evidence
from labctl.errors import LabError

LOG_TAIL = 15
HOSTNAME_HINT = (
    "the worker's hostname must be exactly k8s-node1: nodeSelector kubernetes.io/hostname "
    "matches the node's hostname label (see `kubectl get nodes --show-labels`)"
)
# (event reason, message pattern, hint)
EVENT_HINTS: tuple[tuple[str, str, str], ...] = (
    ("FailedScheduling", r"node affinity/selector|node\(s\) didn't match", HOSTNAME_HINT),
    (
        "FailedScheduling",
        r"Insufficient memory",
        "no node has the free memory the Pod requests: give the worker more memory in lab.yaml (nodes[].memory, 2048 recommended) and recreate it",
    ),
    (
        "FailedScheduling",
        r"untolerated taint \{node\.kubernetes\.io/(not-ready|unreachable)",
        "the node the Pod needs is not Ready (tainted not-ready/unreachable): check `kubectl get nodes` and `labctl verify lab-nodes-ready`",
    ),
    ("Failed", r"ErrImagePull|ImagePullBackOff|pull", "the node could not pull the image: check the node's internet access and DNS"),
    ("BackOff", r"Back-off restarting failed container", "a container keeps crashing: read its previous logs (`kubectl logs --previous`)"),
    (
        "AllocationFailed",
        r".",
        "MetalLB could not give the Service an address: check the IPAddressPool and L2Advertisement (`kubectl -n metallb-system get ipaddresspools,l2advertisements`)",
    ),
)
LOG_HINTS: tuple[tuple[str, str], ...] = (
    (r"EADDRINUSE|address already in use", "two containers of one Pod share its network: they cannot listen on the same port"),
    (
        r"plugin/loop: Loop",
        "CoreDNS forwards to itself: kubelet's resolvConf must be the real /run/systemd/resolve/resolv.conf, not one with 127.0.0.53",
    ),
)


def event_count(e: dict) -> int:
    """How often the event happened, in either shape a 1.27 API server serves: core/v1
    ``count``, or ``series.count`` (events.k8s.io/v1, which the 1.27 scheduler writes;
    read through core/v1 its ``count`` is absent) or ``deprecatedCount``."""
    series = e.get("series") or {}
    return int(series.get("count") or e.get("count") or e.get("deprecatedCount") or 1)


def event_message(e: dict) -> str:
    """core/v1 ``message`` or events.k8s.io/v1 ``note``."""
    return (e.get("message") or e.get("note") or "").strip()


def event_time(e: dict) -> str:
    """When it last happened: a series' last observation, else the newest timestamp either shape has."""
    return ((e.get("series") or {}).get("lastObservedTime") or e.get("lastTimestamp") or e.get("deprecatedLastTimestamp")
            or e.get("eventTime") or e.get("firstTimestamp") or e.get("deprecatedFirstTimestamp")
            or (e.get("metadata") or {}).get("creationTimestamp") or "")


def event_lines(events: Iterable[dict]) -> list[str]:
    lines = []
    for e in sorted(events, key=event_time):
        count = event_count(e)
        times = f" (x{count})" if count > 1 else ""
        lines.append(f"{e.get('type', '')} {e.get('reason', '')}{times}: {event_message(e)}")
    return lines


def event_hints(events: Iterable[dict]) -> list[str]:
    hints: list[str] = []
    for e in events:
        for reason, pattern, hint in EVENT_HINTS:
            if e.get("reason") == reason and re.search(pattern, event_message(e)) and hint not in hints:
                hints.append(hint)
    return hints


def log_hints(text: str) -> list[str]:
    return [hint for pattern, hint in LOG_HINTS if re.search(pattern, text)]


def describe_state(state: dict | None) -> str:
    if not state:
        return "-"
    for key in ("running", "waiting", "terminated"):
        if key in state and state[key] is not None:
            detail = state[key] or {}
            parts = [key]
            if detail.get("reason"):
                parts.append(detail["reason"])
            if "exitCode" in detail:
                parts.append(f"exit {detail['exitCode']}")
            if detail.get("message"):
                parts.append(detail["message"].strip().splitlines()[0][:120])
            return " ".join(parts)
    return "-"


def container_lines(pod: dict) -> list[str]:
    status = pod.get("status") or {}
    lines = [f"phase {status.get('phase', '?')}" + (f" ({status['reason']}: {status.get('message', '')})" if status.get("reason") else "")]
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            lines.append(f"condition {cond.get('type')}={cond.get('status')} {cond.get('reason') or ''} {cond.get('message') or ''}".rstrip())
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        lines.append(
            f"container {cs.get('name')}: ready={cs.get('ready')} restarts={cs.get('restartCount', 0)} "
            f"state={describe_state(cs.get('state'))} lastState={describe_state(cs.get('lastState'))}"
        )
    return lines


def restarted(cs: dict) -> bool:
    last = (cs.get("lastState") or {}).get("terminated")
    return bool(cs.get("restartCount")) or last is not None


def pod_evidence(cluster, name: str, namespace: str) -> tuple[list[Evidence], list[str]]:
    found: list[Evidence] = []
    hints: list[str] = []
    pod = _safe(lambda: cluster.find("Pod", name, namespace))
    ref = f"Pod {namespace}/{name}"
    events = _safe(lambda: cluster.events_for("Pod", name, namespace)) or []
    if events:
        found.append(Evidence(f"events of {ref}", tuple(event_lines(events))))
        hints += event_hints(events)
    if not pod:
        if not events:
            found.append(Evidence(ref, ("not found",)))
        return found, hints
    found.append(Evidence(f"status of {ref}", tuple(container_lines(pod))))
    if (pod.get("status") or {}).get("phase") == "Pending" and not (pod.get("status") or {}).get("containerStatuses"):
        return found, hints  # never started: no logs to read
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        cname = cs.get("name")
        runs = [False, True] if restarted(cs) else [False]
        for previous in runs:
            text = _safe(lambda: cluster.pod_logs(name, namespace, container=cname, previous=previous, tail_lines=LOG_TAIL))
            if text is None or not text.strip():
                continue
            label = f"logs of {ref} container {cname}" + (" (previous)" if previous else "")
            found.append(Evidence(label, tuple(text.strip().splitlines()[-LOG_TAIL:])))
            hints += [h for h in log_hints(text) if h not in hints]
    return found, hints


def node_lines(node: dict) -> list[str]:
    """A node's conditions, with kubelet's message for the ones that are not healthy."""
    lines = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        healthy = (cond.get("type") == "Ready") == (cond.get("status") == "True")
        line = f"{cond.get('type')}={cond.get('status')}"
        if not healthy:
            line += f" {cond.get('reason') or ''}: {cond.get('message') or ''}".rstrip(": ")
        lines.append(line)
    return lines


def object_evidence(cluster, kind: str, name: str, namespace: str | None) -> tuple[list[Evidence], list[str]]:
    if kind == "Pod":
        return pod_evidence(cluster, name, namespace or "default")
    found: list[Evidence] = []
    ref = f"{kind} {namespace + '/' if namespace else ''}{name}"
    if kind == "Node":
        node = _safe(lambda: cluster.find("Node", name, None))
        if node:
            found.append(Evidence(f"conditions of {ref}", tuple(node_lines(node))))
    events = _safe(lambda: cluster.events_for(kind, name, namespace or "default")) or []
    if events:
        found.append(Evidence(f"events of {ref}", tuple(event_lines(events))))
    return found, event_hints(events)


def gather(cluster, subjects: Iterable[tuple[str, str, str]]) -> tuple[list[Evidence], list[str]]:
    """Evidence and hints for each (kind, namespace, name) the failed attempt named."""
    evidence: list[Evidence] = []
    hints: list[str] = []
    for kind, namespace, name in subjects:
        found, more = object_evidence(cluster, kind, name, namespace)
        evidence += found
        hints += [h for h in more if h not in hints]
    return evidence, hints


def _safe(fn):
    # Evidence is best effort: a failure to read it must not hide the check's finding.
    try:
        return fn()
    except LabError:
        return None
