"""What every lab-changing command shares: the lab lock, RUN events around the work,
PHASE events around a stage, and a failure's data for the state file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from labctl.errors import LabError
from labctl.lab import events as ev
from labctl.lab.lab import Lab
from labctl.lab.lock import lab_lock

T = TypeVar("T")


@contextmanager
def stage(bus: ev.EventBus, name: str, message: str = ""):
    bus.emit(ev.PHASE, message, phase=name, status=ev.RUNNING)
    yield
    bus.emit(ev.PHASE, "", phase=name, status=ev.DONE)


def failure_data(err: BaseException) -> dict[str, Any]:
    if isinstance(err, LabError):
        d = err.to_dict()
        d.pop("message", None)
        return d
    return {"error": type(err).__name__}


def failed(bus: ev.EventBus, err: BaseException) -> None:
    msg = err.message if isinstance(err, LabError) else f"{type(err).__name__}: {err}"
    bus.emit(ev.RUN, msg, status=ev.FAILED, data=failure_data(err))


def changing(lab: Lab, command: str, sinks: Sequence[ev.Sink], fn: Callable[[ev.EventBus], T]) -> T:
    """Run ``fn(bus)`` under the lab lock, between RUN running/done (or failed) events."""
    bus = ev.EventBus(sinks)
    with lab_lock(lab.paths, command):
        bus.emit(ev.RUN, f"labctl {command}: lab {lab.spec.name}", status=ev.RUNNING)
        try:
            result = fn(bus)
        except BaseException as err:
            failed(bus, err)
            raise
        bus.emit(ev.RUN, f"labctl {command}: done", status=ev.DONE)
        return result
