"""The provider seam: what labctl needs of whatever runs the lab's machines.

Vagrant (labctl.providers.vagrant) is the first implementation; the in-memory one
(labctl.providers.memory) lets the lifecycle's logic be tested without any VM. A new
provider (Hyper-V, a remote libvirt host, ...) implements this Protocol and is added
to labctl.providers.PROVIDERS; nothing above this seam changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

# What a machine's state is called when it runs; anything else needs an `up`.
RUNNING = "running"
NOT_CREATED = "not_created"

# (machine name, what happened) for progress; "" as the name means the whole lab
# (e.g. a box download before any machine boots).
MachineEvent = Callable[[str, str], None]


@dataclass(frozen=True)
class MachineState:
    name: str
    state: str  # the provider's state id: "running", "poweroff", "not_created", "saved", ...
    provider: str

    @property
    def running(self) -> bool:
        return self.state == RUNNING


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to log in to a machine (what `vagrant ssh-config` says)."""

    name: str
    host: str
    port: int
    user: str
    key_file: Path


@runtime_checkable
class Provider(Protocol):
    """The lab's machines. Every method may raise a LabError naming the fix."""

    name: str  # e.g. "virtualbox" (what lab.yaml's `provider:` says)

    def has_machines(self) -> bool:
        """Whether the lab was ever brought up here; False means nothing to query or stop,
        and asking must not create anything in the lab folder."""
        ...

    def states(self) -> dict[str, MachineState]: ...

    def up(self, names: Sequence[str], *, parallel: int, on_event: MachineEvent | None = None) -> None:
        """Boot ``names`` (at most ``parallel`` at once); return once each runs."""
        ...

    def halt(self, names: Iterable[str]) -> None: ...

    def destroy(self, names: Iterable[str] = ()) -> None: ...

    def snapshot_save(self, snapshot: str) -> None: ...

    def snapshot_restore(self, snapshot: str) -> None: ...

    def snapshot_delete(self, snapshot: str) -> None: ...

    def snapshot_list(self) -> dict[str, list[str]]:
        """Snapshots per machine; machines without any map to []."""
        ...

    def ssh_target(self, name: str) -> SSHTarget:
        """Read anew on every call: a forwarded port may move at every `up`."""
        ...
