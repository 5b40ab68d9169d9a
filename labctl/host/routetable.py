"""The host's IPv4 routing table on Linux, Windows and macOS, as Route values.

Linux: `ip -j route` (or /proc/net/route). Windows: `route print -4` (its Interface
column is the interface's address, not its name). macOS: `netstat -rn -f inet` (its
destinations drop trailing zero octets: "192.168.56" is 192.168.56.0/24). Parsers take
the text, readers take a runner, so tests feed each OS's real output.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from labctl.host.platform import Runner


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or a CIDR
    dev: str  # interface name; on Windows "if <address>"


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


def parse_windows_route_print(text: str) -> tuple[Route, ...]:
    """Active routes from `route print -4`: destination, netmask, gateway, interface, metric."""
    routes = []
    active = False
    for line in text.splitlines():
        cols = line.split()
        if line.strip().startswith("Active Routes"):
            active = True
            continue
        if not active:
            continue
        if line.startswith("=") or line.strip().startswith("Persistent Routes"):
            break
        if len(cols) != 5 or cols[0] == "Network":
            continue
        try:
            net = ipaddress.IPv4Network(f"{cols[0]}/{cols[1]}", strict=False)
        except ValueError:
            continue
        routes.append(Route("default" if net.prefixlen == 0 else str(net), f"if {cols[3]}"))
    return tuple(routes)


def _bsd_destination(dst: str) -> str | None:
    if dst == "default":
        return "default"
    addr, _, prefix = dst.partition("/")
    octets = addr.split(".")
    if not all(o.isdigit() for o in octets) or len(octets) > 4:
        return None  # link#N, IPv6, hardware addresses
    bits = int(prefix) if prefix.isdigit() else 8 * len(octets)
    try:
        return str(ipaddress.IPv4Network(f"{'.'.join(octets + ['0'] * (4 - len(octets)))}/{bits}", strict=False))
    except ValueError:
        return None


def parse_netstat_rn(text: str) -> tuple[Route, ...]:
    """Routes from macOS `netstat -rn -f inet` (columns found from its header line)."""
    routes = []
    netif = None
    for line in text.splitlines():
        cols = line.split()
        if cols[:1] == ["Destination"] and "Netif" in cols:
            netif = cols.index("Netif")
            continue
        if netif is None or len(cols) <= netif:
            continue
        dst = _bsd_destination(cols[0])
        if dst is not None:
            routes.append(Route(dst, cols[netif]))
    return tuple(routes)


def read_routes(env: Mapping[str, str], host_os: str = "linux", runner: Runner | None = None) -> tuple[Route, ...] | None:
    """This host's IPv4 routes; None where they cannot be read."""
    if host_os in ("windows", "macos") and runner is not None:
        argv, parse = (["route", "print", "-4"], parse_windows_route_print) if host_os == "windows" \
            else (["netstat", "-rn", "-f", "inet"], parse_netstat_rn)
        out = runner(argv)
        return (parse(out.stdout) or None) if out.rc == 0 else None
    ip = shutil.which("ip", path=env.get("PATH", "")) or shutil.which("ip")
    if ip:
        try:
            proc = subprocess.run([ip, "-j", "-4", "route", "show", "table", "main"], capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL)
            if proc.returncode == 0:
                return parse_ip_json_routes(proc.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
    try:
        return parse_proc_net_route(Path("/proc/net/route").read_text())
    except OSError:
        return None
