"""libvirt inside a network namespace made for one end-to-end run.

The VMs' management network (192.168.121.0/24, NAT, dnsmasq) and the lab's host-only
network exist only inside the namespace: libvirtd, vagrant, ssh and labctl all run
there through ``ip netns exec``, so no packet to a private-range address leaves it.

Everything started is recorded and torn down by PID (``LibvirtNetns.teardown``), and
``tests/e2e/cleanup.py`` does the same for namespaces a crashed run left behind.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

NS_PREFIX = "labctl-e2e-"
LIBVIRT_URI = "qemu:///system"
LIBVIRT_SOCK = Path("/run/libvirt/libvirt-sock")
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
VIRTLOGD_PIDFILE = Path("/run/virtlogd.pid")
# The network libvirt ships with (libvirt-daemon-config-network) is never removed.
PACKAGED_NETWORKS = {"default"}


class HarnessError(RuntimeError):
    pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def host_libvirtd_running() -> int | None:
    """PID of a libvirtd that is not ours (one libvirtd per host: the state dirs clash)."""
    pid = read_pid(LIBVIRTD_PIDFILE)
    return pid if pid and pid_alive(pid) else None


def kill_pids(pids: list[int], *, grace: float = 10.0) -> None:
    live = [p for p in pids if pid_alive(p)]
    for p in live:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = [p for p in live if pid_alive(p) and not _is_zombie(p)]
        time.sleep(0.2)
    for p in live:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


@dataclass
class LibvirtNetns:
    """A network namespace with its own libvirtd; run commands in it with ``run``."""

    name: str
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    daemon_pids: dict[str, int] = field(default_factory=dict)
    created: bool = False
    # Storage pools defined before the run; vagrant-libvirt defines "default" if missing.
    pools_before: set[str] | None = None

    @classmethod
    def for_this_process(cls, log_dir: Path) -> "LibvirtNetns":
        return cls(name=f"{NS_PREFIX}{os.getpid()}", log_dir=log_dir)

    # ------------------------------------------------------------ commands
    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], *, check: bool = True, timeout: float = 600, env: dict | None = None,
            cwd: Path | None = None, log_name: str | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **self.env, **(env or {})}
        started = time.monotonic()
        proc = subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout,
                              env=full_env, cwd=cwd)
        if log_name:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / log_name, "a") as fh:
                fh.write(f"$ {shlex.join(argv)}  # rc={proc.returncode} {time.monotonic() - started:.1f}s\n")
                fh.write(proc.stdout)
                fh.write(proc.stderr)
        if check and proc.returncode != 0:
            raise HarnessError(f"{shlex.join(argv)} failed rc={proc.returncode}: {(proc.stderr or proc.stdout)[-2000:]}")
        return proc

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(["virsh", "-c", LIBVIRT_URI, *args], check=check, timeout=120)

    # ------------------------------------------------------------ lifecycle
    def start(self, *, timeout: float = 60.0) -> None:
        other = host_libvirtd_running()
        if other:
            raise HarnessError(f"a libvirtd (pid {other}) already runs on this host; stop it first (its state dirs clash)")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.created = True
        self.run(["ip", "link", "set", "lo", "up"])
        for daemon, pidfile in (("virtlogd", VIRTLOGD_PIDFILE), ("libvirtd", LIBVIRTD_PIDFILE)):
            # -d forks; the pid file names the daemon, which is what teardown kills.
            self.run([daemon, "-d", "--pid-file", str(pidfile)], log_name="daemons.log")
            pid = self._wait_pidfile(pidfile, timeout)
            self.daemon_pids[daemon] = pid
        deadline = time.monotonic() + timeout
        while True:
            probe = self.virsh("version", check=False)
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise HarnessError(f"libvirtd in {self.name} did not answer within {timeout:.0f}s: {probe.stderr.strip()}")
            time.sleep(0.3)
        self.pools_before = set(self.pools())

    def _wait_pidfile(self, path: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = read_pid(path)
            if pid and pid_alive(pid):
                return pid
            time.sleep(0.1)
        raise HarnessError(f"{path} did not appear within {timeout:.0f}s")

    # ------------------------------------------------------------ inspection
    def domains(self) -> list[str]:
        out = self.virsh("list", "--all", "--name", check=False).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def networks(self) -> list[str]:
        out = self.virsh("net-list", "--all", "--name", check=False).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def pools(self) -> list[str]:
        return self.virsh("pool-list", "--all", "--name", check=False).stdout.split()

    def volumes(self, pool: str = "default") -> list[str]:
        out = self.virsh("vol-list", pool, check=False).stdout
        names = []
        for line in out.splitlines()[2:]:
            parts = line.split()
            if parts:
                names.append(parts[0])
        return names

    def pids_in_namespace(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    # ------------------------------------------------------------ teardown
    def teardown(self, *, prefixes: tuple[str, ...] = ()) -> list[str]:
        """Remove our domains, networks and volumes, stop every process, drop the netns.

        Returns what it had to clean (for the test's log); never raises.
        """
        cleaned: list[str] = []
        if not self.created:
            return cleaned
        if self.daemon_pids.get("libvirtd") and pid_alive(self.daemon_pids["libvirtd"]):
            cleaned += purge_libvirt(self, prefixes)
        kill_pids(list(self.daemon_pids.values()))
        # Whatever still runs inside (qemu, dnsmasq, a stray ssh) is ours by construction.
        leftovers = self.pids_in_namespace()
        if leftovers:
            cleaned.append(f"killed pids {leftovers}")
            kill_pids(leftovers, grace=5)
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        self.created = False
        return cleaned


def purge_libvirt(ns: LibvirtNetns, prefixes: tuple[str, ...]) -> list[str]:
    """Remove domains (with snapshots and disks), networks and volumes named with a prefix.

    Only prefixed names: libvirtd here shares the host's state dirs, so anything else
    defined on the host is left alone.
    """
    cleaned: list[str] = []
    if not prefixes:
        return cleaned
    for dom in ns.domains():
        if not dom.startswith(prefixes):
            continue
        ns.virsh("destroy", dom, check=False)
        for snap in ns.virsh("snapshot-list", dom, "--name", check=False).stdout.split():
            ns.virsh("snapshot-delete", dom, snap, check=False)
        ns.virsh("undefine", dom, "--remove-all-storage", "--managed-save", "--snapshots-metadata", check=False)
        cleaned.append(f"domain {dom}")
    for net in ns.networks():
        if net.startswith(prefixes) and net not in PACKAGED_NETWORKS:
            ns.virsh("net-destroy", net, check=False)
            ns.virsh("net-undefine", net, check=False)
            cleaned.append(f"network {net}")
    for vol in ns.volumes():
        if vol.startswith(prefixes):
            ns.virsh("vol-delete", vol, "--pool", "default", check=False)
            cleaned.append(f"volume {vol}")
    if ns.pools_before is not None:
        for pool in set(ns.pools()) - ns.pools_before:
            if not ns.volumes(pool):
                ns.virsh("pool-destroy", pool, check=False)
                ns.virsh("pool-undefine", pool, check=False)
                cleaned.append(f"pool {pool} (definition)")
    return cleaned


# Every libvirt object an e2e run creates starts with one of these: the lab's domains,
# disks and host-only network (lab name), vagrant-libvirt's management network, and the
# box's volume in the default pool.
E2E_LAB_NAME = "labctl-e2e"
E2E_PREFIXES = (E2E_LAB_NAME, "vagrant-libvirt", "labctl-VAGRANTSLASH-")


def box_volume_name(box_name: str, box_version: str) -> str:
    """The volume vagrant-libvirt keeps a box's image in (its get_volume_name)."""
    return f"{box_name.replace('/', '-VAGRANTSLASH-')}_vagrant_box_image_{box_version}_box.img"


def seed_box_volume(ns: LibvirtNetns, image: Path, box_name: str, box_version: str, pool: str = "default") -> str:
    """Upload the box image into the storage pool before any `vagrant up`.

    vagrant-libvirt serialises the upload with a lock inside one Vagrant process only;
    labctl runs one `vagrant up NAME` process per machine, and on a fresh pool the
    second process snapshots a volume the first is still filling (its VM then finds no
    boot disk). Seeding the volume first sidesteps that race (see the e2e report).
    """
    pools = ns.virsh("pool-list", "--all", "--name").stdout.split()
    if pool not in pools:
        ns.virsh("pool-define-as", pool, "dir", "--target", "/var/lib/libvirt/images")
        ns.virsh("pool-build", pool, check=False)
        ns.virsh("pool-autostart", pool)
    if "running" not in ns.virsh("pool-info", pool).stdout.split("State:", 1)[-1].splitlines()[0]:
        ns.virsh("pool-start", pool)
    name = box_volume_name(box_name, box_version)
    if name in ns.volumes(pool):
        return name
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image)],
                                     check=True, capture_output=True, text=True).stdout)
    ns.virsh("vol-create-as", pool, name, f"{info['virtual-size']}B", "--format", "qcow2")
    ns.run(["virsh", "-c", LIBVIRT_URI, "vol-upload", "--pool", pool, name, str(image)], timeout=600)
    return name
