"""status, ssh, halt, destroy, snapshots and kubeconfig against in-memory labs brought
up by the real `up` (tests/helpers/memory_lab.py). The CLI and the real sshd and
`vagrant` stand-in: test_boundary.py."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
import yaml

from labctl.errors import ExitCode, LabError, NotFound, UsageError
from labctl.lab import machines
from labctl.lab.kubeconfig import kubeconfig
from labctl.lab.ssh import ssh_run
from labctl.lab.status import status


def _untouched(lab) -> bool:
    return {p.name for p in lab.dir.iterdir()} <= {"lab.yaml"}


def test_status_before_and_after_up(memory_lab):
    lab = memory_lab(workers=1)
    before = status(lab.lab)
    assert "never brought up" in before.cluster_note
    assert {n.vm for n in before.nodes} == {"not created"}
    assert lab.provider.calls == []  # nothing asked of the provider, nothing written
    assert _untouched(lab)

    lab.up()
    nodes = {n.name: n for n in status(lab.lab).nodes}
    assert nodes["k8s-master"].vm == "running"
    assert nodes["k8s-master"].ready is True
    assert nodes["k8s-master"].role == "control-plane"
    assert nodes["k8s-node1"].internal_ip == "192.168.56.31"
    assert nodes["k8s-node1"].kubelet_version == "v1.27.16"


def test_status_shows_a_node_that_is_not_ready_and_where_up_stopped(memory_lab):
    lab = memory_lab(workers=1)
    lab.nodes["k8s-node1"].fail("kubeadm-join", output="labctl: join broke")
    with pytest.raises(LabError):
        lab.up()
    result = status(lab.lab)
    nodes = {n.name: n for n in result.nodes}
    assert nodes["k8s-node1"].ready is None  # not registered
    assert nodes["k8s-node1"].steps_failed == ["kubeadm-join"]
    assert result.last_run["result"] == "failed"


def test_status_of_a_halted_master_says_so(memory_lab):
    lab = memory_lab(workers=0)
    lab.up()
    machines.halt(lab.lab)
    result = status(lab.lab)
    assert result.nodes[0].vm == "poweroff" and "k8s-master is not running" in result.cluster_note


def test_ssh_runs_a_command_and_returns_its_exit_code(memory_lab):
    lab = memory_lab(workers=1)
    lab.up()
    out, err = io.StringIO(), io.StringIO()
    assert ssh_run(lab.lab, "k8s-node1", "hostname", out=out, err=err) == 0
    assert out.getvalue() == "k8s-node1\n"
    assert ssh_run(lab.lab, "k8s-node1", "exit 3", out=out, err=err) == 3
    with pytest.raises(NotFound) as exc:
        ssh_run(lab.lab, "k8s-node9", "hostname")
    assert "k8s-node9" in exc.value.message and "k8s-master, k8s-node1" in exc.value.hint


def test_ssh_to_a_lab_without_machines_says_run_up(memory_lab):
    lab = memory_lab(workers=0)
    with pytest.raises(NotFound) as exc:
        ssh_run(lab.lab, "k8s-master", "hostname")
    assert exc.value.exit_code == ExitCode.NOT_FOUND and "labctl up" in exc.value.hint


def test_halt_then_up_boots_but_runs_no_step(memory_lab):
    lab = memory_lab(workers=1)
    lab.up()
    runs = {n: len(f.step_runs()) for n, f in lab.nodes.items()}
    halted = machines.halt(lab.lab)
    assert halted.machines == ["k8s-master", "k8s-node1"] and not halted.nothing_to_do
    assert set(lab.provider.machines.values()) == {"poweroff"}
    again = lab.up()
    assert sorted(again.booted) == ["k8s-master", "k8s-node1"]
    assert again.ran == []
    assert {n: len(f.step_runs()) for n, f in lab.nodes.items()} == runs


def test_halt_of_a_lab_never_brought_up_has_nothing_to_do_and_writes_nothing(memory_lab):
    lab = memory_lab(workers=1)
    result = machines.halt(lab.lab)
    assert result.nothing_to_do and result.to_dict() == {"ok": True, "halted": [], "nothing_to_do": True}
    assert _untouched(lab)
    assert lab.provider.calls == []


def test_halt_after_destroy_has_nothing_to_do(memory_lab):
    lab = memory_lab(workers=0)
    lab.up()
    machines.destroy(lab.lab)
    assert machines.halt(lab.lab).nothing_to_do
    assert not [c for c in lab.provider.calls if c[0] == "halt"]


def test_destroy_leaves_no_state_and_keeps_lab_yaml(memory_lab):
    lab = memory_lab(workers=1, write_spec=True)
    lab.up()
    paths = lab.lab.paths
    paths.known_hosts.write_text("k8s-master ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh4\n")
    assert paths.state.exists() and paths.logs.is_dir()

    result = machines.destroy(lab.lab)
    assert result.machines == ["k8s-master", "k8s-node1"]
    assert set(lab.provider.machines.values()) == {"not_created"}
    for gone in (paths.kubeconfig, paths.state, paths.known_hosts, paths.logs):
        assert not gone.exists(), gone
    assert str(paths.kubeconfig) in result.removed
    assert paths.spec.exists()
    with pytest.raises(NotFound):
        kubeconfig(paths)

    again = machines.destroy(lab.lab)  # re-running is safe
    assert again.nothing_to_do and again.removed == []
    lab.up()  # and the lab comes back from nothing
    assert lab.state()["result"] == "done"


def test_destroy_of_a_lab_never_brought_up_writes_nothing(memory_lab):
    lab = memory_lab(workers=0)
    assert machines.destroy(lab.lab).nothing_to_do
    assert _untouched(lab) and lab.provider.calls == []


def test_snapshots_save_list_restore_delete(memory_lab):
    lab = memory_lab(workers=0)
    assert machines.snapshot_list(lab.lab) == {}
    with pytest.raises(NotFound) as exc:
        machines.snapshot_save(lab.lab, "clean")
    assert "labctl up" in exc.value.hint
    lab.up()
    assert machines.snapshot_save(lab.lab, "clean") == "clean"
    assert machines.snapshot_list(lab.lab) == {"k8s-master": ["clean"]}
    assert machines.snapshot_restore(lab.lab, "clean") == "clean"
    with pytest.raises(NotFound) as exc:
        machines.snapshot_restore(lab.lab, "nope")
    assert "clean" in exc.value.hint
    machines.snapshot_delete(lab.lab, "clean")
    assert machines.snapshot_list(lab.lab) == {"k8s-master": []}
    with pytest.raises(UsageError):
        machines.snapshot_save(lab.lab, None)
    with pytest.raises(UsageError):
        machines.snapshot_save(lab.lab, "--force")
    verbs = [c[0] for c in lab.provider.calls if c[0].startswith("snapshot_") and c[0] != "snapshot_list"]
    assert verbs == ["snapshot_save", "snapshot_restore", "snapshot_delete"]


def test_a_failing_provider_call_is_recorded_and_raised(memory_lab):
    lab = memory_lab(workers=0)
    lab.up()
    lab.provider.fail("halt", "k8s-master", "VBoxManage: error: nope")
    events = []
    with pytest.raises(LabError) as exc:
        machines.halt(lab.lab, sinks=[events.append])
    assert exc.value.exit_code == ExitCode.PROVIDER_FAILED
    assert events[-1].kind == "run" and events[-1].status == "failed"


def test_kubeconfig_path_and_merge_keep_other_contexts(memory_lab, tmp_path):
    lab = memory_lab(workers=0)
    home_cfg = tmp_path / "home" / ".kube" / "config"
    lab.up(merge_kubeconfig=home_cfg)
    merged = yaml.safe_load(home_cfg.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["k8s-lab"]
    assert stat.S_IMODE(home_cfg.stat().st_mode) == 0o600
    assert kubeconfig(lab.lab.paths) == lab.dir / "kubeconfig"

    other = tmp_path / "other-config"
    other.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "work",
        "clusters": [{"name": "work", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "me", "user": {"token": "abc"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "me"}}],
    }))
    assert kubeconfig(lab.lab.paths, merge_into=other) == other
    first = other.read_bytes()
    cfg = yaml.safe_load(first)
    assert [c["name"] for c in cfg["contexts"]] == ["work", "k8s-lab"]
    assert cfg["current-context"] == "work"
    assert next(c for c in cfg["clusters"] if c["name"] == "k8s-lab")["cluster"]["server"] == "https://192.168.56.30:6443"
    kubeconfig(lab.lab.paths, merge_into=other)
    assert other.read_bytes() == first


def test_halt_twice_and_destroy_twice_are_fine(memory_lab):
    lab = memory_lab(workers=0)
    lab.up()
    assert machines.halt(lab.lab).machines == ["k8s-master"]
    assert machines.halt(lab.lab).machines == ["k8s-master"]  # already off: harmless
    assert machines.destroy(lab.lab).machines == ["k8s-master"]
    assert machines.destroy(lab.lab).nothing_to_do


def test_the_lab_hands_its_parts_down(memory_lab, tmp_path):
    """One Lab per command: the provider and session opener come from it, not from a
    module-level factory."""
    from labctl.lab.lab import Lab
    from labctl.providers.vagrant.provider import VagrantProvider

    real = Lab.load(tmp_path)
    assert isinstance(real.provider, VagrantProvider) and real.provider.name == "virtualbox"
    assert real.provider.box == (real.spec.box.name, real.spec.box.version)
    lab = memory_lab(workers=0)
    lab.up()
    with lab.lab.session("k8s-master") as s:
        assert s.run("hostname").stdout == "k8s-master\n"
    assert Path(lab.lab.paths.node_log("k8s-master")).exists()


def test_halt_or_destroy_of_a_folder_that_does_not_exist_is_not_found(tmp_path):
    from labctl.lab.lab import Lab

    lab = Lab.load(tmp_path / "nowhere")
    for command in (machines.halt, machines.destroy):
        with pytest.raises(NotFound) as exc:
            command(lab)
        assert exc.value.exit_code == ExitCode.NOT_FOUND and "does not exist" in exc.value.message
    assert not (tmp_path / "nowhere").exists()
