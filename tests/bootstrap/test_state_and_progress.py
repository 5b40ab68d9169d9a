"""The state file and the console renderers, fed with events as the engine emits them."""

from __future__ import annotations

import io
import json
import stat

from labctl.lab import events as ev
from labctl.lab.paths import LabPaths
from labctl.report.progress import JsonLines, LiveView, PlainLines, make_renderer
from labctl.lab.state import StateRecorder, read_state


def _bus(tmp_path, *sinks):
    paths = LabPaths(tmp_path)
    rec = StateRecorder(paths, lab="k8s-lab", command="up")
    return paths, ev.EventBus([rec, *sinks])


def test_state_follows_every_step_change_and_is_private(tmp_path):
    paths, bus = _bus(tmp_path)
    assert read_state(paths)["result"] == "running"
    bus.emit(ev.PLAN, "", node="n1", step="swap", phase="prepare", status=ev.PENDING)
    bus.emit(ev.PLAN, "swap is off", node="n1", step="kernel", phase="prepare", status=ev.SKIPPED)
    assert read_state(paths)["nodes"]["n1"]["steps"]["swap"]["status"] == "pending"
    bus.emit(ev.STEP, "", node="n1", step="swap", phase="prepare", status=ev.RUNNING)
    s = read_state(paths)
    assert s["nodes"]["n1"]["steps"]["swap"]["status"] == "running"
    assert s["nodes"]["n1"]["steps"]["kernel"] == {"status": "skipped", "phase": "prepare", "reason": "swap is off"}
    bus.emit(ev.STEP, "step swap on n1 exited 2", node="n1", step="swap", phase="prepare", status=ev.FAILED,
             data={"rc": 2, "log": "/x/n1.log"})
    bus.emit(ev.RUN, "step swap on n1 exited 2", status=ev.FAILED, data={"exit_code": 6})
    s = read_state(paths)
    rec = s["nodes"]["n1"]["steps"]["swap"]
    assert rec["status"] == "failed" and rec["rc"] == 2 and rec["log"] == "/x/n1.log"
    assert rec["started"] <= rec["finished"]
    assert s["result"] == "failed" and s["error"]["message"] == "step swap on n1 exited 2"
    assert stat.S_IMODE(paths.state.stat().st_mode) == 0o600
    # output lines are for the live view only
    before = paths.state.read_bytes()
    bus.emit(ev.OUTPUT, "Reading package lists...", node="n1", step="swap")
    assert paths.state.read_bytes() == before


def test_a_new_run_keeps_the_last_known_steps_until_it_replaces_them(tmp_path):
    paths, bus = _bus(tmp_path)
    bus.emit(ev.STEP, "", node="n1", step="swap", phase="prepare", status=ev.DONE)
    bus.emit(ev.RUN, "interrupted", status=ev.FAILED, data={"result": "interrupted"})
    assert read_state(paths)["result"] == "interrupted"
    StateRecorder(paths, lab="k8s-lab", command="up")
    s = read_state(paths)
    assert s["result"] == "running" and s["nodes"]["n1"]["steps"]["swap"]["status"] == "done"


def test_missing_state_is_no_state_and_a_damaged_one_is_named(tmp_path):
    # issue 12: a state.json that is not labctl's is a clear LAB_FOLDER error, not ignored.
    import pytest

    from labctl.errors import LabFolderError

    paths = LabPaths(tmp_path)
    assert read_state(paths) is None
    paths.meta.mkdir()
    paths.state.write_text("{not json")
    with pytest.raises(LabFolderError, match="state.json is damaged"):
        read_state(paths)


def test_secrets_are_redacted_from_event_messages():
    seen = []
    bus = ev.EventBus([seen.append])
    bus.redactor.add("abcdef.0123456789abcdef")
    bus.emit(ev.OUTPUT, "kubeadm join --token abcdef.0123456789abcdef", node="n")
    assert seen[0].message == "kubeadm join --token ***"


def _events():
    yield ev.Event(ev.PHASE, "k8s-master, k8s-node1", phase="prepare", status=ev.RUNNING)
    yield ev.Event(ev.STEP, "Turn swap off", node="k8s-master", step="swap", phase="prepare", status=ev.RUNNING)
    yield ev.Event(ev.OUTPUT, "labctl: swap turned off", node="k8s-master", step="swap")
    yield ev.Event(ev.STEP, "", node="k8s-master", step="swap", phase="prepare", status=ev.DONE, data={"seconds": 1.5})
    yield ev.Event(ev.STEP, "swap is off", node="k8s-node1", step="swap", phase="prepare", status=ev.SKIPPED)
    yield ev.Event(ev.STEP, "step kernel on k8s-node1 exited 1", node="k8s-node1", step="kernel", phase="prepare",
                   status=ev.FAILED, data={"rc": 1})


def test_plain_lines_one_per_change():
    out = io.StringIO()
    r = PlainLines(out)
    for e in _events():
        r(e)
    assert out.getvalue().splitlines() == [
        "== prepare: k8s-master, k8s-node1",
        "[k8s-master] swap: running",
        "[k8s-master] swap: done (1.5s)",
        "[k8s-node1] swap: skipped (swap is off)",
        "[k8s-node1] kernel: FAILED: step kernel on k8s-node1 exited 1",
    ]


def test_json_lines_one_object_per_event_without_output_lines():
    out = io.StringIO()
    r = JsonLines(out)
    for e in _events():
        r(e)
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [o["kind"] for o in objs] == ["phase", "step", "step", "step", "step"]
    assert objs[2] == {"kind": "step", "node": "k8s-master", "step": "swap", "phase": "prepare", "status": "done",
                       "data": {"seconds": 1.5}, "ts": objs[2]["ts"]}


def test_live_view_redraws_one_row_per_node():
    out = io.StringIO()
    r = LiveView(out)
    for e in _events():
        r(e)
    text = out.getvalue()
    assert "\x1b[2F\x1b[J" in text  # moved up over the two node rows and redrew them
    last_block = text.rsplit("\x1b[J", 1)[1]
    rows = [line for line in last_block.splitlines() if line.startswith("k8s-")]
    assert rows[0].split()[:3] == ["k8s-master", "ok", "swap"]
    assert rows[1].split()[:3] == ["k8s-node1", "FAILED", "kernel"]
    assert "== prepare" in text and "FAILED: step kernel on k8s-node1 exited 1" in text


def test_renderer_choice():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(make_renderer(stream=io.StringIO()), PlainLines)
    assert isinstance(make_renderer(stream=Tty()), LiveView)
    assert isinstance(make_renderer(as_json=True, stream=Tty()), JsonLines)
