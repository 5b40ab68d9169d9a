"""A Provider whose machines are entries in a dict: for testing the lifecycle's logic
(which machines boot, what halt/destroy/snapshots do, what a provider failure looks
like) without any VM or `vagrant` process. It keeps the Provider Protocol's promises
(labctl.providers.base): has_machines() is False until a machine is created, an up of
a running machine changes nothing, a failure names the machine, the command and a fix.

    p = MemoryProvider(["k8s-master", "k8s-node1"])
    p.fail("up", "k8s-node1", "VT-x is not available")
    p.calls   # [("up", ("k8s-master", "k8s-node1"), 3), ...]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from labctl.errors import VagrantFailed
from labctl.providers.base import NOT_CREATED, RUNNING, MachineEvent, MachineState, SSHTarget


class MemoryProvider:
    def __init__(self, names: Iterable[str], *, name: str = "memory",
                 targets: Mapping[str, SSHTarget] | None = None) -> None:
        self.name = name
        self.machines: dict[str, str] = dict.fromkeys(names, NOT_CREATED)
        self.snapshots: dict[str, list[str]] = {n: [] for n in self.machines}
        self.targets = dict(targets or {})
        self.calls: list[tuple] = []
        self._failures: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # -- test controls --------------------------------------------------------------------

    def fail(self, verb: str, machine: str = "*", output: str = "injected failure") -> None:
        """The next calls of ``verb`` on ``machine`` ("*": any) fail with ``output``."""
        self._failures[(verb, machine)] = output

    def clear_failures(self) -> None:
        self._failures.clear()

    def _check(self, verb: str, machine: str) -> None:
        output = self._failures.get((verb, machine)) or self._failures.get((verb, "*"))
        if output is not None:
            raise VagrantFailed(f"{self.name} {verb} {machine}", 1, output, where=machine,
                                hint=f"{self.name}: {verb} of {machine} failed on purpose")

    def _record(self, *call) -> None:
        with self._lock:
            self.calls.append(call)

    # -- the Provider Protocol ------------------------------------------------------------

    def has_machines(self) -> bool:
        return any(state != NOT_CREATED for state in self.machines.values())

    def states(self) -> dict[str, MachineState]:
        self._record("states")
        return {n: MachineState(n, s, self.name) for n, s in self.machines.items()}

    def up(self, names: Sequence[str], *, parallel: int, on_event: MachineEvent | None = None) -> None:
        names = list(dict.fromkeys(names))
        self._record("up", tuple(names), parallel)
        emit = on_event or (lambda _n, _e: None)
        for name in names:
            self._known(name)
            emit(name, "started")
            try:
                self._check("up", name)
            except VagrantFailed:
                emit(name, "failed")
                raise
            self.machines[name] = RUNNING
            emit(name, "running")

    def halt(self, names: Iterable[str]) -> None:
        names = list(names)
        self._record("halt", tuple(names))
        for name in names:
            self._check("halt", name)
            if self.machines[name] == RUNNING:
                self.machines[name] = "poweroff"

    def destroy(self, names: Iterable[str] = ()) -> None:
        names = list(names) or list(self.machines)
        self._record("destroy", tuple(names))
        for name in names:
            self._check("destroy", name)
            self.machines[name] = NOT_CREATED
            self.snapshots[name] = []

    def snapshot_save(self, snapshot: str) -> None:
        self._record("snapshot_save", snapshot)
        for name, state in self.machines.items():
            if state != NOT_CREATED and snapshot not in self.snapshots[name]:
                self.snapshots[name].append(snapshot)

    def snapshot_restore(self, snapshot: str) -> None:
        self._record("snapshot_restore", snapshot)
        for name, snaps in self.snapshots.items():
            if snapshot in snaps:
                self.machines[name] = RUNNING

    def snapshot_delete(self, snapshot: str) -> None:
        self._record("snapshot_delete", snapshot)
        for snaps in self.snapshots.values():
            if snapshot in snaps:
                snaps.remove(snapshot)

    def snapshot_list(self) -> dict[str, list[str]]:
        self._record("snapshot_list")
        return {n: list(s) for n, s in self.snapshots.items()}

    def ssh_target(self, name: str) -> SSHTarget:
        self._known(name)
        if self.machines[name] != RUNNING:
            raise VagrantFailed(f"{self.name} ssh-config {name}", 1, "", where=name,
                                what=f"the SSH endpoint of {name} ({self.machines[name]})",
                                hint="the machine is not running: `labctl up` starts it")
        return self.targets.get(name) or SSHTarget(name, "127.0.0.1", 22, "vagrant", Path("/nonexistent/key"))

    def _known(self, name: str) -> None:
        if name not in self.machines:
            raise VagrantFailed(f"{self.name} up {name}", 1, "", where=name,
                                what=f"machine {name!r} (not defined)", hint="check lab.yaml's nodes")
