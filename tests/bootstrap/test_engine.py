"""The engine's planning, ordering and resume logic, in process, against fake nodes
behind real sshd servers (no Vagrant here: sessions are opened directly)."""

from __future__ import annotations

import pytest

from labctl.lab import events as ev
from labctl.bootstrap.engine import Engine, StepFailed
from labctl.bootstrap.model import PHASES
from labctl.bootstrap.steps import STEPS

pytestmark = pytest.mark.slow


@pytest.fixture
def engine_for(fake_lab, engine_over_sshd):
    def make(workers=1, **kw):
        lab = fake_lab(workers=workers)
        seen: list[ev.Event] = []
        return lab, engine_over_sshd(lab, ev.EventBus([seen.append]), **kw), seen

    return make


def test_fresh_nodes_plan_every_step_of_their_role_in_order(engine_for):
    lab, engine, seen = engine_for(workers=1)
    plans = engine.plan()
    assert [p.step for p in plans["k8s-master"]] == [s.id for s in STEPS if "master" in s.roles]
    assert [p.step for p in plans["k8s-node1"]] == [s.id for s in STEPS if "worker" in s.roles]
    assert not any(p.skipped for ps in plans.values() for p in ps)
    assert {(e.node, e.step) for e in seen if e.kind == ev.PLAN and e.status == ev.PENDING} == {
        (n, p.step) for n, ps in plans.items() for p in ps}
    # planning only reads: facts.sh went up and ran, no step script did
    assert all(not node.step_runs() for node in lab.nodes.values())


def test_done_facts_become_skips_with_reasons(engine_for):
    lab, engine, seen = engine_for(workers=1)
    lab.nodes["k8s-node1"].mark_done("swap", "kernel")
    plans = engine.plan()
    node1 = {p.step: p for p in plans["k8s-node1"]}
    assert node1["swap"].skip_reason == "swap is off and absent from /etc/fstab"
    assert node1["kernel"].skipped and not node1["containerd"].skipped
    assert not any(p.skipped for p in plans["k8s-master"] if p.step in ("swap", "kernel"))


def test_execution_follows_the_phases_and_runs_each_step_once(engine_for):
    lab, engine, seen = engine_for(workers=2)
    result = engine.run()
    phases = [e.phase for e in seen if e.kind == ev.PHASE and e.status == ev.RUNNING and e.phase != "plan"]
    assert phases == list(PHASES)
    # per node, steps start in catalogue order, each after the previous one finished
    order = [s.id for s in STEPS]
    for name in lab.nodes:
        started = [e.step for e in seen if e.kind == ev.STEP and e.node == name and e.status == ev.RUNNING]
        assert started == sorted(started, key=order.index)
    # a worker's join starts after the master's CNI is done
    idx = {(e.node, e.step, e.status): i for i, e in enumerate(seen) if e.kind == ev.STEP}
    for w in ("k8s-node1", "k8s-node2"):
        assert idx[("k8s-master", "calico", ev.DONE)] < idx[(w, "kubeadm-join", ev.RUNNING)]
        assert idx[(w, "kubeadm-join", ev.DONE)] < idx[("k8s-master", "metallb", ev.RUNNING)]
    ran = sorted(result.ran)
    assert len(ran) == len(set(ran))
    assert ("k8s-node2", "kubeadm-join") in ran and ("k8s-master", "calico") in ran
    assert result.kubeconfig_changed

    again = Engine(engine.spec, engine.paths, engine.sessions, ev.EventBus()).run()
    assert again.ran == [] and not again.kubeconfig_changed


def test_a_script_that_succeeds_without_doing_its_job_fails_its_postcondition(engine_for):
    lab, engine, seen = engine_for(workers=0)
    lab.master.update(noop={"containerd": True})
    with pytest.raises(StepFailed) as exc:
        engine.run()
    err = exc.value
    assert err.node == "k8s-master" and err.step == "containerd"
    assert "finished but its check still says not done" in err.message
    failed = [e for e in seen if e.kind == ev.STEP and e.status == ev.FAILED]
    assert [(e.node, e.step) for e in failed] == [("k8s-master", "containerd")]
    # nothing after it ran
    assert [e["step"] for e in lab.master.step_runs()] == ["swap", "kernel", "containerd"]


def test_a_step_completed_after_planning_is_skipped_not_rerun(engine_for):
    lab, engine, seen = engine_for(workers=0)
    plans = engine.plan()
    lab.master.mark_done("kernel")  # e.g. someone fixed it by hand meanwhile
    engine.execute(plans)
    assert "kernel" not in [e["step"] for e in lab.master.step_runs()]
    skipped = [e for e in seen if e.kind == ev.STEP and e.step == "kernel"]
    assert skipped[-1].status == ev.SKIPPED


def test_a_failing_worker_does_not_stop_the_others(engine_for):
    lab, engine, seen = engine_for(workers=2)
    lab.nodes["k8s-node1"].fail("swap", output="labctl: swapoff failed")
    with pytest.raises(StepFailed) as exc:
        engine.run()
    assert exc.value.node == "k8s-node1" and exc.value.step == "swap"
    prepare = [s.id for s in STEPS if s.phase == "prepare"]
    # the master and the other worker went as far as they could; nothing after joins ran
    assert [e["step"] for e in lab.master.step_runs()] == prepare + ["kubeadm-init", "calico"]
    assert [e["step"] for e in lab.nodes["k8s-node2"].step_runs()] == prepare + ["kubeadm-join"]
    assert [e["step"] for e in lab.nodes["k8s-node1"].step_runs()] == ["swap"]


def test_a_failing_master_stops_workers_before_they_join(engine_for):
    lab, engine, seen = engine_for(workers=1)
    lab.master.fail("kubeadm-init", output="labctl: init broke")
    with pytest.raises(StepFailed) as exc:
        engine.run()
    assert (exc.value.node, exc.value.step) == ("k8s-master", "kubeadm-init")
    assert "kubeadm-join" not in [e["step"] for e in lab.nodes["k8s-node1"].step_runs()]
