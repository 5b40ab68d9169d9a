"""Running the `vagrant` CLI for one lab folder: every call labctl makes goes through here.

Why not python-vagrant for these calls: it has no timeout on any call, keeps no
output of a failed call, replaces the whole environment with ``env=`` and caches
ssh-config per machine. VagrantCLI runs the same CLI itself (vagrant/proc.py), and
raises VagrantFailed with the command, the exit code, the last lines and a hint for
every non-zero exit (vagrant/parse.py reads the machine-readable output).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from labctl.errors import HostNotReady, NotFound, VagrantFailed
from labctl.providers.vagrant import parse as vagrant_cli
from labctl.providers.vagrant.proc import LoggedProcess, ProcResult, run_captured

INSTALL_HINT = (
    "install Vagrant >= 2.3 (https://developer.hashicorp.com/vagrant/install; on Debian/Ubuntu "
    "`apt install vagrant`) so that `vagrant` is on PATH, then run `labctl doctor`"
)

# Seconds. Short queries answer in a few seconds even with plugins loaded; halt waits
# for a guest's graceful shutdown before forcing it; restore and reload boot the VM;
# a box download is a GB or so over a classroom's line.
QUERY_TIMEOUT = 120.0
CHANGE_TIMEOUT = 900.0
BOOT_TIMEOUT = 1800.0
BOX_ADD_TIMEOUT = 3600.0


class VagrantCLI:
    """Runs the `vagrant` CLI in one lab folder: deadlines, logs, failures with evidence."""

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

    def start_logged(self, args: Sequence[str], log_name: str,
                      on_line: Callable[[str], None] | None = None) -> LoggedProcess:
        try:
            return LoggedProcess([self._exe(), *args], cwd=self.lab_dir, env=self.env, log_path=self.log_dir / log_name,
                                 on_line=on_line)
        except FileNotFoundError as exc:
            raise HostNotReady(f"vagrant: cannot run `{self.executable}`: {exc.strerror}", hint=INSTALL_HINT) from exc

    def finish_logged(self, proc: LoggedProcess, args: Sequence[str], machine: str, deadline: float) -> None:
        result = proc.wait(deadline, self.kill_grace)
        if not result.succeeded:
            raise self._timeout_or_failure(args, result, machine, proc.log_path, deadline)

    def _run_logged(self, args: Sequence[str], *, machine: str, log_name: str, deadline: float) -> None:
        self.finish_logged(self.start_logged(args, log_name), args, machine, deadline)

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
