"""Parsers for what the `vagrant` CLI prints, and the hints for its known failures.

Pure functions over text so they can be tested on recorded output of real Vagrant.
The machine-readable format is documented as ``timestamp,target,type,data...``; Vagrant
(lib/vagrant/ui.rb, MachineReadable#machine) escapes ``,`` in data as
``%!(VAGRANT_COMMA)``, newlines as a literal ``\\n`` and carriage returns as ``\\r``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labctl.providers.base import MachineState
from labctl.providers.vagrant.hints import hint_for

__all__ = ["MachineState", "SSHConfig", "BoxEntry", "parse_status", "parse_ssh_config", "parse_snapshot_list",
           "parse_box_list", "human_lines", "hint_for"]

COMMA = "%!(VAGRANT_COMMA)"
_LINE = re.compile(r"^(\d+),([^,]*),([^,]+)(?:,(.*))?$")



@dataclass(frozen=True)
class MRLine:
    """One machine-readable line: ``data`` holds the unescaped comma-separated fields."""

    timestamp: int
    target: str
    type: str
    data: tuple[str, ...] = ()


def unescape(value: str) -> str:
    return value.replace(COMMA, ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_line(line: str) -> MRLine | None:
    """None for anything that is not machine-readable (Ruby warnings, stack traces)."""
    m = _LINE.match(line.rstrip("\r\n"))
    if not m:
        return None
    ts, target, kind, rest = m.groups()
    data = tuple(unescape(part) for part in rest.split(",")) if rest is not None else ()
    return MRLine(int(ts), target, kind, data)


def parse_machine_readable(text: str) -> list[MRLine]:
    return [p for p in (parse_line(line) for line in text.splitlines()) if p is not None]


# Providers name the same condition differently; labctl compares against VirtualBox's ids.
_STATE_ALIASES = {("libvirt", "shutoff"): "poweroff"}


def parse_status(text: str) -> dict[str, MachineState]:
    """Machines of `vagrant status --machine-readable`, in the order Vagrant listed them."""
    states: dict[str, str] = {}
    providers: dict[str, str] = {}
    for line in parse_machine_readable(text):
        if not line.target or not line.data:
            continue
        if line.type == "state":
            states[line.target] = line.data[0]
        elif line.type == "provider-name":
            providers[line.target] = line.data[0]
        elif line.type == "metadata" and len(line.data) >= 2 and line.data[0] == "provider":
            providers.setdefault(line.target, line.data[1])
    result = {}
    for name, state in states.items():
        provider = providers.get(name, "")
        result[name] = MachineState(name, _STATE_ALIASES.get((provider, state), state), provider)
    return result


def error_exit(text: str) -> tuple[str, str] | None:
    """(error class, message) of the ``error-exit`` line Vagrant prints before exiting 1."""
    for line in parse_machine_readable(text):
        if line.type == "error-exit" and line.data:
            return line.data[0], ",".join(line.data[1:])
    return None


def human_lines(text: str) -> list[str]:
    """Machine-readable output turned back into the lines a person would have seen.

    ``ui`` messages become their text, ``error-exit`` its class and message, other
    records (metadata, action, ...) a short bracketed line; anything that is not
    machine-readable (stderr of Ruby, say) is kept as it is.
    """
    out: list[str] = []
    last_error = None
    for raw in text.splitlines():
        line = parse_line(raw)
        if line is None:
            out.append(raw)
        elif line.type == "ui" and line.data:
            message = ",".join(line.data[1:])
            last_error = message if line.data[0] == "error" else None
            out.extend(message.splitlines() or [""])
        elif line.type == "error-exit" and line.data:
            message = ",".join(line.data[1:])
            out.append(f"error-exit: {line.data[0]}")
            # Vagrant prints the message twice: as ui,error and in error-exit.
            if message != last_error:
                out.extend(message.splitlines())
        else:
            where = f"{line.target} " if line.target else ""
            out.append(f"[{where}{line.type} {' '.join(line.data)}]".replace(" ]", "]"))
    return out


@dataclass(frozen=True)
class SSHConfig:
    host_alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


def parse_ssh_config(text: str) -> SSHConfig:
    """The first ``Host`` block of `vagrant ssh-config NAME` (templates/commands/ssh_config).

    Raises ValueError when the block lacks HostName/Port/User: the caller turns that
    into an error carrying the output.
    """
    alias = None
    opts: dict[str, str] = {}
    identities: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(None, 1)
        key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        # The template quotes IdentityFile paths that contain spaces.
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key.lower() == "host":
            if alias is not None:
                break
            alias = value
            continue
        if alias is None:
            continue
        if key.lower() == "identityfile":
            identities.append(value)
        else:
            opts.setdefault(key.lower(), value)
    missing = [k for k in ("hostname", "port", "user") if k not in opts]
    if alias is None or missing:
        raise ValueError(f"no Host block with {', '.join(missing) or 'HostName, Port, User'}")
    try:
        port = int(opts["port"])
    except ValueError:
        raise ValueError(f"Port is not a number: {opts['port']!r}") from None
    return SSHConfig(alias, opts["hostname"], port, opts["user"], tuple(identities), opts)


NO_SNAPSHOTS = "No snapshots have been taken yet!"


def parse_snapshot_list(text: str) -> dict[str, list[str]]:
    """Snapshots per machine from `vagrant snapshot list --machine-readable`.

    Vagrant (plugins/commands/snapshot/command/list.rb) prints, per machine, either
    "VM not created. Moving on...", the "No snapshots..." output plus a prefixed
    detail, or an empty prefixed output line followed by one unprefixed ``detail``
    line per snapshot. Machines not created get an empty list too.
    """
    result: dict[str, list[str]] = {}
    none: set[str] = set()
    for line in parse_machine_readable(text):
        if not line.target or line.type not in ("ui", "metadata"):
            continue
        result.setdefault(line.target, [])
        if line.type != "ui" or len(line.data) < 2:
            continue
        level, message = line.data[0], ",".join(line.data[1:])
        if NO_SNAPSHOTS in message:
            none.add(line.target)
        # Prefixed details start with spaces ("    NAME: ..."); snapshot names do not.
        elif level == "detail" and line.target not in none and not message.startswith(" "):
            result[line.target].append(message)
    return result


@dataclass(frozen=True)
class BoxEntry:
    name: str
    provider: str
    version: str


def parse_box_list(text: str) -> list[BoxEntry]:
    """Installed boxes from `vagrant box list --machine-readable`.

    Vagrant (plugins/commands/box/command/list.rb) prints per box a human ``ui,info``
    line, then ``box-name``, ``box-provider`` and ``box-version`` (2.4 adds
    ``box-architecture`` and ``box-info`` lines; they are not needed here). With no
    box it prints only ``ui,warn,There are no installed boxes!...``.
    """
    out: list[BoxEntry] = []
    cur: dict[str, str] = {}
    for line in parse_machine_readable(text):
        if line.type not in ("box-name", "box-provider", "box-version") or not line.data:
            continue
        if line.type == "box-name":
            if "name" in cur:
                out.append(BoxEntry(cur["name"], cur.get("provider", ""), cur.get("version", "")))
            cur = {}
        cur[line.type[4:]] = line.data[0]
    if "name" in cur:
        out.append(BoxEntry(cur["name"], cur.get("provider", ""), cur.get("version", "")))
    return out
