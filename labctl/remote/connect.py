"""Opening one SSH connection to a lab node: the key, the lab's pinned host key, and
retrying while the node boots.

Why not paramiko's SSHClient: we check the host key against the lab's own known_hosts
before authenticating and never touch an agent or ~/.ssh; a bare Transport makes that
explicit.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from pathlib import Path

from labctl.errors import DeadlineExceeded, NotFound
from labctl.providers.base import SSHTarget
from labctl.remote.hostkeys import HostKey, HostKeyMismatch, pinned_keys, verify_or_pin
from labctl.remote.log import NodeLog
from labctl.remote.result import SSHKeyError

KEEPALIVE_SECONDS = 15


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


def connect_transport(target: SSHTarget, known_hosts: Path, log: NodeLog, deadline: float):
    """A connected, authenticated paramiko Transport, retrying until ``deadline`` seconds
    have passed while the node boots: refused, reset, no banner yet and keys not yet
    authorised are all retried. A changed host key is not: HostKeyMismatch at once."""
    key = load_key(target.key_file)
    t = target
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
            transport = _open(t, known_hosts, log, key, max(remaining, 1.0))
            log.event(f"connected to {t.user}@{t.host}:{t.port} (attempt {attempts})")
            return transport
        except HostKeyMismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - every other failure is "not ready yet"
            if not _retryable(exc):
                raise
            error = describe(exc)
            if error != last_error:
                log.event(f"connect to {t.host}:{t.port} failed: {error} (retrying)")
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
    log.event(f"gave up connecting after {deadline:g}s: {last_error}")
    raise DeadlineExceeded(
        f"could not connect to {t.name} ({t.user}@{t.host}:{t.port}) within {deadline:g}s "
        f"({attempts} attempts): {last_error}",
        hint=hint,
    )


def _open(t: SSHTarget, known_hosts: Path, log: NodeLog, key, remaining: float):
    import paramiko

    sock = socket.create_connection((t.host, t.port), timeout=min(remaining, 10.0))
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = min(remaining, 15.0)
        transport.handshake_timeout = min(remaining, 30.0)
        transport.auth_timeout = min(remaining, 30.0)
        sec = transport.get_security_options()
        preferred = _preferred_key_types(pinned_keys(known_hosts, t.name), sec.key_types)
        if preferred:
            sec.key_types = preferred
        transport.start_client(timeout=min(remaining, 30.0))
        server_key = transport.get_remote_server_key()
        host_key = HostKey(server_key.get_name(), server_key.get_base64())
        if verify_or_pin(known_hosts, t.name, t.host, t.port, host_key):
            log.event(f"recorded host key {host_key.keytype} of {t.name} in {known_hosts}")
        transport.auth_publickey(t.user, key)
        transport.set_keepalive(KEEPALIVE_SECONDS)
        return transport
    except BaseException:
        transport.close()
        raise


def _retryable(exc: BaseException) -> bool:
    import paramiko

    return isinstance(exc, (OSError, EOFError, paramiko.SSHException))


def _is_auth_error(exc: BaseException) -> bool:
    import paramiko

    return isinstance(exc, paramiko.AuthenticationException)


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # paramiko reports a peer that never finishes the SSH handshake in several ways,
    # depending on which of its threads notices first; name what happened instead.
    if text in ("No existing session", "Negotiation timed out.") or "protocol banner" in text:
        return "the port accepts connections but no SSH banner or handshake came back (guest still booting?)"
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
