"""A Session without a network: commands go to a responder in this process.

It speaks what labctl.bootstrap.context's Session Protocol asks (run, put, put_file,
add_secret) the way SSHSession does: the node receives the same command lines (sudo
wrapped the same way, uploads as the same atomic-write script with the data on stdin),
output is redacted, logged to the node's log and passed to ``on_line`` the same way.
Only the transport is gone, so the engine's and the lifecycle's logic can be tested in
milliseconds.

    responder(command, stdin) -> CommandResult | (rc, stdout, stderr) | str (stdout, rc 0)
    or a mapping {command: the same}; a command it does not know exits 127.

Every command is recorded in ``commands`` (what the node received, with its stdin).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Union

from labctl.errors import CommandFailed
from labctl.remote.io import Streams, put_script, wire
from labctl.remote.log import NodeLog, Redactor
from labctl.remote.result import CommandResult, ConnectionLost

Reply = Union[CommandResult, tuple, str]
Responder = Union[Callable[[str, "bytes | None"], Reply], Mapping[str, Reply]]


@dataclass(frozen=True)
class Received:
    command: str  # as the node received it (sudo-wrapped); secrets NOT redacted
    stdin: bytes | None
    rc: int | None


class MemorySession:
    def __init__(self, name: str, responder: Responder, *, log_path: Path | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.name = name
        self.log_path = Path(log_path) if log_path else None
        self._respond = responder
        self._redactor = Redactor(secrets)
        self._log = NodeLog(self.log_path, self._redactor)
        self._lock = threading.Lock()
        self.commands: list[Received] = []
        self.connected = False
        self.closed = False

    # -- connection (nothing to connect to; kept so code paths match SSHSession) --------

    def connect(self, deadline: float = 0.0) -> None:
        if self.closed:
            raise ConnectionLost("connect", "", where=self.name, log_path=None, why="the session was closed")
        self.connected = True

    def close(self) -> None:
        self.connected = False
        self.closed = True
        self._log.close()

    def __enter__(self) -> MemorySession:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- secrets ------------------------------------------------------------------------

    def add_secret(self, value: str) -> None:
        self._redactor.add(value)

    def redact(self, text: str) -> str:
        return self._redactor(text)

    # -- commands -----------------------------------------------------------------------

    def run(self, command: str, *, sudo: bool = False, timeout: float = 600.0, stdin: bytes | str | None = None,
            on_line: Callable[[str, str], None] | None = None, log_output: bool = True) -> CommandResult:
        raw = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
        return self._exec(wire(command, sudo), self.redact(command), raw, on_line, log_output, sudo)

    def check(self, command: str, *, hint: str | None = None, **kw) -> CommandResult:
        result = self.run(command, **kw)
        if not result.succeeded:
            raise CommandFailed(result.command, result.rc, self.redact(result.stdout + result.stderr),
                                where=self.name, log_path=str(self.log_path) if self.log_path else None,
                                hint=hint or "the last lines are below")
        return result

    def put(self, data: bytes | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
            timeout: float = 600.0, sha256: str | None = None) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        script = put_script(remote_path, len(raw), mode, sha256)
        shown = f"put {self.redact(remote_path)} ({len(raw)} bytes, mode {mode:04o})"
        result = self._exec(wire(script, sudo), shown, raw, None, True, sudo)
        if not result.succeeded:
            raise CommandFailed(shown, result.rc, self.redact(result.stdout + result.stderr), where=self.name,
                                log_path=str(self.log_path) if self.log_path else None,
                                hint="the upload failed on the node")

    def put_file(self, local_path: Path | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
                 sha256: str | None = None, timeout: float = 1800.0) -> None:
        # In memory, so reading the file whole is fine; the node sees the same script.
        self.put(Path(local_path).read_bytes(), remote_path, mode=mode, sudo=sudo, timeout=timeout, sha256=sha256)

    def get_file(self, remote_path: str, local_path: str | Path, *, sudo: bool = False,
                 timeout: float = 1800.0) -> int:
        """SSHSession.get_file: the node's ``cat`` of the file, written beside
        ``local_path`` and renamed when complete. A responder answers binary content as
        text decoded with surrogateescape, which gives the bytes back exactly."""
        import os
        import shlex

        shown = f"get {self.redact(remote_path)} -> {Path(local_path).name}"
        result = self._exec(wire(f"cat -- {shlex.quote(remote_path)}", sudo), shown, None, None, False, sudo)
        if not result.succeeded:
            raise CommandFailed(shown, result.rc, self.redact(result.stderr), where=self.name,
                                log_path=str(self.log_path) if self.log_path else None)
        data = result.stdout.encode("utf-8", "surrogateescape")
        local = Path(local_path)
        part = local.with_name(f".{local.name}.part")
        part.write_bytes(data)
        os.replace(part, local)
        return len(data)

    # -- internals ----------------------------------------------------------------------

    def _reply(self, command: str, stdin: bytes | None) -> CommandResult:
        if callable(self._respond):
            reply = self._respond(command, stdin)
        else:
            reply = self._respond.get(command, (127, "", f"bash: {command.split()[0] if command else ''}: command not found"))
        if isinstance(reply, CommandResult):
            return reply
        if isinstance(reply, str):
            return CommandResult(command, 0, reply, "", 0.0)
        rc, out, err = reply
        return CommandResult(command, rc, out, err, 0.0)

    def _exec(self, wired: str, shown: str, stdin: bytes | None, on_line, log_output: bool,
              sudo: bool) -> CommandResult:
        if self.closed:
            raise ConnectionLost(shown, "", where=self.name, log_path=None, why="the session was closed")
        self._log.event(f"$ {shown}{' (sudo)' if sudo else ''}")
        started = time.monotonic()
        reply = self._reply(wired, stdin)
        with self._lock:
            self.commands.append(Received(wired, stdin, reply.rc))
        streams = Streams(self._log if log_output else None, self._redactor, on_line)
        streams.stdout.feed(reply.stdout.encode("utf-8"))
        streams.stderr.feed(reply.stderr.encode("utf-8"))
        streams.finish()
        duration = time.monotonic() - started
        self._log.event(f"exit {reply.rc} after {duration:.2f}s")
        return CommandResult(shown, reply.rc, reply.stdout, reply.stderr, duration)
