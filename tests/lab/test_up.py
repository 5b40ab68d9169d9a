"""`up`'s logic against in-memory labs (tests/helpers/memory_lab.py): the real Lab, up
stages, bootstrap engine, state file and renderers; machines in a MemoryProvider;
nodes the same emulated OS the slow tier puts behind sshd, answered in this process
through MemorySessions. The CLI, sshd and `vagrant` boundaries: test_boundary.py."""

from __future__ import annotations

import io
import json
import signal
import stat
import threading
import time

import pytest
import yaml

from labctl.bootstrap.steps import STEPS
from labctl.errors import ExitCode, HostNotReady, LabError, LabLocked, UsageError
from labctl.lab import events as ev
from labctl.lab.lab import Lab
from labctl.report.progress import make_renderer

PREPARE = [s.id for s in STEPS if s.phase == "prepare"]


def _runs(node) -> list[str]:
    return [e["step"] for e in node.step_runs()]


def test_up_runs_the_plan_in_order_and_writes_a_private_kubeconfig(memory_lab):
    lab = memory_lab(workers=2)
    result = lab.up()
    assert result.message.startswith("lab k8s-lab is up")
    assert sorted(result.booted) == sorted(lab.nodes)

    for node in lab.nodes.values():
        assert _runs(node)[: len(PREPARE)] == PREPARE
    assert _runs(lab.master) == PREPARE + ["kubeadm-init", "calico", "metallb"]
    for w in lab.workers:
        assert _runs(w) == PREPARE + ["kubeadm-join"]

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

    state = lab.state()
    assert state["result"] == "done"
    for name, node in state["nodes"].items():
        assert all(s["status"] in ("done", "skipped") for s in node["steps"].values()), (name, node)
    assert stat.S_IMODE(lab.lab.paths.state.stat().st_mode) == 0o600
    # every session the lab opened was closed when up ended
    assert lab.sessions and all(s.closed for s in lab.sessions)


def test_stages_run_in_their_named_order(memory_lab):
    from labctl.lab.up import BEFORE_LOCK, UP

    lab = memory_lab(workers=0)
    lab.up()
    phases = [e.phase for e in lab.events if e.kind == ev.PHASE and e.status == ev.RUNNING]
    named = [s.name for s in (*BEFORE_LOCK, *UP) if s.announce is not False]
    assert [p for p in phases if p in named] == named


def test_prepare_and_join_run_on_all_nodes_at_once(memory_lab):
    lab = memory_lab(workers=2, delay=0.2)
    lab.up()

    def span(node, steps):
        runs = [e for e in node.step_runs() if e["step"] in steps]
        return min(e["start"] for e in runs), max(e["end"] for e in runs)

    spans = [span(n, PREPARE) for n in lab.nodes.values()]
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    joins = [span(w, ["kubeadm-join"]) for w in lab.workers]
    assert max(s for s, _ in joins) < min(e for _, e in joins)


def test_a_slow_worker_does_not_hold_up_the_control_plane(memory_lab):
    lab = memory_lab(workers=1)
    lab.nodes["k8s-node1"].delay(1.0, "kube-packages")
    lab.up()
    node1 = {e["step"]: e for e in lab.nodes["k8s-node1"].step_runs()}
    master = {e["step"]: e for e in lab.master.step_runs()}
    assert master["kubeadm-init"]["start"] < node1["kube-packages"]["end"]
    assert master["calico"]["end"] <= node1["kubeadm-join"]["start"]


def test_a_finished_lab_runs_nothing(memory_lab):
    lab = memory_lab(workers=1)
    lab.up()
    before = {n: len(node.step_runs()) for n, node in lab.nodes.items()}
    ups = [c for c in lab.provider.calls if c[0] == "up"]

    again = lab.up()
    assert again.nothing_to_do and again.message == "lab k8s-lab is up; nothing to do"
    assert {n: len(node.step_runs()) for n, node in lab.nodes.items()} == before
    assert [c for c in lab.provider.calls if c[0] == "up"] == ups
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
    ("machines", "k8s-node2", "provider", None, ExitCode.PROVIDER_FAILED),
]


