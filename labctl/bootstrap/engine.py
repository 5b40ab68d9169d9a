"""The bootstrap engine: gather facts, plan every node, then run the plan phase by phase.

    prepare (every node in parallel) -> init -> cni -> join (workers in parallel)
    -> loadbalancer -> ready -> kubeconfig

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from labctl.lab import events as ev
from labctl.bootstrap import hints
from labctl.bootstrap.model import PHASES, Plan, Step
from labctl.lab.paths import LabPaths
from labctl.spec import LabSpec
from labctl.errors import CommandFailed, LabError, tail


class Session(Protocol):
    """What the engine needs of labctl.remote.ssh.SSHSession."""

    def run(self, command: str, **kw: Any) -> Any: ...
    def put(self, data: bytes | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False) -> None: ...
    def add_secret(self, value: str) -> None: ...


class StepFailed(CommandFailed):
    """A step's script failed on a node, or ran but left its check unsatisfied."""

    def __init__(self, node: str, step: str, command: str, rc: int | None, output: str, *, log_path: str | None, hint: str | None, what: str | None = None):
        super().__init__(command, rc, output, where=node, log_path=log_path, hint=hint, what=what or f"step {step}")
        self.node = node
        self.step = step

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(node=self.node, step=self.step)
        return d


@dataclass
class BootstrapResult:
    ran: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    kubeconfig_changed: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.ran) or self.kubeconfig_changed


