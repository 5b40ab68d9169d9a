"""How lifecycle events reach the person (or script) that started the command.

Three renderers, all event sinks (labctl.lab.events):
- LiveView: a terminal; one line per node with its current step, redrawn in place.
- PlainLines: output is a pipe or a file; one line per change, nothing redrawn.
- JsonLines: `--json`; one JSON object per event per line, for scripts.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO

from labctl.lab import events as ev

_MARK = {ev.DONE: "ok", ev.SKIPPED: "skip", ev.FAILED: "FAILED", ev.RUNNING: "..", ev.PENDING: "  "}


def make_renderer(*, as_json: bool = False, stream: IO[str] | None = None, live: bool | None = None) -> ev.Sink:
    stream = stream or sys.stdout
    if as_json:
        return JsonLines(stream)
    if live is None:
        live = stream.isatty()
    return LiveView(stream) if live else PlainLines(stream)


class JsonLines:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, e: ev.Event) -> None:
        if e.kind == ev.OUTPUT:
            return  # the node's log has every line; scripts want the changes
        self.stream.write(json.dumps(e.to_dict(), default=str) + "\n")
        self.stream.flush()


def _describe(e: ev.Event) -> str | None:
    """One human line for an event, or None when it is not worth a line."""
    who = f"[{e.node}] " if e.node else ""
    if e.kind == ev.PHASE:
        if e.status == ev.RUNNING:
            return f"== {e.phase}" + (f": {e.message}" if e.message else "")
        return None
    if e.kind == ev.STEP:
        if e.status == ev.RUNNING:
            return f"{who}{e.step}: running"
        took = e.data.get("seconds")
        tail = f" ({took:.1f}s)" if isinstance(took, (int, float)) else ""
        if e.status == ev.SKIPPED:
            return f"{who}{e.step}: skipped ({e.message})"
        if e.status == ev.FAILED:
            return f"{who}{e.step}: FAILED{tail}: {e.message}"
        return f"{who}{e.step}: done{tail}"
    if e.kind == ev.MACHINE:
        return f"{who}vm: {e.message or e.status}"
    if e.kind == ev.PLAN:
        return None
    if e.kind == ev.WARNING:
        return f"warning: {who}{e.message}"
    if e.kind == ev.RUN and e.status in (ev.DONE, ev.FAILED):
        # The command prints its result, the error boundary its error (and, on Ctrl-C,
        # the one "run the same command again" line).
        return None
    if e.kind in (ev.INFO, ev.RUN):
        return f"{who}{e.message}" if e.message else None
    return None


class PlainLines:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, e: ev.Event) -> None:
        line = _describe(e)
        if line is None:
            return
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class LiveView:
    """A block of one line per node at the bottom of the terminal, redrawn in place;
    phase changes, warnings and results scroll above it."""

    MIN_INTERVAL = 0.1  # redraws per second are capped: output lines arrive fast

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._rows: dict[str, dict] = {}
        self._drawn = 0
        self._last_draw = 0.0

    def __call__(self, e: ev.Event) -> None:
        with self._lock:
            if e.node and e.kind in (ev.STEP, ev.MACHINE, ev.OUTPUT, ev.PLAN):
                row = self._rows.setdefault(e.node, {"what": "", "status": ev.PENDING, "since": e.ts, "last": ""})
                if e.kind == ev.OUTPUT:
                    row["last"] = e.message[-60:]
                elif e.kind == ev.STEP or e.kind == ev.MACHINE:
                    row.update(what=e.step or "vm", status=e.status or "", since=e.ts, last=e.message if e.status != ev.RUNNING else "")
            scroll = _describe(e) if e.kind in (ev.PHASE, ev.WARNING, ev.INFO, ev.RUN) or (e.kind == ev.STEP and e.status == ev.FAILED) else None
            now = time.monotonic()
            if scroll is None and e.kind == ev.OUTPUT and now - self._last_draw < self.MIN_INTERVAL:
                return
            self._redraw(scroll)
            self._last_draw = now

    def _redraw(self, scroll: str | None) -> None:
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")  # to the first line of the block
            out.append("\x1b[J")  # clear it and everything below
        if scroll:
            out.append(scroll + "\n")
        width = max((len(n) for n in self._rows), default=0)
        now = time.time()
        for node, row in self._rows.items():
            mark = _MARK.get(row["status"], row["status"])
            took = f"{now - row['since']:5.0f}s" if row["status"] == ev.RUNNING else "      "
            detail = row["last"].replace("\n", " ")
            out.append(f"{node:<{width}}  {mark:<6} {row['what']:<16} {took}  {detail}"[:150] + "\n")
        self._drawn = len(self._rows)
        self.stream.write("".join(out))
        self.stream.flush()
