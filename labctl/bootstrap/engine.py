"""The bootstrap engine: gather facts, plan every node, then run the steps' graph.

What runs, where, after what, with which engine work before it, is the steps'
declared data (labctl/bootstrap/steps.py); the engine has no branch on a step's id or
phase. Each node runs its own steps in catalogue order, in its own thread, waiting
where a step declares a dependency on other nodes (graph.py).

Decisions come only from facts (pyinfra's model): a step whose check says "done" is
skipped, which is what makes `labctl up` resumable after a failure or Ctrl-C. After a
step runs, its node's facts are gathered again and the step's own check must now say
"done" (the postcondition), so a script that exits 0 without doing its job fails here,
naming itself, instead of three steps later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from labctl.bootstrap import hints
from labctl.bootstrap import steps as catalogue
from labctl.bootstrap.context import BootstrapResult, RunContext, Session, StepFailed, Work
from labctl.bootstrap.graph import FAILED, OK, Graph, PhaseAnnouncer, validate
from labctl.bootstrap.model import Plan, Step
from labctl.bootstrap.uploads import ScriptUploads
from labctl.bootstrap.work import WORK
from labctl.errors import CommandFailed, LabError, tail
from labctl.lab import events as ev
from labctl.lab.paths import LabPaths
from labctl.spec import LabSpec

__all__ = ["Engine", "StepFailed", "BootstrapResult", "Session"]


class Engine:
    def __init__(
        self,
        spec: LabSpec,
        paths: LabPaths,
        sessions: Mapping[str, Session],
        bus: ev.EventBus,
        *,
        steps: Sequence[Step] | None = None,
        parallel: int | None = None,
        step_timeout: float = 1800.0,
        work: Mapping[str, Work] | None = None,
        artifacts: Callable[[], Any] | None = None,
        merge_kubeconfig: Any = None,
    ) -> None:
        self.spec = spec
        self.paths = paths
        self.sessions = sessions
        self.bus = bus
        self.work: dict[str, Work] = {**WORK, **(work or {})}
        chosen = tuple(steps if steps is not None else catalogue.STEPS)
        validate(chosen, work=self.work)
        self.steps = {s.id: s for s in chosen}
        self.parallel = max(1, parallel or len(spec.nodes))
        self.step_timeout = step_timeout
        self.ctx = RunContext(spec, paths, sessions, bus, artifacts=artifacts, merge_kubeconfig=merge_kubeconfig)
        self.facts = self.ctx.facts
        self.uploads = ScriptUploads(paths, sessions, catalogue.REMOTE_SCRIPTS, len(spec.nodes))
        self._facts_uploaded: set[str] = set()
        self._result = BootstrapResult()
        self._result_lock = threading.Lock()
        # Set on Ctrl-C: threads stop between steps instead of starting the next one.
        self._abort = threading.Event()

    # ------------------------------------------------------------ remote helpers

    def log_path(self, node: str) -> str:
        return self.ctx.log_path(node)

    def close(self) -> None:
        self.uploads.close()

    def abort(self) -> None:
        """Ctrl-C: running steps end when their connections close; none starts after."""
        self._abort.set()
        self.close()

    def gather(self, node: str) -> dict[str, str]:
        """Run facts.sh on the node and keep its answer as the node's current facts."""
        if node not in self._facts_uploaded:
            self.uploads.upload(node, [catalogue.FACTS_SCRIPT])
            self._facts_uploaded.add(node)
        cmd = catalogue.facts_command()
        res = self.sessions[node].run(cmd, timeout=120.0)
        if res.rc != 0:
            output = self.bus.redactor(res.stdout + res.stderr)
            raise StepFailed(
                node, "facts", cmd, res.rc, output, log_path=self.log_path(node), what="gathering facts",
                hint=hints.hint_for(node, res.rc, output) or f"run `labctl ssh {node} -- {cmd}` to see why",
            )
        facts = catalogue.parse_facts(res.stdout)
        self.facts[node] = facts
        return facts

    # ------------------------------------------------------------ planning

    def plan(self) -> dict[str, list[Plan]]:
        """Gather every node's facts (in parallel; nodes gathered already, e.g. right
        after connecting, are not asked twice) and plan each node from them."""
        self.bus.emit(ev.PHASE, "reading each node's facts", phase="plan", status=ev.RUNNING)
        self._parallel_map(self.gather, [n.name for n in self.spec.nodes if n.name not in self.facts], "plan")
        steps = list(self.steps.values())
        plans = {n.name: catalogue.plan_node(n, n.role, self.facts[n.name], steps) for n in self.spec.nodes}
        for node, node_plans in plans.items():
            for p in node_plans:
                status = ev.SKIPPED if p.skipped else ev.PENDING
                self.bus.emit(ev.PLAN, p.skip_reason or "", node=node, step=p.step, phase=self.steps[p.step].phase, status=status)
        self.uploads.expect(self._scripts_to_run(plans))
        todo = sum(1 for ps in plans.values() for p in ps if not p.skipped)
        done = sum(1 for ps in plans.values() for p in ps if p.skipped)
        self.bus.emit(ev.PHASE, f"{todo} steps to run, {done} already done", phase="plan", status=ev.DONE, data={"todo": todo, "done": done})
        return plans

    def _scripts_to_run(self, plans: Mapping[str, Sequence[Plan]]) -> dict[str, list[str]]:
        return {node: [self.steps[p.step].script_name for p in ps if not p.skipped and self.steps[p.step].script_name]
                for node, ps in plans.items()}

    # ------------------------------------------------------------ execution

    def execute(self, plans: Mapping[str, Sequence[Plan]]) -> BootstrapResult:
        """Run the plans as a dependency graph, not in lock-step phases: the master goes
        on to init and CNI as soon as its own preparation is done, and each worker joins
        as soon as it is prepared and the CNI runs. A slow worker thus delays only its
        own join, never the control plane."""
        started = time.monotonic()
        self.uploads.expect(self._scripts_to_run(plans))
        graph = Graph(plans, self.steps, {n.name: n.role for n in self.spec.nodes})
        phases = PhaseAnnouncer(self.bus, plans, self.steps, graph)
        # Every node has its own thread (a node waiting for another holds nothing); at
        # most --parallel steps run at once, across nodes.
        slots = threading.BoundedSemaphore(self.parallel)
        nodes = [n.name for n in self.spec.nodes]
        try:
            self._parallel_map(lambda node: self._run_node(node, plans.get(node, ()), graph, phases, slots),
                               nodes, "bootstrap", workers=len(nodes))
        finally:
            self.close()
        self._result.seconds = time.monotonic() - started
        return self._result

    def run(self) -> BootstrapResult:
        return self.execute(self.plan())

    def _run_node(self, node: str, plans: Sequence[Plan], graph: Graph, phases: PhaseAnnouncer,
                  slots: threading.BoundedSemaphore) -> None:
        for p in plans:
            step = self.steps[p.step]
            if not graph.wait(node, step, self._abort.is_set) or not self._take(slots):
                graph.block_rest(node, p.step)  # the failure that blocks it is reported where it happened
                return
            phases.started(step.phase)
            try:
                self._run_task(node, step, p)
            except BaseException:
                graph.set((node, p.step), FAILED)
                graph.block_rest(node, p.step)
                raise
            finally:
                slots.release()
            graph.set((node, p.step), OK)
            phases.finished(step.phase)

    def _take(self, slots: threading.BoundedSemaphore) -> bool:
        while not slots.acquire(timeout=0.2):
            if self._abort.is_set():
                return False
        return True

    def _run_task(self, node: str, step: Step, plan: Plan) -> None:
        # Facts gathered after the previous step are the freshest: a step that an
        # earlier one completed as a side effect is skipped, not run twice.
        reason = plan.skip_reason
        if reason is None and step.script is not None and node in self.facts:
            reason = step.check(self.facts[node])
        if reason is not None:
            self.bus.emit(ev.STEP, reason, node=node, step=step.id, phase=step.phase, status=ev.SKIPPED)
            with self._result_lock:
                self._result.skipped.append((node, step.id))
            return
        t0 = time.monotonic()
        self.bus.emit(ev.STEP, step.title, node=node, step=step.id, phase=step.phase, status=ev.RUNNING)
        try:
            changed = self._run_work(node, step) if step.script is None else self._run_script(node, step, plan)
        except LabError as err:
            self._emit_failed(node, step, err, t0)
            raise
        data: dict[str, Any] = {"seconds": round(time.monotonic() - t0, 3)}
        message = ""
        if step.script is None:
            data["changed"] = changed
            message = "changed" if changed else "unchanged"
        self.bus.emit(ev.STEP, message, node=node, step=step.id, phase=step.phase, status=ev.DONE, data=data)
        with self._result_lock:
            if step.records == "ran":
                if changed:
                    self._result.ran.append((node, step.id))
            else:
                setattr(self._result, step.records, changed)

    def _run_work(self, node: str, step: Step) -> bool:
        return self.work[step.work](self.ctx, node, step)

    def _run_script(self, node: str, step: Step, plan: Plan) -> bool:
        session = self.sessions[node]
        self.uploads.ensure(node, step.script_name)
        for name in step.before:
            self.work[name](self.ctx, node, step)

        def on_line(*args: str) -> None:
            line = args[-1] if args else ""
            self.bus.emit(ev.OUTPUT, line.rstrip("\n"), node=node, step=step.id)

        for command in plan.commands:
            res = session.run(command, timeout=self.step_timeout, on_line=on_line)
            if res.rc != 0:
                output = self.bus.redactor((res.stdout or "") + (res.stderr or ""))
                raise StepFailed(
                    node, step.id, command, res.rc, output, log_path=self.log_path(node),
                    hint=hints.hint_for(node, res.rc, output, rules=step.hints, fallback=step.hint,
                                        exit_unreachable=catalogue.EXIT_UNREACHABLE)
                    or "read the log, fix the cause, then run `labctl up` again: it continues from this step",
                )
        facts = self.gather(node)
        if step.then and any([self.work[name](self.ctx, node, step) for name in step.then]):
            facts = self.gather(node)
        if step.check(facts) is None:
            raise self._postcondition_failed(node, step, facts)
        return True

    def _postcondition_failed(self, node: str, step: Step, facts: Mapping[str, str]) -> StepFailed:
        problems = step.explain(facts) if step.explain else []
        evidence = "\n".join(problems)
        cmd = catalogue.facts_command()
        return StepFailed(
            node, step.id, cmd, 0, evidence, log_path=self.log_path(node),
            what=f"step {step.id} finished but its check still says not done;",
            hint=(hints.hint_for(node, 0, evidence, rules=step.hints) if evidence else None)
            or f"compare with `labctl ssh {node} -- {cmd}` and run `labctl up` again",
        )

    def _emit_failed(self, node: str, step: Step, err: LabError, t0: float) -> None:
        if self._abort.is_set():
            # Ctrl-C closed the connections under the running steps: not their fault.
            self.bus.emit(ev.STEP, "interrupted", node=node, step=step.id, phase=step.phase, status=ev.FAILED,
                          data={"seconds": round(time.monotonic() - t0, 3), "interrupted": True})
            return
        if f"step {step.id}" not in err.message:
            # e.g. the join token could not be made: still say which step stopped.
            err.message = f"step {step.id} on {node}: {err.message}"
            err.args = (err.message,)
        data: dict[str, Any] = {"seconds": round(time.monotonic() - t0, 3), "log": self.log_path(node)}
        if isinstance(err, CommandFailed):
            data["rc"] = err.rc
        if err.hint:
            data["hint"] = err.hint
        if err.evidence:
            data["last_lines"] = [self.bus.redactor(x) for x in tail("\n".join(err.evidence), 10)]
        self.bus.emit(ev.STEP, err.message, node=node, step=step.id, phase=step.phase, status=ev.FAILED, data=data)

    def _parallel_map(self, fn: Callable[[str], Any], nodes: Sequence[str], phase: str, workers: int | None = None) -> None:
        """Run ``fn`` for every node at once (bounded by --parallel, or ``workers``).
        Every node gets to finish or fail on its own; then the first failure (in spec
        order) is raised."""
        if len(nodes) <= 1:
            for node in nodes:
                fn(node)
            return
        pool = ThreadPoolExecutor(max_workers=min(workers or self.parallel, len(nodes)), thread_name_prefix=f"labctl-{phase}")
        try:
            futures = {node: pool.submit(fn, node) for node in nodes}
            errors: list[BaseException] = []
            for node in nodes:
                try:
                    futures[node].result()
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    errors.append(exc)
        except BaseException:
            self._abort.set()
            raise
        finally:
            # On Ctrl-C do not wait for remote commands; the caller closes the sessions.
            pool.shutdown(wait=False, cancel_futures=True)
        if errors:
            first = errors[0]
            if len(errors) > 1 and isinstance(first, LabError):
                first.message += f" (and {len(errors) - 1} more node(s) failed; see `labctl status`)"
            raise first

