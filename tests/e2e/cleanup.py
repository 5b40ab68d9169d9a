"""Remove whatever a crashed or killed e2e run left behind.

    python -m tests.e2e.cleanup

Stops every process in each ``labctl-e2e-*`` network namespace by PID, deletes the
namespaces, then starts a throw-away libvirtd (in a namespace of its own) to remove the
e2e domains, networks and volumes still defined on disk, and stops it again.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.harness import E2E_PREFIXES, NS_PREFIX, LibvirtNetns, host_libvirtd_running, kill_pids


def stale_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(NS_PREFIX)]


def main() -> int:
    for name in stale_namespaces():
        ns = LibvirtNetns(name=name, log_dir=Path(tempfile.gettempdir()), created=True)
        pids = ns.pids_in_namespace()
        kill_pids(pids)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        print(f"cleanup: namespace {name} removed (stopped pids {pids})")
    if host_libvirtd_running():
        print("cleanup: a libvirtd runs on the host; left libvirt objects alone", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as logs:
        ns = LibvirtNetns(name=f"{NS_PREFIX}cleanup", log_dir=Path(logs))
        try:
            ns.start()
        finally:
            cleaned = ns.teardown(prefixes=E2E_PREFIXES)
    for item in cleaned:
        print(f"cleanup: removed {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
