"""`labctl doctor`: can this host run the lab? Each finding says what to do about it.

Facts about the host are gathered once (HostFacts: tool versions from the real
commands on PATH, CPUs, memory, free disk, the routing table) and judged by pure
functions, so tests pass a PATH of stand-in tools and route tables as data.
`up` calls ``require_ready`` first and stops with the first failure's fix.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labctl.host.doctor_libvirt import LibvirtFacts
from labctl.spec import LabSpec
from labctl.errors import HostNotReady

OK, WARN, FAIL = "ok", "warn", "fail"

# Newest VirtualBox minor each Vagrant release line drives (Vagrant refuses any other
# with "a version of VirtualBox installed that is not supported"). Sources: Vagrant
# 2.3.2's CHANGELOG (VirtualBox 7.0 support), hashicorp/vagrant#13513 (7.1, released
# in 2.4.2) and #13501 (2.4.1 refuses 7.1). Rows: (first Vagrant version, newest VirtualBox).
VAGRANT_VBOX_TABLE: tuple[tuple[tuple[int, int, int], tuple[int, int]], ...] = (
    ((2, 2, 7), (6, 1)),
    ((2, 3, 2), (7, 0)),
    ((2, 4, 2), (7, 1)),
)
VIRTUALBOX_INSTALL_FIX = "install VirtualBox 7.0 (https://www.virtualbox.org/wiki/Download_Old_Builds_7_0)"
VAGRANT_INSTALL_FIX = "install Vagrant 2.4 (https://developer.hashicorp.com/vagrant/install) or your distribution's vagrant package"
# Room per VM: the box's linked clone grows by the node's packages and images (~3 GB
# with the control-plane images); below the minimum a node's disk fills during `up`.
DISK_PER_NODE_MB = 5 * 1024
DISK_MIN_PER_NODE_MB = 2 * 1024
# The host's own OS needs this much (below it VMs get swapped out) ...
HOST_MIN_MEMORY_MB = 1024
# ... and a desktop with a browser comfortably this much.
HOST_COMFORT_MEMORY_MB = 3072


@dataclass(frozen=True)
class Finding:
    id: str
    level: str  # ok | warn | fail
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a CIDR
    dev: str


@dataclass(frozen=True)
class ToolVersion:
    installed: bool
    version: str | None = None  # "7.0.14", None when unreadable
    raw: str = ""  # what the tool printed (kept for the finding when it is odd)
    error: str | None = None


@dataclass(frozen=True)
class HostFacts:
    vagrant: ToolVersion
    virtualbox: ToolVersion
    cpus: int
    memory_mb: int
    disk_free_mb: int
    disk_path: str
    routes: tuple[Route, ...] | None  # None: the routing table could not be read
    libvirt: "LibvirtFacts | None" = None  # probed only for a libvirt lab (doctor_libvirt)


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings]}


# ------------------------------------------------------------------ gathering

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def _tool_version(exe: str, env: Mapping[str, str]) -> ToolVersion:
    path = shutil.which(exe, path=env.get("PATH", ""))
    if path is None:
        return ToolVersion(installed=False)
    try:
        proc = subprocess.run([path, "--version"], env=dict(env), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ToolVersion(installed=True, error=f"`{exe} --version` failed: {exc}")
    out = (proc.stdout + "\n" + proc.stderr).strip()
    if proc.returncode != 0:
        last = out.splitlines()[-1] if out else ""
        return ToolVersion(installed=True, raw=out, error=f"`{exe} --version` exited {proc.returncode}: {last}")
    # VBoxManage prints kernel-module warnings before its version: take the last match.
    matches = _VERSION.findall(proc.stdout) or _VERSION.findall(out)
    if not matches:
        return ToolVersion(installed=True, raw=out, error=f"`{exe} --version` printed no version: {out[:80]!r}")
    return ToolVersion(installed=True, version=".".join(matches[-1]), raw=out)


def parse_ip_json_routes(text: str) -> tuple[Route, ...]:
    """Routes from `ip -j route` output."""
    return tuple(Route(str(r.get("dst", "")), str(r.get("dev", ""))) for r in json.loads(text or "[]"))


def parse_proc_net_route(text: str) -> tuple[Route, ...]:
    """Routes from /proc/net/route (little-endian hex destination and mask)."""
    routes = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        dev, dst_hex, mask_hex = cols[0], cols[1], cols[7]
        dst = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(dst_hex), "little"))
        mask = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(mask_hex), "little"))
        if int(mask) == 0:
            routes.append(Route("default", dev))
        else:
            routes.append(Route(str(ipaddress.IPv4Network(f"{dst}/{mask}", strict=False)), dev))
    return tuple(routes)


def _read_routes(env: Mapping[str, str]) -> tuple[Route, ...] | None:
    ip = shutil.which("ip", path=env.get("PATH", "")) or shutil.which("ip")
    if ip:
        proc = subprocess.run([ip, "-j", "-4", "route", "show", "table", "main"], capture_output=True, text=True, timeout=10)
        if proc.returncode == 0:
            try:
                return parse_ip_json_routes(proc.stdout)
            except ValueError:
                pass
    try:
        return parse_proc_net_route(Path("/proc/net/route").read_text())
    except OSError:
        return None


def _memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return 0


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
) -> HostFacts:
    """Probe the host. ``routes`` replaces the host's routing table (tests pass data).

    ``provider`` "libvirt" also probes the plugin and libvirtd (a few seconds).
    """
    env = dict(os.environ if env is None else env)
    # VirtualBox keeps VMs under ~/VirtualBox VMs: that disk fills up, not the lab folder.
    where = _existing(disk_path or Path(env.get("HOME") or Path.home()))
    return HostFacts(
        vagrant=_tool_version("vagrant", env),
        virtualbox=_tool_version("VBoxManage", env),
        cpus=os.cpu_count() or 1,
        memory_mb=_memory_mb(),
        disk_free_mb=shutil.disk_usage(where).free // (1024 * 1024),
        disk_path=str(where),
        routes=tuple(routes) if routes is not None else _read_routes(env),
        libvirt=_gather_libvirt(env) if provider == "libvirt" else None,
    )


def _gather_libvirt(env: Mapping[str, str]) -> LibvirtFacts:
    from labctl.host import doctor_libvirt

    return doctor_libvirt.gather(env)


# ------------------------------------------------------------------ judging


def _vt(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def newest_virtualbox_for(vagrant_version: str) -> tuple[int, int] | None:
    v = _vt(vagrant_version)
    newest = None
    for first, vbox in VAGRANT_VBOX_TABLE:
        if v >= first:
            newest = vbox
    return newest


def check_tools(spec: LabSpec, host: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    vg = host.vagrant
    if not vg.installed:
        out.append(Finding("vagrant", FAIL, "Vagrant is not installed", VAGRANT_INSTALL_FIX))
    elif vg.error:
        out.append(Finding("vagrant", FAIL, vg.error, "reinstall Vagrant; run `vagrant --version` to see the problem"))
    else:
        out.append(Finding("vagrant", OK, f"Vagrant {vg.version}"))
    out += PROVIDER_CHECKS[spec.provider](spec, host)
    return out


def _virtualbox_findings(spec: LabSpec, host: HostFacts) -> list[Finding]:
    vb, vg = host.virtualbox, host.vagrant
    if not vb.installed:
        return [Finding("virtualbox", FAIL, "VirtualBox is not installed (VBoxManage not found on PATH)", VIRTUALBOX_INSTALL_FIX)]
    if vb.error:
        return [Finding("virtualbox", FAIL, f"VirtualBox does not work: {vb.error}", "reinstall VirtualBox 7.0 and reboot so its kernel modules load")]
    out = [Finding("virtualbox", OK, f"VirtualBox {vb.version}")]
    if not vg.version:
        return out
    vbox_minor = _vt(vb.version)[:2]
    newest = newest_virtualbox_for(vg.version)
    pair = f"Vagrant {vg.version} with VirtualBox {vb.version}"
    if newest is None:
        out.append(Finding("pair", FAIL, f"{pair}: this Vagrant is too old for labctl", VAGRANT_INSTALL_FIX))
    elif vbox_minor > newest:
        known = [v for first, v in VAGRANT_VBOX_TABLE if v >= vbox_minor]
        if known:
            need = next(".".join(map(str, first)) for first, v in VAGRANT_VBOX_TABLE if v >= vbox_minor)
            out.append(Finding("pair", FAIL, f"{pair}: this Vagrant refuses VirtualBox {vbox_minor[0]}.{vbox_minor[1]}",
                               f"upgrade Vagrant to >= {need}, or install VirtualBox {newest[0]}.{newest[1]}"))
        else:
            out.append(Finding("pair", WARN, f"{pair}: VirtualBox {vbox_minor[0]}.{vbox_minor[1]} is newer than labctl's compatibility table",
                               "if `vagrant up` says the VirtualBox version is not supported, upgrade Vagrant or install VirtualBox 7.1"))
    else:
        out.append(Finding("pair", OK, f"{pair} is a known working pair"))
    return out


def _libvirt_findings(spec: LabSpec, host: HostFacts) -> list[Finding]:
    from labctl.host import doctor_libvirt

    return doctor_libvirt.findings(spec, host.libvirt, vagrant_installed=host.vagrant.installed and not host.vagrant.error)


PROVIDER_CHECKS: dict[str, Callable[[LabSpec, HostFacts], list[Finding]]] = {
    "virtualbox": _virtualbox_findings,
    "libvirt": _libvirt_findings,
}


def check_resources(spec: LabSpec, host: HostFacts) -> list[Finding]:
    out: list[Finding] = []
    cpus = sum(n.cpus for n in spec.nodes)
    widest = max(spec.nodes, key=lambda n: n.cpus)
    if widest.cpus > host.cpus:
        out.append(Finding("cpus", FAIL, f"{widest.name} wants {widest.cpus} CPUs, the host has {host.cpus}", f"set nodes' cpus to at most {host.cpus} in lab.yaml"))
    elif cpus > host.cpus:
        out.append(Finding("cpus", WARN, f"the lab's {cpus} vCPUs share the host's {host.cpus} CPUs (slower, still works)", "fewer workers (`labctl init --nodes 1 --force`) make bring-up faster"))
    else:
        out.append(Finding("cpus", OK, f"{cpus} vCPUs of the host's {host.cpus}"))

    mem = sum(n.memory for n in spec.nodes)
    if mem > host.memory_mb - HOST_MIN_MEMORY_MB:
        out.append(Finding("memory", FAIL, f"the lab needs {mem} MB of memory, the host has {host.memory_mb} MB (and keeps {HOST_MIN_MEMORY_MB} MB for itself)",
                           "use fewer workers (`labctl init --nodes 1 --force`) or less memory per worker (>= 1536 MB for k8s-node1)"))
    elif mem > host.memory_mb - HOST_COMFORT_MEMORY_MB:
        out.append(Finding("memory", WARN, f"the lab takes {mem} MB of the host's {host.memory_mb} MB", "close other applications while the lab runs"))
    else:
        out.append(Finding("memory", OK, f"{mem} MB of the host's {host.memory_mb} MB"))

    disk = DISK_PER_NODE_MB * len(spec.nodes)
    if host.disk_free_mb < DISK_MIN_PER_NODE_MB * len(spec.nodes):
        out.append(Finding("disk", FAIL, f"{host.disk_free_mb} MB free under {host.disk_path}, the lab needs about {disk} MB", "free some disk space"))
    elif host.disk_free_mb < disk:
        out.append(Finding("disk", WARN, f"{host.disk_free_mb} MB free under {host.disk_path}, the lab may grow to about {disk} MB", "free some disk space"))
    else:
        out.append(Finding("disk", OK, f"{host.disk_free_mb} MB free under {host.disk_path} (lab needs about {disk} MB)"))
    return out


# Interfaces a hypervisor creates for a host-only network: a route of the lab's own
# network through one of them is the lab itself (or another lab of the same course).
_HOST_ONLY_DEVS = re.compile(r"^(vboxnet\d+|virbr\d+|vnet\d+)$|-hostonly$")


def check_routes(spec: LabSpec, host: HostFacts) -> list[Finding]:
    if host.routes is None:
        return [Finding("routes", WARN, "could not read the host's routing table", "check by hand that no host network overlaps " + spec.network.host_only)]
    nets = {
        "network.host_only": ipaddress.ip_network(spec.network.host_only),
        "network.pod_cidr": ipaddress.ip_network(spec.network.pod_cidr),
        "network.service_cidr": ipaddress.ip_network(spec.network.service_cidr),
    }
    out: list[Finding] = []
    for route in host.routes:
        if route.dst in ("default", "", "0.0.0.0/0"):
            continue
        try:
            dst = ipaddress.ip_network(route.dst, strict=False)
        except ValueError:
            continue
        if dst.version != 4:
            continue
        for field_name, net in nets.items():
            if not dst.overlaps(net):
                continue
            if field_name == "network.host_only" and dst == net and _HOST_ONLY_DEVS.search(route.dev):
                continue
            if field_name == "network.host_only":
                out.append(Finding("routes", FAIL, f"the host routes {dst} via {route.dev}, which overlaps {field_name} {net}",
                                   f"pick another {field_name} in lab.yaml (inside 192.168.56.0/21), or disconnect the network on {route.dev}"))
            else:
                out.append(Finding("routes", WARN, f"the host routes {dst} via {route.dev}, which overlaps {field_name} {net}",
                                   f"pick a {field_name} that does not overlap {dst}, or Pods cannot reach that network"))
    if not out:
        out.append(Finding("routes", OK, "no host route overlaps the lab's networks"))
    return out


def check(spec: LabSpec, host: HostFacts) -> DoctorReport:
    from labctl.spec import validate

    report = DoctorReport()
    report.findings += check_tools(spec, host)
    report.findings += check_resources(spec, host)
    report.findings += check_routes(spec, host)
    report.findings += [Finding("spec", WARN, w) for w in validate(spec)]
    return report


def run_doctor(lab_dir: Path, *, env: Mapping[str, str] | None = None, routes: Sequence[Route] | None = None) -> DoctorReport:
    """Load the lab's spec (lab.yaml or the default) and check the host against it."""
    from labctl.spec import load_spec

    spec = load_spec(Path(lab_dir))
    return check(spec, gather(env=env, routes=routes, provider=spec.provider))


def require_ready(spec: LabSpec, *, env: Mapping[str, str] | None = None, routes: Sequence[Route] | None = None) -> DoctorReport:
    """What `up` calls first: raise HostNotReady with the first failure and its fix."""
    report = check(spec, gather(env=env, routes=routes, provider=spec.provider))
    if report.failures:
        first = report.failures[0]
        others = len(report.failures) - 1
        raise HostNotReady(
            first.message + (f" (and {others} more problem{'s' if others > 1 else ''}: run `labctl doctor`)" if others else ""),
            hint=first.fix,
        )
    return report
