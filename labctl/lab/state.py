"""The lab's progress record, `.labctl/state.json`, rewritten atomically at every change.

State is for reporting (`labctl status`, the summary after a failure), not for
deciding: `labctl up` re-reads the nodes' facts and trusts them over this file, so a
lab changed by hand, or a state file from an interrupted run, never misleads it.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from labctl.errors import LabFolderError, clip, shown
from labctl.lab import events as ev
from labctl.lab.fsutil import atomic_write
from labctl.lab.paths import LabPaths

VERSION = 1


MAX_BYTES = 16 << 20  # a 10-node lab's state is a few KB
_DAMAGED_HINT = "delete .labctl/state.json (it only records progress; the next `labctl up` writes it again)"


def read_state(paths: LabPaths) -> dict[str, Any] | None:
    """The last recorded state, or None when the lab never ran.

    A state.json that is not labctl's (not JSON, or JSON of another shape) raises
    LabFolderError naming the file and the fix, rather than being half-trusted."""
    try:
        with open(paths.state, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabFolderError(f"{paths.state} cannot be read ({exc.strerror or type(exc).__name__})", hint=_DAMAGED_HINT) from None
    if len(raw) > MAX_BYTES:
        raise LabFolderError(f"{paths.state} is larger than {MAX_BYTES} bytes: not a labctl state file", hint=_DAMAGED_HINT)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise LabFolderError(f"{paths.state} is damaged: not JSON", hint=_DAMAGED_HINT) from None
    problem = _shape_problem(data)
    if problem:
        raise LabFolderError(f"{paths.state} is damaged: {problem}", hint=_DAMAGED_HINT)
    return data


_NUM = (int, float)
_FIELDS: dict[str, tuple[type, ...]] = {
    "lab": (str,), "command": (str,), "result": (str,), "phase": (str, type(None)),
    "started": _NUM, "updated": _NUM, "finished": _NUM + (type(None),), "error": (dict, type(None)),
    "machines": (dict,), "nodes": (dict,),
}


def _shape_problem(data: Any) -> str | None:
    """What makes ``data`` not a state record of this labctl, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        return f"version is {shown(data.get('version'))}, this labctl writes {VERSION}"
    for key, kinds in _FIELDS.items():
        if not isinstance(data.get(key), kinds) or isinstance(data.get(key), bool):
            return f"{key} is {shown(data.get(key))}"
    for name, rec in data["machines"].items():
        if not isinstance(rec, dict):
            return f"machines.{clip(name)} is {shown(rec)}"
    for name, rec in data["nodes"].items():
        steps = rec.get("steps") if isinstance(rec, dict) else None
        if not isinstance(steps, dict) or not all(isinstance(v, dict) for v in steps.values()):
            return f"nodes.{clip(name)}.steps is not a mapping of step records"
    return None


def forget_state(paths: LabPaths) -> bool:
    try:
        paths.state.unlink()
        return True
    except FileNotFoundError:
        return False


class StateRecorder:
    """An event sink that keeps state.json in step with what the engine reports."""

    def __init__(self, paths: LabPaths, *, lab: str, command: str) -> None:
        self.paths = paths
        self._lock = threading.Lock()
        previous = read_state(paths) or {}
        now = time.time()
        # Keep the nodes' last known step statuses so that a failed run followed by a
        # `labctl status` still shows where it stopped; a new run overwrites them as it goes.
        self.data: dict[str, Any] = {
            "version": VERSION,
            "lab": lab,
            "command": command,
            "result": ev.RUNNING,
            "phase": None,
            "started": now,
            "updated": now,
            "finished": None,
            "error": None,
            "machines": previous.get("machines", {}),
            "nodes": previous.get("nodes", {}),
        }
        self._write()

    def __call__(self, event: ev.Event) -> None:
        if event.kind == ev.OUTPUT:
            return
        with self._lock:
            if self._apply(event):
                self.data["updated"] = event.ts
                self._write()

    def _apply(self, e: ev.Event) -> bool:
        d = self.data
        if e.kind == ev.RUN:
            if e.status in (ev.DONE, ev.FAILED):
                d["result"] = e.status if e.status == ev.DONE else e.data.get("result", ev.FAILED)
                d["finished"] = e.ts
                if e.status == ev.FAILED:
                    d["error"] = {"message": e.message, **{k: v for k, v in e.data.items() if k != "result"}}
                else:
                    d["error"] = None
            return True
        if e.kind == ev.PHASE:
            if e.status == ev.RUNNING:
                d["phase"] = e.phase
            return True
        if e.kind == ev.MACHINE and e.node and e.status:
            d["machines"][e.node] = {"state": e.status, "updated": e.ts}
            return True
        if e.kind in (ev.PLAN, ev.STEP) and e.node and e.step:
            steps = d["nodes"].setdefault(e.node, {"steps": {}})["steps"]
            rec = steps.get(e.step, {}) if e.kind == ev.STEP else {}
            rec["status"] = e.status
            rec["phase"] = e.phase
            if e.status == ev.RUNNING:
                rec["started"] = e.ts
                rec.pop("finished", None)
                rec.pop("error", None)
            elif e.status in (ev.DONE, ev.FAILED, ev.SKIPPED) and e.kind == ev.STEP:
                rec["finished"] = e.ts
            if e.status == ev.SKIPPED:
                rec["reason"] = e.message
            if e.status == ev.FAILED:
                rec["error"] = e.message
                for key in ("rc", "log"):
                    if key in e.data:
                        rec[key] = e.data[key]
            steps[e.step] = rec
            return True
        return False

    def _write(self) -> None:
        atomic_write(self.paths.state, json.dumps(self.data, indent=2, sort_keys=True) + "\n", mode=0o600)
