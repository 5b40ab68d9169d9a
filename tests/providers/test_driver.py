"""VagrantDriver against the `vagrant` stand-in on PATH (tests/helpers/fake_vagrant.py)."""

from __future__ import annotations
import time

import os
from pathlib import Path

import pytest

from labctl.providers.vagrant.driver import MachineState, VagrantDriver
from labctl.errors import ExitCode, HostNotReady, VagrantFailed
from tests.helpers.fake_vagrant import max_overlap

NODES = ["k8s-master", "k8s-node1", "k8s-node2"]


@pytest.fixture
def lab(fake_vagrant, tmp_path) -> Path:
    return fake_vagrant.lab(tmp_path / "lab", NODES)


@pytest.fixture
def driver(lab, tmp_path) -> VagrantDriver:
    return VagrantDriver(lab, log_dir=lab / ".labctl" / "logs", kill_grace=2.0)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone(pids, within: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: give the kernel a moment to finish the job."""
    end = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_version(driver):
    assert driver.version() == "2.3.4"


def test_env_is_merged_into_the_callers_environment(lab):
    # python-vagrant's env= replaces the environment; ours adds to it (PATH stays).
    d = VagrantDriver(lab, log_dir=lab / "logs", env={"LABCTL_FAKE_VAGRANT_VERSION": "2.4.1"})
    assert d.version() == "2.4.1"


def test_status_lists_every_machine_of_the_vagrantfile(driver):
    assert driver.status() == {n: MachineState(n, "not_created", "virtualbox") for n in NODES}


def test_up_brings_machines_up_and_reports_events(driver, fake_vagrant, lab):
    events = []
    driver.up(["k8s-master", "k8s-node1"], on_event=lambda n, e: events.append((n, e)))
    states = driver.status()
    assert states["k8s-master"].state == states["k8s-node1"].state == "running"
    assert states["k8s-node2"].state == "not_created"
    for name in ("k8s-master", "k8s-node1"):
        assert [e for n, e in events if n == name] == ["started", "running"]
        log = (lab / ".labctl" / "logs" / f"vagrant-up-{name}.log").read_text()
        assert f"==> {name}: Machine booted and ready!" in log
        assert "labctl: exit 0" in log
    ups = [c for c in fake_vagrant.calls(lab) if c.verb == "up"]
    assert sorted(c.argv[1] for c in ups) == ["k8s-master", "k8s-node1"]
    assert all("--no-provision" in c.argv for c in ups)


def test_up_passes_the_provider(driver, fake_vagrant, lab):
    driver.up(["k8s-node1"], provider="libvirt")
    assert driver.status()["k8s-node1"] == MachineState("k8s-node1", "running", "libvirt")
    (up,) = [c for c in fake_vagrant.calls(lab) if c.verb == "up"]
    assert up.argv[up.argv.index("--provider") + 1] == "libvirt"


def test_up_of_a_running_machine_is_harmless(driver):
    driver.up(["k8s-node1"])
    driver.up(["k8s-node1"])
    assert driver.status()["k8s-node1"].state == "running"


@pytest.mark.parametrize("max_parallel, expected", [(1, 1), (2, 2), (4, 4)])
def test_up_runs_at_most_max_parallel_processes(fake_vagrant, tmp_path, max_parallel, expected):
    names = [f"n{i}" for i in range(4)]
    lab = fake_vagrant.lab(tmp_path / "lab", names)
    # Long enough that the stand-ins' start-up (~0.1 s each, more on a loaded machine)
    # cannot make a process end before the next one allowed to run begins.
    fake_vagrant.up_seconds(1.2)
    VagrantDriver(lab, log_dir=lab / "logs").up(names, max_parallel=max_parallel)
    ups = [c for c in fake_vagrant.calls(lab) if c.verb == "up"]
    assert len(ups) == 4 and all(c.rc == 0 for c in ups)
    assert max_overlap(ups) == expected
    # Parallel ups share the state file under a lock: none of them lost its write.
    assert {n: s.state for n, s in VagrantDriver(lab, log_dir=lab / "logs").status().items()} == dict.fromkeys(
        names, "running")


def test_ssh_target_is_read_again_after_each_up(driver, fake_vagrant, lab):
    # VirtualBox may forward another host port at each boot (port collision handling).
    fake_vagrant.set_host("k8s-node1", ports=[2201, 2299], user="vagrant", identity_file="/keys/node1")
    driver.up(["k8s-node1"])
    first = driver.ssh_target("k8s-node1")
    assert (first.name, first.host, first.port, first.user, first.key_file) == (
        "k8s-node1", "127.0.0.1", 2201, "vagrant", Path("/keys/node1"))
    driver.halt(["k8s-node1"])
    driver.up(["k8s-node1"])
    assert driver.ssh_target("k8s-node1").port == 2299
    assert sum(1 for c in fake_vagrant.calls(lab) if c.verb == "ssh-config") == 2


def test_ssh_target_default_key_is_the_machines_own(driver, lab):
    driver.up(["k8s-master"])
    target = driver.ssh_target("k8s-master")
    assert target.key_file == lab / ".vagrant" / "machines" / "k8s-master" / "virtualbox" / "private_key"


def test_ssh_target_of_a_machine_not_running_raises_with_hint(driver):
    with pytest.raises(VagrantFailed) as exc:
        driver.ssh_target("k8s-node2")
    err = exc.value
    assert err.where == "k8s-node2" and err.rc == 1
    assert "vagrant ssh-config k8s-node2" in err.command
    assert any("not yet ready for SSH" in line for line in err.evidence)
    assert "labctl up" in err.hint


def test_failed_up_carries_evidence_log_and_hint(driver, fake_vagrant, lab):
    fake_vagrant.fail("up", "k8s-node1", kind="hostonly")
    events = []
    with pytest.raises(VagrantFailed) as exc:
        driver.up(NODES, max_parallel=3, on_event=lambda n, e: events.append((n, e)))
    err = exc.value
    assert err.exit_code == ExitCode.PROVIDER_FAILED
    assert err.where == "k8s-node1" and err.rc == 1
    assert err.command.startswith("vagrant up k8s-node1 --no-provision")
    assert "k8s-node1" in str(err) and "exited 1" in str(err)
    assert any("not within the" in line for line in err.evidence)
    assert "Address: 192.168.56.31" in "\n".join(err.evidence)
    assert "/etc/vbox/networks.conf" in err.hint
    log = Path(err.log_path)
    assert log.name == "vagrant-up-k8s-node1.log"
    assert "error-exit: Vagrant::Errors::VirtualBoxInvalidHostSubnet" in log.read_text()
    assert ("k8s-node1", "failed") in events
    # The machines already booting were left to finish.
    states = driver.status()
    assert states["k8s-master"].state == states["k8s-node2"].state == "running"


def test_after_a_failure_queued_machines_are_not_started(driver, fake_vagrant, lab):
    fake_vagrant.fail("up", "k8s-master")
    with pytest.raises(VagrantFailed) as exc:
        driver.up(NODES, max_parallel=1)
    assert exc.value.where == "k8s-master"
    assert "VBoxManage" in exc.value.hint
    assert [c.argv[1] for c in fake_vagrant.calls(lab) if c.verb == "up"] == ["k8s-master"]


def test_every_failed_machine_is_named(driver, fake_vagrant):
    fake_vagrant.fail("up", "k8s-node1", kind="vtx")
    fake_vagrant.fail("up", "k8s-node2", kind="box")
    with pytest.raises(VagrantFailed) as exc:
        driver.up(NODES, max_parallel=3)
    assert exc.value.where == "k8s-node1"
    assert "BIOS" in exc.value.hint
    assert any(line.startswith("also failed: k8s-node2") for line in exc.value.evidence)


def test_deadline_kills_the_machines_process_group(driver, fake_vagrant, lab):
    # The deadline is per machine: the master (instant here) is not cut short by it,
    # even on a loaded machine, while node1 (60 s) is.
    fake_vagrant.up_seconds(0, k8s_node1=60)
    events = []
    with pytest.raises(VagrantFailed) as exc:
        driver.up(["k8s-master", "k8s-node1"], deadline=4.0, on_event=lambda n, e: events.append((n, e)))
    err = exc.value
    assert err.rc is None and err.where == "k8s-node1", str(err)
    assert "on k8s-node1 was stopped at its deadline of 4 s" in str(err)
    assert "4 s" in err.hint
    (call,) = [c for c in fake_vagrant.calls(lab) if c.verb == "up" and c.argv[1] == "k8s-node1"]
    assert call.end is None  # the stand-in never finished
    assert call.child_pids, "the stand-in spends its boot time in a child process"
    # vagrant and the child it started (as VBoxManage would be) are both gone.
    assert gone([call.pid, *call.child_pids])
    assert "deadline of 4 s passed" in Path(err.log_path).read_text()
    assert ("k8s-master", "running") in events and ("k8s-node1", "failed") in events


def test_missing_vagrant_binary_is_host_not_ready(lab, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    d = VagrantDriver(lab, log_dir=lab / "logs", env={"PATH": str(empty)})
    for call in (d.version, d.status, lambda: d.up(["k8s-master"]), lambda: d.ssh_target("k8s-master")):
        with pytest.raises(HostNotReady) as exc:
            call()
        assert exc.value.exit_code == ExitCode.HOST_NOT_READY
        assert "vagrant" in str(exc.value) and "install Vagrant" in exc.value.hint


def test_missing_vagrantfile_hints_at_render(fake_vagrant, tmp_path):
    folder = tmp_path / "no-lab"
    folder.mkdir()
    with pytest.raises(VagrantFailed) as exc:
        VagrantDriver(folder, log_dir=folder / "logs").status()
    assert "labctl render" in exc.value.hint


def test_halt_then_up_again(driver, fake_vagrant, lab):
    driver.up(NODES)
    driver.halt(["k8s-node2"])
    assert driver.status()["k8s-node2"].state == "poweroff"
    driver.up(["k8s-node2"])
    assert driver.status()["k8s-node2"].state == "running"
    driver.halt()
    assert {s.state for s in driver.status().values()} == {"poweroff"}
    driver.halt(["k8s-master", "k8s-node1"])  # already off: nothing to do, no error


def test_failed_halt_raises_with_the_command(driver, fake_vagrant):
    driver.up(["k8s-master"])
    fake_vagrant.fail("halt", "*")
    with pytest.raises(VagrantFailed) as exc:
        driver.halt(["k8s-master"])
    assert exc.value.command.startswith("vagrant halt k8s-master")
    assert exc.value.rc == 1
    assert any("VBoxManage" in line for line in exc.value.evidence)


def test_destroy_forgets_machines(driver, fake_vagrant, lab):
    driver.up(["k8s-master", "k8s-node1"])
    driver.destroy(["k8s-node1"])
    assert driver.status()["k8s-node1"].state == "not_created"
    assert driver.status()["k8s-master"].state == "running"
    driver.destroy()
    assert {s.state for s in driver.status().values()} == {"not_created"}
    driver.destroy()  # again: nothing left, still fine
    assert all("-f" in c.argv for c in fake_vagrant.calls(lab) if c.verb == "destroy")


def test_snapshots_save_list_restore_delete(driver, fake_vagrant, lab):
    driver.up(["k8s-master", "k8s-node1"])
    assert driver.snapshot_list() == {"k8s-master": [], "k8s-node1": [], "k8s-node2": []}
    driver.snapshot_save("base")
    driver.snapshot_save("pod-3", ["k8s-node1"])
    assert driver.snapshot_list() == {"k8s-master": ["base"], "k8s-node1": ["base", "pod-3"], "k8s-node2": []}
    driver.halt()
    driver.snapshot_restore("base", ["k8s-master"])
    assert driver.status()["k8s-master"].state == "running"
    restore = next(c for c in fake_vagrant.calls(lab) if c.argv[:2] == ["snapshot", "restore"])
    assert restore.argv[2:4] == ["k8s-master", "base"] and "--no-provision" in restore.argv
    driver.snapshot_delete("base", ["k8s-node1"])
    assert driver.snapshot_list()["k8s-node1"] == ["pod-3"]


def test_snapshot_errors_name_the_fix(driver):
    driver.up(["k8s-node1"])
    with pytest.raises(VagrantFailed) as exc:
        driver.snapshot_restore("nope", ["k8s-node1"])
    assert "snapshot list" in exc.value.hint
    driver.snapshot_save("s1", ["k8s-node1"])
    with pytest.raises(VagrantFailed) as exc:
        driver.snapshot_save("s1", ["k8s-node1"])
    assert "--force" in exc.value.hint
    driver.snapshot_save("s1", ["k8s-node1"], force=True)
    assert driver.snapshot_list()["k8s-node1"] == ["s1"]


def test_python_vagrant_reads_the_stand_in_like_real_vagrant(fake_vagrant, lab):
    """python-vagrant (a dependency) parses the stand-in's output: same format as the CLI."""
    import vagrant

    fake_vagrant.set_host("k8s-node1", port=2201, identity_file="/keys/n1")
    v = vagrant.Vagrant(root=str(lab), env=dict(os.environ), quiet_stdout=True, quiet_stderr=True)
    assert [(s.name, s.state, s.provider) for s in v.status()] == [
        (n, "not_created", "virtualbox") for n in NODES]
    v.up(vm_name="k8s-node1", no_provision=True)
    assert v.status(vm_name="k8s-node1")[0].state == "running"
    assert v.conf(vm_name="k8s-node1")["Port"] == "2201"
    assert v.keyfile(vm_name="k8s-node1") == "/keys/n1"
    v.snapshot_save("s1")
    v.halt(vm_name="k8s-node1")
    assert v.status(vm_name="k8s-node1")[0].state == "poweroff"
    v.destroy(vm_name="k8s-node1")
    assert v.status(vm_name="k8s-node1")[0].state == "not_created"


INTERRUPTED_UP = """
import signal
import sys
from pathlib import Path
# Ctrl-C must raise KeyboardInterrupt here even if the test runner inherited SIGINT as
# ignored (`nohup pytest &`): Python then installs no handler of its own.
signal.signal(signal.SIGINT, signal.default_int_handler)
from labctl.providers.vagrant.driver import VagrantDriver
lab = Path(sys.argv[1])
VagrantDriver(lab, log_dir=lab / "logs", kill_grace=2.0).up(["k8s-master", "k8s-node1"], deadline=600)
"""


def test_ctrl_c_stops_every_vagrant_it_started(fake_vagrant, lab):
    """Ctrl-C reaches labctl only (each vagrant has its own session): it must pass it on."""
    import signal
    import subprocess
    import sys
    import time

    fake_vagrant.up_seconds(120)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_UP, str(lab)], cwd=Path(__file__).parents[2],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            booting = [c for c in fake_vagrant.calls(lab) if c.verb == "up" and c.child_pids]
            if len(booting) == 2:
                break
            time.sleep(0.05)
        assert len(booting) == 2, proc.stderr.read() if proc.poll() is not None else "no up started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in stderr
    for call in booting:
        assert not alive(call.pid)
        assert not any(alive(pid) for pid in call.child_pids)
        assert "labctl: interrupted; passing SIGINT" in (lab / "logs" / f"vagrant-up-{call.argv[1]}.log").read_text()


