"""VirtualBox VM names are global to the host user: two lab folders with the course's
node names must not ask for the same `vb.name`, and re-rendering one folder must not
change it."""

from __future__ import annotations

import re
from pathlib import Path

from labctl.host.vmnames import lab_folder_id, vm_name
from labctl.lab.paths import LabPaths
from labctl.render.lab import render_lab
from labctl.spec import default_spec

COURSE_NODES = ("k8s-master", "k8s-node1", "k8s-node2")


def _vb_names(lab: Path) -> list[str]:
    return re.findall(r'vb\.name = "([^"]+)"', (lab / "Vagrantfile").read_text())


def test_two_folders_with_the_course_nodes_get_different_vm_names(tmp_path):
    spec = default_spec()
    assert tuple(n.name for n in spec.nodes) == COURSE_NODES
    a, b = tmp_path / "student-a" / "k8s-lab", tmp_path / "student-b" / "k8s-lab"
    render_lab(spec, LabPaths(a))
    render_lab(spec, LabPaths(b))
    names_a, names_b = _vb_names(a), _vb_names(b)
    assert len(names_a) == len(set(names_a)) == 3
    assert set(names_a).isdisjoint(names_b)
    for lab, names in ((a, names_a), (b, names_b)):
        assert names == [f"k8s-lab-{n}-{lab_folder_id(lab)}" for n in COURSE_NODES]


def test_rerendering_a_folder_keeps_its_names_and_bytes(tmp_path):
    lab = tmp_path / "lab"
    render_lab(default_spec(), LabPaths(lab))
    first = (lab / "Vagrantfile").read_bytes()
    again = render_lab(default_spec(), LabPaths(lab))
    assert (lab / "Vagrantfile").read_bytes() == first
    assert lab / "Vagrantfile" in again.unchanged


def test_the_folder_id_is_stable_and_short(tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    ids = {lab_folder_id(lab), lab_folder_id(str(lab)), lab_folder_id(tmp_path / "x" / ".." / "lab")}
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{8}", ids.pop())
    assert lab_folder_id(lab) != lab_folder_id(tmp_path / "lab2")
    assert vm_name("k8s-lab", "k8s-node1", None) == "k8s-lab-k8s-node1"
