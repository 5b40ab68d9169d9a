"""The other lifecycle commands against a lab brought up by the real `labctl up`."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from labctl.errors import ExitCode

pytestmark = pytest.mark.slow


def _up(lab, *args):
    r = lab.labctl("up", *args)
    assert r.returncode == 0, r.stderr
    return r


def test_status_before_and_after_up(fake_lab):
    lab = fake_lab(workers=1)
    before = lab.labctl("status", "--json")
    assert before.returncode == 0, before.stderr
    assert "never brought up" in json.loads(before.stdout)["cluster_note"]

    _up(lab)
    r = lab.labctl("status", "--json")
    assert r.returncode == 0, r.stderr
    nodes = {n["name"]: n for n in json.loads(r.stdout)["nodes"]}
    assert nodes["k8s-master"]["vm"] == "running"
    assert nodes["k8s-master"]["ready"] is True
    assert nodes["k8s-master"]["role"] == "control-plane"
    assert nodes["k8s-node1"]["internal_ip"] == "192.168.56.31"
    assert nodes["k8s-node1"]["kubelet_version"] == "v1.27.16"

    table = lab.labctl("status")
    assert table.returncode == 0
    line = next(x for x in table.stdout.splitlines() if x.startswith("k8s-node1"))
    assert line.split()[:3] == ["k8s-node1", "running", "Ready"]


def test_status_shows_a_node_that_is_not_ready_and_where_up_stopped(fake_lab):
    lab = fake_lab(workers=1)
    lab.nodes["k8s-node1"].fail("kubeadm-join", output="labctl: join broke")
    assert lab.labctl("up").returncode == ExitCode.REMOTE_FAILED
    r = lab.labctl("status", "--json")
    data = json.loads(r.stdout)
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["k8s-node1"]["ready"] is None  # not registered
    assert nodes["k8s-node1"]["steps_failed"] == ["kubeadm-join"]
    assert data["last_run"]["result"] == "failed"


def test_ssh_runs_a_command_and_returns_its_exit_code(fake_lab):
    lab = fake_lab(workers=1)
    _up(lab)
    r = lab.labctl("ssh", "k8s-node1", "--", "hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "k8s-node1\n"
    assert lab.labctl("ssh", "k8s-node1", "--", "exit", "3").returncode == 3
    missing = lab.labctl("ssh", "k8s-node9", "--", "hostname")
    assert missing.returncode == ExitCode.NOT_FOUND
    assert "k8s-node9" in missing.stderr and "k8s-master, k8s-node1" in missing.stderr


def test_interactive_ssh_command_line_uses_the_labs_pinned_key(fake_lab):
    """The argv `labctl ssh NODE` execs, run by the real OpenSSH client in batch mode."""
    from labctl.lab.ssh import ssh_argv

    lab = fake_lab(workers=0)
    _up(lab)
    argv = ssh_argv(lab.dir, "k8s-master")
    known = lab.dir / ".labctl" / "known_hosts"
    assert f"UserKnownHostsFile={known}" in argv
    # -t needs a terminal; the rest is what a person gets. StrictHostKeyChecking=yes
    # proves the key labctl pinned is found (by node name) and accepted.
    cmd = [a for a in argv if a != "-t"]
    cmd[cmd.index("StrictHostKeyChecking=accept-new")] = "StrictHostKeyChecking=yes"
    r = subprocess.run([*cmd[:-1], "-o", "BatchMode=yes", cmd[-1], "hostname"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "k8s-master"
    known.write_text(known.read_text().replace(lab.master.sshd.host_key_pub.split()[1], "AAAAC3NzaC1lZDI1NTE5AAAAIHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"))
    bad = subprocess.run([*cmd[:-1], "-o", "BatchMode=yes", cmd[-1], "hostname"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in bad.stderr


def test_halt_then_up_boots_but_runs_no_step(fake_lab):
    lab = fake_lab(workers=1)
    _up(lab)
    runs = {n: len(f.step_runs()) for n, f in lab.nodes.items()}
    r = lab.labctl("halt")
    assert r.returncode == 0, r.stderr
    assert {m["state"] for m in lab.fake_vagrant.state(lab.dir).values()} == {"poweroff"}
    again = _up(lab, "--json")
    result = json.loads(again.stdout.splitlines()[-1])
    assert sorted(result["booted"]) == ["k8s-master", "k8s-node1"]
    assert result["ran"] == []
    assert {n: len(f.step_runs()) for n, f in lab.nodes.items()} == runs


def test_destroy_asks_then_leaves_no_state(fake_lab):
    lab = fake_lab(workers=1, write_spec=True)
    _up(lab)
    meta = lab.dir / ".labctl"
    assert (meta / "known_hosts").exists() and (meta / "state.json").exists()

    refused = lab.labctl("destroy")
    assert refused.returncode == ExitCode.USAGE
    assert "--yes" in refused.stderr
    said_no = lab.labctl("destroy", input="n\n")
    assert said_no.returncode in (ExitCode.USAGE, ExitCode.ABORTED)
    assert (lab.dir / "kubeconfig").exists()

    r = lab.labctl("destroy", "--yes")
    assert r.returncode == 0, r.stderr
    assert {m["state"] for m in lab.fake_vagrant.state(lab.dir).values()} <= {"not_created"}
    for gone in (lab.dir / "kubeconfig", meta / "state.json", meta / "known_hosts", meta / "logs"):
        assert not gone.exists(), gone
    assert (lab.dir / "lab.yaml").exists()
    assert lab.labctl("kubeconfig").returncode == ExitCode.NOT_FOUND

    # and the lab comes back from nothing, with new host keys accepted
    for f in lab.nodes.values():
        f.sshd.stop()
        f.sshd.rotate_host_key()
        f.sshd.start()
        (f.dir / "state.json").unlink()
    _up(lab)


def test_snapshots_save_list_restore_delete(fake_lab):
    lab = fake_lab(workers=0)
    _up(lab)
    assert lab.labctl("snapshot", "save", "clean").returncode == 0
    listed = lab.labctl("snapshot", "list", "--json")
    assert json.loads(listed.stdout)["snapshots"] == {"k8s-master": ["clean"]}
    r = lab.labctl("snapshot", "restore", "clean")
    assert r.returncode == 0, r.stderr
    missing = lab.labctl("snapshot", "restore", "nope")
    assert missing.returncode == ExitCode.NOT_FOUND and "clean" in missing.stderr
    assert lab.labctl("snapshot", "delete", "clean").returncode == 0
    assert json.loads(lab.labctl("snapshot", "list", "--json").stdout)["snapshots"] == {"k8s-master": []}
    bad = lab.labctl("snapshot", "save")
    assert bad.returncode == ExitCode.USAGE


def test_kubeconfig_path_and_merge_keep_other_contexts(fake_lab, tmp_path):
    lab = fake_lab(workers=0)
    home_cfg = Path(lab.env["HOME"]) / ".kube" / "config"
    _up(lab, "--merge-kubeconfig")
    merged = yaml.safe_load(home_cfg.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["k8s-lab"]
    assert stat.S_IMODE(home_cfg.stat().st_mode) == 0o600

    r = lab.labctl("kubeconfig")
    assert r.stdout.strip() == str(lab.dir / "kubeconfig")

    other = tmp_path / "other-config"
    other.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "work",
        "clusters": [{"name": "work", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "me", "user": {"token": "abc"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "me"}}],
    }))
    assert lab.labctl("kubeconfig", "--merge", "--kubeconfig-path", str(other)).returncode == 0
    first = other.read_bytes()
    cfg = yaml.safe_load(first)
    assert [c["name"] for c in cfg["contexts"]] == ["work", "k8s-lab"]
    assert cfg["current-context"] == "work"
    assert next(c for c in cfg["clusters"] if c["name"] == "k8s-lab")["cluster"]["server"] == "https://192.168.56.30:6443"
    assert lab.labctl("kubeconfig", "--merge", "--kubeconfig-path", str(other)).returncode == 0
    assert other.read_bytes() == first


def test_destroy_twice_is_fine_and_halt_twice_too(fake_lab):
    lab = fake_lab(workers=0)
    _up(lab)
    assert lab.labctl("halt").returncode == 0
    assert lab.labctl("halt").returncode == 0
    assert lab.labctl("destroy", "--yes").returncode == 0
    again = lab.labctl("destroy", "--yes")
    assert again.returncode == 0, again.stderr


def test_live_view_on_a_terminal(fake_lab):
    """On a terminal, `up` redraws one line per node in place instead of scrolling."""
    import os
    import pty
    import select
    import sys

    lab = fake_lab(workers=1)
    master_fd, slave_fd = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "labctl", "--dir", str(lab.dir), "up"],
                         stdin=subprocess.DEVNULL, stdout=slave_fd, stderr=slave_fd, env=lab.env)
    os.close(slave_fd)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master_fd], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master_fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        p.wait(timeout=60)
    finally:
        os.close(master_fd)
        if p.poll() is None:
            p.kill()
            p.wait()
    out = b"".join(chunks).decode(errors="replace")
    assert p.returncode == 0, out[-2000:]
    assert "\x1b[2F\x1b[J" in out  # cursor back up over the two node rows
    final = out.rsplit("\x1b[J", 1)[1]
    rows = [line.split() for line in final.splitlines() if line.startswith("k8s-")]
    assert [r[:3] for r in rows] == [["k8s-master", "ok", "kubeconfig"], ["k8s-node1", "ok", "kubeadm-join"]]
    assert "lab k8s-lab is up" in out
    assert "[k8s-node1] swap: running" not in out  # no scrolling per-step lines