def test_missing_lab_folder_is_not_found(fake_vagrant, tmp_path):
    from labctl.errors import NotFound

    with pytest.raises(NotFound) as exc:
        VagrantDriver(tmp_path / "gone", log_dir=tmp_path / "logs").status()
    assert "gone" in str(exc.value) and "labctl init" in exc.value.hint


def test_unknown_failure_still_names_a_fix(lab):
    # `false` exits 1 saying nothing: no known message, so the generic hint applies.
    d = VagrantDriver(lab, log_dir=lab / "logs", executable="false")
    with pytest.raises(VagrantFailed) as exc:
        d.version()
    assert exc.value.rc == 1
    assert exc.value.hint == f"run `vagrant --version` in {lab} to see the whole output"
    with pytest.raises(VagrantFailed) as exc:
        d.up(["k8s-master"])
    assert exc.value.hint.startswith(f"read {lab / 'logs' / 'vagrant-up-k8s-master.log'}")


def test_status_of_a_vagrantfile_without_machines_is_an_error(fake_vagrant, tmp_path):
    lab = tmp_path / "odd"
    lab.mkdir()
    (lab / "Vagrantfile").write_text('Vagrant.configure("2") do |config|\nend\n')
    states = VagrantDriver(lab, log_dir=lab / "logs").status()
    assert list(states) == ["default"]  # Vagrant's implicit single machine


