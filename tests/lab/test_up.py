"""`labctl up` end to end: the real CLI, real Vagrant CLI parsing (against the `vagrant`
stand-in), real paramiko sessions to real sshd servers whose nodes are emulated
(tests/helpers/fake_node.py). Only the VMs' insides are fake."""

from __future__ import annotations

import json
import stat

import pytest
import yaml

from labctl.bootstrap.steps import STEPS
from labctl.errors import ExitCode

pytestmark = pytest.mark.slow

PREPARE = [s.id for s in STEPS if s.phase == "prepare"]


def _runs(node) -> list[str]:
    return [e["step"] for e in node.step_runs()]


def _state(lab) -> dict:
    return json.loads((lab.dir / ".labctl" / "state.json").read_text())


def test_up_runs_the_plan_in_order_and_writes_a_private_kubeconfig(fake_lab):
    lab = fake_lab(workers=2)
    r = lab.labctl("up")
    assert r.returncode == 0, r.stderr
    assert "lab k8s-lab is up" in r.stdout

    # every node: the prepare steps in catalogue order
    for node in lab.nodes.values():
        assert _runs(node)[: len(PREPARE)] == PREPARE
    assert _runs(lab.master) == PREPARE + ["kubeadm-init", "calico", "metallb"]
    for w in lab.workers:
        assert _runs(w) == PREPARE + ["kubeadm-join"]

    # dependencies: the master's preparation before init, init before CNI; a worker joins
    # once it is prepared and the CNI runs; MetalLB after every join
    def when(node, step, edge="start"):
        return next(e[edge] for e in node.step_runs() if e["step"] == step)

    assert when(lab.master, "kube-packages", "end") <= when(lab.master, "kubeadm-init")
    assert when(lab.master, "kubeadm-init", "end") <= when(lab.master, "calico")
    for w in lab.workers:
        assert when(lab.master, "calico", "end") <= when(w, "kubeadm-join")
        assert when(w, "kube-packages", "end") <= when(w, "kubeadm-join")
        assert when(w, "kubeadm-join", "end") <= when(lab.master, "metallb")

    kc = lab.dir / "kubeconfig"
    assert stat.S_IMODE(kc.stat().st_mode) == 0o600
    cfg = yaml.safe_load(kc.read_text())
    assert cfg["current-context"] == "k8s-lab"
    assert cfg["clusters"][0]["cluster"]["server"] == "https://192.168.56.30:6443"
    assert cfg["users"][0]["user"]["client-key-data"]

    state = _state(lab)
    assert state["result"] == "done"
    for name, node in state["nodes"].items():
        assert all(s["status"] in ("done", "skipped") for s in node["steps"].values()), (name, node)
    assert stat.S_IMODE((lab.dir / ".labctl" / "state.json").stat().st_mode) == 0o600


def test_prepare_and_join_run_on_all_nodes_at_once(fake_lab):
    lab = fake_lab(workers=2, delay=0.4)
    r = lab.labctl("up")
    assert r.returncode == 0, r.stderr

    def span(node, steps):
        runs = [e for e in node.step_runs() if e["step"] in steps]
        return min(e["start"] for e in runs), max(e["end"] for e in runs)

    spans = [span(n, PREPARE) for n in lab.nodes.values()]
    # the three nodes' preparations overlap: each starts before any other has finished
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    joins = [span(w, ["kubeadm-join"]) for w in lab.workers]
    assert max(s for s, _ in joins) < min(e for _, e in joins)


def test_a_slow_worker_does_not_hold_up_the_control_plane(fake_lab):
    lab = fake_lab(workers=1)
    lab.nodes["k8s-node1"].delay(3.0, "kube-packages")
    r = lab.labctl("up")
    assert r.returncode == 0, r.stderr
    node1 = {e["step"]: e for e in lab.nodes["k8s-node1"].step_runs()}
    master = {e["step"]: e for e in lab.master.step_runs()}
    assert master["kubeadm-init"]["start"] < node1["kube-packages"]["end"]
    assert master["calico"]["end"] <= node1["kubeadm-join"]["start"]


