"""One e2e lab: its folder, its isolated VAGRANT_HOME and the commands run against it.

Every command (labctl, vagrant, ssh) runs inside the run's network namespace, as a
subprocess, exactly as a user would type it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness import E2E_LAB_NAME, LibvirtNetns

BUILD_BOX = Path(__file__).with_name("build_box.sh")
MASTER, WORKER = "k8s-master", "k8s-node1"
IPS = {MASTER: "192.168.56.30", WORKER: "192.168.56.31"}


def lab_yaml(box_name: str, box_version: str) -> str:
    # kubeadm's minimum for the control plane (2 CPUs, 1700 MB) and pod-4's for
    # k8s-node1 (1536 MB); under emulation a guest only costs the memory it touches.
    return f"""\
name: {E2E_LAB_NAME}
provider: libvirt
box:
  name: {box_name}
  version: "{box_version}"
libvirt:
  driver: qemu          # /dev/kvm here cannot run a guest: software emulation
  cpu_mode: custom
  cpu_model: qemu64
  boot_timeout: 600     # seen here: SSH answers about 60-110 s after the domain starts
nodes:
  - {{name: {MASTER}, role: master, ip: {IPS[MASTER]}, cpus: 2, memory: 1700}}
  - {{name: {WORKER}, role: worker, ip: {IPS[WORKER]}, cpus: 1, memory: 1536}}
"""


@dataclass
class Run:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def json_lines(self) -> list[dict]:
        out = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return out

    def describe(self) -> str:
        return (f"$ {shlex.join(self.argv)} -> rc={self.rc} in {self.seconds:.0f}s\n"
                f"--- stdout (tail)\n{self.stdout[-3000:]}\n--- stderr (tail)\n{self.stderr[-3000:]}")


@dataclass
class E2ELab:
    ns: LibvirtNetns
    lab_dir: Path
    vagrant_home: Path
    box_name: str = ""
    box_version: str = ""
    box_image: Path | None = None
    runs: list[Run] = field(default_factory=list)
    # The test's pin table and host cache (tests/e2e/pins.py): the VMs have no internet.
    artifacts_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            "VAGRANT_HOME": str(self.vagrant_home),
            "VAGRANT_DEFAULT_PROVIDER": "libvirt",
            "LIBVIRT_DEFAULT_URI": "qemu:///system",
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "VAGRANT_NO_COLOR": "1",
            **self.artifacts_env,
        }

    def add_box(self) -> None:
        proc = self.ns.run(["bash", str(BUILD_BOX)], env=self.env, timeout=900, log_name="build_box.log")
        values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        self.box_name, self.box_version = values["box_name"], values["box_version"]
        safe = self.box_name.replace("/", "-VAGRANTSLASH-")
        self.box_image = self.vagrant_home / "boxes" / safe / self.box_version / "libvirt" / "box.img"

    def write_spec(self) -> None:
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        (self.lab_dir / "lab.yaml").write_text(lab_yaml(self.box_name, self.box_version))

    def cmd(self, argv: list[str], *, timeout: float = 1800, cwd: Path | None = None) -> Run:
        started = time.monotonic()
        proc = subprocess.run(self.ns.argv(argv), capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.lab_dir, env={**_base_env(), **self.env}, stdin=subprocess.DEVNULL)
        run = Run(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
        self.runs.append(run)
        self.ns.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.ns.log_dir / "commands.log", "a") as fh:
            fh.write(run.describe() + "\n\n")
        return run

    def labctl(self, *args: str, timeout: float = 1800) -> Run:
        return self.cmd([sys.executable, "-m", "labctl", "-C", str(self.lab_dir), *args], timeout=timeout)

    def on_node(self, node: str, command: str, *, timeout: float = 120) -> str:
        """Run a shell command on a node through `labctl ssh` and return its stdout."""
        run = self.labctl("ssh", node, "--", "bash", "-c", command, timeout=timeout)
        if run.rc != 0:
            raise AssertionError(f"on {node}: {command!r} failed\n{run.describe()}")
        return run.stdout

    def vagrant(self, *args: str, timeout: float = 900) -> Run:
        return self.cmd(["vagrant", *args], timeout=timeout)


REPO = Path(__file__).resolve().parents[2]


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    # The checkout under test, whatever labctl an earlier install left in site-packages.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    # labctl under test must not think it runs inside pytest.
    env.pop("PYTEST_CURRENT_TEST", None)
    return env