def test_a_machine_busy_in_another_vagrant_is_refused_with_a_hint(driver, fake_vagrant, lab):
    import subprocess
    import time

    from tests.helpers.fake_vagrant import STANDIN

    fake_vagrant.up_seconds(k8s_master=30)
    other = subprocess.Popen([str(STANDIN), "up", "k8s-master"], cwd=lab, stdout=subprocess.DEVNULL)
    try:
        until = time.monotonic() + 20
        while not any(c.child_pids for c in fake_vagrant.calls(lab)) and time.monotonic() < until:
            time.sleep(0.05)
        with pytest.raises(VagrantFailed) as exc:
            driver.up(["k8s-master"])
    finally:
        other.kill()
        other.wait()
    assert "error-exit: Vagrant::Errors::MachineActionLockedError" in exc.value.evidence
    assert "another vagrant process" in exc.value.hint


def test_up_that_exits_0_without_a_running_machine_is_caught(fake_vagrant, lab, tmp_path):
    from tests.helpers.fake_vagrant import STANDIN

    # A vagrant whose `up` claims success but boots nothing; everything else is the stand-in.
    shim = tmp_path / "lying-vagrant"
    shim.write_text(f'#!/bin/sh\ncase "$1" in up) exit 0;; esac\nexec "{STANDIN}" "$@"\n')
    shim.chmod(0o755)
    d = VagrantDriver(lab, log_dir=lab / "logs", executable=str(shim))
    with pytest.raises(VagrantFailed) as exc:
        d.up(["k8s-node1"])
    assert exc.value.where == "k8s-node1" and exc.value.rc == 0
    assert "not_created afterwards" in str(exc.value)


