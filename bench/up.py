#!/usr/bin/env python3
"""How well `labctl up` orchestrates: wall time against the critical path, and against
doing the same machines and steps one after another (plain `vagrant up` with
provisioners boots and provisions one machine, then the next).

The machines and steps are modeled: the `vagrant` stand-in (tests/fakes/vagrant) spends
LABCTL_FAKE_VAGRANT_UP_SECONDS per boot, and each fake node (tests/helpers/fake_node.py,
behind a real sshd on loopback) spends a modeled time in every step script. Everything
else is the real thing: the CLI, the Vagrant CLI parsing, paramiko sessions, uploads,
facts, the state file. The model is real bring-up times (field notes: 5-15 min per lab)
divided by SCALE, so one run takes about a minute.

    python bench/up.py            # 1+2 and 1+5 nodes
    python bench/up.py --workers 2 --scale 20

Critical path (unlimited parallelism): boot + the longest node's preparation + init +
CNI + the longest join + MetalLB. Sequential: for every machine, boot + all its steps.
Goal: labctl within 10 % of the critical path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labctl.bootstrap.steps import STEPS  # noqa: E402
from labctl.spec.initfile import init_lab  # noqa: E402
from labctl.lab.paths import LabPaths  # noqa: E402
from labctl.spec import default_spec  # noqa: E402
from tests.helpers.fake_node import _FAKE_VBOXMANAGE, NODE_PYTHON, SHELL, FakeNode  # noqa: E402
from tests.helpers.sshd import SSHDHost  # noqa: E402

FAKES = REPO / "tests" / "fakes"

# Seconds on a laptop with a warm package cache (what the field notes report for
# Vagrant + kubeadm labs), per machine and per step.
REAL_SECONDS = {
    "boot": 75.0,
    "swap": 2.0,
    "kernel": 3.0,
    "containerd": 40.0,
    "kubelet-config": 2.0,
    "kube-packages": 60.0,
    "kubeadm-init": 90.0,
    "calico": 60.0,
    "kubeadm-join": 40.0,
    "metallb": 45.0,
    "nodes-ready": 0.0,  # skipped once everything is Ready
}


def modeled(scale: float) -> dict[str, float]:
    return {k: round(v / scale, 3) for k, v in REAL_SECONDS.items()}


def critical_path(t: dict[str, float], workers: int) -> float:
    prepare = sum(t[s.id] for s in STEPS if s.phase == "prepare")
    join = t["kubeadm-join"] if workers else 0.0
    return t["boot"] + prepare + t["kubeadm-init"] + t["calico"] + join + t["metallb"]


def sequential(t: dict[str, float], workers: int) -> float:
    total = 0.0
    for role in ["master"] + ["worker"] * workers:
        total += t["boot"] + sum(t[s.id] for s in STEPS if s.script and s.applies_to(role) and s.id != "nodes-ready")
    return total


def run_lab(workers: int, t: dict[str, float], work: Path) -> dict:
    spec = default_spec(workers)
    lab_dir = work / "lab"
    lab_dir.mkdir(parents=True)
    init_lab(LabPaths(lab_dir), workers=workers)
    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "VBoxManage").write_text(_FAKE_VBOXMANAGE)
    (bindir / "VBoxManage").chmod(0o755)
    home = work / "home"
    home.mkdir()
    hosts: dict[str, dict] = {}
    servers: list[SSHDHost] = []
    try:
        for node in spec.nodes:
            fake = FakeNode(work / "cluster" / node.name, node.name, node.role, node.ip, spec.name)
            fake.update(delays={k: v for k, v in t.items() if k != "boot"})
            sshd = SSHDHost(work / "sshd" / node.name, force_command=f"{NODE_PYTHON} {SHELL} {fake.dir}")
            sshd.start()
            servers.append(sshd)
            hosts[node.name] = {"host": sshd.host, "port": sshd.port, "user": sshd.user, "identity_file": str(sshd.key_file)}
        hosts_file = work / "hosts.json"
        hosts_file.write_text(json.dumps(hosts))
        # A laptop that ran the lab before: the box is cached (Vagrant's own layout).
        box = home / ".vagrant.d" / "boxes" / spec.box.name.replace("/", "-VAGRANTSLASH-") / spec.box.version
        (box / spec.provider).mkdir(parents=True, exist_ok=True)
        (box / spec.provider / "metadata.json").write_text(json.dumps({"provider": spec.provider}))
        env = dict(os.environ)
        env.update(
            PATH=f"{bindir}{os.pathsep}{FAKES}{os.pathsep}{env['PATH']}",
            HOME=str(home),
            VAGRANT_HOME=str(home / ".vagrant.d"),
            LABCTL_FAKE_VAGRANT_HOSTS=str(hosts_file),
            LABCTL_FAKE_VAGRANT_UP_SECONDS=str(t["boot"]),
            VAGRANT_CHECKPOINT_DISABLE="1",
            PYTHONPATH=str(REPO),
        )
        cmd = [sys.executable, "-m", "labctl", "--dir", str(lab_dir), "up", "--json", "--parallel", str(len(spec.nodes))]
        started = time.monotonic()
        wall_start = time.time()
        first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        wall = time.monotonic() - started
        if first.returncode != 0:
            raise SystemExit(f"labctl up failed ({first.returncode}):\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}")
        events = [json.loads(line) for line in first.stdout.splitlines()]
        phases = {}
        for e in events:
            if e.get("kind") == "phase" and e.get("status") == "running":
                phases[e["phase"]] = e["ts"]
        started = time.monotonic()
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        rerun = time.monotonic() - started
        if again.returncode != 0 or not json.loads(again.stdout.splitlines()[-1])["nothing_to_do"]:
            raise SystemExit(f"second labctl up did something or failed:\n{again.stdout[-2000:]}\n{again.stderr[-2000:]}")
        return {"wall": wall, "rerun": rerun, "phases": phases, "start": wall_start, "first_event": events[0]["ts"],
                "end": events[-2]["ts"]}
    finally:
        for s in servers:
            s.stop()


def overheads(r: dict, t: dict[str, float]) -> str:
    """Seconds each stretch took beyond its modeled time, from the run's own events."""
    ph = r["phases"]
    prepare = sum(t[s.id] for s in STEPS if s.phase == "prepare")
    parts = [
        ("start-up", r["first_event"] - r["start"]),
        ("to boot", ph["machines"] - r["first_event"]),
        ("boot", ph["connect"] - ph["machines"] - t["boot"]),
        ("connect+plan", ph["prepare"] - ph["connect"]),
        ("prepare", ph["init"] - ph["prepare"] - prepare),
        ("init", ph["cni"] - ph["init"] - t["kubeadm-init"]),
        ("cni", ph["join"] - ph["cni"] - t["calico"]),
        ("join", ph["loadbalancer"] - ph["join"] - t["kubeadm-join"]),
        ("metallb", ph["ready"] - ph["loadbalancer"] - t["metallb"]),
        ("ready+kubeconfig+exit", r["start"] + r["wall"] - ph["ready"]),
    ]
    return ", ".join(f"{name} {sec:+.2f}s" for name, sec in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, action="append", help="worker counts (default: 2 and 5)")
    ap.add_argument("--scale", type=float, default=10.0, help="divide real times by this (default 10)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per lab; the fastest is reported (default 2)")
    args = ap.parse_args()
    t = modeled(args.scale)
    print(f"model (real seconds / {args.scale:g}): " + ", ".join(f"{k} {v:g}s" for k, v in t.items()))
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work on the machine adds noise)")
    print(f"{'lab':<7} {'labctl up':>10} {'critical':>9} {'over':>7} {'sequential':>11} {'speed-up':>9} {'re-run':>7}")
    for workers in args.workers or [2, 5]:
        runs = []
        for _ in range(max(1, args.repeat)):
            with tempfile.TemporaryDirectory(prefix="labctl-bench-up-") as tmp:
                runs.append(run_lab(workers, t, Path(tmp)))
        r = min(runs, key=lambda x: x["wall"])
        cp = critical_path(t, workers)
        seq = sequential(t, workers)
        over = (r["wall"] - cp) / cp * 100
        print(f"1+{workers:<5} {r['wall']:>9.1f}s {cp:>8.1f}s {over:>6.1f}% {seq:>10.1f}s {seq / r['wall']:>8.2f}x {r['rerun']:>6.1f}s"
              + ("" if over <= 10 else "   (goal: within 10% of the critical path)"))
        walls = ", ".join(f"{x['wall']:.1f}s" for x in runs)
        print(f"        all runs: {walls}")
        print(f"        beyond the model: {overheads(r, t)}")


if __name__ == "__main__":
    main()
