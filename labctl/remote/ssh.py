"""SSH execution on a lab node: one paramiko connection per node, reused for every step.

Why not paramiko's SSHClient: we check the host key against the lab's own known_hosts
before authenticating and never touch an agent or ~/.ssh; a bare Transport makes that
explicit. Why not SFTP for uploads: a node's sshd may run without the sftp subsystem
(and fake nodes in tests have none); ``cat`` over an exec channel needs nothing.

Output is read until EOF on both streams and both buffers are empty, and only then is
the exit status taken: stopping at ``exit_status_ready()`` loses lines (field notes).
"""

from __future__ import annotations

import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from labctl.remote.hostkeys import HostKey, HostKeyMismatch, forget_host_keys, pinned_keys, verify_or_pin
from labctl.remote.io import StdinFeeder, Streams
from labctl.remote.log import NodeLog, Redactor
from labctl.errors import CommandFailed, DeadlineExceeded, ExitCode, LabError, NotFound

__all__ = [
    "SSHTarget",
    "CommandResult",
    "SSHSession",
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyMismatch",
    "SSHKeyError",
    "forget_host_keys",
]

KEEPALIVE_SECONDS = 15
# How long run() may spend re-connecting on its own when the connection went away
# between commands; a VM reboot needs an explicit connect(deadline) by the caller.
RECONNECT_SECONDS = 60.0
_READ_SIZE = 65536


@dataclass(frozen=True)
class SSHTarget:
    name: str
    host: str
    port: int
    user: str
    key_file: Path


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


def load_key(path: Path):
    """The private key for a target (ed25519, RSA or ECDSA, OpenSSH or PEM format)."""
    import paramiko

    try:
        return paramiko.PKey.from_path(Path(path))
    except FileNotFoundError:
        raise NotFound(
            f"SSH key {path}: no such file",
            hint="re-read the node's connection data (`vagrant ssh-config NAME`); the VM may be gone",
        ) from None
    except paramiko.PasswordRequiredException:
        raise SSHKeyError(
            f"SSH key {path}: protected by a passphrase", hint="labctl needs the VM's passphrase-less key"
        ) from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise SSHKeyError(
            f"SSH key {path}: cannot be read ({exc})", hint="use an ed25519, RSA or ECDSA private key file"
        ) from None


