"""The data a bootstrap step is made of (pyinfra's facts and operations, in small).

A node's *facts* are read-only probes gathered in one SSH round trip by the rendered
``facts.sh`` script: ``key=value`` lines, parsed into a dict (keys: facts.CATALOGUE).
A *step* declares everything the engine needs to know about it:

- ``facts``:  the fact keys its ``done`` reads (enforced: reading another one raises);
- ``after``:  what must be finished first, on which nodes (a step id or a phase, on
              this node, on the nodes of a role, or on every node);
- ``script``: the playbook template rendered per node into ``<id>.sh``, or ``work``:
              engine-run work that IS the step (e.g. exporting the kubeconfig);
- ``before``, ``then``: engine-run work right before its script (pushing files, a
              token) and right after it (collecting what the node made for the others);
- ``artifacts``: the artifact-set files its script installs (pushed from the host cache);
- ``hint``, ``hints``: what to tell the user when it fails: the causes worth looking
              for in its output (hints.RULES), and the fix when none is recognised.

The engine runs the declared graph; it never branches on a step's id or phase.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

Facts = Mapping[str, str]

# The order phases are announced in (a label for people and the state file; the
# order steps run in comes from their ``after`` declarations, not from this list).
PHASES = ("prepare", "init", "cni", "join", "loadbalancer", "ready", "kubeconfig")

SELF = "self"
ALL = "all"


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
class After:
    """A dependency: every step named ``what`` (a step id or a phase name) on the nodes
    ``on`` names (``self``, a role such as ``master``, or ``all``) must have finished."""

    what: str
    on: str = SELF


class UndeclaredFact(RuntimeError):
    """A step's decision read a fact it did not declare (a labctl bug, caught by tests)."""


class DeclaredFacts(Mapping[str, str]):
    """The facts a step declared, and only those: a decision cannot quietly depend on
    a key nobody prints (a missing declared key reads as "", like an empty probe)."""

    def __init__(self, facts: Facts, keys: tuple[str, ...], step: str):
        self._facts, self._keys, self._step = facts, frozenset(keys), step

    def __getitem__(self, key: str) -> str:
        if key not in self._keys:
            raise UndeclaredFact(f"step {self._step} reads fact {key!r} without declaring it")
        return self._facts.get(key, "")

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    phase: str
    roles: frozenset[str]  # {"master"}, {"worker"} or both
    script: str | None  # playbook template under playbooks/ (without .sh.j2); None: ``work`` does the step
    # facts -> None when the step must run, or the reason it is already done
    done: Callable[[Facts], str | None] = field(compare=False, default=lambda facts: None)
    facts: tuple[str, ...] = ()
    after: tuple[After, ...] = ()
    before: tuple[str, ...] = ()  # names of engine work run right before the script
    then: tuple[str, ...] = ()  # names of engine work run right after it (with fresh facts)
    artifacts: tuple[str, ...] = ()  # ids (in the artifact set) of the files its script installs
    work: str | None = None  # name of the engine work that is the step (script None)
    hint: str | None = None  # the fix to suggest when no known cause is recognised
    hints: tuple[str, ...] = ()  # extra cause rules (hints.RULES) worth trying on its output
    # facts -> evidence lines, when the step ran but its check still says not done
    explain: Callable[[Facts], list[str]] | None = field(compare=False, default=None)
    # Where a change by ``work`` is recorded in the result: "ran" or a flag's name.
    records: str = "ran"

    def applies_to(self, role: str) -> bool:
        return role in self.roles

    def check(self, facts: Facts) -> str | None:
        """``done`` over the declared facts only."""
        return self.done(DeclaredFacts(facts, self.facts, self.id))

    @property
    def script_name(self) -> str | None:
        """The rendered file's name: the step's id, so adding a step renames nothing."""
        return f"{self.id}.sh" if self.script is not None else None
