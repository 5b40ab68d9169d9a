"""Every failure labctl reports on purpose, and the exit code each one maps to.

The CLI has one error boundary (labctl.cli.main) that turns a LabError into a single
line ``labctl: error: <message>`` plus ``hint: <hint>`` and exits with ``exit_code``.
Anything that is not a LabError is a bug: exit INTERNAL, traceback only with --debug.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ExitCode(enum.IntEnum):
    """Stable exit codes; scripts and graders depend on them, so never renumber."""

    OK = 0
    CHECKS_FAILED = 1  # verify ran and at least one check failed
    USAGE = 2  # bad command-line input (also click's own usage errors)
    SPEC_INVALID = 3  # lab.yaml (or a value derived from it) is invalid
    HOST_NOT_READY = 4  # the host lacks something the lab needs (doctor)
    PROVIDER_FAILED = 5  # a vagrant call failed
    REMOTE_FAILED = 6  # a command on a node failed (SSH or bootstrap step)
    LOCKED = 7  # another labctl command is changing this lab
    NOT_FOUND = 8  # the lab, a node, a snapshot or an object does not exist
    CLUSTER_FAILED = 9  # the Kubernetes API answered with an error or not at all
    TIMEOUT = 10  # a deadline passed
    ABORTED = 11  # the user said no at a prompt
    ARTIFACT_FAILED = 12  # a download failed, or did not match its pinned checksum
    LAB_FOLDER = 13  # the lab folder cannot be read or written (not a folder, full, read-only, damaged state)
    INTERNAL = 70  # a bug in labctl (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C


class LabError(Exception):
    """Base of every expected failure. ``hint`` names the fix."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None, evidence: Sequence[str] = ()):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Last lines of output, events, ...: shown under the message, never more than a screen.
        self.evidence = list(evidence)

    def to_dict(self) -> dict:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": int(self.exit_code),
            "evidence": self.evidence,
        }


class UsageError(LabError):
    exit_code = ExitCode.USAGE


class SpecError(LabError):
    """lab.yaml is wrong. ``field`` is the dotted path of the offending value."""

    exit_code = ExitCode.SPEC_INVALID

    def __init__(self, field: str, message: str, *, hint: str | None = None):
        super().__init__(f"{field}: {message}", hint=hint)
        self.field = field


class HostNotReady(LabError):
    exit_code = ExitCode.HOST_NOT_READY


class NotFound(LabError):
    exit_code = ExitCode.NOT_FOUND


class LabLocked(LabError):
    exit_code = ExitCode.LOCKED


class Aborted(LabError):
    exit_code = ExitCode.ABORTED


class DeadlineExceeded(LabError):
    exit_code = ExitCode.TIMEOUT


class ClusterError(LabError):
    exit_code = ExitCode.CLUSTER_FAILED


class NodeError(LabError):
    """A node is not as labctl needs it (a fact it did not report, a file it cannot
    remove): a remote failure that is no single command's exit code."""

    exit_code = ExitCode.REMOTE_FAILED


class ArtifactError(LabError):
    """A pinned download could not be had: unreachable, withdrawn, rate-limited, or
    its bytes did not match the digest kept in the project."""

    exit_code = ExitCode.ARTIFACT_FAILED


class LabFolderError(LabError):
    """The lab folder (or a file labctl keeps in it) cannot be read or written."""

    exit_code = ExitCode.LAB_FOLDER


SHOWN_MAX = 60


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error line quotes what it refuses
    (escaped, so control characters and newlines cannot break the line) but never more
    than this, however large the input was."""
    if isinstance(value, str) and len(value) > 4 * limit:
        value = value[: 4 * limit]
    return _cut(repr(value), limit)


def clip(text: str, limit: int = SHOWN_MAX) -> str:
    """``text`` on one line (control characters escaped) and at most ``limit`` characters."""
    text = str(text)[: 4 * limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return _cut(text, limit)


def tail(text: str, lines: int = 20) -> list[str]:
    """The last ``lines`` non-empty lines of ``text``: the evidence a failure carries."""
    kept = [line for line in text.splitlines() if line.strip()]
    return kept[-lines:]


class CommandFailed(LabError):
    """A local or remote command exited non-zero (or never finished).

    Carries its evidence like Invoke's UnexpectedExit: the command, where it ran, the
    exit code (None when it timed out or the connection dropped) and the last lines.
    """

    exit_code = ExitCode.REMOTE_FAILED

    def __init__(
        self,
        command: str,
        rc: int | None,
        output: str = "",
        *,
        where: str = "localhost",
        log_path: str | None = None,
        hint: str | None = None,
        what: str | None = None,
        status: str | None = None,
    ):
        # rc None means no exit status came back; say why when the caller knows it.
        status = status or ("did not finish" if rc is None else f"exited {rc}")
        head = what or f"`{command}`"
        msg = f"{head} on {where} {status}"
        if log_path:
            msg += f" (log: {log_path})"
        super().__init__(msg, hint=hint, evidence=tail(output))
        self.command = command
        self.rc = rc
        self.where = where
        self.log_path = log_path

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(command=self.command, rc=self.rc, where=self.where, log=self.log_path)
        return d


class VagrantFailed(CommandFailed):
    exit_code = ExitCode.PROVIDER_FAILED
