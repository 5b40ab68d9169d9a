"""The lab's own known_hosts: SSH host keys pinned per node, never in ~/.ssh.

One line per node in OpenSSH format, its patterns both ``[host]:port`` (so
``ssh -o UserKnownHostsFile=<lab>/.labctl/known_hosts`` works by hand) and the node
name. The node name is the identity: Vagrant's forwarded ports move between runs
(``auto_correct``) and may be handed to another machine, so a key is looked up by name
and the ``[host]:port`` pattern is only kept current.

The first connection to a node records its key (trust on first use: the VM was created
by this lab moments ago); a later different key for the same node is refused until
``labctl destroy`` forgets it or the line is removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

from labctl.lab.fsutil import atomic_write
from labctl.errors import ExitCode, LabError


class HostKeyMismatch(LabError):
    """A node answered with a host key other than the one pinned for it."""

    exit_code = ExitCode.REMOTE_FAILED


@dataclass(frozen=True)
class HostKey:
    """A public host key as OpenSSH writes it: type and base64 blob."""

    keytype: str  # e.g. "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"
    base64: str

    def __str__(self) -> str:
        return f"{self.keytype} {self.base64}"


@dataclass(frozen=True)
class _Line:
    patterns: tuple[str, ...]
    key: HostKey | None  # None: a line we do not understand, kept verbatim
    raw: str


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _parse(text: str) -> list[_Line]:
    lines = []
    for raw in text.splitlines():
        fields = raw.split()
        if not fields or fields[0].startswith("#") or fields[0].startswith("@") or len(fields) < 3:
            lines.append(_Line((), None, raw))
            continue
        lines.append(_Line(tuple(fields[0].split(",")), HostKey(fields[1], fields[2]), raw))
    return lines


def _render(lines: Iterable[_Line]) -> str:
    out = []
    for line in lines:
        if line.key is None:
            out.append(line.raw)
        elif line.patterns:
            out.append(f"{','.join(line.patterns)} {line.key}")
    return "".join(f"{line}\n" for line in out)


@contextmanager
def _locked(known_hosts: Path) -> Iterator[None]:
    # Nodes connect in parallel threads or processes; serialise read-modify-write.
    # filelock: flock on POSIX, msvcrt on Windows; one lock object per call, so threads
    # of one process exclude each other just as processes do.
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(f"{known_hosts}.lock"):
        yield


def _read(known_hosts: Path) -> list[_Line]:
    try:
        return _parse(known_hosts.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []


def pinned_keys(known_hosts: Path, node: str) -> list[HostKey]:
    """Keys pinned for ``node`` (usually one); empty when the node is new."""
    return [line.key for line in _read(Path(known_hosts)) if line.key and node in line.patterns]


def verify_or_pin(known_hosts: Path, node: str, host: str, port: int, key: HostKey) -> bool:
    """Accept ``key`` for ``node`` or raise HostKeyMismatch. Returns True when the key
    was recorded now (first use). Keeps the node's ``[host]:port`` pattern current and
    drops that pattern from any other node's line, so a reused port stays unambiguous."""
    known_hosts = Path(known_hosts)
    where = host_pattern(host, port)
    with _locked(known_hosts):
        lines = _read(known_hosts)
        mine = [line for line in lines if line.key and node in line.patterns]
        if mine and not any(line.key == key for line in mine):
            raise HostKeyMismatch(
                f"host key of {node} ({where}) changed: it offered {key.keytype} "
                f"{key.base64[-12:]}, the lab pinned {mine[0].key.keytype} {mine[0].key.base64[-12:]} "
                f"in {known_hosts}",
                hint=f"if {node} was re-created, run `labctl destroy` (it forgets the keys) or delete "
                f"the line for {node} from {known_hosts}; otherwise something else answers on {where}",
            )
        updated: list[_Line] = []
        for line in lines:
            if line.key is None:
                updated.append(line)
            elif node in line.patterns:
                if line.key == key:
                    updated.append(_Line((where, node), key, ""))
                # other key types of the same node stay pinned as they are
                else:
                    updated.append(line)
            else:
                updated.append(_Line(tuple(p for p in line.patterns if p != where), line.key, line.raw))
        first_use = not mine
        if first_use:
            updated.append(_Line((where, node), key, ""))
        atomic_write(known_hosts, _render(updated), mode=0o600)
        return first_use


def forget_host_keys(known_hosts: Path, node_names: Iterable[str]) -> int:
    """Remove every pinned key of these nodes (``labctl destroy``). Returns how many
    lines went; a missing file is fine (nothing was pinned)."""
    known_hosts = Path(known_hosts)
    names = set(node_names)
    if not known_hosts.exists():
        return 0
    with _locked(known_hosts):
        lines = _read(known_hosts)
        kept = [line for line in lines if line.key is None or not names.intersection(line.patterns)]
        removed = len(lines) - len(kept)
        if removed:
            atomic_write(known_hosts, _render(kept), mode=0o600)
        return removed
