"""labctl against real VMs: Vagrant + vagrant-libvirt + qemu (emulation), 1 master + 1 worker.

The tests run in file order on one lab (booting it is the expensive part). The VMs
have no internet: the test's own pin table and a host cache filled beforehand
(tests/e2e/pins.py) stand in for the real files, with real checksums. The first
`labctl up` installs them from the host cache for real and must stop at `kubeadm init`,
where the stand-in kubeadm says a real Kubernetes binary is needed; everything before
that step is checked on the machines themselves, then halt/up, resume, snapshots,
status, ssh and destroy.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.e2e.harness import E2E_LAB_NAME
from tests.e2e.lab import IPS, MASTER, WORKER, E2ELab

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("LABCTL_E2E") != "1", reason="boots real VMs (minutes); set LABCTL_E2E=1"),
]

NODES = (MASTER, WORKER)
# Everything before the first step that needs a real Kubernetes binary.
PREPARE_BEFORE_PACKAGES = ("swap", "kernel", "containerd", "kubelet-config", "kube-packages", "images")
PACKAGES_STEP = "kubeadm-init"  # where the stand-in kubeadm stops the run
STANDIN_LINE = "labctl e2e: kubeadm here is a stand-in"


def _step_events(run, status=None):
    evs = [e for e in run.json_lines() if e.get("kind") == "step"]
    return [e for e in evs if status is None or e.get("status") == status]


def _error(run) -> dict:
    for obj in reversed(run.json_lines()):
        if isinstance(obj.get("error"), str) and "message" in obj:
            return obj
    raise AssertionError(f"no JSON error object on stdout\n{run.describe()}")


@pytest.fixture(scope="module")
def first_up(e2e_lab: E2ELab):
    # Seen here: about 170 s. The bound keeps a hung boot inside CI's time.
    return e2e_lab.labctl("up", "--provider", "libvirt", "--json", timeout=1500)


# ------------------------------------------------------------------ first `labctl up`
def test_first_up_stops_where_a_real_kubernetes_binary_is_needed(first_up, e2e_lab):
    run = first_up
    assert run.rc != 0, run.describe()
    failed = _step_events(run, "failed")
    assert failed, f"no failed step event\n{run.describe()}"
    assert {e["step"] for e in failed} == {PACKAGES_STEP}, failed
    assert {e["node"] for e in failed} == {MASTER}  # the worker waits for the master's CNI: never joins
    err = _error(run)
    assert any(STANDIN_LINE in line for line in err["evidence"]), err
    text = str(err)
    assert PACKAGES_STEP in text, err
    assert err["where"] in NODES, err
    assert err["log"] and Path(err["log"]).is_file(), err
    log_text = Path(err["log"]).read_text()
    assert PACKAGES_STEP in log_text, f"{err['log']} does not show the failing step"
    # The last lines of the step's output come with the error, and they are in the log.
    assert err["evidence"] and all(line.strip() in log_text for line in err["evidence"][-3:]), err
    assert err["hint"], f"no hint in {err}"
    # Every step before the packages ran (or was already done) on both nodes.
    finished = {(e["node"], e["step"]) for e in run.json_lines() if e.get("kind") == "step" and e.get("status") in ("done", "skipped")}
    for node in NODES:
        for step in PREPARE_BEFORE_PACKAGES:
            assert (node, step) in finished, f"{step} on {node} did not finish\n{run.describe()}"


def test_machines_have_their_hostnames_and_host_only_ips(first_up, e2e_lab):
    for node in NODES:
        assert e2e_lab.on_node(node, "hostname").strip() == node
        addrs = e2e_lab.on_node(node, "ip -4 -o addr show")
        host_only = re.findall(r"^\d+:\s+(\S+)\s+inet\s+(192\.168\.56\.\d+)/24", addrs, re.M)
        assert host_only == [("eth1", IPS[node])], addrs
        # The management NIC is vagrant-libvirt's NAT network, a different address.
        assert re.search(r"^\d+:\s+eth0\s+inet\s+192\.168\.121\.\d+/", addrs, re.M), addrs


def test_kubelet_node_ip_is_the_host_only_address_not_the_management_nic(first_up, e2e_lab):
    for node in NODES:
        defaults = e2e_lab.on_node(node, "cat /etc/default/kubelet")
        ips = re.findall(r"--node-ip=(\S+?)[\"\s]", defaults + " ")
        assert ips == [IPS[node]], defaults
        mgmt = e2e_lab.on_node(node, "ip -4 -o addr show eth0 | awk '{print $4}'").strip().split("/")[0]
        assert mgmt and mgmt != IPS[node]


def _swap_state(lab: E2ELab, node: str) -> tuple[int, list[str]]:
    swaps = lab.on_node(node, "tail -n +2 /proc/swaps | wc -l")
    fstab = lab.on_node(node, "cat /etc/fstab")
    active_entries = [l for l in fstab.splitlines() if re.match(r"^\s*[^#\s]+\s+\S+\s+swap\s", l)]
    return int(swaps.strip()), active_entries


def test_swap_is_off_and_out_of_fstab(first_up, e2e_lab):
    for node in NODES:
        active, entries = _swap_state(e2e_lab, node)
        assert active == 0 and entries == [], (node, active, entries)
        # The box does ship a swap file: the step really had something to turn off.
        assert "/swapfile" in e2e_lab.on_node(node, "cat /etc/fstab")


def test_kernel_modules_and_sysctls_are_in_place(first_up, e2e_lab):
    for node in NODES:
        mods = e2e_lab.on_node(node, "cat /proc/modules")
        assert re.search(r"^overlay ", mods, re.M) and re.search(r"^br_netfilter ", mods, re.M), node
        values = e2e_lab.on_node(node, "cat /proc/sys/net/bridge/bridge-nf-call-iptables "
                                 "/proc/sys/net/bridge/bridge-nf-call-ip6tables /proc/sys/net/ipv4/ip_forward")
        assert values.split() == ["1", "1", "1"], (node, values)
        persisted = e2e_lab.on_node(node, "cat /etc/modules-load.d/*.conf /etc/sysctl.d/*.conf")
        assert "br_netfilter" in persisted and "net.ipv4.ip_forward" in persisted


def test_containerd_uses_the_systemd_cgroup_driver(first_up, e2e_lab):
    for node in NODES:
        conf = e2e_lab.on_node(node, "sudo cat /etc/containerd/config.toml")
        assert re.search(r"^\s*SystemdCgroup\s*=\s*true\s*$", conf, re.M), node
        assert not re.search(r"^\s*SystemdCgroup\s*=\s*false", conf, re.M), node
        assert e2e_lab.on_node(node, "systemctl is-active containerd").strip() == "active"


def test_pinned_files_are_installed_from_the_host_cache_with_their_checksums(first_up, e2e_lab):
    from labctl.artifacts.model import load_set

    pins = {a.id: a for a in load_set(e2e_lab.artifacts_env["LABCTL_ARTIFACT_SET"]).files("amd64")}
    for node in NODES:
        for pid in ("kubeadm", "kubelet", "kubectl", "runc", "kubeadm-dropin", "kubelet-service", "containerd-service"):
            target = pins[pid].install["to"]
            got = e2e_lab.on_node(node, f"sudo sha256sum {target}").split()[0]
            assert got == pins[pid].sha256, (node, pid, target)
        modes = e2e_lab.on_node(node, "stat -c '%a %n' /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl")
        assert [line.split()[0] for line in modes.splitlines()] == ["755", "755", "755"], modes
        assert e2e_lab.on_node(node, "sudo ls -A /var/lib/labctl/artifacts").strip() == ""  # installed, then removed
        # the unit and drop-in read the file the kubelet-config step writes --node-ip into
        unit = e2e_lab.on_node(node, "systemctl cat kubelet")
        assert "EnvironmentFile=-/etc/default/kubelet" in unit.splitlines(), unit
        assert "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf" in unit, unit
        assert e2e_lab.on_node(node, "systemctl is-enabled kubelet").strip() == "enabled"
        # containerd runs from the pinned place (here a wrapper around the box's binary)
        assert "ExecStart=/usr/local/bin/containerd" in e2e_lab.on_node(node, "systemctl cat containerd")


def test_the_shared_image_went_from_the_host_cache_into_both_vms_containerd(first_up, e2e_lab):
    from tests.e2e.pins import IMAGE_REF

    for node in NODES:
        refs = e2e_lab.on_node(node, "sudo ctr -n k8s.io images ls -q").split()
        assert IMAGE_REF in refs, (node, refs)


def test_the_lab_pins_each_vms_own_ssh_host_key(first_up, e2e_lab):
    known = (e2e_lab.lab_dir / ".labctl" / "known_hosts").read_text()
    pinned = {}
    for node in NODES:
        key = e2e_lab.on_node(node, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
        pinned[node] = key
        assert key in known, f"{node}'s host key is not in .labctl/known_hosts"
    # The box makes its host keys on first boot: two VMs, two keys.
    assert pinned[MASTER] != pinned[WORKER]


def test_doctor_checks_the_real_plugin_and_libvirtd(first_up, e2e_lab):
    run = e2e_lab.labctl("doctor", "--json", timeout=300)
    found = {f["id"]: f for f in run.json_lines()[-1]["findings"]}
    assert found["vagrant-libvirt"]["level"] == "ok", found
    assert found["libvirt"]["level"] == "ok" and "QEMU" in found["libvirt"]["message"], found
    assert "virtualbox" not in found


# ------------------------------------------------------------------ halt, up, resume
@pytest.fixture(scope="module")
def second_up(first_up, e2e_lab):
    if not any(e.get("step") == PACKAGES_STEP for e in _step_events(first_up, "failed")):
        pytest.fail("the first `labctl up` did not get as far as kubeadm-init; nothing to resume")
    halt = e2e_lab.labctl("halt", "--json", timeout=600)
    assert halt.rc == 0, halt.describe()
    status = e2e_lab.labctl("status", "--json", timeout=300)
    halted_at = time.time()
    return halt, status, e2e_lab.labctl("up", "--json", timeout=1200), halted_at


def test_halt_stops_the_vms(second_up, e2e_lab):
    halt, status, _, _ = second_up
    states = {m: s for m, s in _vm_states(status).items()}
    assert states and all(s in ("shutoff", "poweroff", "not_running", "halted") for s in states.values()), status.describe()


def _vm_states(status_run) -> dict[str, str]:
    doc = status_run.json_lines()[-1]
    return {n["name"]: n.get("vm") for n in doc.get("nodes", [])}


def test_second_up_resumes_at_kubeadm_init(second_up, e2e_lab):
    run = second_up[2]
    assert run.rc != 0, run.describe()
    ran = {(e["node"], e["step"]) for e in _step_events(run, "running")}
    skipped = {(e["node"], e["step"]) for e in run.json_lines()
               if e.get("kind") in ("plan", "step") and e.get("status") == "skipped"}
    for node in NODES:
        for step in PREPARE_BEFORE_PACKAGES:
            assert (node, step) in skipped and (node, step) not in ran, (node, step, run.describe())
    assert {s for _, s in ran} == {PACKAGES_STEP}, ran
    assert {e["step"] for e in _step_events(run, "failed")} == {PACKAGES_STEP}


def test_state_and_node_logs_show_the_resume(second_up, e2e_lab):
    import json

    state = json.loads((e2e_lab.lab_dir / ".labctl" / "state.json").read_text())
    assert state["command"] == "up" and state["result"] != "done", state
    for node in NODES:
        steps = state["nodes"][node]["steps"]
        for step in PREPARE_BEFORE_PACKAGES:
            assert steps[step]["status"] == "skipped" and steps[step].get("reason"), (node, step, steps[step])
        # The node's own log keeps both runs: each preparation script ran once (first run).
        log = (e2e_lab.lab_dir / ".labctl" / "logs" / f"{node}.log").read_text()
        for step in PREPARE_BEFORE_PACKAGES:
            assert len(re.findall(rf"\$ sudo bash \S*/{step}\.sh", log)) == 1, (node, step)
    init = state["nodes"][MASTER]["steps"][PACKAGES_STEP]
    assert init["status"] == "failed" and init.get("error"), init
    # ... and kubeadm-init twice, once per run.
    log = (e2e_lab.lab_dir / ".labctl" / "logs" / f"{MASTER}.log").read_text()
    assert len(re.findall(rf"\$ sudo bash \S*/{PACKAGES_STEP}\.sh", log)) == 2


def test_the_failure_reads_clearly_without_json(second_up, e2e_lab):
    run = e2e_lab.labctl("up", timeout=1200)
    assert run.rc == first_exit_code(e2e_lab), run.describe()
    err_line = next(l for l in run.stderr.splitlines() if l.startswith("labctl: error:"))
    assert PACKAGES_STEP in err_line and MASTER in err_line, err_line
    assert re.search(r"\.labctl/logs/k8s-master\.log", err_line), err_line
    assert STANDIN_LINE in run.stderr
    assert any(l.startswith("  | ") for l in run.stderr.splitlines()), "no last lines of output"
    assert any(l.startswith("hint: ") and len(l) > 12 for l in run.stderr.splitlines()), run.stderr[-2000:]


def first_exit_code(lab: E2ELab) -> int:
    return next(r.rc for r in lab.runs if r.argv[-3:] == ["--provider", "libvirt", "--json"] and "up" in r.argv)


def test_swap_stays_off_after_halt_and_up(second_up, e2e_lab):
    for node in NODES:
        active, entries = _swap_state(e2e_lab, node)
        assert active == 0 and entries == [], (node, active, entries)
        # The VM really went down and booted again: it has been up for less time than
        # has passed since the halt.
        uptime = float(e2e_lab.on_node(node, "cut -d' ' -f1 /proc/uptime"))
        assert uptime < time.time() - second_up[3], (node, uptime)


# ------------------------------------------------------------------ snapshots, status, ssh
def test_snapshot_save_and_restore(second_up, e2e_lab):
    save = e2e_lab.labctl("snapshot", "save", "clean", "--json", timeout=900)
    assert save.rc == 0, save.describe()
    listed = e2e_lab.labctl("snapshot", "list", "--json")
    assert listed.rc == 0, listed.describe()
    snaps = listed.json_lines()[-1]["snapshots"]
    assert all("clean" in snaps.get(n, []) for n in NODES), snaps
    e2e_lab.on_node(MASTER, "echo after > /home/vagrant/after-snapshot")
    restore = e2e_lab.labctl("snapshot", "restore", "clean", "--json", timeout=900)
    assert restore.rc == 0, restore.describe()
    gone = e2e_lab.on_node(MASTER, "test -e /home/vagrant/after-snapshot && echo present || echo absent")
    assert gone.strip() == "absent"


def test_status_reports_running_vms(second_up, e2e_lab):
    run = e2e_lab.labctl("status", "--json", timeout=300)
    assert run.rc == 0, run.describe()
    assert _vm_states(run) == {MASTER: "running", WORKER: "running"}, run.describe()


def test_ssh_runs_a_command_and_returns_its_exit_code(second_up, e2e_lab):
    ok = e2e_lab.labctl("ssh", WORKER, "--", "hostname")
    assert ok.rc == 0 and ok.stdout.strip() == WORKER, ok.describe()
    bad = e2e_lab.labctl("ssh", WORKER, "--", "exit", "7")
    assert bad.rc == 7, bad.describe()


# ------------------------------------------------------------------ an image one VM has, the other lacks
@pytest.fixture(scope="module")
def shared_from_master(second_up, e2e_lab):
    """The test's second image goes into the master's containerd only (`ctr images
    import` by the test: the VMs cannot pull), then into the set; `labctl up` again."""
    import base64

    from tests.e2e.pins import MASTER_ONLY_REF, add_image, tiny_oci_image

    data = base64.b64encode(tiny_oci_image(MASTER_ONLY_REF)).decode()
    e2e_lab.on_node(MASTER, f"echo {data} | base64 -d > /tmp/from-master.tar && "
                            "sudo ctr -n k8s.io images import /tmp/from-master.tar && rm /tmp/from-master.tar")
    add_image(e2e_lab.artifacts_env["LABCTL_ARTIFACT_SET"], MASTER_ONLY_REF)
    return e2e_lab.labctl("up", "--json", timeout=1200)


def test_an_image_only_the_master_has_is_exported_there_and_imported_by_the_worker(shared_from_master, e2e_lab):
    import io
    import json
    import tarfile

    from labctl.artifacts.cache import Cache
    from tests.e2e.pins import MASTER_ONLY_REF, tiny_oci_image

    run = shared_from_master
    assert {e["step"] for e in _step_events(run, "failed")} == {PACKAGES_STEP}, run.describe()
    ran = {(e["node"], e["step"]) for e in _step_events(run, "running")}
    assert (WORKER, "images") in ran and (MASTER, "images") not in ran, ran  # the master lacked nothing
    said = [e.get("message", "") for e in run.json_lines() if e.get("kind") == "info"]
    assert any(f"{MASTER_ONLY_REF}: exported on {MASTER} for {WORKER}" in m for m in said), said
    # The worker's real containerd has it; it came from the master's real containerd.
    assert MASTER_ONLY_REF in e2e_lab.on_node(WORKER, "sudo ctr -n k8s.io images ls -q").split()
    log = (e2e_lab.lab_dir / ".labctl" / "logs" / f"{MASTER}.log").read_text()
    assert re.search(rf"ctr -n k8s.io images export --platform linux/amd64 \S+ {re.escape(MASTER_ONLY_REF)}", log)
    assert e2e_lab.on_node(MASTER, "sudo ls -A /var/lib/labctl/images/export").strip() == ""  # collected, removed
    # The host cache keeps the master's export (not the test's archive) for the next lab.
    kept = Cache(Path(e2e_lab.artifacts_env["LABCTL_CACHE_DIR"])).image_path(MASTER_ONLY_REF, None, "amd64")
    assert kept is not None
    assert kept.read_bytes() != tiny_oci_image(MASTER_ONLY_REF)
    with tarfile.open(fileobj=io.BytesIO(kept.read_bytes())) as tar:
        index = json.load(tar.extractfile("index.json"))
    names = [m.get("annotations", {}).get("io.containerd.image.name") for m in index["manifests"]]
    assert MASTER_ONLY_REF in names, index


# ------------------------------------------------------------------ destroy
def test_destroy_leaves_no_vm_network_or_disk(second_up, shared_from_master, e2e_lab):
    run = e2e_lab.labctl("destroy", "--yes", "--json", timeout=600)
    assert run.rc == 0, run.describe()
    ns = e2e_lab.ns
    assert [d for d in ns.domains() if d.startswith(E2E_LAB_NAME)] == []
    assert [n for n in ns.networks() if n.startswith((E2E_LAB_NAME, "vagrant-libvirt"))] == []
    assert [v for v in ns.volumes() if v.startswith(E2E_LAB_NAME)] == []
    assert not (e2e_lab.lab_dir / ".labctl" / "known_hosts").exists() or \
        (e2e_lab.lab_dir / ".labctl" / "known_hosts").read_text().strip() == ""
    assert (e2e_lab.lab_dir / "lab.yaml").exists()
