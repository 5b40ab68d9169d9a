"""The engine runs whatever graph the steps declare: fast, in memory, no SSH.

A made-up catalogue (not labctl's) proves that adding a step is data: the engine has
no branch on a step's id or phase, and waits only where ``after`` says so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from labctl.bootstrap import steps as cat
from labctl.bootstrap.context import RunContext
from labctl.bootstrap.engine import Engine, StepFailed
from labctl.bootstrap.graph import validate
from labctl.bootstrap.model import PHASES, After, Step
from labctl.lab import events as ev
from labctl.lab.paths import LabPaths
from labctl.spec import default_spec
from tests.bootstrap.memory import MemoryNode

BOTH, MASTER, WORKER = cat.BOTH, cat.MASTER, cat.WORKER
ROOT = Path(__file__).resolve().parents[2]


def _flag(key: str):
    return lambda f: f"{key} is set" if f[key] == "yes" else None


def catalogue(calls: list) -> tuple[list[Step], dict]:
    def export(ctx: RunContext, node: str, step: Step) -> bool:
        calls.append((node, step.id, sorted(ctx.facts)))
        return True

    steps = [
        Step("tidy", "tidy up", "prepare", BOTH, "tidy", _flag("tidy"), facts=("tidy",)),
        Step("tools", "tools", "prepare", BOTH, "tools", _flag("tools"), facts=("tools",)),
        Step("boot", "control plane", "init", MASTER, "boot", _flag("boot"), facts=("boot",), after=(After("prepare"),)),
        Step("enrol", "enrol", "join", WORKER, "enrol", _flag("enrol"), facts=("enrol",),
             after=(After("prepare"), After("boot", "master"))),
        Step("summary", "summary", "kubeconfig", MASTER, None, work="summary", records="kubeconfig_changed",
             after=(After("join", "worker"),)),
    ]
    return steps, {"summary": export}


@pytest.fixture
def lab(tmp_path):
    def make(workers: int = 2, parallel: int | None = None, **per_node):
        spec = default_spec(workers)
        paths = LabPaths(tmp_path / "lab")
        calls: list = []
        steps, work = catalogue(calls)
        clock: list = []
        nodes = {}
        for n in spec.nodes:
            folder = paths.node_scripts(n.name)
            folder.mkdir(parents=True, exist_ok=True)
            for s in steps:
                if s.script and s.applies_to(n.role):
                    (folder / s.script_name).write_text(f"# {s.id}\n")
            (folder / cat.FACTS_SCRIPT).write_text("# facts\n")
            nodes[n.name] = MemoryNode(n.name, {k: "no" for k in ("tidy", "tools", "boot", "enrol")},
                                       effects={s.id: {s.id: "yes"} for s in steps}, clock=clock)
        for name, kw in per_node.items():
            for k, v in kw.items():
                setattr(nodes[name.replace("_", "-")], k, v)
        seen: list[ev.Event] = []
        engine = Engine(spec, paths, {n: node.session() for n, node in nodes.items()}, ev.EventBus([seen.append]), steps=steps, work=work, parallel=parallel)
        return engine, nodes, seen, calls, clock

    return make


def _at(clock, node, step, edge):
    return next(t for t, n, s, e in clock if (n, s, e) == (node, step, edge))


def test_a_made_up_catalogue_runs_in_its_declared_order(lab):
    engine, nodes, seen, calls, clock = lab(workers=2)
    result = engine.run()
    assert nodes["k8s-master"].steps_run == ["tidy", "tools", "boot"]
    for w in ("k8s-node1", "k8s-node2"):
        assert nodes[w].steps_run == ["tidy", "tools", "enrol"]
        assert _at(clock, "k8s-master", "boot", "end") <= _at(clock, w, "enrol", "start")
    # engine work got the context (facts of every node), not the engine
    assert calls == [("k8s-master", "summary", ["k8s-master", "k8s-node1", "k8s-node2"])]
    assert result.kubeconfig_changed and ("k8s-master", "summary") not in result.ran
    assert sorted(result.ran) == sorted([(n, s) for n, node in nodes.items() for s in node.steps_run])
    running = [e.phase for e in seen if e.kind == ev.PHASE and e.status == ev.RUNNING and e.phase != "plan"]
    assert running == ["prepare", "init", "join", "kubeconfig"]
    done = [e.phase for e in seen if e.kind == ev.PHASE and e.status == ev.DONE and e.phase != "plan"]
    assert sorted(done) == sorted(running)


def test_parallel_one_runs_one_step_at_a_time_and_waiting_holds_no_slot(lab):
    engine, nodes, seen, calls, clock = lab(workers=2, parallel=1, k8s_node1={"delays": {"tools": 0.05}})
    engine.run()  # the summary waits for the workers' joins: a waiting master must not hold the only slot
    spans = sorted((t, e) for t, _, _, e in clock)
    edges = [e for _, e in spans]
    assert edges == ["start", "end"] * (len(edges) // 2)  # never two steps at once
    assert calls and nodes["k8s-node2"].steps_run == ["tidy", "tools", "enrol"]


def test_steps_done_already_are_skipped_and_a_second_run_changes_nothing(lab):
    engine, nodes, seen, calls, clock = lab(workers=1)
    nodes["k8s-node1"].facts["tidy"] = "yes"
    engine.run()
    assert nodes["k8s-node1"].steps_run == ["tools", "enrol"]
    again = Engine(engine.spec, engine.paths, {n: node.session() for n, node in nodes.items()}, ev.EventBus(), steps=list(engine.steps.values()),
                   work={"summary": lambda ctx, node, step: False}).run()
    assert again.ran == [] and not again.kubeconfig_changed


def test_a_slow_worker_delays_only_what_waits_for_it(lab):
    engine, nodes, seen, calls, clock = lab(workers=2, k8s_node2={"delays": {"tools": 0.5}})
    engine.run()
    # the master and the fast worker went on; the summary waited for every join
    assert _at(clock, "k8s-master", "boot", "end") < _at(clock, "k8s-node2", "tools", "end")
    assert _at(clock, "k8s-node1", "enrol", "end") < _at(clock, "k8s-node2", "tools", "end")
    assert len(calls) == 1


def test_a_failure_blocks_exactly_what_depends_on_it(lab):
    engine, nodes, seen, calls, clock = lab(workers=2, k8s_node1={"failures": {"tools": (1, "labctl: tools broke")}})
    with pytest.raises(StepFailed) as exc:
        engine.run()
    assert (exc.value.node, exc.value.step) == ("k8s-node1", "tools")
    assert nodes["k8s-master"].steps_run == ["tidy", "tools", "boot"]
    assert nodes["k8s-node2"].steps_run == ["tidy", "tools", "enrol"]
    assert nodes["k8s-node1"].steps_run == ["tidy", "tools"]
    assert calls == []  # the summary waits for every worker's join: never started
    failed = [(e.node, e.step) for e in seen if e.kind == ev.STEP and e.status == ev.FAILED]
    assert failed == [("k8s-node1", "tools")]


def test_a_failing_master_stops_workers_before_what_needs_it(lab):
    engine, nodes, seen, calls, clock = lab(workers=1, k8s_master={"failures": {"boot": (1, "labctl: boot broke")}})
    with pytest.raises(StepFailed):
        engine.run()
    assert nodes["k8s-node1"].steps_run == ["tidy", "tools"]


def test_a_script_that_does_not_do_its_job_fails_its_postcondition(lab):
    engine, nodes, seen, calls, clock = lab(workers=0, k8s_master={"effects": {}})
    with pytest.raises(StepFailed, match="finished but its check still says not done"):
        engine.run()
    assert nodes["k8s-master"].steps_run == ["tidy"]


@pytest.mark.parametrize("bad,message", [
    ([Step("a", "a", "prepare", BOTH, "a", after=(After("b"),)), Step("b", "b", "prepare", BOTH, "b")],
     "no step or phase listed before it"),
    ([Step("a", "a", "warmup", BOTH, "a")], "unknown phase"),
    ([Step("a", "a", "prepare", BOTH, "a", after=(After("prepare", "admins"),))], "unknown nodes"),
    ([Step("a", "a", "prepare", BOTH, "a", before=("teleport",))], "unknown engine work"),
    ([Step("a", "a", "prepare", BOTH, None)], "exactly one of script and work"),
    ([Step("a", "a", "prepare", BOTH, "a"), Step("a", "b", "init", BOTH, "b")], "duplicate"),
])
def test_a_catalogue_the_engine_cannot_run_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        validate(bad, work={"summary": None})


def test_labctl_catalogue_is_valid_and_the_engine_names_no_step_or_phase():
    from labctl.bootstrap.work import WORK

    validate(cat.STEPS, work=WORK)
    for module in ("engine.py", "graph.py", "uploads.py", "context.py"):
        source = (ROOT / "labctl" / "bootstrap" / module).read_text()
        literals = {n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not literals & ({s.id for s in cat.STEPS} | set(PHASES) - {"plan"}), module


def test_bootstrap_and_render_have_no_import_cycle_and_small_modules():
    graph = {}
    for folder in ("bootstrap", "render"):
        for path in sorted((ROOT / "labctl" / folder).glob("*.py")):
            name = f"labctl.{folder}.{path.stem}"
            assert len(path.read_text().splitlines()) <= 300, name
            deps = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labctl."):
                    deps.add(node.module)
                    deps |= {f"{node.module}.{a.name}" for a in node.names}
            graph[name] = deps

    def reaches(start, goal, seen=()):
        return any(d == goal or (d in graph and d not in seen and reaches(d, goal, (*seen, d))) for d in graph.get(start, ()))

    cycles = [m for m in graph if reaches(m, m)]
    assert cycles == []
