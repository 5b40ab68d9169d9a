"""pytest plugin: the `vagrant` stand-in (tests/fakes/vagrant) first on PATH.

    def test_x(fake_vagrant, tmp_path):
        lab = fake_vagrant.lab(tmp_path / "lab", ["k8s-master", "k8s-node1"])
        fake_vagrant.set_host("k8s-node1", host="127.0.0.1", port=2201, user="vagrant", identity_file=key)
        fake_vagrant.fail("up", "k8s-node1", kind="hostonly")
        fake_vagrant.up_seconds(0.5, k8s_node1=30)          # or up_seconds(**{"k8s-node1": 30})
        ... run labctl / VagrantDriver(lab, ...) ...
        calls = fake_vagrant.calls(lab)                      # the stand-in's journal

Everything goes through the environment (monkeypatch.setenv), so subprocesses that
labctl starts see the same stand-in. ``fake_vagrant.env`` is the variables set, for
code that passes an explicit ``env=``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parent.parent / "fakes"
# The box labctl's default lab.yaml pins (labctl.spec.model.Box).
DEFAULT_BOX = ("bento/ubuntu-22.04", "202401.31.0")
STANDIN = FAKES / "vagrant"


@dataclass
class VagrantCall:
    """One run of the stand-in, from its journal. ``end``/``rc`` are None if it was killed."""

    pid: int
    argv: list[str]
    cwd: str
    start: float
    end: float | None = None
    rc: int | None = None
    child_pids: list[int] = field(default_factory=list)

    @property
    def verb(self) -> str:
        words = [a for a in self.argv if not a.startswith("-")]
        return words[0] if words else ""

    @property
    def machine(self) -> str | None:
        words = [a for a in self.argv if not a.startswith("-")]
        return words[1] if len(words) > 1 and self.verb != "snapshot" else None


def read_journal(lab_dir: Path) -> list[VagrantCall]:
    """Calls in start order, merged from the start/child/end records."""
    path = Path(lab_dir) / ".vagrant" / "fake-journal.jsonl"
    calls: dict[int, VagrantCall] = {}
    if not path.exists():
        return []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == "start":
            calls[rec["pid"]] = VagrantCall(rec["pid"], rec["argv"], rec["cwd"], rec["time"])
        elif rec["pid"] in calls:
            call = calls[rec["pid"]]
            if rec["event"] == "end":
                call.end, call.rc = rec["time"], rec["rc"]
            elif rec["event"] == "child":
                call.child_pids.append(rec["child_pid"])
    return sorted(calls.values(), key=lambda c: c.start)


def max_overlap(calls: list[VagrantCall]) -> int:
    """The largest number of calls that ran at the same moment."""
    edges = []
    for c in calls:
        edges.append((c.start, 1))
        edges.append((c.end if c.end is not None else float("inf"), -1))
    best = cur = 0
    for _, delta in sorted(edges):
        cur += delta
        best = max(best, cur)
    return best


def write_vagrantfile(lab_dir: Path, machines: list[str], provider: str = "virtualbox") -> Path:
    """A minimal Vagrantfile in the shape labctl renders (one define per machine)."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    lines = ['Vagrant.configure("2") do |config|', '  config.vm.box = "bento/ubuntu-22.04"']
    for i, name in enumerate(machines):
        lines += [
            f'  config.vm.define "{name}" do |node|',
            f'    node.vm.hostname = "{name}"',
            f'    node.vm.network "private_network", ip: "192.168.56.{30 + i}"',
            f'    node.vm.provider "{provider}" do |p|',
            "    end",
            "  end",
        ]
    lines.append("end")
    path = lab_dir / "Vagrantfile"
    path.write_text("\n".join(lines) + "\n")
    return path


