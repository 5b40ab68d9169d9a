"""Wall time of `labctl up --provider libvirt` (2 VMs) next to a plain `vagrant up`.

    sudo python bench/libvirt_up.py            # needs tests/e2e/setup-host.sh first

Both run in one go on this machine, inside a network namespace with its own libvirtd
(tests/e2e/harness.py), against the same rendered Vagrantfile and the e2e box:

1. the box's image is put into the storage pool once (timed on its own), so neither
   run pays for that upload;
2. plain `vagrant up --no-provision` of every machine (one Vagrant process), then
   `vagrant destroy -f`;
3. `labctl up --provider libvirt --json`, whose events give the per-phase breakdown
   (machines booted, SSH ready, each preparation step per node). Here it stops at the
   Kubernetes packages (their repository is unreachable), so the steps measured are
   the ones that can run on this machine.

Prints figures only; never asserts on them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import E2E_PREFIXES, LibvirtNetns, seed_box_volume  # noqa: E402
from tests.e2e.lab import E2ELab  # noqa: E402


def phase_breakdown(events: list[dict]) -> list[tuple[str, float]]:
    started: dict[str, float] = {}
    out = []
    for e in events:
        if e.get("kind") != "phase" or not e.get("phase"):
            continue
        if e.get("status") == "running":
            started.setdefault(e["phase"], e["ts"])
        elif e.get("status") in ("done", "failed") and e["phase"] in started:
            out.append((f"{e['phase']} ({e['status']})", e["ts"] - started.pop(e["phase"])))
    return out


def machine_times(events: list[dict], t0: float) -> dict[str, tuple[float | None, float | None]]:
    """Per machine: seconds from the start of `labctl up` to vagrant up started / running."""
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events:
        if e.get("kind") == "machine" and e.get("node") and e.get("status") in ("started", "running"):
            seen[e["node"]][e["status"]] = e["ts"] - t0
    return {n: (v.get("started"), v.get("running")) for n, v in seen.items()}


def step_times(events: list[dict]) -> list[tuple[str, str, str, float | None]]:
    running: dict[tuple[str, str], float] = {}
    out = []
    for e in events:
        if e.get("kind") != "step":
            continue
        key = (e.get("node", ""), e.get("step", ""))
        if e.get("status") == "running":
            running[key] = e["ts"]
        elif e.get("status") in ("done", "failed", "skipped"):
            secs = e.get("data", {}).get("seconds")
            if secs is None and key in running:
                secs = e["ts"] - running[key]
            out.append((key[0], key[1], e["status"], secs))
    return out


def plain_vagrant_up(lab: E2ELab) -> tuple[float, dict[str, float]]:
    t0 = time.time()
    run = lab.vagrant("up", "--no-provision", "--machine-readable", timeout=2400)
    if run.rc != 0:
        raise SystemExit(f"plain vagrant up failed:\n{run.describe()}")
    ready: dict[str, float] = {}
    for line in run.stdout.splitlines():
        parts = line.split(",", 3)
        # `timestamp,target,ui,info,...Machine booted and ready!`
        if len(parts) == 4 and "Machine booted and ready" in parts[3] and parts[1]:
            ready.setdefault(parts[1], int(parts[0]) - t0)
    return run.seconds, ready


def main() -> int:
    if os.geteuid() != 0:
        print("needs root (network namespace, libvirtd)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="labctl-bench-libvirt-"))
    ns = LibvirtNetns.for_this_process(root / "logs")
    lab = E2ELab(ns=ns, lab_dir=root / "lab", vagrant_home=root / "vagrant.d")
    rows: list[tuple[str, str]] = []
    try:
        ns.start()
        t = time.monotonic()
        lab.add_box()
        rows.append(("box add to VAGRANT_HOME", f"{time.monotonic() - t:6.1f} s"))
        t = time.monotonic()
        seed_box_volume(ns, lab.box_image, lab.box_name, lab.box_version)
        rows.append(("box image into the storage pool", f"{time.monotonic() - t:6.1f} s"))
        lab.write_spec()
        render = lab.labctl("render")
        if render.rc != 0:
            raise SystemExit(render.describe())

        plain_total, plain_ready = plain_vagrant_up(lab)
        rows.append(("plain `vagrant up` (2 VMs, one process)", f"{plain_total:6.1f} s"))
        for name, secs in sorted(plain_ready.items()):
            rows.append((f"  {name} booted and ready (SSH)", f"{secs:6.1f} s"))
        t = time.monotonic()
        lab.vagrant("destroy", "-f", timeout=600)
        rows.append(("plain `vagrant destroy -f`", f"{time.monotonic() - t:6.1f} s"))

        t0 = time.time()
        run = lab.labctl("up", "--provider", "libvirt", "--json", timeout=2400)
        events = run.json_lines()
        rows.append((f"`labctl up --provider libvirt` (rc={run.rc})", f"{run.seconds:6.1f} s"))
        for name, (started, running) in sorted(machine_times(events, t0).items()):
            rows.append((f"  {name}: vagrant up started / running",
                         f"{started or 0:6.1f} s / {running:6.1f} s" if running else "-"))
        for phase, secs in phase_breakdown(events):
            rows.append((f"  phase {phase}", f"{secs:6.1f} s"))
        for node, step, status, secs in step_times(events):
            rows.append((f"  step {step} on {node} ({status})", f"{secs:6.1f} s" if secs is not None else "-"))
        err = next((e for e in reversed(events) if isinstance(e.get("error"), str)), None)
        if err:
            rows.append(("  stopped with", f"{err['error']}: {err['message'][:100]}"))
        t = time.monotonic()
        destroy = lab.labctl("destroy", "--yes", timeout=600)
        rows.append((f"`labctl destroy --yes` (rc={destroy.rc})", f"{time.monotonic() - t:6.1f} s"))
        (root / "labctl-up-events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    finally:
        if (lab.lab_dir / "Vagrantfile").exists():
            lab.vagrant("destroy", "-f", timeout=600)
        ns.teardown(prefixes=E2E_PREFIXES)
    width = max(len(k) for k, _ in rows)
    print(f"libvirt up benchmark (2 cores, qemu TCG), {time.strftime('%Y-%m-%d %H:%M')}, logs in {root}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
