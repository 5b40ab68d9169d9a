"""The Vagrant driver: the `vagrant` subcommands labctl uses, one method each.

`up` starts one `vagrant up NAME --no-provision` per machine (VirtualBox has no
--parallel), at most ``max_parallel`` at once, each with its own deadline and log
(vagrant/boot.py). Which host provider needs what before a parallel boot (a box added
once, a first machine booted alone) is vagrant/provider.py's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from labctl.errors import UsageError, VagrantFailed
from labctl.providers.base import SSHTarget
from labctl.providers.vagrant import parse as vagrant_cli
from labctl.providers.vagrant.boot import boot_machines
from labctl.providers.vagrant.cli import (
    BOOT_TIMEOUT,
    BOX_ADD_TIMEOUT,
    CHANGE_TIMEOUT,
    INSTALL_HINT,
    QUERY_TIMEOUT,
    VagrantCLI,
)
from labctl.providers.vagrant.hosts import LIBVIRT_SHARED_READY, host_provider
from labctl.providers.vagrant.parse import BoxEntry, MachineState, SSHConfig

__all__ = ["MachineState", "SSHConfig", "VagrantDriver", "INSTALL_HINT", "LIBVIRT_SHARED_READY",
           "QUERY_TIMEOUT", "CHANGE_TIMEOUT", "BOOT_TIMEOUT"]


class VagrantDriver(VagrantCLI):
    # -- queries -----------------------------------------------------------------------

    def version(self) -> str:
        """The version number, e.g. "2.3.4" (`vagrant --version` prints "Vagrant 2.3.4")."""
        out = self._run(["--version"], timeout=QUERY_TIMEOUT).stdout.strip()
        words = out.split()
        if len(words) < 2 or words[0] != "Vagrant":
            raise VagrantFailed("vagrant --version", 0, out, hint="unexpected output; is `vagrant` HashiCorp Vagrant?",
                                what=f"`vagrant --version` (printed {out[:60]!r}, no version)")
        return words[1]

    def status(self) -> dict[str, MachineState]:
        args = ["status", "--machine-readable"]
        result = self._run(args, timeout=QUERY_TIMEOUT)
        states = vagrant_cli.parse_status(result.stdout)
        if not states:
            text = "\n".join(vagrant_cli.human_lines(result.stdout + "\n" + result.stderr))
            raise self._failed(args, result.rc, text, where="localhost",
                               what="`vagrant status` (listed no machine)",
                               hint="check the Vagrantfile in the lab folder: `labctl render`")
        return states

    def ssh_config(self, name: str) -> SSHConfig:
        """`vagrant ssh-config NAME`, read anew on every call: the forwarded port can
        change at every `up` (VirtualBox's port collision handling)."""
        args = ["ssh-config", name]
        result = self._run(args, timeout=QUERY_TIMEOUT, where=name)
        try:
            return vagrant_cli.parse_ssh_config(result.stdout)
        except ValueError as exc:
            raise VagrantFailed(self._display(args), result.rc, result.stdout + result.stderr, where=name,
                                what=f"`{self._display(args)}` (no usable Host block: {exc})",
                                hint="run `vagrant ssh-config NAME` in the lab folder to see why") from None

    def ssh_target(self, name: str) -> SSHTarget:
        conf = self.ssh_config(name)
        if not conf.identity_files:
            raise VagrantFailed(f"vagrant ssh-config {name}", 0, "", where=name,
                                what=f"`vagrant ssh-config {name}` (no IdentityFile)",
                                hint="labctl logs in with the machine's key; check config.ssh in the Vagrantfile")
        # Once Vagrant replaced the insecure key at first boot it lists only the machine's
        # own key; before that its insecure key(s), any of which logs in.
        return SSHTarget(name=name, host=conf.hostname, port=conf.port, user=conf.user,
                         key_file=Path(conf.identity_files[0]))

    def snapshot_list(self) -> dict[str, list[str]]:
        """Snapshots per machine; machines without any (or not created) map to []."""
        result = self._run(["snapshot", "list", "--machine-readable"], timeout=QUERY_TIMEOUT)
        return vagrant_cli.parse_snapshot_list(result.stdout)

    def box_list(self) -> list[BoxEntry]:
        """Boxes installed for this user (`vagrant box list`; global, not per lab)."""
        result = self._run(["box", "list", "--machine-readable"], timeout=QUERY_TIMEOUT)
        return vagrant_cli.parse_box_list(result.stdout)

    def has_box(self, box: str, version: str, provider: str) -> bool:
        return any(b.name == box and b.version == version and b.provider == provider for b in self.box_list())

    def box_add(self, box: str, version: str, provider: str, *, deadline: float = BOX_ADD_TIMEOUT) -> None:
        """Download a box once, logged like a boot (it can take many minutes)."""
        args = ["box", "add", box, "--box-version", version, "--provider", provider, "--machine-readable"]
        self._run_logged(args, machine="localhost", log_name="vagrant-box-add.log", deadline=deadline)

    # -- changes -----------------------------------------------------------------------

    def up(
        self,
        names: Sequence[str],
        *,
        max_parallel: int = 3,
        deadline: float = BOOT_TIMEOUT,
        provider: str | None = None,
        on_event: Callable[[str, str], None] | None = None,
        first_alone_until: str | None = None,
    ) -> None:
        """Bring ``names`` up, ``max_parallel`` `vagrant up` processes at a time (boot.py).

        ``first_alone_until``: the first machine boots alone until this line appears in
        its output (by default what vagrant/hosts.py says of ``provider``)."""
        if max_parallel < 1:
            raise UsageError(f"max_parallel must be >= 1, not {max_parallel}", hint="pass 1 to boot one at a time")
        names = list(dict.fromkeys(names))
        if not names:
            return
        self._exe()  # a missing binary is one HostNotReady, not one failure per machine
        if first_alone_until is None:
            first_alone_until = host_provider(provider).first_alone_until
        boot_machines(self, names, max_parallel=max_parallel, deadline=deadline, provider=provider,
                      on_event=on_event, first_alone_until=first_alone_until)
        self._check_running(names)

    def _check_running(self, names: Sequence[str]) -> None:
        """`vagrant up` exited 0; make sure Vagrant agrees each machine runs."""
        states = self.status()
        for name in names:
            st = states.get(name)
            if st is None or st.state != "running":
                raise VagrantFailed(
                    f"vagrant up {name} --no-provision", 0, "", where=name,
                    what=f"`vagrant up {name}` (machine {st.state if st else 'missing'} afterwards)",
                    log_path=str(self.log_dir / f"vagrant-up-{name}.log"),
                    hint="read the log; `vagrant status` in the lab folder shows the state",
                )

    def halt(self, names: Iterable[str] = (), *, timeout: float = CHANGE_TIMEOUT) -> None:
        names = list(names)  # one vagrant process for all: Ruby's start-up is the slow part
        self._run(["halt", *names, "--machine-readable"], timeout=timeout, where=",".join(names) or "localhost")

    def destroy(self, names: Iterable[str] = (), *, timeout: float = CHANGE_TIMEOUT) -> None:
        names = list(names)
        self._run(["destroy", *names, "-f", "--machine-readable"], timeout=timeout,
                  where=",".join(names) or "localhost")

    def snapshot_save(self, name: str, machines: Iterable[str] = (), *, force: bool = False,
                      timeout: float = CHANGE_TIMEOUT) -> None:
        extra = ["--force"] if force else []
        self._snapshot("save", name, machines, extra, timeout)

    def snapshot_restore(self, name: str, machines: Iterable[str] = (), *, timeout: float = BOOT_TIMEOUT) -> None:
        self._snapshot("restore", name, machines, ["--no-provision"], timeout)

    def snapshot_delete(self, name: str, machines: Iterable[str] = (), *, timeout: float = CHANGE_TIMEOUT) -> None:
        self._snapshot("delete", name, machines, [], timeout)

    def _snapshot(self, verb: str, snap: str, machines: Iterable[str], extra: list[str], timeout: float) -> None:
        if not snap or snap.startswith("-"):
            raise UsageError(f"snapshot name {snap!r} is not valid", hint="use letters, digits, '-' or '_'")
        # `vagrant snapshot VERB [vm-name] <name>`: machine before the snapshot name.
        for machine in list(machines) or [None]:
            args = ["snapshot", verb, *([machine] if machine else []), snap, *extra, "--machine-readable"]
            self._run(args, timeout=timeout, where=machine or "localhost")
