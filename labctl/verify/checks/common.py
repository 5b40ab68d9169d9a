"""Steps that many checks share: fetch an object or say how to create it, Pod state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from labctl.verify.assertions import match
from labctl.verify.model import Attempt

T = TypeVar("T")
R = TypeVar("R")


def fetch(ctx, att: Attempt, kind: str, name: str, *, namespace: str | None = None, exercise: str | None = None) -> dict | None:
    """The live object, or None after recording why it is missing and how to fix that."""
    ns = namespace or ctx.namespace
    obj = ctx.cluster.find(kind, name, ns)
    if obj is None:
        att.fail(f"{kind} {ns}/{name}", note="not found")
        if exercise:
            att.hint(f"create it: `labctl apply {exercise}`")
            # Nothing creates an exercise on its own: waiting for it is pointless.
            att.final = True
        return None
    att.about(kind, name, ns)
    return obj


def expect(att: Attempt, expected: Any, actual: Any, path: str = "") -> bool:
    found = match(expected, actual, path)
    att.extend(found)
    return not found


def ready_containers(names: Iterable[str]) -> dict:
    return {"status": {"phase": "Running", "containerStatuses": [{"name": n, "ready": True} for n in names]}}


def container_names(pod: dict) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]


def pod_is_ready(pod: dict) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def selector_string(selector: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def in_parallel(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items`` at once: probes of several nodes each wait on the network,
    and a probe that must time out should not add its timeout once per node."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="probe") as pool:
        return list(pool.map(fn, items))