@pytest.mark.parametrize("phase,node,how,step,code", FAILURES, ids=[f[0] for f in FAILURES])
def test_resume_after_a_failure_in_each_phase(memory_lab, phase, node, how, step, code):
    lab = memory_lab(workers=2 if node == "k8s-node2" or phase.startswith("join") else 1)
    fake = lab.nodes[node]
    if how == "step":
        fake.fail(step, rc=1, output=f"labctl: {step} broke on purpose")
    elif how == "nat-ip":
        fake.update(internal_ip="10.0.2.15")
    elif how == "provider":
        lab.provider.fail("up", node)
    else:
        fake.fail_command(how, output="error: injected")

    with pytest.raises(LabError) as exc:
        lab.up()
    err = exc.value
    assert err.exit_code == code and err.hint
    state = lab.state()
    assert state["result"] == "failed"
    if step is None:
        assert node in err.message
    else:
        failed = [(n, s) for n, rec in state["nodes"].items() for s, v in rec["steps"].items() if v["status"] == "failed"]
        assert any(s == step for _, s in failed), failed
        where = next(n for n, s in failed if s == step)
        assert f"step {step}" in err.message and where in err.message and "(log: " in err.message
        if how == "nat-ip":
            assert "k8s-node1 registered with VirtualBox's NAT address" in err.hint

    done_before = {n: set(f.done_steps()) for n, f in lab.nodes.items()}
    runs_before = {n: len(f.step_runs()) for n, f in lab.nodes.items()}
    fake.clear_failures()
    fake.update(internal_ip=None)
    lab.provider.clear_failures()

    lab.up()
    for n, f in lab.nodes.items():
        again = [e["step"] for e in f.step_runs()[runs_before[n]:]]
        assert not set(again) & done_before[n], (n, again, done_before[n])
    if how == "step":
        assert step in [e["step"] for e in fake.step_runs()[runs_before[node]:]]
    assert (lab.dir / "kubeconfig").exists()
    assert lab.state()["result"] == "done"


def test_failure_names_node_step_code_lines_log_and_hint(memory_lab):
    lab = memory_lab(workers=1)
    lab.nodes["k8s-node1"].fail(
        "kube-packages", rc=75,
        output="Err:1 https://pkgs.k8s.io/core:/stable:/v1.27/deb  InRelease\n"
               "  Could not resolve 'pkgs.k8s.io'\n"
               "labctl: cannot reach https://pkgs.k8s.io/core:/stable:/v1.27/deb/",
    )
    with pytest.raises(LabError) as exc:
        lab.up()
    err = exc.value
    log = lab.dir / ".labctl" / "logs" / "k8s-node1.log"
    assert err.exit_code == ExitCode.REMOTE_FAILED
    assert "step kube-packages on k8s-node1 exited 75" in err.message
    assert f"(log: {log})" in err.message
    assert any("Could not resolve 'pkgs.k8s.io'" in line for line in err.evidence)
    assert "cannot reach a package repository" in err.hint
    assert "Could not resolve 'pkgs.k8s.io'" in log.read_text()


def test_nat_address_as_internal_ip_gets_the_node_ip_hint(memory_lab):
    lab = memory_lab(workers=1)
    lab.nodes["k8s-node1"].update(internal_ip="10.0.2.15")
    with pytest.raises(LabError) as exc:
        lab.up()
    assert "nodes-ready" in exc.value.message
    text = exc.value.hint + "\n".join(exc.value.evidence)
    assert "10.0.2.15" in text and "--node-ip" in text


def test_preflight_error_gets_a_hint(memory_lab):
    lab = memory_lab(workers=0)
    lab.master.fail(
        "kubeadm-init", rc=1,
        output="[preflight] Running pre-flight checks\n"
               "error execution phase preflight: [preflight] Some fatal errors occurred:\n"
               "\t[ERROR NumCPU]: the number of available CPUs 1 is less than the required 2",
    )
    with pytest.raises(LabError) as exc:
        lab.up()
    assert any("[ERROR NumCPU]" in line for line in exc.value.evidence)
    assert "preflight check NumCPU failed" in exc.value.hint


