"""The boundaries the in-memory tests do not cross, kept few: the real CLI in a
subprocess, real paramiko sessions to real sshd servers (nodes emulated behind them,
tests/helpers/fake_node.py), the `vagrant` stand-in with its real CLI parsing, and
the processes labctl starts and must stop (checked by PID)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labctl.errors import ExitCode

pytestmark = pytest.mark.slow


def _default_sigint() -> None:
    # The child must get Ctrl-C as a KeyboardInterrupt even when this test process
    # inherited SIGINT as ignored (`nohup pytest &`): exec keeps an ignored disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _popen(lab, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labctl", "--dir", str(lab.dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=lab.env, preexec_fn=_default_sigint)


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


def _all_gone(pids, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while any(_alive(p) for p in pids):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def _interrupt(p: subprocess.Popen, when, timeout: float = 60) -> tuple[str, str]:
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not when():
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        assert when(), "the moment to press Ctrl-C never came"
        p.send_signal(signal.SIGINT)
        return p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_cli_up_status_ssh_destroy_and_up_again(fake_lab):
    from labctl.lab.lab import Lab
    from labctl.lab.ssh import ssh_argv

    lab = fake_lab(workers=1)
    r = lab.labctl("up")
    assert r.returncode == 0, r.stderr
    assert "lab k8s-lab is up" in r.stdout

    st = lab.labctl("status", "--json")
    assert st.returncode == 0, st.stderr
    nodes = {n["name"]: n for n in json.loads(st.stdout)["nodes"]}
    assert nodes["k8s-master"]["vm"] == "running" and nodes["k8s-master"]["ready"] is True
    assert nodes["k8s-node1"]["internal_ip"] == "192.168.56.31"
    table = lab.labctl("status")
    line = next(x for x in table.stdout.splitlines() if x.startswith("k8s-node1"))
    assert line.split()[:3] == ["k8s-node1", "running", "Ready"]

    ssh = lab.labctl("ssh", "k8s-node1", "--", "hostname")
    assert ssh.returncode == 0 and ssh.stdout == "k8s-node1\n", ssh.stderr
    assert lab.labctl("ssh", "k8s-node1", "--", "exit", "3").returncode == 3
    missing = lab.labctl("ssh", "k8s-node9", "--", "hostname")
    assert missing.returncode == ExitCode.NOT_FOUND and "k8s-master, k8s-node1" in missing.stderr

    # The argv `labctl ssh NODE` execs, run by the real OpenSSH client in batch mode:
    # StrictHostKeyChecking=yes proves the key labctl pinned is found by node name.
    argv = ssh_argv(Lab.load(lab.dir), "k8s-master")
    known = lab.dir / ".labctl" / "known_hosts"
    cmd = [a for a in argv if a != "-t"]
    cmd[cmd.index("StrictHostKeyChecking=accept-new")] = "StrictHostKeyChecking=yes"
    out = subprocess.run([*cmd[:-1], "-o", "BatchMode=yes", cmd[-1], "hostname"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "k8s-master", out.stderr

    refused = lab.labctl("destroy")
    assert refused.returncode == ExitCode.USAGE and "--yes" in refused.stderr
    said_no = lab.labctl("destroy", input="n\n")
    assert said_no.returncode in (ExitCode.USAGE, ExitCode.ABORTED)
    gone = lab.labctl("destroy", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert not known.exists() and not (lab.dir / ".vagrant" / "machines" / "k8s-master" / "virtualbox" / "id").exists()

    # re-created VMs come with new host keys, which the forgotten pins let in
    for f in lab.nodes.values():
        f.sshd.stop()
        f.sshd.rotate_host_key()
        f.sshd.start()
        (f.dir / "state.json").unlink()
    again = lab.labctl("up")
    assert again.returncode == 0, again.stderr


def test_cli_failure_is_one_error_with_a_hint_and_json_too(fake_lab):
    lab = fake_lab(workers=0)
    lab.master.fail("calico", rc=2, output="labctl: calico broke", times=2)
    r = lab.labctl("up")
    assert r.returncode == ExitCode.REMOTE_FAILED
    assert r.stderr.count("labctl: error:") == 1 and "step calico on k8s-master exited 2" in r.stderr
    assert "hint:" in r.stderr
    j = lab.labctl("up", "--json")
    assert j.returncode == ExitCode.REMOTE_FAILED
    lines = [json.loads(line) for line in j.stdout.splitlines()]
    failed = [e for e in lines if e.get("kind") == "step" and e.get("status") == "failed"]
    assert failed and failed[0]["step"] == "calico" and failed[0]["data"]["rc"] == 2
    assert lines[-1]["ok"] is False and lines[-1]["exit_code"] == ExitCode.REMOTE_FAILED


def test_ctrl_c_during_a_step_says_run_again_once(fake_lab):
    lab = fake_lab(workers=0)
    lab.master.delay(3.0, "containerd")
    state = lab.dir / ".labctl" / "state.json"

    def containerd_runs() -> bool:
        try:
            steps = json.loads(state.read_text())["nodes"].get("k8s-master", {}).get("steps", {})
        except (FileNotFoundError, ValueError):
            return False
        return steps.get("containerd", {}).get("status") == "running"

    p = _popen(lab, "up")
    out, err = _interrupt(p, containerd_runs)
    assert p.returncode == ExitCode.INTERRUPTED, err
    assert err.count("again") == 1, err
    assert "labctl: interrupted; run the same command again to continue" in err
    assert json.loads(state.read_text())["result"] == "interrupted"


def _vagrant_pids(lab) -> list[int]:
    calls = lab.fake_vagrant.calls(lab.dir)
    return [pid for c in calls for pid in (c.pid, *c.child_pids)]


def test_ctrl_c_while_machines_boot_leaves_no_vagrant_running(fake_lab):
    lab = fake_lab(workers=1)
    lab.fake_vagrant.up_seconds(60)

    def both_booting() -> bool:
        return sum(1 for c in lab.fake_vagrant.calls(lab.dir) if c.verb == "up" and c.child_pids) == 2

    p = _popen(lab, "up")
    out, err = _interrupt(p, both_booting)
    assert p.returncode == ExitCode.INTERRUPTED, err
    pids = _vagrant_pids(lab)
    assert len(pids) >= 4 and _all_gone(pids), [pid for pid in pids if _alive(pid)]


def test_a_failed_boot_leaves_no_vagrant_running(fake_lab):
    lab = fake_lab(workers=2)
    lab.fake_vagrant.up_seconds(1.0)
    lab.fake_vagrant.fail("up", "k8s-node1", kind="vtx")
    r = lab.labctl("up")
    assert r.returncode == ExitCode.PROVIDER_FAILED, r.stderr
    assert "k8s-node1" in r.stderr and "VT-x" in r.stderr
    pids = _vagrant_pids(lab)
    assert pids and all(not _alive(pid) for pid in pids)


def test_status_and_halt_of_a_lab_never_brought_up_write_nothing(fake_lab):
    lab = fake_lab(workers=2)
    assert lab.labctl("render").returncode == 0
    before = sorted(p.relative_to(lab.dir) for p in lab.dir.rglob("*"))
    st = lab.labctl("status", "--json")
    assert st.returncode == 0, st.stderr
    assert "never brought up" in json.loads(st.stdout)["cluster_note"]
    h = lab.labctl("halt")
    assert h.returncode == 0, h.stderr
    assert h.stdout.strip() == "nothing to halt: lab k8s-lab has no machines (never brought up, or destroyed)"
    hj = lab.labctl("halt", "--json")
    assert json.loads(hj.stdout.splitlines()[-1]) == {"ok": True, "halted": [], "nothing_to_do": True}
    assert lab.labctl("snapshot", "list", "--json").returncode == 0
    assert sorted(p.relative_to(lab.dir) for p in lab.dir.rglob("*")) == before
    assert not (lab.dir / ".vagrant").exists() and not (lab.dir / ".labctl").exists()
    assert lab.fake_vagrant.calls(lab.dir) == []


@pytest.mark.parametrize("args,option", [
    (["up", "--parallel", "0"], "--parallel 0"),
    (["up", "--nodes", "-1"], "--nodes -1"),
    (["up", "--nodes", "10"], "--nodes 10"),
])
def test_lifecycle_option_ranges_are_one_line_and_exit_2(tmp_path, args, option):
    r = subprocess.run([sys.executable, "-m", "labctl", "--dir", str(tmp_path), *args], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == ExitCode.USAGE
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith(f"labctl: error: {option}: must be")
    assert list(tmp_path.iterdir()) == []
