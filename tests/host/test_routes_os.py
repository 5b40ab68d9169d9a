"""The routing table on Windows (`route print -4`) and macOS (`netstat -rn -f inet`),
from their real output shapes, and the doctor's overlap check on them."""

from __future__ import annotations

from labctl.host.doctor import FAIL, OK, check
from labctl.host.hostfacts import HostFacts, ToolVersion
from labctl.host.platform import CommandOutput
from labctl.host.routetable import Route, parse_netstat_rn, parse_windows_route_print, read_routes
from labctl.spec import default_spec

ROUTE_PRINT = """\
===========================================================================
Interface List
 12...00 15 5d 4a 21 07 ......Hyper-V Virtual Ethernet Adapter
  9...0a 00 27 00 00 09 ......VirtualBox Host-Only Ethernet Adapter
 17...f4 26 79 3c 11 0e ......Intel(R) Wi-Fi 6 AX201 160MHz
  1...........................Software Loopback Interface 1
===========================================================================

IPv4 Route Table
===========================================================================
Active Routes:
Network Destination        Netmask          Gateway       Interface  Metric
          0.0.0.0          0.0.0.0      192.168.1.1    192.168.1.23     35
        127.0.0.0        255.0.0.0         On-link         127.0.0.1    331
        127.0.0.1  255.255.255.255         On-link         127.0.0.1    331
      192.168.1.0    255.255.255.0         On-link      192.168.1.23    291
     192.168.56.0    255.255.255.0         On-link      192.168.56.1    281
     192.168.56.1  255.255.255.255         On-link      192.168.56.1    281
        224.0.0.0        240.0.0.0         On-link         127.0.0.1    331
===========================================================================
Persistent Routes:
  None
"""

NETSTAT = """\
Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
default            192.168.1.1        UGScg                 en0
10.8/16            10.8.0.1           UGSc                utun4
127                127.0.0.1          UCS                   lo0
127.0.0.1          127.0.0.1          UH                    lo0
169.254            link#6             UCS                   en0      !
192.168.1          link#6             UCS                   en0      !
192.168.1.1/32     link#6             UCS                   en0      !
192.168.56         link#17            UC               vboxnet0      !
"""


def test_windows_route_print():
    routes = parse_windows_route_print(ROUTE_PRINT)
    assert routes[0] == Route("default", "if 192.168.1.23")
    assert Route("192.168.56.0/24", "if 192.168.56.1") in routes
    assert Route("192.168.1.0/24", "if 192.168.1.23") in routes and len(routes) == 7


def test_macos_netstat():
    routes = parse_netstat_rn(NETSTAT)
    assert routes[0] == Route("default", "en0")
    assert Route("10.8.0.0/16", "utun4") in routes and Route("127.0.0.0/8", "lo0") in routes
    assert Route("192.168.56.0/24", "vboxnet0") in routes and Route("192.168.1.1/32", "en0") in routes


def test_readers_use_the_runner_and_say_when_they_cannot():
    calls = []

    def runner(argv):
        calls.append(argv)
        return CommandOutput(0, ROUTE_PRINT if argv[0] == "route" else NETSTAT)

    assert Route("192.168.56.0/24", "if 192.168.56.1") in read_routes({}, "windows", runner)
    assert Route("192.168.56.0/24", "vboxnet0") in read_routes({}, "macos", runner)
    assert calls == [["route", "print", "-4"], ["netstat", "-rn", "-f", "inet"]]
    assert read_routes({}, "windows", lambda argv: CommandOutput(None, "", "not found")) is None


def _facts(routes) -> HostFacts:
    return HostFacts(vagrant=ToolVersion(True, "2.4.9"), virtualbox=ToolVersion(True, "7.1.6"), cpus=8,
                     memory_mb=16384, disk_free_mb=100_000, disk_path="C:\\Users\\s", routes=tuple(routes))


def _routes_levels(routes):
    return [f.level for f in check(default_spec(), _facts(routes)).findings if f.id == "routes"]


def test_the_labs_own_host_only_adapter_on_windows_and_macos_is_fine():
    assert _routes_levels(parse_windows_route_print(ROUTE_PRINT)) == [OK]
    assert _routes_levels([r for r in parse_netstat_rn(NETSTAT) if not r.dst.startswith("10.")]) == [OK]


def test_a_wifi_on_the_host_only_network_fails_on_windows():
    lan = ROUTE_PRINT.replace("192.168.56.0    255.255.255.0         On-link      192.168.56.1",
                              "192.168.56.0    255.255.255.0         On-link     192.168.56.23")
    routes = parse_windows_route_print(lan)
    assert Route("192.168.56.0/24", "if 192.168.56.23") in routes
    assert _routes_levels(routes) == [FAIL]
