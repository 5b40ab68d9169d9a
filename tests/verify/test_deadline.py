"""An API server that accepts connections and never answers: nothing in verify waits
for it forever. A real socket server on loopback (a thread that accepts and never
sends a byte) stands in for it; the bounds are generous (behaviour, not speed)."""

from __future__ import annotations

import json
import time

import pytest

from labctl.cli import main
from labctl.errors import ClusterError, ExitCode
from labctl.verify.catalogue import CHECKS
from labctl.verify.runner import GRACE
from tests.verify.netfakes import HangingServer

MARGIN = 3.0  # seconds of slack for a busy 2-core machine


@pytest.fixture
def hanging(tmp_path):
    server = HangingServer()
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "lab", "cluster": {"server": server.url}}],
           "users": [{"name": "admin", "user": {"token": "t"}}],
           "contexts": [{"name": "c", "context": {"cluster": "lab", "user": "admin"}}]}
    (lab_dir / "kubeconfig").write_text(json.dumps(cfg))
    server.lab_dir = lab_dir
    try:
        yield server
    finally:
        server.stop()


def test_every_api_call_times_out(hanging):
    from labctl.kube.client import KubeClient

    with KubeClient(hanging.lab_dir / "kubeconfig", timeout=0.5) as kube:
        for call in (lambda: kube.list("Node", None), lambda: kube.get("Pod", "pod-1"), kube.version,
                     lambda: kube.pod_logs("pod-1", container="c")):
            before = len(hanging.accepted)
            start = time.monotonic()
            with pytest.raises(ClusterError) as err:
                call()
            # one retry (a dropped connection): two connections, two timeouts, no more
            assert time.monotonic() - start < 2 * 0.5 + MARGIN
            assert "cannot reach the Kubernetes API (timed out)" in err.value.message
            time.sleep(0.1)  # let the server's thread take the last connection
            assert len(hanging.accepted) - before == 2


def test_exec_websocket_times_out_on_connect_and_upgrade(hanging):
    from labctl.kube.client import KubeClient

    with KubeClient(hanging.lab_dir / "kubeconfig") as kube:
        start = time.monotonic()
        with pytest.raises(ClusterError) as err:
            kube.exec("pod-1", ["true"], container="container1", timeout=1.0)
        assert time.monotonic() - start < 1.0 + MARGIN
    assert "timed out" in err.value.message
    assert hanging.accepted


@pytest.mark.parametrize("deadline", [1.0, 2.5])
def test_verify_all_ends_near_its_deadline_with_timeout_errors(hanging, capsys, deadline):
    start = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main(["-C", str(hanging.lab_dir), "verify", "--all", "--json", "--deadline", str(deadline)])
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    assert exc.value.code == int(ExitCode.CHECKS_FAILED) == 1
    assert deadline <= elapsed < deadline + GRACE + MARGIN
    report = json.loads(out)
    assert report["ok"] is False and report["error"] is None
    assert [c["id"] for c in report["checks"]] == [c.id for c in CHECKS]
    assert {c["status"] for c in report["checks"]} == {"error"}
    assert all("timed out" in c["message"] for c in report["checks"]), [c["message"] for c in report["checks"]]


def test_runner_stops_waiting_for_a_stuck_attempt():
    """An attempt that never returns (not even by a socket timeout) is cut off at the
    check's budget plus the grace, as an ERROR that says so."""
    import threading

    from labctl.verify.context import RecordingRunner, VerifyContext
    from labctl.verify.model import Check, Status
    from labctl.verify.runner import run_checks
    from tests.verify.conftest import loopback_spec

    release = threading.Event()
    stuck = Check("stuck", "never answers", lambda ctx: release.wait(60), deadline=0.2)
    quick = Check("quick", "answers", lambda ctx: __import__("labctl.verify.model", fromlist=["Attempt"]).Attempt(), deadline=0.2)
    ctx = VerifyContext(spec=loopback_spec(), cluster=None, nodes=RecordingRunner())
    start = time.monotonic()
    try:
        report = run_checks([stuck, quick], ctx, grace=0.5)
    finally:
        release.set()
    assert time.monotonic() - start < 0.2 + 0.5 + MARGIN
    by_id = {r.id: r for r in report.results}
    assert by_id["quick"].status is Status.PASS
    assert by_id["stuck"].status is Status.ERROR and by_id["stuck"].message.startswith("timed out: no result within 0.7s")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_deadline_out_of_range_is_one_usage_line(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["-C", str(tmp_path), "verify", "--all", "--deadline", value])
    out, err = capsys.readouterr()
    assert exc.value.code == int(ExitCode.USAGE) == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith(f"labctl: error: --deadline {float(value):g}: must be a number of seconds greater than 0")
    assert len(lines) == 2 and lines[1].startswith("hint: ")
    assert out == "" and list(tmp_path.iterdir()) == []  # nothing written
