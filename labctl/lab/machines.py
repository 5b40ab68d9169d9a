"""`labctl halt`, `destroy` and `snapshot`: the lab's machines, through its provider.

A lab whose machines were never created (or were destroyed) has nothing to halt or
destroy: both say so and exit 0, since what the person asked for (no running VM, no
VM at all) already holds and re-running a command is always safe. Neither writes
anything into such a folder (no .labctl/, no .vagrant/). A snapshot of such a lab does
not exist: save/restore/delete raise NotFound (exit 8) with the fix.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from labctl.errors import NotFound, UsageError
from labctl.lab import events as ev
from labctl.lab.command import changing
from labctl.lab.lab import Lab


@dataclass
class MachinesResult:
    command: str
    machines: list[str] = field(default_factory=list)  # what the command acted on
    removed: list[str] = field(default_factory=list)  # files destroy removed

    @property
    def nothing_to_do(self) -> bool:
        return not self.machines

    def to_dict(self) -> dict:
        key = {"halt": "halted", "destroy": "destroyed"}[self.command]
        d = {"ok": True, key: self.machines, "nothing_to_do": self.nothing_to_do}
        if self.command == "destroy":
            d["removed"] = self.removed
        return d


def _untouched(lab: Lab) -> bool:
    """Never brought up here: no labctl folder and no machine. Checked before the lock,
    which would create .labctl/; a lab with .labctl/ is checked again under it."""
    if not lab.root.is_dir():
        raise NotFound(f"lab folder {lab.root} does not exist", hint="check --dir (or $LABCTL_DIR); `labctl init` makes a lab")
    return not lab.paths.meta.exists() and not lab.provider.has_machines()


def halt(lab: Lab, *, sinks: Sequence[ev.Sink] = ()) -> MachinesResult:
    result = MachinesResult("halt")
    if _untouched(lab):
        return result

    def fn(bus: ev.EventBus) -> MachinesResult:
        if not lab.provider.has_machines():
            bus.emit(ev.INFO, f"lab {lab.spec.name} has no machines to halt")
            return result
        lab.provider.halt(lab.names)
        for n in lab.names:
            bus.emit(ev.MACHINE, "halted", node=n, status="poweroff")
        result.machines = list(lab.names)
        return result

    return changing(lab, "halt", sinks, fn)


def destroy(lab: Lab, *, sinks: Sequence[ev.Sink] = ()) -> MachinesResult:
    """Remove the VMs and everything labctl knows about them; keep lab.yaml."""
    from labctl.lab.state import forget_state
    from labctl.remote.hostkeys import forget_host_keys

    result = MachinesResult("destroy")
    if _untouched(lab) and not lab.paths.kubeconfig.exists():
        return result

    def fn(bus: ev.EventBus) -> MachinesResult:
        paths = lab.paths
        if lab.provider.has_machines():
            lab.provider.destroy()
            for n in lab.names:
                bus.emit(ev.MACHINE, "destroyed", node=n, status="not_created")
            result.machines = list(lab.names)
        forget_host_keys(paths.known_hosts, lab.names)
        for p in (paths.known_hosts, paths.kubeconfig):
            if p.exists():
                p.unlink()
                result.removed.append(str(p))
        if forget_state(paths):
            result.removed.append(str(paths.state))
        if paths.logs.is_dir():
            shutil.rmtree(paths.logs)
        return result

    return changing(lab, "destroy", sinks, fn)


def snapshot_list(lab: Lab) -> dict[str, list[str]]:
    """Snapshots per machine; {} for a lab without machines. Reads only."""
    if not lab.provider.has_machines():
        return {}
    return lab.provider.snapshot_list()


def _check_name(action: str, name: str | None) -> str:
    if not name:
        raise UsageError(f"snapshot {action} needs a NAME", hint=f"labctl snapshot {action} NAME")
    if name.startswith("-"):
        raise UsageError(f"snapshot name {name!r} is not valid", hint="use letters, digits, '-' or '_'")
    return name


def _existing(lab: Lab, name: str) -> None:
    have = lab.provider.snapshot_list()
    if not any(name in snaps for snaps in have.values()):
        known = sorted({s for snaps in have.values() for s in snaps})
        raise NotFound(f"no snapshot named {name!r} in lab {lab.spec.name}",
                       hint="snapshots: " + (", ".join(known) if known else "none; `labctl snapshot save NAME` makes one"))


def snapshot_save(lab: Lab, name: str | None, *, sinks: Sequence[ev.Sink] = ()) -> str:
    snap = _check_name("save", name)
    lab.require_machines("snapshot")
    return changing(lab, "snapshot save", sinks, lambda bus: (lab.provider.snapshot_save(snap), snap)[1])


def snapshot_restore(lab: Lab, name: str | None, *, sinks: Sequence[ev.Sink] = ()) -> str:
    return _on_existing(lab, "restore", name, "restore a snapshot of", lab.provider.snapshot_restore, sinks)


def snapshot_delete(lab: Lab, name: str | None, *, sinks: Sequence[ev.Sink] = ()) -> str:
    return _on_existing(lab, "delete", name, "delete a snapshot of", lab.provider.snapshot_delete, sinks)


def _on_existing(lab: Lab, action: str, name: str | None, what: str, op, sinks: Sequence[ev.Sink]) -> str:
    """restore and delete: a snapshot that must exist, checked under the lab lock."""
    snap = _check_name(action, name)
    lab.require_machines(what)

    def fn(bus: ev.EventBus) -> str:
        _existing(lab, snap)
        op(snap)
        return snap

    return changing(lab, f"snapshot {action}", sinks, fn)


SNAPSHOT_ACTIONS = {"save": snapshot_save, "restore": snapshot_restore, "delete": snapshot_delete}