def test_a_finished_lab_runs_nothing(fake_lab):
    lab = fake_lab(workers=1)
    assert lab.labctl("up").returncode == 0
    before = {n: len(node.step_runs()) for n, node in lab.nodes.items()}
    vagrant_ups = [c for c in lab.fake_vagrant.calls(lab.dir) if c.verb == "up"]

    r = lab.labctl("up")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("lab k8s-lab is up; nothing to do")
    assert {n: len(node.step_runs()) for n, node in lab.nodes.items()} == before
    assert [c for c in lab.fake_vagrant.calls(lab.dir) if c.verb == "up"] == vagrant_ups
    # only facts were gathered, nothing uploaded but facts.sh (unchanged, same bytes)
    kinds = {e["kind"] for node in lab.nodes.values() for e in node.journal()[-3:]}
    assert "step" not in kinds


# (phase, node, how to break it, step that fails, exit code)
FAILURES = [
    ("prepare", "k8s-node1", "step", "containerd", ExitCode.REMOTE_FAILED),
    ("init", "k8s-master", "step", "kubeadm-init", ExitCode.REMOTE_FAILED),
    ("cni", "k8s-master", "step", "calico", ExitCode.REMOTE_FAILED),
    ("join", "k8s-node2", "step", "kubeadm-join", ExitCode.REMOTE_FAILED),
    ("join-token", "k8s-master", "token", "kubeadm-join", ExitCode.REMOTE_FAILED),
    ("loadbalancer", "k8s-master", "step", "metallb", ExitCode.REMOTE_FAILED),
    ("ready", "k8s-node1", "nat-ip", "nodes-ready", ExitCode.REMOTE_FAILED),
    ("kubeconfig", "k8s-master", "admin.conf", "kubeconfig", ExitCode.REMOTE_FAILED),
    ("machines", "k8s-node2", "vagrant", None, ExitCode.PROVIDER_FAILED),
]


@pytest.mark.parametrize("phase,node,how,step,code", FAILURES, ids=[f[0] for f in FAILURES])
def test_resume_after_a_failure_in_each_phase(fake_lab, phase, node, how, step, code):
    lab = fake_lab(workers=2 if node == "k8s-node2" or phase.startswith("join") else 1)
    fake = lab.nodes[node]
    if how == "step":
        fake.fail(step, rc=1, output=f"labctl: {step} broke on purpose")
    elif how == "nat-ip":
        fake.update(internal_ip="10.0.2.15")
    elif how == "vagrant":
        lab.fake_vagrant.fail("up", node)
    else:
        fake.fail_command(how, output="error: injected")

    first = lab.labctl("up")
    assert first.returncode == int(code), first.stderr
    err = first.stderr
    assert "labctl: error:" in err and "hint:" in err
    state = _state(lab)
    assert state["result"] == "failed"
    if step is None:
        assert node in err  # the machine that did not boot
    else:
        failed = [(n, s) for n, rec in state["nodes"].items() for s, v in rec["steps"].items() if v["status"] == "failed"]
        assert any(s == step for _, s in failed), failed
        where = next(n for n, s in failed if s == step)
        assert f"step {step}" in err and where in err and "(log: " in err
        if how == "nat-ip":
            assert "k8s-node1 registered with VirtualBox's NAT address" in err

    done_before = {n: set(f.done_steps()) for n, f in lab.nodes.items()}
    runs_before = {n: len(f.step_runs()) for n, f in lab.nodes.items()}
    fake.clear_failures()
    fake.update(internal_ip=None)
    lab.fake_vagrant.clear_failures()

    second = lab.labctl("up")
    assert second.returncode == 0, second.stderr
    for n, f in lab.nodes.items():
        again = [e["step"] for e in f.step_runs()[runs_before[n]:]]
        # what the first run finished is not run again: the nodes' facts say it is done
        assert not set(again) & done_before[n], (n, again, done_before[n])
    if how == "step":
        assert step in [e["step"] for e in fake.step_runs()[runs_before[node]:]]
    assert (lab.dir / "kubeconfig").exists()
    assert _state(lab)["result"] == "done"


