"""`labctl doctor`: can this host run the lab? Each finding says what to do about it.

Facts about the host are gathered once (HostFacts, labctl.host.hostfacts: tool versions
from the real commands, the platform facts of labctl.host.platform, free disk, the
routing table) and judged by pure functions, one module per concern:
doctor_host (the machine, resources, box architecture), doctor_virtualbox,
doctor_libvirt, doctor_routes. Tests pass HostFacts/HostInfo as data.
`up` calls ``require_ready`` first and stops with the first failure's fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.errors import HostNotReady
from labctl.host import doctor_libvirt, doctor_virtualbox
from labctl.host.doctor_host import (  # noqa: F401 - the doctor's public names
    DISK_MIN_PER_NODE_MB,
    DISK_PER_NODE_MB,
    HOST_COMFORT_MEMORY_MB,
    HOST_MIN_MEMORY_MB,
    check_host,
    check_resources,
)
from labctl.host.doctor_routes import check_routes
from labctl.host.doctor_virtualbox import VAGRANT_INSTALL_FIX, VAGRANT_VBOX_TABLE, newest_virtualbox_for  # noqa: F401
from labctl.host.findings import FAIL, OK, WARN, DoctorReport, Finding  # noqa: F401
from labctl.host.hostfacts import (  # noqa: F401
    HostFacts,
    Route,
    ToolVersion,
    gather,
    parse_ip_json_routes,
    parse_proc_net_route,
)
from labctl.host.platform import HostInfo

if TYPE_CHECKING:
    from labctl.spec.model import LabSpec


def _libvirt_findings(spec: LabSpec, host: HostFacts) -> list[Finding]:
    return doctor_libvirt.findings(spec, host.libvirt, vagrant_installed=host.vagrant.installed and not host.vagrant.error)


PROVIDER_CHECKS: dict[str, Callable[[LabSpec, HostFacts], list[Finding]]] = {
    "virtualbox": doctor_virtualbox.findings,
    "libvirt": _libvirt_findings,
}


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


def check(spec: LabSpec, host: HostFacts) -> DoctorReport:
    """Judge ``host`` for ``spec``: pure, the same facts give the same findings."""
    from labctl.spec import validate

    report = DoctorReport()
    report.findings += check_host(spec, host)
    report.findings += check_tools(spec, host)
    report.findings += check_resources(spec, host)
    report.findings += check_routes(spec, host)
    report.findings += [Finding("spec", WARN, w) for w in validate(spec)]
    return report


def run_doctor(lab_dir: Path, *, env: Mapping[str, str] | None = None, routes: Sequence[Route] | None = None,
               host: HostInfo | None = None) -> DoctorReport:
    """Load the lab's spec (lab.yaml or the default) and check the host against it."""
    from labctl.spec import load_spec

    spec = load_spec(Path(lab_dir))
    return check(spec, gather(env=env, routes=routes, provider=spec.provider, host=host))


def require_ready(spec: LabSpec, *, env: Mapping[str, str] | None = None, routes: Sequence[Route] | None = None,
                  host: HostInfo | None = None) -> DoctorReport:
    """What `up` calls first: raise HostNotReady with the first failure and its fix."""
    report = check(spec, gather(env=env, routes=routes, provider=spec.provider, host=host))
    if report.failures:
        first = report.failures[0]
        others = len(report.failures) - 1
        raise HostNotReady(
            first.message + (f" (and {others} more problem{'s' if others > 1 else ''}: run `labctl doctor`)" if others else ""),
            hint=first.fix,
        )
    return report
