"""An in-memory node for engine tests: no SSH, no processes.

Speaks the engine's Session protocol (run, put, put_file, add_secret). A node is a
dict of facts; running a step's command applies that step's declared effect to the
facts (or fails as told), so the engine's graph, skips, postconditions and failures
are exercised fast. The real-sshd tests (test_engine.py, tests/lab) cover the wire.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from labctl.bootstrap import steps as cat


@dataclass
class Result:
    command: str
    rc: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class MemoryNode:
    name: str
    facts: dict[str, str]
    # step id -> facts it sets when it runs (its effect), or an exception to its run
    effects: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    runs: list[tuple[str, float, float]] = field(default_factory=list)  # (step, start, end)
    files: dict[str, bytes] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    clock: list = field(default_factory=list)  # shared across a lab: (time, node, step, edge)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- Session -----------------------------------------------------------------------
    def run(self, command: str, **kw) -> Result:
        if command == cat.facts_command():
            with self.lock:
                return Result(command, 0, "".join(f"{k}={v}\n" for k, v in self.facts.items()))
        words = shlex.split(command)
        if words[:2] == ["sudo", "bash"] and words[2].startswith(cat.REMOTE_SCRIPTS + "/"):
            step = Path(words[2]).stem
            if f"{cat.REMOTE_SCRIPTS}/{step}.sh" not in self.files:
                return Result(command, 127, "", f"bash: {words[2]}: No such file or directory")
            start = time.monotonic()
            self.clock.append((start, self.name, step, "start"))
            time.sleep(self.delays.get(step, 0.0))
            if step in self.failures:
                rc, out = self.failures.pop(step)
                end = time.monotonic()
                self.runs.append((step, start, end))
                self.clock.append((end, self.name, step, "end"))
                return Result(command, rc, "", out)
            with self.lock:
                self.facts.update(self.effects.get(step, {}))
            end = time.monotonic()
            self.runs.append((step, start, end))
            self.clock.append((end, self.name, step, "end"))
            return Result(command, 0, f"labctl: {step} done\n")
        return Result(command, 127, "", f"memory node: {command}: not emulated")

    def put(self, data, remote_path: str, *, mode: int = 0o644, sudo: bool = False) -> None:
        self.files[remote_path] = data.encode() if isinstance(data, str) else bytes(data)

    def put_file(self, local_path, remote_path: str, *, mode: int = 0o644, sudo: bool = False, sha256=None) -> None:
        self.files[remote_path] = Path(local_path).read_bytes()

    def add_secret(self, value: str) -> None:
        self.secrets.append(value)

    @property
    def steps_run(self) -> list[str]:
        return [s for s, _, _ in self.runs]