def test_failure_names_node_step_code_lines_log_and_hint(fake_lab):
    lab = fake_lab(workers=1)
    lab.nodes["k8s-node1"].fail(
        "kube-packages", rc=75,
        output="Err:1 https://pkgs.k8s.io/core:/stable:/v1.27/deb  InRelease\n"
               "  Could not resolve 'pkgs.k8s.io'\n"
               "labctl: cannot reach https://pkgs.k8s.io/core:/stable:/v1.27/deb/",
    )
    r = lab.labctl("up")
    assert r.returncode == ExitCode.REMOTE_FAILED
    err = r.stderr
    log = lab.dir / ".labctl" / "logs" / "k8s-node1.log"
    assert "step kube-packages on k8s-node1 exited 75" in err
    assert f"(log: {log})" in err
    assert "Could not resolve 'pkgs.k8s.io'" in err
    assert "cannot reach a package repository" in err
    assert "Could not resolve 'pkgs.k8s.io'" in log.read_text()


def test_nat_address_as_internal_ip_gets_the_node_ip_hint(fake_lab):
    lab = fake_lab(workers=1)
    lab.nodes["k8s-node1"].update(internal_ip="10.0.2.15")
    r = lab.labctl("up")
    assert r.returncode == ExitCode.REMOTE_FAILED
    assert "nodes-ready" in r.stderr
    assert "10.0.2.15" in r.stderr and "--node-ip" in r.stderr


def test_preflight_error_gets_a_hint(fake_lab):
    lab = fake_lab(workers=0)
    lab.master.fail(
        "kubeadm-init", rc=1,
        output="[preflight] Running pre-flight checks\n"
               "error execution phase preflight: [preflight] Some fatal errors occurred:\n"
               "\t[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2",
    )
    r = lab.labctl("up")
    assert r.returncode == ExitCode.REMOTE_FAILED
    assert "[ERROR NumCPU]" in r.stderr
    assert "preflight check NumCPU failed" in r.stderr


def test_a_second_up_while_one_runs_is_refused(fake_lab):
    lab = fake_lab(workers=1, delay=0.5)
    first = lab.popen("up")
    try:
        state = lab.dir / ".labctl" / "state.json"
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if state.exists() and any(n.step_runs() or n.journal() for n in lab.nodes.values()):
                break
            time.sleep(0.1)
        second = lab.labctl("up")
        assert second.returncode == ExitCode.LOCKED, second.stderr
        assert "another labctl command is changing this lab" in second.stderr
        assert "`labctl up`" in second.stderr
        halt = lab.labctl("halt")
        assert halt.returncode == ExitCode.LOCKED
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_join_tokens_never_reach_console_events_or_files(fake_lab):
    lab = fake_lab(workers=2)
    r = lab.labctl("up", "--json")
    r2 = lab.labctl("up")
    assert r.returncode == 0 and r2.returncode == 0, r.stderr
    tokens = lab.join_tokens()
    assert len(tokens) == 2  # one fresh token per worker
    texts = [r.stdout, r.stderr, r2.stdout, r2.stderr]
    files = [p for p in lab.dir.rglob("*") if p.is_file()]
    texts += [p.read_text(errors="replace") for p in files]
    for token in tokens:
        assert all(token not in t for t in texts)
        assert all(token.split(".")[1] not in t for t in texts)
    # the worker got it in a 0600 JoinConfiguration, which the join step removed
    for w in lab.workers:
        assert not w.file("/etc/labctl/join.yaml").exists()


def test_the_token_kubeadm_init_makes_never_reaches_console_or_logs(fake_lab):
    lab = fake_lab(workers=0)
    r = lab.labctl("up")
    assert r.returncode == 0, r.stderr
    [token] = lab.init_tokens()
    texts = [r.stdout, r.stderr] + [p.read_text(errors="replace") for p in lab.dir.rglob("*") if p.is_file()]
    assert all(token.split(".")[1] not in t for t in texts)


def test_ctrl_c_stops_and_the_next_up_continues(fake_lab):
    import signal
    import time

    lab = fake_lab(workers=1)
    lab.master.delay(4.0, "containerd")
    state = lab.dir / ".labctl" / "state.json"
    p = lab.popen("up")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                steps = json.loads(state.read_text())["nodes"].get("k8s-master", {}).get("steps", {})
            except (FileNotFoundError, ValueError):
                steps = {}
            if steps.get("containerd", {}).get("status") == "running":
                break
            time.sleep(0.05)
        else:
            pytest.fail("containerd never started")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == ExitCode.INTERRUPTED, err
    assert "interrupted; run `labctl up` again to continue" in err, err
    recorded = _state(lab)
    assert recorded["result"] == "interrupted"
    assert "kubeadm-init" not in lab.master.done_steps()

    time.sleep(4.5)  # the interrupted remote script runs on to its end, as a real one would
    done = {n: set(f.done_steps()) for n, f in lab.nodes.items()}
    runs = {n: len(f.step_runs()) for n, f in lab.nodes.items()}
    again = lab.labctl("up")
    assert again.returncode == 0, again.stderr
    for n, f in lab.nodes.items():
        assert not {e["step"] for e in f.step_runs()[runs[n]:]} & done[n]