def test_a_second_up_while_one_runs_is_refused(memory_lab):
    lab = memory_lab(workers=1, delay=0.3)
    outcome: dict = {}
    first = threading.Thread(target=lambda: outcome.update(result=lab.up()))
    first.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(n.step_runs() or n.journal() for n in lab.nodes.values()):
            time.sleep(0.02)
        with pytest.raises(LabLocked) as exc:
            lab.up()
        assert "another labctl command is changing this lab" in exc.value.message
        from labctl.lab.machines import halt

        with pytest.raises(LabLocked):
            halt(lab.lab)
    finally:
        first.join(60)
    assert outcome["result"].message.startswith("lab k8s-lab is up")


def test_join_tokens_never_reach_events_or_files(memory_lab):
    lab = memory_lab(workers=2)
    out = io.StringIO()
    lab.up()
    lab.lab  # the same lab again, through the JSON renderer too
    from labctl.lab.up import up

    up(lab.lab, sinks=[make_renderer(as_json=True, stream=out)])
    tokens = lab.join_tokens()
    assert len(tokens) == 2  # one fresh token per worker
    texts = [out.getvalue(), json.dumps([e.to_dict() for e in lab.events])]
    texts += [p.read_text(errors="replace") for p in lab.dir.rglob("*") if p.is_file()]
    for token in tokens:
        assert all(token not in t for t in texts)
        assert all(token.split(".")[1] not in t for t in texts)
    for w in lab.workers:
        assert not w.file("/etc/labctl/join.yaml").exists()


def test_the_token_kubeadm_init_makes_never_reaches_events_or_logs(memory_lab):
    lab = memory_lab(workers=0)
    lab.up()
    [token] = lab.init_tokens()
    texts = [json.dumps([e.to_dict() for e in lab.events])]
    texts += [p.read_text(errors="replace") for p in lab.dir.rglob("*") if p.is_file()]
    assert all(token.split(".")[1] not in t for t in texts)


@pytest.fixture
def sigint_raises():
    """Ctrl-C must raise KeyboardInterrupt here, whatever this process inherited (under
    `nohup ... &` SIGINT arrives ignored and Python installs no handler)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_stops_and_the_next_up_continues(memory_lab, sigint_raises):
    import os

    lab = memory_lab(workers=1)
    lab.master.delay(1.5, "containerd")
    state = lab.lab.paths.state

    def press_ctrl_c_once_containerd_runs() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                steps = json.loads(state.read_text())["nodes"].get("k8s-master", {}).get("steps", {})
            except (FileNotFoundError, ValueError):
                steps = {}
            if steps.get("containerd", {}).get("status") == "running":
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    presser = threading.Thread(target=press_ctrl_c_once_containerd_runs)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            lab.up()
    finally:
        presser.join()
    recorded = lab.state()
    assert recorded["result"] == "interrupted"
    last = [e for e in lab.events if e.kind == ev.RUN][-1]
    assert last.status == ev.FAILED and last.data == {"result": "interrupted"}
    assert "kubeadm-init" not in lab.master.done_steps()
    assert all(s.closed for s in lab.sessions)

    time.sleep(1.7)  # the interrupted remote script runs on to its end, as a real one would
    done = {n: set(f.done_steps()) for n, f in lab.nodes.items()}
    runs = {n: len(f.step_runs()) for n, f in lab.nodes.items()}
    lab.up()
    for n, f in lab.nodes.items():
        assert not {e["step"] for e in f.step_runs()[runs[n]:]} & done[n]


def test_json_renderer_emits_one_event_per_line(memory_lab):
    lab = memory_lab(workers=1)
    out = io.StringIO()
    from labctl.lab.up import up

    up(lab.lab, sinks=[make_renderer(as_json=True, stream=out)])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    steps = [e for e in lines if e.get("kind") == "step"]
    assert {(e["node"], e["step"]) for e in steps if e["status"] == "done"} >= {
        ("k8s-master", "kubeadm-init"), ("k8s-node1", "kubeadm-join"), ("k8s-master", "kubeconfig"),
    }
    assert all("ts" in e for e in lines)
    assert lines[-1]["kind"] == "run" and lines[-1]["status"] == "done" and lines[-1]["data"]["lab"] == "k8s-lab"


def test_live_view_on_a_terminal_redraws_one_row_per_node(memory_lab):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    lab = memory_lab(workers=1)
    term = Terminal()
    from labctl.lab.up import up

    up(lab.lab, sinks=[make_renderer(stream=term)])
    out = term.getvalue()
    assert "\x1b[2F\x1b[J" in out  # cursor back up over the two node rows
    final = out.rsplit("\x1b[J", 1)[1]
    rows = [line.split() for line in final.splitlines() if line.startswith("k8s-")]
    assert [r[:3] for r in rows] == [["k8s-master", "ok", "kubeconfig"], ["k8s-node1", "ok", "kubeadm-join"]]
    assert "[k8s-node1] swap: running" not in out  # no scrolling per-step lines


def test_a_ctrl_c_is_reported_once(memory_lab):
    """The state file and --json get an "interrupted" event; the console renderer does
    not print it, since the CLI's error boundary says "run the same command again"."""
    lines = io.StringIO()
    sink = make_renderer(stream=lines, live=False)
    sink(ev.Event(ev.RUN, "interrupted; run `labctl up` again to continue", status=ev.FAILED,
                  data={"result": "interrupted"}))
    assert lines.getvalue() == ""


