"""What `labctl up` (and the other lifecycle commands) report while they work.

The engine never prints: it emits Events. Sinks subscribe to them: the state file
(labctl.lab.state), the console renderers (labctl.report.progress) and tests. An event
carries no secret: the engine redacts messages before emitting (see Redactor).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.remote.log import Redactor  # one redaction rule for logs and events

# Step and machine statuses, as they appear in events and in .labctl/state.json.
PENDING, RUNNING, DONE, SKIPPED, FAILED = "pending", "running", "done", "skipped", "failed"
STATUSES = (PENDING, RUNNING, DONE, SKIPPED, FAILED)

# Event kinds.
RUN = "run"  # a command (up, halt, ...) starts or ends: status running/done/failed
PHASE = "phase"  # a phase of a lifecycle starts or ends
MACHINE = "machine"  # a VM's progress (vagrant up/halt/...)
PLAN = "plan"  # one planned step for one node: status pending or skipped (with reason)
STEP = "step"  # a step on a node changes status
OUTPUT = "output"  # one line of a step's output (only for the live view; not stored)
INFO = "info"
WARNING = "warning"


@dataclass(frozen=True)
class Event:
    kind: str
    message: str = ""
    node: str | None = None
    step: str | None = None
    phase: str | None = None
    status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}
        d["ts"] = round(self.ts, 3)
        return d


Sink = Callable[[Event], None]


class EventBus:
    """Fans events out to sinks, one event at a time (steps run in threads)."""

    def __init__(self, sinks: Iterable[Sink] = (), *, redactor: Redactor | None = None) -> None:
        self._sinks = list(sinks)
        self._lock = threading.Lock()
        self.redactor = redactor or Redactor()

    def subscribe(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def emit(self, kind: str, message: str = "", **kw: Any) -> Event:
        event = Event(kind=kind, message=self.redactor(message), **kw)
        with self._lock:
            for sink in self._sinks:
                sink(event)
        return event

    __call__ = emit
