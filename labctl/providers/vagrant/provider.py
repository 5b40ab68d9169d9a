"""Vagrant as a labctl Provider (labctl.providers.base): the lab's machines are the
machines its rendered Vagrantfile defines, on the host provider lab.yaml names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from labctl.providers.base import MachineEvent, MachineState, SSHTarget
from labctl.providers.vagrant.driver import VagrantDriver
from labctl.providers.vagrant.hosts import host_provider


class VagrantProvider:
    """One lab folder's machines through the `vagrant` CLI.

    ``env`` is added to the caller's environment for every call (e.g. VAGRANT_HOME);
    ``box`` is (name, version) of the box the Vagrantfile pins.
    """

    def __init__(
        self,
        lab_dir: Path,
        *,
        log_dir: Path,
        host: str,
        box: tuple[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        executable: str = "vagrant",
        kill_grace: float = 10.0,
    ) -> None:
        self.name = host
        self.lab_dir = Path(lab_dir)
        self.box = box
        self._env = dict(env or {})
        self.host = host_provider(host)
        self.driver = VagrantDriver(self.lab_dir, log_dir=log_dir, env=env, executable=executable,
                                    kill_grace=kill_grace)

    def has_machines(self) -> bool:
        # Vagrant writes .vagrant/machines/NAME/PROVIDER/id when it creates a machine and
        # removes it on destroy. Asking `vagrant status` instead would create .vagrant/
        # in a folder that was never brought up.
        return any(self.lab_dir.glob(".vagrant/machines/*/*/id"))

    def states(self) -> dict[str, MachineState]:
        return self.driver.status()

    def up(self, names: Sequence[str], *, parallel: int, on_event: MachineEvent | None = None) -> None:
        names = list(dict.fromkeys(names))
        if not names:
            return
        if self.host.add_box_first and self.box and len(names) > 1 and parallel > 1:
            self._add_box_once(on_event)
        self.driver.up(names, max_parallel=parallel, provider=self.name, on_event=on_event,
                       first_alone_until=self.host.first_alone_until)

    def _add_box_once(self, on_event: MachineEvent | None) -> None:
        from filelock import FileLock, Timeout

        from labctl.errors import LabLocked
        from labctl.providers.vagrant.cli import BOX_ADD_TIMEOUT

        box, version = self.box  # type: ignore[misc]
        if self.driver.has_box(box, version, self.name):
            return
        # Boxes are shared by every lab of a user ($VAGRANT_HOME): a second lab brought up
        # at the same time waits for the first one's download instead of racing it.
        lock = FileLock(str(self._box_store() / "labctl-box-add.lock"))
        try:
            with lock.acquire(timeout=BOX_ADD_TIMEOUT):
                if self.driver.has_box(box, version, self.name):
                    return  # another lab added it while this one waited
                if on_event:
                    on_event("", f"adding box {box} {version} for {self.name} (once, before the machines boot)")
                self.driver.box_add(box, version, self.name)
        except Timeout:
            raise LabLocked(f"another labctl has been adding box {box} {version} for {BOX_ADD_TIMEOUT / 60:.0f} minutes",
                            hint=f"let it finish (or stop it), then run `labctl up` again; the lock is {lock.lock_file}") from None

    def _box_store(self) -> Path:
        import os

        home = Path(self._env.get("VAGRANT_HOME") or os.environ.get("VAGRANT_HOME") or "~/.vagrant.d").expanduser()
        home.mkdir(parents=True, exist_ok=True)
        return home

    def halt(self, names: Iterable[str]) -> None:
        self.driver.halt(names)

    def destroy(self, names: Iterable[str] = ()) -> None:
        self.driver.destroy(names)

    def snapshot_save(self, snapshot: str) -> None:
        self.driver.snapshot_save(snapshot)

    def snapshot_restore(self, snapshot: str) -> None:
        self.driver.snapshot_restore(snapshot)

    def snapshot_delete(self, snapshot: str) -> None:
        self.driver.snapshot_delete(snapshot)

    def snapshot_list(self) -> dict[str, list[str]]:
        return self.driver.snapshot_list()

    def ssh_target(self, name: str) -> SSHTarget:
        return self.driver.ssh_target(name)
