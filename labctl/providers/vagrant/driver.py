"""The Vagrant driver: every call labctl makes to the `vagrant` CLI goes through here.

Why not python-vagrant for these calls: it has no timeout on any call, keeps no
output of a failed call, replaces the whole environment with ``env=`` and caches
ssh-config per machine. The driver runs the same CLI itself (vagrant_proc), parses
the documented machine-readable output (vagrant_cli) and raises VagrantFailed with
the command, the exit code, the last lines and a hint for every non-zero exit.

`up` starts one `vagrant up NAME --no-provision` per machine (VirtualBox has no
--parallel), at most ``max_parallel`` at once, each with its own deadline and log.
When one machine fails, the machines already booting are left to finish (killing
`vagrant up` mid-import leaves half-registered VMs that the next run trips over),
machines not yet started are not started, and the first failure is raised.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.providers.vagrant import parse as vagrant_cli
from labctl.providers.vagrant.parse import MachineState, SSHConfig
from labctl.providers.vagrant.proc import LoggedProcess, ProcResult, run_captured
from labctl.errors import HostNotReady, NotFound, UsageError, VagrantFailed

if TYPE_CHECKING:
    from labctl.remote.ssh import SSHTarget

__all__ = ["MachineState", "SSHConfig", "VagrantDriver"]

INSTALL_HINT = (
    "install Vagrant >= 2.3 (https://developer.hashicorp.com/vagrant/install; on Debian/Ubuntu "
    "`apt install vagrant`) so that `vagrant` is on PATH, then run `labctl doctor`"
)

# Seconds. Short queries answer in a few seconds even with plugins loaded; halt waits
# for a guest's graceful shutdown before forcing it; restore and reload boot the VM.
QUERY_TIMEOUT = 120.0
CHANGE_TIMEOUT = 900.0
BOOT_TIMEOUT = 1800.0
# vagrant-libvirt uploads a box into the storage pool and creates the lab's networks
# under a lock that holds only inside one Vagrant process: a second `vagrant up` started
# alongside snapshots a half-uploaded box volume (its VM finds no boot disk) or fails
# with "network ... already exists". So with libvirt the first machine boots alone
# until its domain starts (this line in its output); the others then follow together.
LIBVIRT_SHARED_READY = "Starting domain."


class VagrantDriver:
    def __init__(
        self,
        lab_dir: Path,
        *,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        executable: str = "vagrant",
        kill_grace: float = 10.0,
    ) -> None:
        self.lab_dir = Path(lab_dir)
        self.log_dir = Path(log_dir)
        self.extra_env = dict(env or {})
        self.executable = executable
        self.kill_grace = kill_grace

    # -- running the CLI ---------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The caller's environment plus ``env`` (python-vagrant's ``env=`` replaces it
        all, losing PATH and HOME), read at each call."""
        merged = dict(os.environ)
        # Each of our many short calls would otherwise start a version check against
        # HashiCorp's servers; an explicit setting of the user still wins.
        merged.setdefault("VAGRANT_CHECKPOINT_DISABLE", "1")
        merged.update(self.extra_env)
        return merged

    def _exe(self) -> str:
        """The vagrant binary on the PATH the calls will use; checks the lab folder too."""
        if not self.lab_dir.is_dir():
            raise NotFound(f"lab folder {self.lab_dir} does not exist", hint="create it with `labctl init`")
        found = shutil.which(self.executable, path=self.env.get("PATH", os.defpath))
        if not found:
            raise HostNotReady(f"vagrant: `{self.executable}` not found on PATH", hint=INSTALL_HINT)
        return found

    def _display(self, args: Sequence[str]) -> str:
        return " ".join(["vagrant", *args])

    def _failed(self, args: Sequence[str], rc: int | None, text: str, *, where: str, log_path: Path | None = None,
                what: str | None = None, hint: str | None = None, status: str | None = None) -> VagrantFailed:
        """``text`` is the human reading of the output (vagrant_cli.human_lines)."""
        if log_path:
            fallback = f"read {log_path}; once the cause is fixed, `labctl up` continues where it stopped"
        else:
            fallback = f"run `{self._display(args)}` in {self.lab_dir} to see the whole output"
        return VagrantFailed(
            self._display(args),
            rc,
            text,
            where=where,
            log_path=str(log_path) if log_path else None,
            hint=hint or vagrant_cli.hint_for(text) or fallback,
            what=what,
            status=status,
        )

    def _run(self, args: Sequence[str], *, timeout: float, where: str = "localhost") -> ProcResult:
        try:
            result = run_captured(
                [self._exe(), *args], cwd=self.lab_dir, env=self.env, timeout=timeout, grace=self.kill_grace
            )
        except FileNotFoundError as exc:
            raise HostNotReady(f"vagrant: cannot run `{self.executable}`: {exc.strerror}", hint=INSTALL_HINT) from exc
        if not result.succeeded:
            hint = status = None
            if result.rc is None:
                status = f"gave no answer within {timeout:g} s and was stopped"
                hint = f"run `{self._display(args)}` by hand in {self.lab_dir} to see where it hangs"
            text = "\n".join(vagrant_cli.human_lines(result.stdout + "\n" + result.stderr))
            raise self._failed(args, result.rc, text, where=where, hint=hint, status=status)
        return result

    def _start_logged(self, args: Sequence[str], log_name: str,
                      on_line: Callable[[str], None] | None = None) -> LoggedProcess:
        try:
            return LoggedProcess([self._exe(), *args], cwd=self.lab_dir, env=self.env, log_path=self.log_dir / log_name,
                                 on_line=on_line)
        except FileNotFoundError as exc:
            raise HostNotReady(f"vagrant: cannot run `{self.executable}`: {exc.strerror}", hint=INSTALL_HINT) from exc

    def _finish_logged(self, proc: LoggedProcess, args: Sequence[str], machine: str, deadline: float) -> None:
        result = proc.wait(deadline, self.kill_grace)
        if not result.succeeded:
            raise self._timeout_or_failure(args, result, machine, proc.log_path, deadline)

    def _run_logged(self, args: Sequence[str], *, machine: str, log_name: str, deadline: float) -> None:
        self._finish_logged(self._start_logged(args, log_name), args, machine, deadline)

    def _timeout_or_failure(self, args: Sequence[str], result: ProcResult, machine: str, log_path: Path,
                            deadline: float) -> VagrantFailed:
        # LoggedProcess already turned the output into human lines.
        if result.rc is None:
            return self._failed(
                args, None, result.stdout, where=machine, log_path=log_path,
                status=f"was stopped at its deadline of {deadline:g} s",
                hint=f"{machine} was not up within {deadline:g} s and was stopped; read the log, "
                "then run `labctl up` again (it continues) or raise the deadline",
            )
        return self._failed(args, result.rc, result.stdout, where=machine, log_path=log_path)

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
        from labctl.remote.ssh import SSHTarget

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

    # -- changes -----------------------------------------------------------------------

    def up(
        self,
        names: Sequence[str],
        *,
        max_parallel: int = 3,
        deadline: float = BOOT_TIMEOUT,
        provider: str | None = None,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        """Bring ``names`` up, ``max_parallel`` `vagrant up` processes at a time.

        ``deadline`` counts, per machine, from the start of its own process. Events
        (name, "started" | "running" | "failed") go to ``on_event``, which is called from
        worker threads. "running" means `vagrant up` exited 0; once all have, one
        `vagrant status` confirms every machine runs. Raises VagrantFailed for the first
        failed machine in ``names`` order; the others are listed in its evidence.
        """
        if max_parallel < 1:
            raise UsageError(f"max_parallel must be >= 1, not {max_parallel}", hint="pass 1 to boot one at a time")
        names = list(dict.fromkeys(names))
        if not names:
            return
        self._exe()  # a missing binary is one HostNotReady, not one failure per machine
        emit = on_event or (lambda _n, _e: None)
        stop_starting = threading.Event()
        live: dict[str, LoggedProcess] = {}
        guard = threading.Lock()

        shared_ready = threading.Event()
        leader = names[0] if provider == "libvirt" and len(names) > 1 else None
        if leader is None:
            shared_ready.set()

        def watch_leader(line: str) -> None:
            if LIBVIRT_SHARED_READY in line:
                shared_ready.set()

        def one(name: str) -> None:
            args = ["up", name, "--no-provision", "--machine-readable"]
            if provider:
                args += ["--provider", provider]
            if name != leader:
                while not shared_ready.wait(0.5):
                    if stop_starting.is_set():
                        return
            with guard:
                if stop_starting.is_set():
                    return
                live[name] = proc = self._start_logged(args, f"vagrant-up-{name}.log",
                                                       on_line=watch_leader if name == leader else None)
            emit(name, "started")
            try:
                self._finish_logged(proc, args, name, deadline)
            except BaseException:
                stop_starting.set()
                emit(name, "failed")
                raise
            finally:
                if name == leader:
                    shared_ready.set()
            emit(name, "running")

        failures: dict[str, BaseException] = {}
        pool = ThreadPoolExecutor(max_workers=min(max_parallel, len(names)), thread_name_prefix="vagrant-up")
        futures: dict[Future, str] = {pool.submit(one, n): n for n in names}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.exception() is not None:
                        failures[futures[fut]] = fut.exception()
        except BaseException:
            # Ctrl-C reaches labctl only: every vagrant runs in its own session so that a
            # deadline can kill its whole group. Pass the interrupt on, then stop them.
            with guard:
                stop_starting.set()
                running = list(live.values())
            for proc in running:
                proc.stop(self.kill_grace)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if failures:
            first_name = next(n for n in names if n in failures)
            first = failures[first_name]
            if isinstance(first, VagrantFailed):
                for other in names:
                    exc = failures.get(other)
                    if exc is not None and exc is not first:
                        first.evidence.append(f"also failed: {other}: {exc}")
            raise first
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

    def _each(self, verb: str, args: Sequence[str], names: Iterable[str], timeout: float) -> None:
        """A booting command, one call and one log per machine (or one for all)."""
        for name in list(names) or [None]:
            full = [*args[:1], *([name] if name else []), *args[1:]]
            log_name = f"vagrant-{verb}-{name}.log" if name else f"vagrant-{verb}.log"
            self._run_logged(full, machine=name or "localhost", log_name=log_name, deadline=timeout)

    def halt(self, names: Iterable[str] = (), *, timeout: float = CHANGE_TIMEOUT) -> None:
        names = list(names)  # one vagrant process for all: Ruby's start-up is the slow part
        self._run(["halt", *names, "--machine-readable"], timeout=timeout, where=",".join(names) or "localhost")

    def destroy(self, names: Iterable[str] = (), *, timeout: float = CHANGE_TIMEOUT) -> None:
        names = list(names)
        self._run(["destroy", *names, "-f", "--machine-readable"], timeout=timeout,
                  where=",".join(names) or "localhost")

    def reload(self, names: Iterable[str] = (), *, timeout: float = BOOT_TIMEOUT) -> None:
        self._each("reload", ["reload", "--no-provision", "--machine-readable"], names, timeout)

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