def _preferred_key_types(pinned: list[HostKey], offered: Iterable[str]) -> list[str] | None:
    """Ask the server for the key type we pinned; otherwise a node with several host keys
    may negotiate another type and look like a changed key."""
    if not pinned:
        return None
    want = pinned[0].keytype
    first = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if want == "ssh-rsa" else [want]
    offered = list(offered)
    head = [t for t in first if t in offered]
    return head + [t for t in offered if t not in head] if head else None


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
        """Connect, retrying until ``deadline`` seconds have passed while the node boots:
        refused, reset, no banner yet and keys not yet authorised are all retried. A
        changed host key is not: it raises HostKeyMismatch at once."""
        with self._lock:
            if self.connected:
                return
            self._drop_transport()
            key = load_key(self.target.key_file)
            t = self.target
            end = time.monotonic() + deadline
            delay = 0.2
            last_error = "no attempt made"
            attempts = 0
            auth = False
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0 and attempts:
                    break
                attempts += 1
                try:
                    self._transport = self._open(key, max(remaining, 1.0))
                    self._log.event(f"connected to {t.user}@{t.host}:{t.port} (attempt {attempts})")
                    return
                except HostKeyMismatch:
                    raise
                except Exception as exc:  # noqa: BLE001 - every other failure is "not ready yet"
                    if not _retryable(exc):
                        raise
                    error = _describe(exc)
                    if error != last_error:
                        self._log.event(f"connect to {t.host}:{t.port} failed: {error} (retrying)")
                    last_error = error
                    auth = _is_auth_error(exc)
                time.sleep(max(0.0, min(delay, end - time.monotonic())))
                delay = min(delay * 1.5, 2.0)
            hint = (
                f"the node does not accept the key {t.key_file} for {t.user}; re-read `vagrant ssh-config {t.name}`"
                if auth
                else f"is {t.name} running? check `vagrant status {t.name}`; a slow first boot may need a "
                "longer boot timeout"
            )
            self._log.event(f"gave up connecting after {deadline:g}s: {last_error}")
            raise DeadlineExceeded(
                f"could not connect to {t.name} ({t.user}@{t.host}:{t.port}) within {deadline:g}s "
                f"({attempts} attempts): {last_error}",
                hint=hint,
            )

    def _open(self, key, remaining: float):
        import paramiko

        t = self.target
        sock = socket.create_connection((t.host, t.port), timeout=min(remaining, 10.0))
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = min(remaining, 15.0)
            transport.handshake_timeout = min(remaining, 30.0)
            transport.auth_timeout = min(remaining, 30.0)
            sec = transport.get_security_options()
            preferred = _preferred_key_types(pinned_keys(self.known_hosts, t.name), sec.key_types)
            if preferred:
                sec.key_types = preferred
            transport.start_client(timeout=min(remaining, 30.0))
            server_key = transport.get_remote_server_key()
            host_key = HostKey(server_key.get_name(), server_key.get_base64())
            if verify_or_pin(self.known_hosts, t.name, t.host, t.port, host_key):
                self._log.event(f"recorded host key {host_key.keytype} of {t.name} in {self.known_hosts}")
            transport.auth_publickey(t.user, key)
            transport.set_keepalive(KEEPALIVE_SECONDS)
            return transport
        except BaseException:
            transport.close()
            raise

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
        self, data: bytes | str, remote_path: str, *, mode: int = 0o644, sudo: bool = False, timeout: float = 600.0
    ) -> None:
        """Write ``data`` to ``remote_path`` atomically (temp file in the same directory,
        chmod, then mv), creating the directory. The data travels on stdin, so a secret
        inside never reaches a command line or a log."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        script = self._put_script(remote_path, len(raw), mode, "")
        shown = f"put {self.redact(remote_path)} ({len(raw)} bytes, mode {mode:04o})"
        result = self._exec(script, self._wire(script, sudo), shown, timeout, raw, None, True)
        self._raise_unless_ok(result, sudo, None)

    def put_file(
        self, local_path: str | Path, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
        sha256: str | None = None, timeout: float = 1800.0,
    ) -> None:
        """put() for a file, streamed from disk (never held in memory whole). With
        ``sha256`` the node checks the digest before the file takes its place."""
        size = os.path.getsize(local_path)
        check = ""
        if sha256 is not None:
            check = (
                'got=$(sha256sum "$tmp" | cut -d" " -f1); '
                f'if [ "$got" != {shlex.quote(sha256)} ]; then '
                f'echo "checksum mismatch: expected sha256 {sha256}, received $got" >&2; exit 4; fi; '
            )
        script = self._put_script(remote_path, size, mode, check)
        shown = f"put {Path(local_path).name} -> {self.redact(remote_path)} ({size} bytes, mode {mode:04o})"
        with open(local_path, "rb") as fh:
            result = self._exec(script, self._wire(script, sudo), shown, timeout, fh, None, True)
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
            raise ConnectionLost(shown, "", where=where, log_path=log, why=_describe(exc)) from None
        if rc != 0:
            part.unlink(missing_ok=True)
            raise CommandFailed(shown, rc, self.redact(err.decode("utf-8", errors="replace")), where=where, log_path=log)
        os.replace(part, local)
        self._log.event(f"received {size} bytes")
        return size

    @staticmethod
    def _put_script(remote_path: str, size: int, mode: int, check: str) -> str:
        return (
            f"set -e; dest={shlex.quote(remote_path)}; dir=$(dirname -- \"$dest\"); mkdir -p -- \"$dir\"; "
            'tmp=$(mktemp "$dir/.labctl-put.XXXXXX"); trap \'rm -f -- "$tmp"\' EXIT; '
            'cat > "$tmp"; size=$(wc -c < "$tmp"); '
            f'if [ "$size" -ne {size} ]; then echo "upload truncated: $size of {size} bytes" >&2; exit 3; fi; '
            f'{check}chmod {mode:04o} "$tmp"; mv -f -- "$tmp" "$dest"; trap - EXIT'
        )

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _wire(command: str, sudo: bool) -> str:
        # -n: fail instead of waiting for a password prompt nobody sees; -H: root's HOME.
        return f"sudo -n -H -- bash -c {shlex.quote(command)}" if sudo else command

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
            self._log.event(f"could not start the command: {_describe(exc)}")
            raise ConnectionLost(shown, "", where=where, log_path=log, why=_describe(exc)) from None

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


def _retryable(exc: BaseException) -> bool:
    import paramiko

    return isinstance(exc, (OSError, EOFError, paramiko.SSHException))


def _is_auth_error(exc: BaseException) -> bool:
    import paramiko

    return isinstance(exc, paramiko.AuthenticationException)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # paramiko reports a peer that never finishes the SSH handshake in several ways,
    # depending on which of its threads notices first; name what happened instead.
    if text in ("No existing session", "Negotiation timed out.") or "protocol banner" in text:
        return "the port accepts connections but no SSH banner or handshake came back (guest still booting?)"
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
