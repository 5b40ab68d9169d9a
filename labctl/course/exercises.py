"""The course's exercises: what `labctl exercises` lists and `labctl apply` creates.

One exercise per manifest file under ``manifests/`` (shipped in the wheel). The
objects are spelled out here as well as in the file so that other parts of labctl
(verify's checks, reset) know them without parsing YAML; a test keeps the two equal.
Every shipped object carries the labels ``app.kubernetes.io/part-of: labctl`` and
``labctl.dev/exercise: <id>``, so what apply created can be found again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import NotFound, UsageError

PART_OF_LABEL = "app.kubernetes.io/part-of"
PART_OF_VALUE = "labctl"
EXERCISE_LABEL = "labctl.dev/exercise"
NAMESPACE = "default"


@dataclass(frozen=True)
class Obj:
    kind: str
    name: str
    namespace: str = NAMESPACE

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Exercise:
    id: str
    description: str  # one line, shown by `labctl exercises`
    file: str  # under manifests/
    objects: tuple[Obj, ...]
    # Exercises whose objects this one is about (svc-for-web selects pod-2): apply
    # creates them first; reset leaves them alone.
    needs: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return (self.file,)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "description": self.description,
            "files": list(self.files),
            "objects": [{"kind": o.kind, "name": o.name, "namespace": o.namespace} for o in self.objects],
            "needs": list(self.needs),
        }


def _pod(name: str) -> Obj:
    return Obj("Pod", name)


def _svc(name: str) -> Obj:
    return Obj("Service", name)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("pod-1", "Pod with two containers (kubetm/p8000, kubetm/p8080) on ports 8000 and 8080", "pod-1.yaml", (_pod("pod-1"),)),
    Exercise("pod-same-port", "Pod whose two containers both use port 8000: the second crash-loops (EADDRINUSE)", "pod-same-port.yaml", (_pod("pod-same-port"),)),
    Exercise("pod-2", "Pod labelled type=web, lo=dev (kubetm/init)", "pod-2.yaml", (_pod("pod-2"),)),
    Exercise("svc-for-web", "Service selecting type=web on port 8080: pod-2 becomes its endpoint", "svc-for-web.yaml", (_svc("svc-for-web"),), needs=("pod-2",)),
    Exercise("pod-3", "Pod placed on k8s-node1 by nodeSelector kubernetes.io/hostname", "pod-3.yaml", (_pod("pod-3"),)),
    Exercise("pod-4", "Pod with labels, nodeSelector k8s-node1, port 8080 and 1Gi memory requests/limits", "pod-4.yaml", (_pod("pod-4"),)),
    Exercise("svc-clusterip", "ClusterIP Service (port 9000 -> 8080) in front of two kubetm/app Pods", "svc-clusterip.yaml",
             (_svc("svc-clusterip"), _pod("pod-clusterip-1"), _pod("pod-clusterip-2"))),
    Exercise("svc-nodeport", "NodePort Service on 30000, answering on every node; its Pod runs on k8s-node1", "svc-nodeport.yaml",
             (_svc("svc-nodeport"), _pod("pod-nodeport"))),
    Exercise("svc-nodeport-local", "NodePort 30001 with externalTrafficPolicy: Local: only k8s-node1 (with the Pod) answers", "svc-nodeport-local.yaml",
             (_svc("svc-nodeport-local"), _pod("pod-nodeport-local"))),
    Exercise("svc-loadbalancer", "LoadBalancer Service with an address from MetalLB's pool (port 9000 -> 8080)", "svc-loadbalancer.yaml",
             (_svc("svc-loadbalancer"), _pod("pod-loadbalancer"))),
)

_BY_ID = {e.id: e for e in EXERCISES}


def ids() -> list[str]:
    return [e.id for e in EXERCISES]


def get(exercise_id: str) -> Exercise:
    try:
        return _BY_ID[exercise_id]
    except KeyError:
        raise UsageError(f"unknown exercise {exercise_id!r}", hint=f"valid exercises: {', '.join(ids())}") from None


def choose(requested: Sequence[str], *, all_: bool) -> list[Exercise]:
    """The exercises named on the command line, in catalogue order, each once."""
    if all_ and requested:
        raise UsageError("give exercise names or --all, not both", hint=f"valid exercises: {', '.join(ids())}")
    if not all_ and not requested:
        raise UsageError("no exercise given", hint=f"name one or more ({', '.join(ids())}) or use --all")
    if all_:
        return list(EXERCISES)
    unknown = [r for r in requested if r not in _BY_ID]
    if unknown:
        raise UsageError(f"unknown exercise{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                         hint=f"valid exercises: {', '.join(ids())}")
    wanted = set(requested)
    return [e for e in EXERCISES if e.id in wanted]


def with_needs(chosen: Iterable[Exercise]) -> list[Exercise]:
    """``chosen`` plus what they need, needs first, catalogue order otherwise."""
    wanted: set[str] = set()

    def add(e: Exercise) -> None:
        if e.id not in wanted:
            wanted.add(e.id)
            for n in e.needs:
                add(_BY_ID[n])

    for e in chosen:
        add(e)
    ordered = [e for e in EXERCISES if e.id in wanted]
    needed = {n for e in ordered for n in e.needs}
    return [e for e in ordered if e.id in needed] + [e for e in ordered if e.id not in needed]


def manifest_path(exercise: Exercise) -> Path:
    from labctl.resources import manifests_dir

    return manifests_dir() / exercise.file


def load_objects(exercise: Exercise) -> list[dict]:
    """The exercise's objects as written in its manifest file, in file order."""
    import yaml

    path = manifest_path(exercise)
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except FileNotFoundError:
        raise NotFound(f"manifest {path} of exercise {exercise.id} is missing", hint="reinstall labctl: `pip install --force-reinstall labctl`") from None
    return [d for d in docs if d]