def test_json_emits_one_event_per_line_and_a_result(fake_lab):
    lab = fake_lab(workers=1)
    r = lab.labctl("up", "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    steps = [e for e in lines if e.get("kind") == "step"]
    assert {(e["node"], e["step"]) for e in steps if e["status"] == "done"} >= {
        ("k8s-master", "kubeadm-init"), ("k8s-node1", "kubeadm-join"), ("k8s-master", "kubeconfig"),
    }
    assert all("ts" in e for e in lines[:-1])
    assert lines[-1]["ok"] is True and lines[-1]["lab"] == "k8s-lab"


def test_json_failure_is_json_too(fake_lab):
    lab = fake_lab(workers=0)
    lab.master.fail("calico", rc=2, output="labctl: calico broke")
    r = lab.labctl("up", "--json")
    assert r.returncode == ExitCode.REMOTE_FAILED
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    failed = [e for e in lines if e.get("kind") == "step" and e.get("status") == "failed"]
    assert failed and failed[0]["step"] == "calico" and failed[0]["data"]["rc"] == 2
    assert lines[-1]["ok"] is False and lines[-1]["exit_code"] == ExitCode.REMOTE_FAILED


def test_nodes_option_must_match_lab_yaml(fake_lab):
    lab = fake_lab(workers=2, write_spec=True)
    r = lab.labctl("up", "--nodes", "3")
    assert r.returncode == ExitCode.USAGE
    assert "--nodes 3 does not match lab.yaml" in r.stderr and "hint:" in r.stderr
    assert not (lab.dir / "Vagrantfile").exists()


def test_nodes_option_on_a_new_lab_writes_lab_yaml(fake_lab):
    lab = fake_lab(workers=1)
    (lab.dir / "lab.yaml").unlink()
    r = lab.labctl("up", "--nodes", "1")
    assert r.returncode == 0, r.stderr
    assert len(yaml.safe_load((lab.dir / "lab.yaml").read_text())["nodes"]) == 2
    again = lab.labctl("up")  # lab.yaml now decides: the same two nodes, nothing to do
    assert again.returncode == 0 and again.stdout.strip().endswith("nothing to do"), again.stderr
    other = lab.labctl("up", "--provider", "libvirt")
    assert other.returncode == ExitCode.USAGE
    assert "--provider libvirt does not match lab.yaml" in other.stderr


def test_a_host_that_cannot_run_the_lab_is_told_before_anything_is_written(fake_lab):
    lab = fake_lab(workers=2)
    (lab.dir.parent / "bin" / "VBoxManage").unlink()  # no VirtualBox on this host
    r = lab.labctl("up", "--nodes", "2")
    assert r.returncode == ExitCode.HOST_NOT_READY
    assert "VirtualBox is not installed" in r.stderr and "hint: install VirtualBox" in r.stderr
    assert r.stderr.count("VirtualBox is not installed") == 1
    assert sorted(p.name for p in lab.dir.iterdir()) == []
    assert lab.fake_vagrant.calls(lab.dir) == []


def test_parallel_bounds_machines_and_nodes_at_once(fake_lab):
    from tests.helpers.fake_vagrant import max_overlap

    lab = fake_lab(workers=2)
    lab.fake_vagrant.up_seconds(0.5)
    r = lab.labctl("up", "--parallel", "1")
    assert r.returncode == 0, r.stderr
    ups = [c for c in lab.fake_vagrant.calls(lab.dir) if c.verb == "up"]
    assert len(ups) == 3 and max_overlap(ups) == 1
    runs = sorted((e["start"], e["end"]) for _, e in lab.all_step_runs())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(runs, runs[1:]))
    assert lab.labctl("up", "--parallel", "0").returncode == ExitCode.USAGE
