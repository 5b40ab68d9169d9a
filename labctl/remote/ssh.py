"""SSH execution on a lab node: one paramiko connection per node, reused for every step.

Why not SFTP for uploads: a node's sshd may run without the sftp subsystem (and fake
nodes in tests have none); ``cat`` over an exec channel needs nothing. Connecting
(keys, the lab's pinned host keys, retries while a node boots) is labctl.remote.connect.

Output is read until EOF on both streams and both buffers are empty, and only then is
the exit status taken: stopping at ``exit_status_ready()`` loses lines (field notes).
"""

from __future__ import annotations

import os
import shlex
import socket
import select
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from labctl.errors import CommandFailed
from labctl.providers.base import SSHTarget
from labctl.remote.connect import SSHKeyError, connect_transport, describe, load_key
from labctl.remote.hostkeys import HostKeyMismatch, forget_host_keys
from labctl.remote.io import StdinFeeder, Streams, put_script, wire
from labctl.remote.log import NodeLog, Redactor
from labctl.remote.result import CommandResult, CommandTimeout, ConnectionLost

__all__ = [
    "SSHTarget",
    "CommandResult",
    "SSHSession",
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyMismatch",
    "SSHKeyError",
    "forget_host_keys",
    "load_key",
]

# How long run() may spend re-connecting on its own when the connection went away
# between commands; a VM reboot needs an explicit connect(deadline) by the caller.
RECONNECT_SECONDS = 60.0
_READ_SIZE = 65536


