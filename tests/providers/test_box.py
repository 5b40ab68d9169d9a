"""The box is added once, before machines boot side by side (VirtualBox, Vagrant >= 2.3.5
refuses parallel downloads of one box), and the stand-in speaks real `vagrant box`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from labctl.errors import VagrantFailed
from labctl.providers.base import Provider
from labctl.providers.vagrant import parse as vagrant_cli
from labctl.providers.vagrant.driver import VagrantDriver
from labctl.providers.vagrant.parse import BoxEntry
from labctl.providers.vagrant.provider import VagrantProvider
from tests.helpers.fake_vagrant import DEFAULT_BOX, STANDIN

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "vagrant"
NODES = ["k8s-master", "k8s-node1", "k8s-node2"]


def without_timestamps(text: str) -> str:
    return re.sub(r"^\d+,", "TS,", text, flags=re.M)


@pytest.fixture
def lab(fake_vagrant, tmp_path) -> Path:
    lab = fake_vagrant.lab(tmp_path / "lab", NODES)
    vf = lab / "Vagrantfile"
    # pinned like the rendered Vagrantfile
    vf.write_text(vf.read_text().replace(
        '  config.vm.box = "bento/ubuntu-22.04"\n',
        f'  config.vm.box = "{DEFAULT_BOX[0]}"\n  config.vm.box_version = "{DEFAULT_BOX[1]}"\n'))
    return lab


def provider(lab: Path, host: str = "virtualbox") -> VagrantProvider:
    return VagrantProvider(lab, log_dir=lab / ".labctl" / "logs", host=host, box=DEFAULT_BOX, kill_grace=2.0)


def test_box_list_of_real_output():
    assert vagrant_cli.parse_box_list((FIX / "box-list-one-box.out").read_text()) == [
        BoxEntry("bento/ubuntu-22.04", "virtualbox", "202401.31.0")]
    assert vagrant_cli.parse_box_list((FIX / "box-list-no-boxes.out").read_text()) == []


def test_standin_box_list_and_add_print_what_vagrant_prints(fake_vagrant, tmp_path):
    fake_vagrant.remove_boxes()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(STANDIN), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    empty = run("box", "list", "--machine-readable")
    assert empty.returncode == 0
    assert without_timestamps(empty.stdout) == without_timestamps((FIX / "box-list-no-boxes.out").read_text())

    added = run("box", "add", DEFAULT_BOX[0], "--box-version", DEFAULT_BOX[1], "--provider", "virtualbox",
                "--machine-readable")
    assert added.returncode == 0, added.stdout
    recorded = (FIX / "box-add-local-catalog.out").read_text().splitlines()
    ours = added.stdout.splitlines()
    # Same records (target, type, level) for the lines both give, and the same last line;
    # the recording came from a file:// catalog, ours has the Vagrant Cloud wording.
    fields = lambda line: line.split(",")[1:4]  # noqa: E731
    assert fields(ours[0]) == fields(recorded[0]) == ["box", "ui", "output"]
    assert ours[0].endswith(f"==> box: Loading metadata for box '{DEFAULT_BOX[0]}'")
    assert without_timestamps(ours[-1]) == without_timestamps(recorded[-1])
    assert any(line.endswith("==> box: Adding box 'bento/ubuntu-22.04' (v202401.31.0) for provider: virtualbox")
               for line in ours)

    listed = run("box", "list", "--machine-readable")
    assert without_timestamps(listed.stdout) == without_timestamps((FIX / "box-list-one-box.out").read_text())
    again = run("box", "add", DEFAULT_BOX[0], "--box-version", DEFAULT_BOX[1], "--provider", "virtualbox",
                "--machine-readable")
    assert again.returncode == int((FIX / "box-add-exists.rc").read_text())
    assert without_timestamps(again.stdout).splitlines()[-2:] == \
        without_timestamps((FIX / "box-add-exists.out").read_text()).splitlines()[-2:]


def test_parallel_ups_without_the_box_race_on_its_download(fake_vagrant, lab):
    """What the stand-in does without labctl's fix: the same failure Vagrant >= 2.3.5 gives."""
    fake_vagrant.remove_boxes()
    fake_vagrant.box_seconds(1.0)
    with pytest.raises(VagrantFailed) as exc:
        VagrantDriver(lab, log_dir=lab / "logs", kill_grace=2.0).up(NODES, max_parallel=3)
    assert "Download to global Vagrant location already in progress" in str(exc.value.evidence) + exc.value.message


def test_virtualbox_adds_a_missing_box_once_before_the_machines_boot(fake_vagrant, lab):
    fake_vagrant.remove_boxes()
    fake_vagrant.box_seconds(1.0)
    events = []
    p = provider(lab)
    assert isinstance(p, Provider)
    p.up(NODES, parallel=3, on_event=lambda n, e: events.append((n, e)))
    assert {s.state for s in p.states().values()} == {"running"}
    calls = fake_vagrant.calls(lab)
    adds = [c for c in calls if c.argv[:2] == ["box", "add"]]
    assert len(adds) == 1
    assert adds[0].argv[2:7] == [DEFAULT_BOX[0], "--box-version", DEFAULT_BOX[1], "--provider", "virtualbox"]
    ups = [c for c in calls if c.verb == "up"]
    assert len(ups) == 3 and all(u.start >= adds[0].end for u in ups)
    assert ("", f"adding box {DEFAULT_BOX[0]} {DEFAULT_BOX[1]} for virtualbox (once, before the machines boot)") in events
    assert (lab / ".labctl" / "logs" / "vagrant-box-add.log").read_text().count("Successfully added box") == 1


def test_two_labs_brought_up_at_once_add_the_box_once(fake_vagrant, lab, tmp_path):
    """Boxes are per user: a second lab waits for the first lab's download (a lock in
    $VAGRANT_HOME) instead of racing it with its own `vagrant box add`."""
    import threading

    other = fake_vagrant.lab(tmp_path / "other", NODES)
    (other / "Vagrantfile").write_text((lab / "Vagrantfile").read_text())
    fake_vagrant.remove_boxes()
    fake_vagrant.box_seconds(1.0)
    errors = []

    def up(folder):
        try:
            provider(folder).up(NODES, parallel=3)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=up, args=(f,)) for f in (lab, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    adds = [c for f in (lab, other) for c in fake_vagrant.calls(f) if c.argv[:2] == ["box", "add"]]
    assert len(adds) == 1
    assert all({s.state for s in provider(f).states().values()} == {"running"} for f in (lab, other))
    assert (fake_vagrant.vagrant_home / "labctl-box-add.lock").exists()


def test_a_box_already_there_is_not_added_again(fake_vagrant, lab):
    provider(lab).up(NODES, parallel=3)
    assert not [c for c in fake_vagrant.calls(lab) if c.argv[:1] == ["box"] and c.argv[1:2] == ["add"]]
    assert [c.argv[:2] for c in fake_vagrant.calls(lab) if c.verb == "box"] == [["box", "list"]]


def test_libvirt_needs_no_box_step_its_first_machine_boots_alone(fake_vagrant, lab):
    fake_vagrant.remove_boxes()
    provider(lab, "libvirt").up(NODES, parallel=3)
    assert not [c for c in fake_vagrant.calls(lab) if c.verb == "box"]


def test_has_machines_only_after_a_machine_was_created(fake_vagrant, lab):
    p = provider(lab)
    assert not p.has_machines()
    p.up(["k8s-master"], parallel=1)
    assert p.has_machines()
    p.destroy()
    assert not p.has_machines()
