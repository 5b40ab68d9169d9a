"""`labctl apply` and `labctl reset`: put the course's exercises into the lab and take
them out again, through the lab's kubeconfig.

Both are idempotent: applying an exercise that is already there changes nothing,
resetting one that is not there is a no-op. Reset deletes with a one-second grace
period because the kubetm images ignore SIGTERM (a default delete waits 30 s), then
waits until every object is really gone, so a following apply starts clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from labctl.course import exercises as catalogue
from labctl.lab.lock import lab_lock
from labctl.lab.paths import LabPaths

RESET_GRACE_SECONDS = 1


@dataclass(frozen=True)
class ObjectOutcome:
    exercise: str
    kind: str
    name: str
    namespace: str | None
    action: str  # apply: created | unchanged | configured | replaced; reset: deleted | absent

    def to_dict(self) -> dict:
        return {"exercise": self.exercise, "kind": self.kind, "name": self.name, "namespace": self.namespace, "action": self.action}


@dataclass(frozen=True)
class CourseResult:
    command: str  # apply | reset
    exercises: tuple[str, ...]
    outcomes: tuple[ObjectOutcome, ...]

    @property
    def succeeded(self) -> bool:
        return True  # failures raise; a result means every object got where it should

    @property
    def changed(self) -> bool:
        return any(o.action not in ("unchanged", "absent") for o in self.outcomes)

    def to_dict(self) -> dict:
        return {"ok": True, "command": self.command, "exercises": list(self.exercises), "changed": self.changed,
                "objects": [o.to_dict() for o in self.outcomes]}


def list_exercises() -> list[catalogue.Exercise]:
    return list(catalogue.EXERCISES)


def apply_exercises(lab_dir: Path, requested: Sequence[str], *, all_: bool = False, deadline: float = 60.0) -> CourseResult:
    """Create (or bring back in line) every object of the chosen exercises."""
    from labctl.kube.client import KubeClient

    chosen = catalogue.with_needs(catalogue.choose(requested, all_=all_))
    paths = LabPaths(Path(lab_dir))
    outcomes: list[ObjectOutcome] = []
    with KubeClient.for_lab(paths) as kube, lab_lock(paths, "apply"):
        for ex in chosen:
            for obj in catalogue.load_objects(ex):
                result = kube.apply(obj, deadline=deadline)
                outcomes.append(ObjectOutcome(ex.id, result.ref.kind, result.ref.name, result.ref.namespace, result.action))
    return CourseResult("apply", tuple(e.id for e in chosen), tuple(outcomes))


def reset_exercises(lab_dir: Path, requested: Sequence[str], *, all_: bool = False, deadline: float = 60.0) -> CourseResult:
    """Delete the chosen exercises' objects (grace 1 s) and wait until they are gone.

    Besides the catalogue's names, objects labelled with the exercise's id are deleted
    too: they were created by an apply of an older manifest with other names.
    """
    from labctl.kube.client import KubeClient, ObjectRef

    chosen = catalogue.choose(requested, all_=all_)
    paths = LabPaths(Path(lab_dir))
    targets: dict[ObjectRef, str] = {}
    for ex in chosen:
        for o in ex.objects:
            targets.setdefault(ObjectRef(o.kind, o.name, o.namespace), ex.id)
    outcomes: list[ObjectOutcome] = []
    with KubeClient.for_lab(paths) as kube, lab_lock(paths, "reset"):
        wanted = {ex.id for ex in chosen}
        for kind in sorted({ref.kind for ref in targets}):
            for live in kube.list(kind, catalogue.NAMESPACE, label_selector=f"{catalogue.PART_OF_LABEL}={catalogue.PART_OF_VALUE}"):
                exercise = ((live.get("metadata") or {}).get("labels") or {}).get(catalogue.EXERCISE_LABEL)
                if exercise in wanted:
                    targets.setdefault(ObjectRef.of(live), exercise)
        # Services first: their endpoints then stop pointing at Pods being deleted.
        order = sorted(targets, key=lambda r: (r.kind != "Service", r))
        deleted = []
        for ref in order:
            result = kube.delete(ref, grace_period_seconds=RESET_GRACE_SECONDS)
            outcomes.append(ObjectOutcome(targets[ref], ref.kind, ref.name, ref.namespace, result.action))
            if result.action == "deleted":
                deleted.append(ref)
        kube.wait_gone(deleted, deadline=deadline)
    return CourseResult("reset", tuple(e.id for e in chosen), tuple(outcomes))