class SSHSession:
    """One node's SSH connection: connect once (retrying while it boots), run many."""

    def __init__(
        self,
        target: SSHTarget,
        *,
        known_hosts: Path,
        log_path: Path | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.target = target
        self.known_hosts = Path(known_hosts)
        self.log_path = Path(log_path) if log_path else None
        self._redactor = Redactor(secrets)
        self._log = NodeLog(self.log_path, self._redactor)
        self._transport = None
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    @property
    def transport(self):
        """The paramiko Transport in use (one per session); None before connect()."""
        return self._transport

    def connect(self, deadline: float = 300.0) -> None:
        """Connect, retrying while the node boots (labctl.remote.connect); a changed
        host key raises HostKeyMismatch at once."""
        with self._lock:
            if self.connected:
                return
            self._drop_transport()
            self._transport = connect_transport(self.target, self.known_hosts, self._log, deadline)

    def _drop_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def close(self) -> None:
        with self._lock:
            self._drop_transport()
        self._log.close()

    def __enter__(self) -> SSHSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- secrets ----------------------------------------------------------------------

    def add_secret(self, value: str) -> None:
        self._redactor.add(value)

    def redact(self, text: str) -> str:
        return self._redactor(text)

    # -- commands ---------------------------------------------------------------------

    def run(
        self,
        command: str,
        *,
        sudo: bool = False,
        timeout: float = 600.0,
        stdin: bytes | str | None = None,
        on_line: Callable[[str, str], None] | None = None,
        log_output: bool = True,
    ) -> CommandResult:
        """Run ``command`` and return its result whatever its exit code. Raises
        CommandTimeout or ConnectionLost (both CommandFailed with rc None) when there is
        no exit code to return. ``on_line(stream, line)`` gets each line ("stdout" or
        "stderr") as it arrives, with secrets replaced by ***."""
        return self._exec(command, self._wire(command, sudo), self.redact(command), timeout, stdin, on_line, log_output)

    def check(self, command: str, *, hint: str | None = None, **kw) -> CommandResult:
        """run() and raise CommandFailed (node, rc, last lines, log path) unless rc == 0."""
        result = self.run(command, **kw)
        self._raise_unless_ok(result, kw.get("sudo", False), hint)
        return result

    def put(
        self, data: bytes | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False, timeout: float = 600.0,
        sha256: str | None = None,
    ) -> None:
        """Write ``data`` to ``remote_path`` atomically (temp file in the same directory,
        chmod, then mv), creating the directory. The data travels on stdin, so a secret
        inside never reaches a command line or a log."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._put(raw, len(raw), remote_path, mode=mode, sudo=sudo, timeout=timeout, sha256=sha256)

    def put_file(
        self, local_path: Path | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
        sha256: str | None = None, timeout: float = 1800.0,
    ) -> None:
        """put() of a local file, streamed from disk (an artifact of hundreds of MB is
        never held in memory). With ``sha256`` the node checks the digest before the
        file takes its place."""
        local_path = Path(local_path)
        self._put(local_path, local_path.stat().st_size, remote_path, mode=mode, sudo=sudo, timeout=timeout,
                  sha256=sha256)

    def _put(self, source: bytes | Path, size: int, remote_path: str, *, mode: int, sudo: bool,
             timeout: float, sha256: str | None = None) -> None:
        script = put_script(remote_path, size, mode, sha256)
        shown = f"put {self.redact(remote_path)} ({size} bytes, mode {mode:04o})"
        result = self._exec(script, self._wire(script, sudo), shown, timeout, source, None, True)
        self._raise_unless_ok(result, sudo, None)

    def get_file(self, remote_path: str, local_path: str | Path, *, sudo: bool = False, timeout: float = 1800.0) -> int:
        """Stream a node's file to ``local_path`` (written beside it, renamed when
        complete; never held in memory whole). Returns its size."""
        command = f"cat -- {shlex.quote(remote_path)}"
        shown = f"get {self.redact(remote_path)} -> {Path(local_path).name}"
        where, log = self.target.name, str(self.log_path) if self.log_path else None
        self._log.event(f"$ {shown}{' (sudo)' if sudo else ''}")
        local = Path(local_path)
        part = local.with_name(f".{local.name}.part")
        try:
            chan = self._ensure_transport().open_session(timeout=min(timeout, 30.0))
            chan.exec_command(self._wire(command, sudo))
            chan.shutdown_write()
            chan.settimeout(timeout)
            size = 0
            with open(part, "wb") as out:
                # Until EOF, not exit_status_ready(): the last blocks may still be in flight.
                for block in iter(lambda: chan.recv(_READ_SIZE), b""):
                    out.write(block)
                    size += len(block)
            err = b""
            while chan.recv_stderr_ready() or not chan.exit_status_ready():
                got = chan.recv_stderr(_READ_SIZE)
                if not got:
                    break
                err += got
            rc = chan.recv_exit_status()
            chan.close()
        except (socket.timeout, OSError, EOFError) as exc:
            part.unlink(missing_ok=True)
            raise ConnectionLost(shown, "", where=where, log_path=log, why=describe(exc)) from None
        if rc != 0:
            part.unlink(missing_ok=True)
            raise CommandFailed(shown, rc, self.redact(err.decode("utf-8", errors="replace")), where=where, log_path=log)
        os.replace(part, local)
        self._log.event(f"received {size} bytes")
        return size

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _wire(command: str, sudo: bool) -> str:
        return wire(command, sudo)

    def _ensure_transport(self):
        if not self.connected:
            self.connect(RECONNECT_SECONDS)
        return self._transport

    def _exec(self, command, wire, shown, timeout, stdin, on_line, log_output) -> CommandResult:
        import paramiko

        transport = self._ensure_transport()
        where = self.target.name
        log = str(self.log_path) if self.log_path else None
        self._log.event(f"$ {shown}{' (sudo)' if wire != command else ''}")
        started = time.monotonic()
        end = started + timeout
        try:
            chan = transport.open_session(timeout=min(timeout, 30.0))
            chan.exec_command(wire)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._log.event(f"could not start the command: {describe(exc)}")
            raise ConnectionLost(shown, "", where=where, log_path=log, why=describe(exc)) from None

        streams = Streams(self._log if log_output else None, self._redactor, on_line)
        feeder = StdinFeeder(chan, stdin)
        try:
            timed_out = self._pump(chan, streams, end)
            if not timed_out:
                timed_out = not chan.status_event.wait(max(0.0, end - time.monotonic()))
        except BaseException:
            # Ctrl-C or a failing on_line callback: do not leave the channel open.
            chan.close()
            raise
        finally:
            streams.finish()
        duration = time.monotonic() - started
        if timed_out:
            chan.close()
            feeder.join()
            self._log.event(f"timed out after {timeout:g}s; channel closed")
            raise CommandTimeout(shown, timeout, self.redact(streams.tail_text()), where=where, log_path=log)
        feeder.join()
        rc = chan.exit_status
        if rc == -1 and not transport.is_active():
            self._log.event("connection lost while the command ran")
            raise ConnectionLost(
                shown, self.redact(streams.tail_text()), where=where, log_path=log, why="connection closed"
            )
        chan.close()
        self._log.event(f"exit {rc} after {duration:.2f}s")
        return CommandResult(shown, rc, streams.stdout.text(), streams.stderr.text(), duration)

    @staticmethod
    def _pump(chan, streams: Streams, end: float) -> bool:
        """Read both streams until EOF with empty buffers. True when time ran out."""
        while True:
            got = False
            if chan.recv_ready():
                streams.stdout.feed(chan.recv(_READ_SIZE))
                got = True
            if chan.recv_stderr_ready():
                streams.stderr.feed(chan.recv_stderr(_READ_SIZE))
                got = True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return True
            if got:
                continue
            if (chan.eof_received or chan.closed) and not chan.recv_ready() and not chan.recv_stderr_ready():
                return False
            # The channel's fileno is a pipe paramiko sets when either buffer has data
            # and forever once EOF or close arrives.
            select.select([chan], [], [], min(remaining, 1.0))

    def _raise_unless_ok(self, result: CommandResult, sudo: bool, hint: str | None) -> None:
        if result.succeeded:
            return
        output = self.redact("\n".join(s for s in (result.stdout, result.stderr) if s))
        if hint is None:
            hint = _known_cause(result, sudo) or (
                f"the last lines are below; the whole output is in {self.log_path}"
                if self.log_path
                else "the last lines are below"
            )
        raise CommandFailed(
            result.command,
            result.rc,
            output,
            where=self.target.name,
            log_path=str(self.log_path) if self.log_path else None,
            hint=hint,
        )


def _known_cause(result: CommandResult, sudo: bool) -> str | None:
    err = result.stderr
    if sudo and "sudo: a password is required" in err:
        return "the node's user needs passwordless sudo (Vagrant boxes have it; check /etc/sudoers.d)"
    if sudo and result.rc == 127 and ("sudo: command not found" in err or "sudo: not found" in err):
        return "sudo is not installed on the node"
    if result.rc == -1:
        return "the remote process was killed by a signal (out of memory? see `dmesg` on the node)"
    return None



