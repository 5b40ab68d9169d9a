"""Evidence reads events in both shapes a 1.27 API server serves: core/v1 (count,
message) and the scheduler's events.k8s.io/v1 (series.count, note), also as core/v1
serves those (no count, a series)."""

from __future__ import annotations

import copy
import json

import kubernetes_validate
import pytest

from labctl.verify.evidence import HOSTNAME_HINT, event_count, event_hints, event_lines
from tests.helpers.fake_apiserver import K8S_FIXTURES

V1 = K8S_FIXTURES / "events-v1"


def items(path):
    return json.loads(path.read_text())["items"]


def pod3(events, key):
    return [e for e in events if e[key]["name"] == "pod-3"]


def test_scheduler_events_read_through_core_v1_have_a_series_and_no_count():
    [ev] = pod3(items(K8S_FIXTURES / "failing" / "events.json"), "involvedObject")
    assert "count" not in ev and ev["firstTimestamp"] is None and ev["lastTimestamp"] is None and ev["source"] == {}
    assert (ev["reportingComponent"], ev["action"], ev["series"]["count"]) == ("default-scheduler", "Scheduling", 9)
    assert event_count(ev) == 9
    assert event_lines([ev]) == [
        "Warning FailedScheduling (x9): 0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."]
    assert event_hints([ev]) == [HOSTNAME_HINT]


def test_the_same_events_read_through_events_k8s_io_v1():
    core = {e["metadata"]["name"]: e for e in items(K8S_FIXTURES / "failing" / "events.json")}
    v1 = items(V1 / "failing-scheduler.json")
    assert v1 and all(e["reportingController"] == "default-scheduler" for e in v1)
    for ev in v1:
        twin = core[ev["metadata"]["name"]]
        assert (ev["note"], ev["regarding"], ev.get("series"), ev["eventTime"]) == (
            twin["message"], twin["involvedObject"], twin.get("series"), twin["eventTime"])
        assert event_lines([ev]) == event_lines([twin]) and event_hints([ev]) == event_hints([twin])
    [ev] = pod3(v1, "regarding")
    assert event_lines([ev])[0].startswith("Warning FailedScheduling (x9): 0/3 nodes are available")


def test_kubelet_events_keep_their_count():
    backoff = [e for e in items(K8S_FIXTURES / "passing" / "events.json") if e["reason"] == "BackOff"]
    assert backoff and all(e["count"] == 27 and e["source"]["component"] == "kubelet" for e in backoff)
    assert event_lines(backoff)[0].startswith("Warning BackOff (x27): Back-off restarting failed container container2")


def test_a_series_wins_over_a_stale_count():
    ev = {"type": "Warning", "reason": "FailedScheduling", "message": "m", "count": 1, "series": {"count": 4, "lastObservedTime": "2024-07-20T06:13:58.771904Z"}}
    assert event_count(ev) == 4 and event_count({"deprecatedCount": 3}) == 3 and event_count({}) == 1


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda e: e.__setitem__("message", e["note"]), id="core-field-in-events.k8s.io"),
    pytest.param(lambda e: e["series"].__setitem__("count", "9"), id="series-count-as-string"),
])
def test_the_events_k8s_io_schema_check_can_fail(mutate):
    [ev] = pod3(items(V1 / "failing-scheduler.json"), "regarding")
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", **copy.deepcopy(ev)}
    assert kubernetes_validate.validate(ev, "1.27", strict=True) == "1.27"
    mutate(ev)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ev, "1.27", strict=True)