# Work the engine does itself, for a step without a script or right before one:
# (engine, node) -> whether it changed anything.
EngineAction = Callable[["Engine", str], bool]


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
        actions: Mapping[str, EngineAction] | None = None,
        before: Mapping[str, EngineAction] | None = None,
        merge_kubeconfig: Any = None,
    ) -> None:
        from labctl.bootstrap import cluster
        from labctl.bootstrap import steps as catalogue

        self.spec = spec
        self.paths = paths
        self.sessions = sessions
        self.bus = bus
        self.catalogue = catalogue
        self.steps = {s.id: s for s in (steps if steps is not None else catalogue.STEPS)}
        self.parallel = max(1, parallel or len(spec.nodes))
        self.step_timeout = step_timeout
        # Engine-run steps, and work that must happen right before a scripted step.
        self.actions: dict[str, EngineAction] = {"kubeconfig": cluster.export_kubeconfig, **(actions or {})}
        self.before: dict[str, EngineAction] = {"kubeadm-join": cluster.upload_join_config, **(before or {})}
        self.merge_kubeconfig = merge_kubeconfig
        self.facts: dict[str, dict[str, str]] = {}
        self._uploaded: set[str] = set()
        # Uploads of the next step's script, started while the current step runs (a
        # second channel on the same connection), so only the first upload of a node
        # is on the critical path.
        self._prefetch: dict[tuple[str, str], Future] = {}
        self._prefetch_pool = ThreadPoolExecutor(max_workers=max(2, len(spec.nodes)), thread_name_prefix="labctl-upload")
        self._todo: dict[str, list[str]] = {}
        self.cache: dict[str, Any] = {}  # values read once per run (the CA hash)
        self._locks = {n.name: threading.Lock() for n in spec.nodes}
        self._result = BootstrapResult()
        self._result_lock = threading.Lock()
        # Set on Ctrl-C: threads stop between steps instead of starting the next one.
        self._abort = threading.Event()
        self.kubeconfig_path = paths.kubeconfig

    # ------------------------------------------------------------ remote helpers

    def role(self, node: str) -> str:
        return self.spec.node(node).role

    def log_path(self, node: str) -> str:
        return str(self.paths.node_log(node))

    def node_lock(self, node: str) -> threading.Lock:
        """For work several threads would otherwise repeat on one node (the CA hash
        every joining worker needs is read once, under the master's lock)."""
        return self._locks[node]

    def add_secret(self, value: str) -> None:
        """Register a secret everywhere it could leak: every node's log and the events."""
        self.bus.redactor.add(value)
        for s in self.sessions.values():
            s.add_secret(value)

    def upload(self, node: str, names: Sequence[str] | None = None) -> None:
        """Copy the node's rendered scripts to the node (all of them, or ``names``)."""
        folder = self.paths.node_scripts(node)
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        if names is not None:
            files = [p for p in files if p.name in names]
        if not files and names:
            raise LabError(
                f"{folder} has no rendered {', '.join(names)}",
                hint="run `labctl render` (or `labctl up`, which renders first)",
            )
        for p in files:
            self.sessions[node].put(p.read_bytes(), f"{self.catalogue.REMOTE_SCRIPTS}/{p.name}", mode=0o755, sudo=True)

    def _set_todo(self, plans: Mapping[str, Sequence[Plan]]) -> None:
        for node, ps in plans.items():
            self._todo[node] = [
                self.catalogue.script_name(self.steps[p.step]) for p in ps if not p.skipped and self.steps[p.step].script
            ]

    def _ensure_uploaded(self, node: str, name: str) -> None:
        pending = self._prefetch.pop((node, name), None)
        if pending is not None:
            try:
                pending.result()
            except LabError:
                pass  # a failed prefetch is retried below, in this thread, with its error
            else:
                self._uploaded.add(f"{node}:{name}")
        if f"{node}:{name}" not in self._uploaded:
            self.upload(node, [name])
            self._uploaded.add(f"{node}:{name}")

    def _start_prefetch(self, node: str, current: str) -> None:
        todo = self._todo.get(node, [])
        if current not in todo or todo.index(current) + 1 >= len(todo):
            return
        nxt = todo[todo.index(current) + 1]
        if f"{node}:{nxt}" in self._uploaded or (node, nxt) in self._prefetch or self._abort.is_set():
            return
        self._prefetch[(node, nxt)] = self._prefetch_pool.submit(self.upload, node, [nxt])

    def close(self) -> None:
        self._prefetch_pool.shutdown(wait=False, cancel_futures=True)

    def abort(self) -> None:
        """Ctrl-C: running steps end when their connections close; none starts after."""
        self._abort.set()
        self.close()

    def gather(self, node: str) -> dict[str, str]:
        """Run facts.sh on the node and keep its answer as the node's current facts."""
        if f"{node}:{self.catalogue.FACTS_SCRIPT}" not in self._uploaded:
            self.upload(node, [self.catalogue.FACTS_SCRIPT])
            self._uploaded.add(f"{node}:{self.catalogue.FACTS_SCRIPT}")
        cmd = self.catalogue.facts_command()
        res = self.sessions[node].run(cmd, timeout=120.0)
        if res.rc != 0:
            output = self.bus.redactor(res.stdout + res.stderr)
            raise StepFailed(
                node, "facts", cmd, res.rc, output, log_path=self.log_path(node), what="gathering facts",
                hint=hints.hint_for(node, "facts", res.rc, output) or f"run `labctl ssh {node} -- {cmd}` to see why",
            )
        facts = self.catalogue.parse_facts(res.stdout)
        self.facts[node] = facts
        return facts

    # ------------------------------------------------------------ planning

    def plan(self) -> dict[str, list[Plan]]:
        """Gather every node's facts (in parallel; nodes gathered already, e.g. right
        after connecting, are not asked twice) and plan each node from them."""
        self.bus.emit(ev.PHASE, "reading each node's facts", phase="plan", status=ev.RUNNING)
        self._parallel_map(self.gather, [n.name for n in self.spec.nodes if n.name not in self.facts], "plan")
        steps = list(self.steps.values())
        plans = {n.name: self.catalogue.plan_node(n, n.role, self.facts[n.name], steps) for n in self.spec.nodes}
        for node, node_plans in plans.items():
            for p in node_plans:
                phase = self.steps[p.step].phase
                if p.skipped:
                    self.bus.emit(ev.PLAN, p.skip_reason or "", node=node, step=p.step, phase=phase, status=ev.SKIPPED)
                else:
                    self.bus.emit(ev.PLAN, "", node=node, step=p.step, phase=phase, status=ev.PENDING)
        self._set_todo(plans)
        for node, names in self._todo.items():
            if names:  # the first script travels while the other nodes are still planned
                self._prefetch[(node, names[0])] = self._prefetch_pool.submit(self.upload, node, [names[0]])
        todo = sum(1 for ps in plans.values() for p in ps if not p.skipped)
        done = sum(1 for ps in plans.values() for p in ps if p.skipped)
        self.bus.emit(ev.PHASE, f"{todo} steps to run, {done} already done", phase="plan", status=ev.DONE, data={"todo": todo, "done": done})
        return plans

    # ------------------------------------------------------------ execution

    def execute(self, plans: Mapping[str, Sequence[Plan]]) -> BootstrapResult:
        """Run the plans as a dependency graph, not in lock-step phases: the master goes
        on to init and CNI as soon as its own preparation is done, and each worker joins
        as soon as it is prepared and the CNI runs. A slow worker thus delays only its
        own join, never the control plane."""
        started = time.monotonic()
        self._set_todo(plans)
        try:
            return self._execute(plans, started)
        finally:
            self.close()

    def _execute(self, plans: Mapping[str, Sequence[Plan]], started: float) -> BootstrapResult:
        master = self.spec.master.name
        nodes = [master] + [n.name for n in self.spec.nodes if n.name != master]
        cni_ready = threading.Event()
        master_failed = threading.Event()
        announced: list[str] = []
        announce_lock = threading.Lock()

        def of_phase(node: str, phase: str) -> list[Plan]:
            return [p for p in plans.get(node, ()) if self.steps[p.step].phase == phase]

        def run_phase(node: str, phase: str) -> None:
            work = of_phase(node, phase)
            if not work or self._abort.is_set():
                return
            with announce_lock:
                if phase not in announced:
                    announced.append(phase)
                    who = sorted(n for n in nodes if of_phase(n, phase))
                    self.bus.emit(ev.PHASE, ", ".join(who), phase=phase, status=ev.RUNNING)
            self._run_node(node, work)

        def chain(node: str) -> None:
            if node == master:
                try:
                    for phase in ("prepare", "init", "cni"):
                        run_phase(node, phase)
                except BaseException:
                    master_failed.set()
                    raise
                finally:
                    cni_ready.set()
                return
            run_phase(node, "prepare")
            while not cni_ready.wait(0.2):
                if self._abort.is_set():
                    return
            if not master_failed.is_set():  # the master's failure is the one to report
                run_phase(node, "join")

        self._parallel_map(chain, nodes, "bootstrap")
        for phase in announced:
            self.bus.emit(ev.PHASE, "", phase=phase, status=ev.DONE)
        for phase in PHASES[PHASES.index("join") + 1 :]:
            work = {node: of_phase(node, phase) for node in nodes}
            work = {node: ps for node, ps in work.items() if ps}
            if not work:
                continue
            self.bus.emit(ev.PHASE, ", ".join(sorted(work)), phase=phase, status=ev.RUNNING)
            self._parallel_map(lambda node: self._run_node(node, work[node]), list(work), phase)
            self.bus.emit(ev.PHASE, "", phase=phase, status=ev.DONE)
        self._result.seconds = time.monotonic() - started
        return self._result

    def run(self) -> BootstrapResult:
        return self.execute(self.plan())

    def _run_node(self, node: str, plans: Sequence[Plan]) -> None:
        for p in plans:
            if self._abort.is_set():
                return
            step = self.steps[p.step]
            if p.skipped:
                self.bus.emit(ev.STEP, p.skip_reason or "", node=node, step=p.step, phase=step.phase, status=ev.SKIPPED)
                with self._result_lock:
                    self._result.skipped.append((node, p.step))
                continue
            if step.script is None:
                self._run_action(node, step)
                continue
            # Facts gathered after the previous step are the freshest: a step that an
            # earlier one completed as a side effect is skipped, not run twice.
            reason = step.done(self.facts.get(node, {})) if node in self.facts else None
            if reason is not None:
                self.bus.emit(ev.STEP, reason, node=node, step=p.step, phase=step.phase, status=ev.SKIPPED)
                with self._result_lock:
                    self._result.skipped.append((node, p.step))
                continue
            self._run_script(node, step, p)

    def _run_action(self, node: str, step: Step) -> None:
        t0 = time.monotonic()
        self.bus.emit(ev.STEP, step.title, node=node, step=step.id, phase=step.phase, status=ev.RUNNING)
        try:
            changed = self.actions[step.id](self, node)
        except LabError as err:
            self._emit_failed(node, step, err, t0)
            raise
        msg = "changed" if changed else "unchanged"
        self.bus.emit(ev.STEP, msg, node=node, step=step.id, phase=step.phase, status=ev.DONE, data={"seconds": time.monotonic() - t0, "changed": changed})
        if step.id == "kubeconfig":
            self._result.kubeconfig_changed = changed
        elif changed:
            with self._result_lock:
                self._result.ran.append((node, step.id))

    def _run_script(self, node: str, step: Step, plan: Plan) -> None:
        session = self.sessions[node]
        t0 = time.monotonic()
        self.bus.emit(ev.STEP, step.title, node=node, step=step.id, phase=step.phase, status=ev.RUNNING)
        try:
            # Only the scripts that run travel: a resumed or finished lab uploads little.
            name = self.catalogue.script_name(step)
            self._ensure_uploaded(node, name)
            self._start_prefetch(node, name)
            if step.id in self.before:
                self.before[step.id](self, node)

            def on_line(*args: str) -> None:
                line = args[-1] if args else ""
                self.bus.emit(ev.OUTPUT, line.rstrip("\n"), node=node, step=step.id)

            for command in plan.commands:
                res = session.run(command, timeout=self.step_timeout, on_line=on_line)
                if res.rc != 0:
                    output = self.bus.redactor((res.stdout or "") + (res.stderr or ""))
                    raise StepFailed(
                        node, step.id, command, res.rc, output, log_path=self.log_path(node),
                        hint=hints.hint_for(node, step.id, res.rc, output, exit_unreachable=self.catalogue.EXIT_UNREACHABLE)
                        or f"read the log, fix the cause, then run `labctl up` again: it continues from this step",
                    )
            facts = self.gather(node)
            if step.done(facts) is None:
                raise self._postcondition_failed(node, step, facts)
        except LabError as err:
            self._emit_failed(node, step, err, t0)
            raise
        self.bus.emit(ev.STEP, "", node=node, step=step.id, phase=step.phase, status=ev.DONE, data={"seconds": round(time.monotonic() - t0, 3)})
        with self._result_lock:
            self._result.ran.append((node, step.id))

    def _postcondition_failed(self, node: str, step: Step, facts: Mapping[str, str]) -> StepFailed:
        evidence = ""
        hint = None
        if step.id == "nodes-ready":
            problems = self.catalogue.nodes_ready_problems(facts)
            evidence = "\n".join(problems)
            for line in problems:
                if hints.NAT_ADDRESS in line:
                    hint = hints.node_ip_hint(line.split()[0])
                    break
        return StepFailed(
            node, step.id, self.catalogue.facts_command(), 0, evidence, log_path=self.log_path(node),
            what=f"step {step.id} finished but its check still says not done;",
            hint=hint or f"compare with `labctl ssh {node} -- {self.catalogue.facts_command()}` and run `labctl up` again",
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

    def _parallel_map(self, fn: Callable[[str], Any], nodes: Sequence[str], phase: str) -> None:
        """Run ``fn`` for every node at once (bounded by --parallel). Every node gets to
        finish or fail on its own; then the first failure (in spec order) is raised."""
        if len(nodes) <= 1:
            for node in nodes:
                fn(node)
            return
        pool = ThreadPoolExecutor(max_workers=min(self.parallel, len(nodes)), thread_name_prefix=f"labctl-{phase}")
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
