"""What engine-run work may use: a small, explicit context instead of the engine.

Work (a join token, the kubeconfig, pushing files) gets a RunContext and a node; it
never sees the engine, so the engine can import the work and not the other way round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labctl.bootstrap.model import Step
from labctl.errors import CommandFailed
from labctl.lab import events as ev
from labctl.lab.paths import LabPaths
from labctl.spec.model import LabSpec


class Session(Protocol):
    """What bootstrap needs of labctl.remote.ssh.SSHSession."""

    def run(self, command: str, **kw: Any) -> Any: ...
    def put(self, data: bytes | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False) -> None: ...
    def put_file(self, local_path: Path, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
                 sha256: str | None = None) -> None: ...
    def get_file(self, remote_path: str, local_path: Path, *, sudo: bool = False) -> int: ...
    def add_secret(self, value: str) -> None: ...


class StepFailed(CommandFailed):
    """A step's script failed on a node, or ran but left its check unsatisfied."""

    def __init__(self, node: str, step: str, command: str, rc: int | None, output: str, *, log_path: str | None,
                 hint: str | None, what: str | None = None):
        super().__init__(command, rc, output, where=node, log_path=log_path, hint=hint, what=what or f"step {step}")
        self.node = node
        self.step = step

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(node=self.node, step=self.step)
        return d


@dataclass
class BootstrapResult:
    ran: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    kubeconfig_changed: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.ran) or self.kubeconfig_changed


@dataclass
class RunContext:
    spec: LabSpec
    paths: LabPaths
    sessions: Mapping[str, Session]
    bus: ev.EventBus
    # The nodes' latest facts (the engine refreshes them after every step).
    facts: dict[str, dict[str, str]] = field(default_factory=dict)
    # Where pushed files come from: an object with ``files(arch) -> {id: LocalFile}``
    # (labctl/bootstrap/artifacts.py), made on first use.
    artifacts: Callable[[], Any] | None = None
    merge_kubeconfig: Any = None
    # Values read once per run (the CA hash), shared by the nodes' threads.
    memo: dict[str, Any] = field(default_factory=dict)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _artifact_source: Any = None
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._locks = {n.name: threading.Lock() for n in self.spec.nodes}

    @property
    def kubeconfig_path(self) -> Path:
        return self.paths.kubeconfig

    def log_path(self, node: str) -> str:
        return str(self.paths.node_log(node))

    def node_lock(self, node: str) -> threading.Lock:
        """For work several threads would otherwise repeat on one node (the CA hash
        every joining worker needs is read once, under the master's lock)."""
        return self._locks[node]

    def add_secret(self, value: str) -> None:
        """Register a secret everywhere it could leak: every node's log and the events."""
        self.bus.redactor.add(value)
        for s in self.sessions.values():
            s.add_secret(value)

    def artifact_source(self) -> Any:
        with self._guard:
            if self._artifact_source is None:
                if self.artifacts is None:
                    from labctl.bootstrap.artifacts import HostArtifacts

                    self._artifact_source = HostArtifacts.for_spec(self.spec, self.bus)
                else:
                    self._artifact_source = self.artifacts()
            return self._artifact_source


# Engine-run work: (context, node, step) -> whether it changed anything.
Work = Callable[[RunContext, str, Step], bool]