def test_libvirt_first_machine_boots_alone_until_its_domain_starts(driver, fake_vagrant, lab):
    # vagrant-libvirt uploads the box and creates networks under a lock local to one
    # process: the others may start only once the first printed "Starting domain.".
    fake_vagrant.up_seconds(1.2)
    driver.up(NODES, provider="libvirt", max_parallel=3)
    ups = {c.argv[1]: c for c in fake_vagrant.calls(lab) if c.verb == "up"}
    leader = ups["k8s-master"]
    log = (lab / ".labctl" / "logs" / "vagrant-up-k8s-master.log").read_text()
    assert log.index("Creating domain with") < log.index("==> k8s-master: Starting domain.")
    for name in ("k8s-node1", "k8s-node2"):
        # The stand-in spends 0.6 s before "Starting domain." and 0.6 s after it.
        assert leader.start + 0.6 <= ups[name].start < leader.end
    assert max_overlap(list(ups.values())) == 3
    assert {s.provider for s in driver.status().values()} == {"libvirt"}


def test_libvirt_followers_do_not_start_when_the_first_machine_fails(driver, fake_vagrant, lab):
    fake_vagrant.fail("up", "k8s-master", kind="box")
    with pytest.raises(VagrantFailed) as exc:
        driver.up(NODES, provider="libvirt")
    assert exc.value.where == "k8s-master"
    assert [c.argv[1] for c in fake_vagrant.calls(lab) if c.verb == "up"] == ["k8s-master"]



def test_a_call_that_hangs_is_stopped_at_its_timeout(driver, fake_vagrant, lab):
    driver.up(["k8s-node1"])
    driver.snapshot_save("base", ["k8s-node1"])
    fake_vagrant.up_seconds(k8s_node1=60)  # restoring boots the VM again: 60 s
    with pytest.raises(VagrantFailed) as exc:
        driver.snapshot_restore("base", ["k8s-node1"], timeout=1.0)
    err = exc.value
    assert err.rc is None and err.where == "k8s-node1"
    assert "gave no answer within 1 s and was stopped" in str(err)
    assert "by hand" in err.hint
    (call,) = [c for c in fake_vagrant.calls(lab) if c.argv[:2] == ["snapshot", "restore"]]
    assert call.end is None and not alive(call.pid)
    assert not any(alive(pid) for pid in call.child_pids)