def _is_ours(pid: int, standin_pid: int) -> bool:
    """PIDs get reused: only the stand-in itself or a child it started (a `sleep`)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if pid == standin_pid:
        return any(part.endswith(b"fakes/vagrant") for part in cmdline)
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    return ppid == standin_pid and cmdline[:1] == [b"sleep"]


class FakeVagrant:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
        self._mp = monkeypatch
        self.workdir = workdir
        self.hosts_file = workdir / "hosts.json"
        self.hosts_file.write_text("{}")
        self.env: dict[str, str] = {}
        self._failures: list[str] = []
        self._labs: set[Path] = set()
        self._set("PATH", f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}")
        self._set("LABCTL_FAKE_VAGRANT_HOSTS", str(self.hosts_file))
        self._set("VAGRANT_CHECKPOINT_DISABLE", "1")
        # Boxes are global to a user in Vagrant; the stand-in keeps them here, never in ~.
        self.vagrant_home = workdir / "vagrant.d"
        self._set("VAGRANT_HOME", str(self.vagrant_home))
        # A host that has run the lab before: the default box is there (remove_boxes()
        # makes a fresh host).
        for provider in ("virtualbox", "libvirt"):
            self.add_box(DEFAULT_BOX[0], DEFAULT_BOX[1], provider)
        monkeypatch.delenv("LABCTL_FAKE_VAGRANT_FAIL", raising=False)
        monkeypatch.delenv("LABCTL_FAKE_VAGRANT_UP_SECONDS", raising=False)
        monkeypatch.delenv("LABCTL_FAKE_VAGRANT_BOX_SECONDS", raising=False)
        monkeypatch.delenv("VAGRANT_DEFAULT_PROVIDER", raising=False)

    def _set(self, key: str, value: str) -> None:
        self.env[key] = value
        self._mp.setenv(key, value)

    executable = STANDIN

    def lab(self, lab_dir: Path, machines: list[str], provider: str = "virtualbox") -> Path:
        write_vagrantfile(lab_dir, machines, provider)
        self.watch(lab_dir)
        return lab_dir

    def watch(self, lab_dir: Path) -> None:
        """Stop this lab's stand-in processes at teardown (for labs made without lab())."""
        self._labs.add(Path(lab_dir))

    def stop_leftovers(self) -> list[int]:
        """Kill, by PID, stand-in runs (and their children) that never journaled an end."""
        killed = []
        for lab_dir in self._labs:
            for call in read_journal(lab_dir):
                if call.end is not None:
                    continue
                for pid in [*call.child_pids, call.pid]:
                    if _is_ours(pid, call.pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
        return killed

    def set_host(self, machine: str, *, host: str = "127.0.0.1", port: int | None = None,
                 ports: list[int] | None = None, user: str = "vagrant",
                 identity_file: str | Path | None = None) -> None:
        """What `vagrant ssh-config MACHINE` answers; ``ports`` rotate with each `up`."""
        hosts = json.loads(self.hosts_file.read_text())
        entry: dict = {"host": host, "user": user}
        if ports:
            entry["ports"] = list(ports)
        elif port is not None:
            entry["port"] = port
        if identity_file is not None:
            entry["identity_file"] = str(identity_file)
        hosts[machine] = entry
        self.hosts_file.write_text(json.dumps(hosts))

    def set_target(self, target) -> None:
        """Point a machine at an SSHTarget (e.g. a test sshd's ``.target(name)``)."""
        self.set_host(target.name, host=target.host, port=target.port, user=target.user,
                      identity_file=target.key_file)

    def fail(self, verb: str, machine: str = "*", kind: str | None = None) -> None:
        """Make `vagrant VERB` fail for MACHINE (kinds: vboxmanage, hostonly, vtx, box, boot)."""
        self._failures.append(":".join([verb, machine] + ([kind] if kind else [])))
        self._set("LABCTL_FAKE_VAGRANT_FAIL", ",".join(self._failures))

    def clear_failures(self) -> None:
        self._failures.clear()
        self.env.pop("LABCTL_FAKE_VAGRANT_FAIL", None)
        self._mp.delenv("LABCTL_FAKE_VAGRANT_FAIL", raising=False)

    def up_seconds(self, default: float = 0.0, per_machine: dict[str, float] | None = None, **kw: float) -> None:
        """Time each `up` (and reload/restore) takes; in ``kw`` names use _ for -."""
        table = {name.replace("_", "-"): sec for name, sec in kw.items()} | dict(per_machine or {})
        parts = [f"{name}={sec}" for name, sec in table.items()]
        self._set("LABCTL_FAKE_VAGRANT_UP_SECONDS", ",".join(parts + [f"*={default}"]))

    def add_box(self, name: str, version: str, provider: str) -> None:
        """What `vagrant box add` leaves in $VAGRANT_HOME (Vagrant's own layout)."""
        d = self.vagrant_home / "boxes" / name.replace("/", "-VAGRANTSLASH-") / version / provider
        d.mkdir(parents=True, exist_ok=True)
        (d / "metadata.json").write_text(json.dumps({"provider": provider}))

    def remove_boxes(self) -> None:
        """A host that never downloaded a box."""
        import shutil

        shutil.rmtree(self.vagrant_home / "boxes", ignore_errors=True)

    def box_seconds(self, seconds: float) -> None:
        """How long the stand-in's box download takes."""
        self._set("LABCTL_FAKE_VAGRANT_BOX_SECONDS", str(seconds))

    def calls(self, lab_dir: Path) -> list[VagrantCall]:
        return read_journal(lab_dir)

    def state(self, lab_dir: Path) -> dict:
        path = Path(lab_dir) / ".vagrant" / "fake-state.json"
        return json.loads(path.read_text())["machines"] if path.exists() else {}


@pytest.fixture
def fake_vagrant(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeVagrant]:
    fake = FakeVagrant(monkeypatch, tmp_path_factory.mktemp("fake-vagrant"))
    yield fake
    fake.stop_leftovers()
