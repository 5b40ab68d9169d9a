"""exec_in_pod, the one adapter every other test replaces, run for real: the client's
websocket stream against a loopback server speaking the exec channel protocol."""

from __future__ import annotations

import json

import pytest

from labctl.kube.client import KubeClient
from labctl.errors import ClusterError, NotFound
from tests.course.ws_exec import ExecScript, ExecServer, exit_code, success

TOKEN = "exec-token"


@pytest.fixture
def exec_server(tmp_path):
    server = ExecServer(TOKEN).start()
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "lab", "cluster": {"server": server.url}}],
           "users": [{"name": "admin", "user": {"token": TOKEN}}],
           "contexts": [{"name": "c", "context": {"cluster": "lab", "user": "admin"}}]}
    (tmp_path / "kubeconfig").write_text(json.dumps(cfg))
    server.kubeconfig = tmp_path / "kubeconfig"
    try:
        yield server
    finally:
        server.stop()


def test_stdout_and_exit_zero(exec_server):
    exec_server.on("pod-1", "container1", ExecScript(stdout=["containerPort : ", "8080\n"], status=success()))
    with KubeClient(exec_server.kubeconfig) as kube:
        result = kube.exec("pod-1", ["curl", "-s", "localhost:8080"], container="container1")
    assert (result.rc, result.stdout, result.stderr, result.succeeded) == (0, "containerPort : 8080\n", "", True)
    [req] = exec_server.requests
    assert req["path"] == "/api/v1/namespaces/default/pods/pod-1/exec"
    assert req["query"]["command"] == ["curl", "-s", "localhost:8080"] and req["query"]["container"] == ["container1"]
    assert req["authorization"] == f"Bearer {TOKEN}" and req["protocol"] == "v4.channel.k8s.io"


def test_non_zero_exit_code_comes_from_the_status(exec_server):
    argv = ["curl", "-s", "-m", "3", "localhost:9999"]
    exec_server.on("pod-1", "container1", ExecScript(stderr=["curl: (7) Failed to connect\n"], status=exit_code(7, argv)))
    with KubeClient(exec_server.kubeconfig) as kube:
        result = kube.exec("pod-1", argv, container="container1")
    assert (result.rc, result.stdout, result.succeeded) == (7, "", False)
    assert "Failed to connect" in result.stderr


def test_a_command_that_does_not_finish_has_no_exit_code(exec_server):
    exec_server.on("pod-1", "container1", ExecScript(stdout=["partial"], hang=2.0))
    with KubeClient(exec_server.kubeconfig) as kube:
        result = kube.exec("pod-1", ["sleep", "60"], container="container1", timeout=0.3)
    assert result.rc is None and result.stdout == "partial" and not result.succeeded


def test_a_stream_that_breaks_off_has_no_exit_code(exec_server):
    exec_server.on("pod-1", "container1", ExecScript(stdout=["half"], hang=0.01))
    with KubeClient(exec_server.kubeconfig) as kube:
        result = kube.exec("pod-1", ["cat", "/big"], container="container1", timeout=5)
    assert result.rc is None and result.stdout == "half"


def test_a_failure_that_is_not_an_exit_code_is_a_cluster_error(exec_server):
    status = {"metadata": {}, "status": "Failure", "reason": "InternalError",
              "message": 'Internal error occurred: error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: "curl": executable file not found in $PATH: unknown'}
    exec_server.on("pod-2", "container", ExecScript(status=status))
    with KubeClient(exec_server.kubeconfig) as kube, pytest.raises(ClusterError) as err:
        kube.exec("pod-2", ["curl", "localhost"], container="container")
    assert "executable file not found" in err.value.message and err.value.hint


def test_a_refused_handshake_reads_as_the_status_it_carries(exec_server, tmp_path):
    with KubeClient(exec_server.kubeconfig) as kube, pytest.raises(NotFound) as err:
        kube.exec("pod-9", ["true"], container="container")
    assert err.value.message == "Pod default/pod-9 not found"
    exec_server.token = "rotated"
    exec_server.on("pod-1", "container1", ExecScript(status=success()))
    with KubeClient(exec_server.kubeconfig) as kube, pytest.raises(ClusterError) as err:
        kube.exec("pod-1", ["true"], container="container1")
    assert "401" in err.value.message and "labctl up" in err.value.hint
