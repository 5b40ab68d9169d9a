"""The engine's planning, ordering and resume logic, in process, against fake nodes
behind real sshd servers (no Vagrant here: sessions are opened directly)."""

from __future__ import annotations

import pytest

from labctl.api import events as ev
from labctl.api.bootstrap.engine import Engine, StepFailed
from labctl.api.bootstrap.model import PHASES
from labctl.api.bootstrap.steps import STEPS
from labctl.api.paths import LabPaths
from labctl.api.render import render_lab
from labctl.api.spec import default_spec
from labctl.connectors.ssh import SSHSession

pytestmark = pytest.mark.slow


@pytest.fixture
def engine_for(fake_lab):
    opened = []

    def make(workers=1, **kw):
        lab = fake_lab(workers=workers)
        spec = default_spec(workers)
        paths = LabPaths(lab.dir)
        render_lab(spec, paths)
        sessions = {}
        for name, node in lab.nodes.items():
            s = SSHSession(node.sshd.target(name), known_hosts=paths.known_hosts, log_path=paths.node_log(name))
            s.connect(10)
            sessions[name] = s
            opened.append(s)
        seen: list[ev.Event] = []
        engine = Engine(spec, paths, sessions, ev.EventBus([seen.append]), **kw)
        return lab, engine, seen

    yield make
    for s in opened:
        s.close()


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
    # every step event of a phase lies between that phase's start and end
    for phase in phases:
        start = next(i for i, e in enumerate(seen) if e.kind == ev.PHASE and e.phase == phase and e.status == ev.RUNNING)
        end = next(i for i, e in enumerate(seen) if e.kind == ev.PHASE and e.phase == phase and e.status == ev.DONE)
        steps = [i for i, e in enumerate(seen) if e.kind == ev.STEP and e.phase == phase]
        assert steps and all(start < i < end for i in steps)
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


def test_one_node_failing_lets_the_others_finish_their_phase(engine_for):
    lab, engine, seen = engine_for(workers=2)
    lab.nodes["k8s-node1"].fail("swap", output="labctl: swapoff failed")
    with pytest.raises(StepFailed) as exc:
        engine.run()
    assert exc.value.node == "k8s-node1" and exc.value.step == "swap"
    prepare = [s.id for s in STEPS if s.phase == "prepare"]
    for name in ("k8s-master", "k8s-node2"):
        assert [e["step"] for e in lab.nodes[name].step_runs()] == prepare
    assert not any(e["step"] == "kubeadm-init" for e in lab.master.step_runs())
