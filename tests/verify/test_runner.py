"""The runner: retries until the deadline, final failures, errors, skips, concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from labctl.verify.context import RecordingRunner, VerifyContext
from labctl.verify.model import Attempt, Check, Status
from labctl.verify.runner import run_check, run_checks
from labctl.errors import ClusterError
from tests.verify.conftest import loopback_spec


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class NoCluster:
    """Evidence reads go here; every read says "not found"."""

    def __init__(self):
        self.events_asked: list[tuple] = []

    def find(self, kind, name, namespace="default"):
        return None

    def events_for(self, kind, name, namespace="default"):
        self.events_asked.append((kind, name, namespace))
        return [{"type": "Warning", "reason": "FailedScheduling", "count": 3,
                 "message": "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector."}]


def ctx(cluster=None):
    return VerifyContext(spec=loopback_spec(), cluster=cluster or NoCluster(), nodes=RecordingRunner())


def sequence(*outcomes):
    """An attempt function that returns/raises the given outcomes in order (last repeats)."""
    calls = []

    def attempt(_ctx):
        outcome = outcomes[min(len(calls), len(outcomes) - 1)]
        calls.append(outcome)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    attempt.calls = calls
    return attempt


def failing(path="spec.nodeName", hint=None, final=False):
    att = Attempt(final=final)
    att.fail(path, "k8s-node1", "k8s-node2")
    att.about("Pod", "pod-3")
    if hint:
        att.hint(hint)
    return att


def test_retries_until_pass():
    clock = Clock()
    fn = sequence(failing(), failing(), Attempt())
    check = Check("x", "t", fn, deadline=10, interval=2)
    result = run_check(check, ctx(), clock=clock, sleep=clock.sleep)
    assert result.status is Status.PASS and result.attempts == 3
    assert clock.sleeps == [2, 2]
    assert result.mismatches == [] and result.evidence == []


def test_fails_at_deadline_with_last_findings_evidence_and_hints():
    clock = Clock()
    cluster = NoCluster()
    check = Check("pod-3", "t", sequence(failing(hint="specific")), deadline=5, interval=2, hints=("static",))
    result = run_check(check, ctx(cluster), clock=clock, sleep=clock.sleep)
    assert result.status is Status.FAIL
    assert result.attempts == 4 and sum(clock.sleeps) == 5  # 0, 2, 4, 5
    assert [str(m) for m in result.mismatches] == ["spec.nodeName: expected k8s-node1, got k8s-node2"]
    assert cluster.events_asked == [("Pod", "pod-3", "default")]
    assert any("FailedScheduling (x3)" in line for ev in result.evidence for line in ev.lines)
    # the attempt's own hint first, then the one the evidence implies, then the check's
    assert result.hints[0] == "specific"
    assert "hostname must be exactly k8s-node1" in result.hints[1]
    assert result.hints[-1] == "static"


def test_final_attempt_stops_retrying():
    clock = Clock()
    fn = sequence(failing(final=True))
    result = run_check(Check("x", "t", fn, deadline=60), ctx(), clock=clock, sleep=clock.sleep)
    assert result.status is Status.FAIL and result.attempts == 1 and clock.sleeps == []


def test_lab_error_is_retried_then_reported_as_error():
    clock = Clock()
    err = ClusterError("list pods: cannot reach the Kubernetes API (connection refused)", hint="is the lab up? `labctl status`")
    result = run_check(Check("x", "t", sequence(err), deadline=3, interval=1, hints=("h",)), ctx(), clock=clock, sleep=clock.sleep)
    assert result.status is Status.ERROR and result.attempts == 4
    assert result.message.startswith("list pods: cannot reach")
    assert result.hints == ["is the lab up? `labctl status`", "h"]


def test_error_then_pass_is_a_pass():
    clock = Clock()
    result = run_check(Check("x", "t", sequence(ClusterError("down"), Attempt()), deadline=3, interval=1), ctx(), clock=clock, sleep=clock.sleep)
    assert result.status is Status.PASS and result.attempts == 2


def test_a_bug_is_an_error_naming_it_or_raises_in_debug():
    clock = Clock()
    check = Check("x", "t", sequence(KeyError("status")), deadline=0)
    result = run_check(check, ctx(), clock=clock, sleep=clock.sleep)
    assert result.status is Status.ERROR and "internal error: KeyError" in result.message
    with pytest.raises(KeyError):
        run_check(check, ctx(), clock=clock, sleep=clock.sleep, reraise_bugs=True)


def test_skip_reason():
    check = Check("pod-3", "t", sequence(Attempt()), skip_reason=lambda spec: "no k8s-node1")
    result = run_check(check, ctx())
    assert result.status is Status.SKIP and result.message == "no k8s-node1" and result.attempts == 0


def test_deadline_cap():
    clock = Clock()
    result = run_check(Check("x", "t", sequence(failing()), deadline=60, interval=1), ctx(), deadline=2, clock=clock, sleep=clock.sleep)
    assert result.status is Status.FAIL and sum(clock.sleeps) == 2


def test_checks_run_concurrently_and_keep_catalogue_order():
    barrier = threading.Barrier(3, timeout=5)

    def waits(name):
        def attempt(_ctx):
            barrier.wait()  # only returns when all three attempts run at the same time
            return Attempt()
        return attempt

    checks = [Check(n, n, waits(n)) for n in ("c", "a", "b")]
    seen = []
    report = run_checks(checks, ctx(), on_result=lambda r: seen.append(r.id))
    assert [r.id for r in report.results] == ["c", "a", "b"]
    assert report.ok and sorted(seen) == ["a", "b", "c"]


def test_sequential_run_runs_one_at_a_time():
    running, peak = [0], [0]
    lock = threading.Lock()

    def one(_ctx):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return Attempt()

    checks = [Check(str(i), "t", one) for i in range(3)]
    report = run_checks(checks, ctx(), concurrent=False)
    assert report.ok and peak[0] == 1
    assert report.summary() == {"pass": 3, "fail": 0, "error": 0, "skip": 0, "total": 3}


def test_session_runner_does_not_redial_an_unreachable_node():
    from labctl.verify.context import SessionNodeRunner
    from labctl.errors import CommandFailed

    dialled = []

    def open_session(node):
        dialled.append(node)
        raise CommandFailed("ssh", None, where=node, what="connect to k8s-node2")

    runner = SessionNodeRunner(open_session)
    for _ in range(3):
        with pytest.raises(CommandFailed):
            runner.run("k8s-node2", "true", 1.0)
    assert dialled == ["k8s-node2"]


def test_every_check_has_a_title_a_deadline_and_a_hint():
    from labctl.verify.catalogue import CHECKS

    for c in CHECKS:
        assert c.title and c.deadline > 0 and c.interval > 0 and c.hints, c.id
