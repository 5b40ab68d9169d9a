"""The data a bootstrap step is made of (pyinfra's facts and operations, in small).

A node's *facts* are read-only probes gathered in one SSH round trip by the rendered
``facts.sh`` script: ``key=value`` lines, parsed into a dict. A *step* looks at those
facts and decides: run its rendered script (a Plan with commands) or skip with a reason.
Decisions are pure functions of facts, so they are tested as data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Facts = Mapping[str, str]

# The order the engine runs phases in; within "prepare" and "join" nodes run in parallel.
PHASES = ("prepare", "init", "cni", "join", "loadbalancer", "ready", "kubeconfig")


@dataclass(frozen=True)
class Plan:
    step: str
    node: str
    commands: tuple[str, ...] = ()
    skip_reason: str | None = None

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    phase: str
    roles: frozenset[str]  # {"master"}, {"worker"} or both
    script: str | None  # playbook template under playbooks/, rendered per node; None for engine-run steps
    # facts -> None when the step must run, or the reason it is already done
    done: Callable[[Facts], str | None] = field(compare=False, default=lambda facts: None)

    def applies_to(self, role: str) -> bool:
        return role in self.roles
