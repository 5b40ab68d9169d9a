"""What the doctor knows about the host (HostFacts) and how it is gathered.

Tool versions come from the real commands (on PATH, or where the installer put
VBoxManage), the rest from ``labctl.host.platform`` and the routing table. Every
judgement is elsewhere and takes HostFacts as data, so tests inject facts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labctl.host import doctor_libvirt
from labctl.host.doctor_libvirt import LibvirtFacts
from labctl.host.platform import HostInfo, gather_host, run_command
from labctl.host.routetable import Route, parse_ip_json_routes, parse_proc_net_route, read_routes  # noqa: F401


@dataclass(frozen=True)
class ToolVersion:
    installed: bool
    version: str | None = None  # "7.0.14", None when unreadable
    raw: str = ""  # what the tool printed (kept for the finding when it is odd)
    error: str | None = None
    path: str | None = None  # where it was found


@dataclass(frozen=True)
class HostFacts:
    vagrant: ToolVersion
    virtualbox: ToolVersion
    cpus: int
    memory_mb: int
    disk_free_mb: int
    disk_path: str
    routes: tuple[Route, ...] | None  # None: the routing table could not be read
    libvirt: LibvirtFacts | None = None  # probed only for a libvirt lab (doctor_libvirt)
    host: HostInfo | None = None  # OS, CPU architecture, hypervisor state (None: not known)


_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def tool_version(exe: str, env: Mapping[str, str], path: str | None = None) -> ToolVersion:
    """``exe --version`` of the tool at ``path`` (else found on PATH)."""
    path = path or shutil.which(exe, path=env.get("PATH", ""))
    if path is None:
        return ToolVersion(installed=False)
    try:
        proc = subprocess.run([path, "--version"], env=dict(env), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ToolVersion(installed=True, error=f"`{exe} --version` failed: {exc}", path=path)
    out = (proc.stdout + "\n" + proc.stderr).strip()
    if proc.returncode != 0:
        last = out.splitlines()[-1] if out else ""
        return ToolVersion(installed=True, raw=out, error=f"`{exe} --version` exited {proc.returncode}: {last}", path=path)
    # VBoxManage prints kernel-module warnings before its version: take the last match.
    matches = _VERSION.findall(proc.stdout) or _VERSION.findall(out)
    if not matches:
        return ToolVersion(installed=True, raw=out, error=f"`{exe} --version` printed no version: {out[:80]!r}", path=path)
    return ToolVersion(installed=True, version=".".join(matches[-1]), raw=out, path=path)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def gather(
    *,
    env: Mapping[str, str] | None = None,
    routes: Sequence[Route] | None = None,
    disk_path: Path | None = None,
    provider: str | None = None,
    host: HostInfo | None = None,
) -> HostFacts:
    """Probe the host. ``routes`` replaces the host's routing table and ``host`` the
    platform facts (tests pass data). ``provider`` "libvirt" also probes the plugin and
    libvirtd (a few seconds)."""
    env = dict(os.environ if env is None else env)
    host = host or gather_host(env)
    # VirtualBox keeps VMs under ~/VirtualBox VMs: that disk fills up, not the lab folder.
    where = _existing(disk_path or Path(env.get("HOME") or env.get("USERPROFILE") or Path.home()))
    return HostFacts(
        vagrant=tool_version("vagrant", env),
        virtualbox=tool_version("VBoxManage", env, host.vboxmanage),
        cpus=host.cpus,
        memory_mb=host.memory_mb,
        disk_free_mb=shutil.disk_usage(where).free // (1024 * 1024),
        disk_path=str(where),
        routes=tuple(routes) if routes is not None else read_routes(env, host.os, run_command),
        libvirt=doctor_libvirt.gather(env) if provider == "libvirt" else None,
        host=host,
    )
