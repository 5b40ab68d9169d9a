"""The stand-in prints what real Vagrant 2.3.4 printed here (tests/fixtures/vagrant)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.fake_vagrant import STANDIN

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "vagrant"

RECORDED = {
    "status-two-not-created-libvirt": ["--machine-readable", "status"],
    "status-machine-not-found": ["--machine-readable", "status", "nosuch"],
    "ssh-config-not-ready": ["--machine-readable", "ssh-config", "k8s-node1"],
    "ssh-config-not-ready-plain": ["ssh-config", "k8s-node1"],
    "snapshot-list-not-created": ["--machine-readable", "snapshot", "list"],
    "snapshot-save-not-created": ["--machine-readable", "snapshot", "save", "k8s-node1", "s1"],
    "halt-not-created": ["--machine-readable", "halt", "k8s-node1"],
    "status-no-environment": ["--machine-readable", "status"],
    "version": ["--version"],
}


def without_timestamps(text: str) -> str:
    return re.sub(r"^\d+,", "TS,", text, flags=re.M)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_standin_output_matches_the_recording(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VAGRANT_DEFAULT_PROVIDER", "libvirt")  # what the recording machine fell back to
    monkeypatch.delenv("LABCTL_FAKE_VAGRANT_FAIL", raising=False)
    if name != "status-no-environment":
        shutil.copy(FIX / "Vagrantfile.recorded", tmp_path / "Vagrantfile")
    done = subprocess.run([str(STANDIN), *RECORDED[name]], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == int((FIX / f"{name}.rc").read_text())
    assert without_timestamps(done.stdout) == without_timestamps((FIX / f"{name}.out").read_text())
    assert done.stderr == (FIX / f"{name}.err").read_text()


def test_standin_snapshot_list_has_the_shape_vagrant_source_gives(fake_vagrant, tmp_path):
    lab = fake_vagrant.lab(tmp_path / "lab", ["k8s-master", "k8s-node1"])

    def run(*args: str) -> str:
        return subprocess.run([str(STANDIN), *args], cwd=lab, capture_output=True, text=True, timeout=60,
                              check=True).stdout

    run("up", "--no-provision")
    run("snapshot", "save", "k8s-master", "base")
    run("snapshot", "save", "k8s-master", "after-pod-3,v2")
    expected = (FIX / "snapshot-list-two-machines.out").read_text()
    assert without_timestamps(run("--machine-readable", "snapshot", "list")) == without_timestamps(expected)
