"""An in-memory node for engine tests: a responder behind labctl.remote.memory's
MemorySession (the same Session the lab's other fast tests use), no SSH, no processes.

A node is a dict of facts; running a step's script applies that step's declared
effect to the facts (or fails as told), so the engine's graph, skips, postconditions
and failures are exercised fast. The real-sshd tests (test_engine.py, tests/lab) cover
the wire.
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from labctl.bootstrap import steps as cat
from labctl.remote.memory import MemorySession

_UPLOAD = re.compile(r"^set -e; dest=(\S+);")


@dataclass
class MemoryNode:
    name: str
    facts: dict[str, str]
    # step id -> facts it sets when it runs (its effect)
    effects: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    runs: list[tuple[str, float, float]] = field(default_factory=list)  # (step, start, end)
    files: dict[str, bytes] = field(default_factory=dict)
    clock: list = field(default_factory=list)  # shared across a lab: (time, node, step, edge)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self) -> MemorySession:
        return MemorySession(self.name, self)

    # -- responder: (command as the node receives it, stdin) -> (rc, stdout, stderr) --------
    def __call__(self, command: str, stdin: bytes | None) -> tuple[int, str, str]:
        words = shlex.split(command)
        if words[:5] == ["sudo", "-n", "-H", "--", "bash"] and words[5:6] == ["-c"]:
            command, words = words[6], shlex.split(words[6])
        if (m := _UPLOAD.match(command)) is not None:
            self.files[shlex.split(m.group(1))[0]] = stdin or b""
            return 0, "", ""
        if command == cat.facts_command():
            with self.lock:
                return 0, "".join(f"{k}={v}\n" for k, v in self.facts.items()), ""
        if words[:2] == ["sudo", "bash"] and words[2].startswith(cat.REMOTE_SCRIPTS + "/"):
            return self._step(Path(words[2]).stem, words[2])
        return 127, "", f"memory node: {command}: not emulated"

    def _step(self, step: str, path: str) -> tuple[int, str, str]:
        if f"{cat.REMOTE_SCRIPTS}/{step}.sh" not in self.files:
            return 127, "", f"bash: {path}: No such file or directory"
        start = time.monotonic()
        self.clock.append((start, self.name, step, "start"))
        time.sleep(self.delays.get(step, 0.0))
        failure = self.failures.pop(step, None)
        if failure is None:
            with self.lock:
                self.facts.update(self.effects.get(step, {}))
        end = time.monotonic()
        self.runs.append((step, start, end))
        self.clock.append((end, self.name, step, "end"))
        if failure is not None:
            return failure[0], "", failure[1]
        return 0, f"labctl: {step} done\n", ""

    @property
    def steps_run(self) -> list[str]:
        return [s for s, _, _ in self.runs]
