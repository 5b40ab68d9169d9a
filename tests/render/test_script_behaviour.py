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
from labctl.spec import default_spec


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


# ------------------------------------------------------------------ installing pinned files


@pytest.fixture
def install_functions(tmp_path, monkeypatch):
    """The kube-packages script's own functions (everything before its first action),
    rendered with a test pin table and pointed at a scratch folder instead of /var/lib."""
    from tests.helpers.fake_node import write_pin_table

    monkeypatch.setenv("LABCTL_ARTIFACT_SET", str(write_pin_table(tmp_path / "pins", "http://127.0.0.1:9")))
    paths = LabPaths(tmp_path / "lab")
    render_lab(default_spec(workers=1), paths)
    script = (paths.node_scripts("k8s-node1") / "kube-packages.sh").read_text()
    functions = script.split("\napt_install conntrack")[0]
    assert "install_file() {" in functions and "unpack() {" in functions
    root = tmp_path / "node"
    (root / "artifacts").mkdir(parents=True)

    def run(*calls: str) -> subprocess.CompletedProcess:
        program = "\n".join([functions, f"artifacts_dir={root}/artifacts", f"installed_dir={root}/installed", *calls])
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)

    return root, run


def _push(root: Path, data: bytes) -> Path:
    import hashlib

    blob = root / "artifacts" / hashlib.sha256(data).hexdigest()
    blob.write_bytes(data)
    return blob


def test_install_file_and_unpack_put_pinned_files_in_place_once(install_functions):
    from tests.helpers.fake_node import stand_in_files

    root, run = install_functions
    files = stand_in_files("amd64")
    k, cni = _push(root, files["kubeadm"][0]), _push(root, files["cni-plugins"][0])
    calls = (f"install_file kubeadm 0755 {root}/usr/bin/kubeadm",
             f"unpack cni-plugins {root}/opt/cni/bin bridge host-local loopback portmap", 'echo "changed=$changed"')
    first = run(*calls)
    assert first.returncode == 0, first.stderr
    assert f"labctl: installed kubeadm to {root}/usr/bin/kubeadm" in first.stdout and "changed=yes" in first.stdout
    assert (root / "usr/bin/kubeadm").read_bytes() == files["kubeadm"][0]
    assert (root / "usr/bin/kubeadm").stat().st_mode & 0o777 == 0o755
    assert (root / "opt/cni/bin/portmap").is_file()
    assert (root / "installed/kubeadm").read_text().strip() == k.name
    assert not k.exists() and not cni.exists()  # installed: removed from the node's disk
    second = run(*calls)
    assert second.returncode == 0 and second.stdout.strip() == "changed=no"


def test_a_damaged_or_missing_file_is_refused_by_its_cause(install_functions):
    from tests.helpers.fake_node import stand_in_files

    root, run = install_functions
    good = stand_in_files("amd64")["kubelet"][0]
    blob = _push(root, good)
    blob.write_bytes(b"cut short")
    bad = run(f"install_file kubelet 0755 {root}/usr/bin/kubelet")
    assert bad.returncode == 1
    assert f"labctl: kubelet: checksum mismatch in {blob}: expected sha256 {blob.name}" in bad.stderr
    assert not blob.exists() and not (root / "usr/bin/kubelet").exists()
    assert "does not match its pinned sha256" in hints.hint_for("k8s-node1", bad.returncode, bad.stderr)
    gone = run(f"install_file kubelet 0755 {root}/usr/bin/kubelet")
    assert gone.returncode == 1 and "kubelet is not in" in gone.stderr


def test_calico_runs_quay_io_images(lab, tmp_path):
    """The calico script's own rewrite, over the image lines calico.yaml v3.26 ships."""
    script = (lab.node_scripts("k8s-master") / "calico.sh").read_text()
    rewrite = next(line for line in script.splitlines() if line.startswith("sed -E 's#([[:space:]]image:"))
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text("        - name: upgrade-ipam\n          image: docker.io/calico/cni:v3.26.4\n"
                      "        - name: calico-node\n          image: docker.io/calico/node:v3.26.4\n"
                      "          image: docker.io/calico/kube-controllers:v3.26.4\n")
    out = tmp_path / "calico.yaml"
    program = f"pinned_manifest={pinned}\nmanifest={out}\n{rewrite}\n"
    subprocess.run(["bash", "-euo", "pipefail", "-c", program], check=True)
    text = out.read_text()
    assert "docker.io" not in text
    assert text.count("image: quay.io/calico/") == 3 and "quay.io/calico/kube-controllers:v3.26.4" in text


@pytest.mark.parametrize("changed, active, expected", [
    ("yes", True, ["daemon-reload", "is-active --quiet kubelet", "restart kubelet"]),
    ("yes", False, ["daemon-reload", "is-active --quiet kubelet"]),  # before init/join: nothing runs yet
    ("no", True, []),
])
def test_kube_packages_restarts_a_running_kubelet_only_when_its_files_changed(lab, tmp_path, changed, active, expected):
    script = (lab.node_scripts("k8s-node1") / "kube-packages.sh").read_text()
    header = script.split("\n# kubeadm refuses to start")[0].split("\napt_install() {")[0]
    after = script[script.index('if [ "$changed" = yes ]; then'):script.index("\n# The kubelet-config step writes")]
    calls = tmp_path / "systemctl.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "systemctl", f'echo "$*" >> {calls}\n[ "$1" != is-active ] || exit {0 if active else 3}\n')
    program = "\n".join([header, f"changed={changed}", after])
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (calls.read_text().splitlines() if calls.exists() else []) == expected
    assert ("kubelet restarted" in proc.stdout) is ("restart kubelet" in expected)


@pytest.mark.parametrize("apt_says, last_line, rc, hint_words", [
    ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1432 (unattended-upgr)",
     "labctl: cannot install conntrack socat ebtables ethtool: another package manager (unattended-upgrades?) held "
     "dpkg's lock on k8s-node1 for 5 minutes", 1, "unattended-upgrades runs after a first boot"),
    ("E: You don't have enough free space in /var/cache/apt/archives/.",
     "labctl: cannot install conntrack socat ebtables ethtool: the disk of k8s-node1 is full", 1,
     "k8s-node1's disk is full"),
])
def test_kube_packages_tells_a_busy_or_full_node_from_an_unreachable_archive(lab, tmp_path, apt_says, last_line, rc,
                                                                              hint_words):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "dpkg-query", "exit 1\n")
    _stub(bin_dir, "apt-get", f'echo "$*" >> {tmp_path}/apt.log\necho {shlex.quote(apt_says)} >&2\nexit 100\n')
    for tool in ("install", "tar", "systemctl", "curl"):
        _stub(bin_dir, tool, f"echo {tool} was called >&2\nexit 99\n")
    proc = _run(lab.node_scripts("k8s-node1") / "kube-packages.sh", bin_dir)
    assert proc.returncode == rc, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == last_line
    assert "-o DPkg::Lock::Timeout=300 update -q" in (tmp_path / "apt.log").read_text()  # waits for the lock first
    assert hint_words in hints.hint_for("k8s-node1", proc.returncode, proc.stderr)