def test_nodes_option_must_match_lab_yaml(tmp_path):
    from labctl.lab.paths import LabPaths
    from labctl.spec.initfile import init_lab

    init_lab(LabPaths(tmp_path), workers=2)
    with pytest.raises(UsageError) as exc:
        Lab.load(tmp_path, workers=3)
    assert "--nodes 3 does not match lab.yaml" in exc.value.message and exc.value.hint
    with pytest.raises(UsageError) as exc:
        Lab.load(tmp_path, provider="libvirt")
    assert "--provider libvirt does not match lab.yaml" in exc.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.yaml"]


def test_nodes_option_on_a_new_lab_writes_lab_yaml(memory_lab, tmp_path):
    assert Lab.load(tmp_path, workers=1).spec_to_write
    assert not Lab.load(tmp_path).spec_to_write
    assert not (tmp_path / "lab.yaml").exists()  # loading writes nothing

    lab = memory_lab(workers=2)
    lab.lab.spec_to_write = True
    lab.up()
    assert len(yaml.safe_load((lab.dir / "lab.yaml").read_text())["nodes"]) == 3
    assert Lab.load(lab.dir).spec == lab.lab.spec


def test_a_host_that_cannot_run_the_lab_is_told_before_anything_is_written(memory_lab):
    def no_virtualbox(spec):
        raise HostNotReady("VirtualBox is not installed", hint="install VirtualBox")

    lab = memory_lab(workers=2, host_check=no_virtualbox)
    lab.lab.spec_to_write = True
    with pytest.raises(HostNotReady):
        lab.up()
    assert sorted(p.name for p in lab.dir.iterdir()) == []
    assert lab.provider.calls == []


def test_parallel_bounds_machines_and_nodes_at_once(memory_lab):
    lab = memory_lab(workers=2)
    lab.up(parallel=1)
    assert [c for c in lab.provider.calls if c[0] == "up"] == [("up", ("k8s-master", "k8s-node1", "k8s-node2"), 1)]
    runs = sorted((e["start"], e["end"]) for _, e in lab.all_step_runs())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(runs, runs[1:]))
    with pytest.raises(UsageError):
        lab.up(parallel=0)


def test_only_machines_not_running_are_booted(memory_lab):
    lab = memory_lab(workers=2)
    lab.provider.machines["k8s-node1"] = "running"
    lab.provider.machines["k8s-node2"] = "poweroff"
    result = lab.up()
    assert result.booted == ["k8s-master", "k8s-node2"]
    first_seen: dict = {}
    for e in lab.events:
        if e.kind == ev.MACHINE:
            first_seen.setdefault(e.node, e.status)
    assert first_seen == {"k8s-master": "not_created", "k8s-node1": "running", "k8s-node2": "poweroff"}
