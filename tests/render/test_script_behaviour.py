"""Rendered scripts run for real where that cannot touch this machine: the commands
they would use to change or reach anything are stand-ins on PATH."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from labctl.bootstrap import hints
from labctl.bootstrap.steps import EXIT_UNREACHABLE
from labctl.lab.paths import LabPaths
from labctl.render.lab import render_lab
from labctl.spec.model import default_spec


def _stub(bin_dir: Path, name: str, script: str) -> None:
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(0o755)


@pytest.fixture
def lab(tmp_path):
    paths = LabPaths(tmp_path / "lab")
    render_lab(default_spec(), paths)
    return paths


def _run(script: Path, bin_dir: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=timeout)


def test_kube_packages_fails_clearly_when_the_distribution_archive_is_unreachable(lab, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "dpkg-query", "exit 1\n")  # nothing installed
    _stub(bin_dir, "apt-get", "echo \"W: Failed to fetch http://archive.ubuntu.com/ubuntu/dists/jammy/InRelease  "
          "Temporary failure resolving 'archive.ubuntu.com'\" >&2\nexit 100\n")
    for tool in ("install", "tar", "systemctl", "curl"):  # must never be reached
        _stub(bin_dir, tool, f"echo {tool} was called >&2\nexit 99\n")
    proc = _run(lab.node_scripts("k8s-node1") / "kube-packages.sh", bin_dir)
    assert proc.returncode == EXIT_UNREACHABLE, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("labctl: cannot install conntrack socat ebtables ethtool: "
                    "no Debian/Ubuntu package repository reachable from k8s-node1")
    assert "was called" not in proc.stderr
    hint = hints.hint_for("k8s-node1", proc.returncode, proc.stderr)
    assert "cannot reach a package repository" in hint


def _kubectl_listing(bin_dir: Path, listing: str) -> None:
    _stub(bin_dir, "kubectl", f"printf '%s\\n' {shlex.quote(listing)}\n")


def test_nodes_ready_fails_at_once_on_the_nat_address(lab, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _kubectl_listing(bin_dir, "k8s-master/True/192.168.56.30\nk8s-node1/True/10.0.2.15\nk8s-node2/True/192.168.56.32")
    proc = _run(lab.node_scripts("k8s-master") / "nodes-ready.sh", bin_dir)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("labctl: k8s-node1 has InternalIP 10.0.2.15, expected 192.168.56.31: "
                                   "kubelet is not using --node-ip (see /etc/default/kubelet on k8s-node1)")


def test_nodes_ready_succeeds_when_all_are_ready(lab, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _kubectl_listing(bin_dir, "k8s-master/True/192.168.56.30\nk8s-node1/True/192.168.56.31\nk8s-node2/True/192.168.56.32")
    proc = _run(lab.node_scripts("k8s-master") / "nodes-ready.sh", bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert "every node is Ready: k8s-master/192.168.56.30" in proc.stdout
