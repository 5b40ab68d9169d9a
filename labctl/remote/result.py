"""What a remote command gives back, and the ways it can fail without an exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl.errors import CommandFailed, ExitCode, LabError

__all__ = ["CommandResult", "SSHKeyError", "CommandTimeout", "ConnectionLost"]


@dataclass(frozen=True)
class CommandResult:
    command: str  # as shown to people: secrets already replaced by ***
    rc: int | None  # -1: the remote process died by a signal (no exit status)
    stdout: str = field(repr=False)  # the real output (it may carry a token the caller asked for)
    stderr: str = field(repr=False)
    duration: float

    @property
    def succeeded(self) -> bool:
        return self.rc == 0


class SSHKeyError(LabError):
    exit_code = ExitCode.REMOTE_FAILED


class CommandTimeout(CommandFailed):
    """A remote command ran past its timeout; its channel was closed (rc None)."""

    def __init__(self, command: str, timeout: float, output: str, *, where: str, log_path: str | None):
        super().__init__(
            command,
            None,
            output,
            where=where,
            log_path=log_path,
            hint=f"it did not finish within its {timeout:g}s timeout and its channel was closed "
            "(the remote process may still be running); look at the log, or allow a longer timeout",
            status=f"timed out after {timeout:g}s",
        )
        self.timeout = timeout


class ConnectionLost(CommandFailed):
    """The SSH connection dropped while a command ran (rc None: its result is unknown)."""

    def __init__(self, command: str, output: str, *, where: str, log_path: str | None, why: str):
        super().__init__(
            command,
            None,
            output,
            where=where,
            log_path=log_path,
            hint=f"the connection to {where} dropped ({why}): the VM rebooted or stopped, or its sshd "
            "restarted; check it is running and run the command again (labctl's steps are safe to re-run)",
            status="lost its connection before it finished",
        )
