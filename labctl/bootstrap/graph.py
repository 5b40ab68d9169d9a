"""The run's dependency graph: which (node, step) waits for which, and their outcomes.

Nodes run their own steps one at a time in catalogue order; a step's ``after``
declarations add waits on steps of other nodes. Outcomes: ``ok`` (ran or skipped),
``failed``, or ``blocked`` (something it waits for failed or was blocked; it never
starts). Because a step may only wait for steps listed before it (checked by
``validate``), every wait ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from labctl.bootstrap.model import ALL, PHASES, SELF, After, Plan, Step
from labctl.lab import events as ev

OK, FAILED, BLOCKED = "ok", "failed", "blocked"

Task = tuple[str, str]  # (node, step id)


def validate(steps: Sequence[Step], roles: Sequence[str] = ("master", "worker"), work: Mapping | None = None) -> None:
    """A catalogue the engine can run: unique ids, known phases, every ``after`` naming
    an earlier step or phase, known ``on`` and work names. Raises ValueError (a bug)."""
    seen: list[Step] = []
    ids = [s.id for s in steps]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate step ids in {ids}")
    for s in steps:
        if s.phase not in PHASES:
            raise ValueError(f"step {s.id}: unknown phase {s.phase!r}")
        if (s.script is None) == (s.work is None):
            raise ValueError(f"step {s.id}: needs exactly one of script and work")
        for name in (*s.before, *s.then, *((s.work,) if s.work else ())):
            if work is not None and name not in work:
                raise ValueError(f"step {s.id}: unknown engine work {name!r}")
        for a in s.after:
            if a.on not in (SELF, ALL, *roles):
                raise ValueError(f"step {s.id}: after {a.what!r} on unknown nodes {a.on!r}")
            # The same step on the nodes of one role (not "self" or "all"): the first node
            # does the work the others then reuse (images pulled once per lab).
            same_step_elsewhere = a.what == s.id and a.on not in (SELF, ALL)
            if not same_step_elsewhere and not any(a.what in (e.id, e.phase) for e in seen):
                raise ValueError(f"step {s.id}: after {a.what!r}, which is no step or phase listed before it")
        seen.append(s)


class Graph:
    """Outcomes of the planned tasks, and waiting for a task's dependencies."""

    def __init__(self, plans: Mapping[str, Sequence[Plan]], steps: Mapping[str, Step], roles: Mapping[str, str]):
        self.plans = plans
        self.steps = steps
        self.roles = roles
        self.outcome: dict[Task, str] = {}
        self._changed = threading.Condition()

    def _nodes(self, after: After, node: str) -> list[str]:
        if after.on == SELF:
            return [node]
        return [n for n in self.plans if after.on == ALL or self.roles.get(n) == after.on]

    def needs(self, node: str, step: Step) -> list[Task]:
        """The tasks ``step`` on ``node`` waits for (only those planned)."""
        out = []
        for a in step.after:
            for n in self._nodes(a, node):
                out += [(n, p.step) for p in self.plans.get(n, ())
                        if a.what in (p.step, self.steps[p.step].phase) and (n, p.step) != (node, step.id)]
        return out

    def wait(self, node: str, step: Step, abort: Callable[[], bool]) -> bool:
        """Block until every dependency has an outcome; True when all are ok. False on
        a failed or blocked dependency, or when the run is aborted."""
        needs = self.needs(node, step)
        with self._changed:
            while True:
                if abort():
                    return False
                outcomes = [self.outcome.get(t) for t in needs]
                if any(o in (FAILED, BLOCKED) for o in outcomes):
                    return False
                if all(o == OK for o in outcomes):
                    return True
                self._changed.wait(0.2)

    def set(self, task: Task, outcome: str) -> None:
        with self._changed:
            self.outcome[task] = outcome
            self._changed.notify_all()

    def block_rest(self, node: str, after: str | None) -> None:
        """``node``'s tasks from ``after`` on (all when None) will not run."""
        todo = [p.step for p in self.plans.get(node, ())]
        start = todo.index(after) if after in todo else 0
        with self._changed:
            for step_id in todo[start:]:
                self.outcome.setdefault((node, step_id), BLOCKED)
            self._changed.notify_all()

    def phase_done(self, phase: str) -> bool:
        """Every planned task of ``phase`` finished ok."""
        tasks = [(n, p.step) for n, ps in self.plans.items() for p in ps if self.steps[p.step].phase == phase]
        return all(self.outcome.get(t) == OK for t in tasks)


class PhaseAnnouncer:
    """Phase events for people: RUNNING when a phase's first step starts on any node
    (naming the nodes that have steps in it), DONE when all of them finished ok."""

    def __init__(self, bus: ev.EventBus, plans: Mapping[str, Sequence[Plan]], steps: Mapping[str, Step], graph: Graph):
        self.bus, self.graph = bus, graph
        self.who = {ph: sorted(n for n, ps in plans.items() if any(steps[p.step].phase == ph for p in ps)) for ph in PHASES}
        self._running: set[str] = set()
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def started(self, phase: str) -> None:
        with self._lock:
            if phase not in self._running:
                self._running.add(phase)
                self.bus.emit(ev.PHASE, ", ".join(self.who.get(phase, [])), phase=phase, status=ev.RUNNING)

    def finished(self, phase: str) -> None:
        with self._lock:
            if phase not in self._done and self.graph.phase_done(phase):
                self._done.add(phase)
                self.bus.emit(ev.PHASE, "", phase=phase, status=ev.DONE)

