"""Probes against real servers on loopback: from the host (urllib) and from a "node"
(a real sshd session running the real curl)."""

from __future__ import annotations

import pytest

from labctl.verify.context import RecordingRunner
from labctl.verify.probes import (
    curl_command,
    expect_http,
    expect_no_answer,
    http_from_host,
    http_from_node,
    parse_curl,
)
from tests.verify.netfakes import free_port_on, loopback_address


def test_host_probe_gets_status_and_body(servers):
    addr = loopback_address()
    srv = servers.http(addr, 0, "containerPort : 8000")
    answer = http_from_host(f"http://{addr}:{srv.port}/")
    assert (answer.status, answer.body, answer.vantage) == (200, "containerPort : 8000", "host")
    assert expect_http(answer, body="containerPort : 8000") == []
    [m] = expect_http(answer, body="containerPort : 8080")
    assert m.path.endswith(" body") and m.got == "containerPort : 8000"


def test_host_probe_http_error_status_is_an_answer(servers):
    addr = loopback_address()
    srv = servers.http(addr, 0, "nope", status=503)
    answer = http_from_host(f"http://{addr}:{srv.port}/")
    assert answer.status == 503 and answer.body == "nope"
    assert expect_http(answer)[0].got == 503


def test_host_probe_refused_and_timeout(servers):
    addr = loopback_address()
    port = free_port_on([addr])
    refused = http_from_host(f"http://{addr}:{port}/", timeout=1)
    assert refused.status is None and refused.error == "connection refused"
    silent = servers.silent(addr, 0)
    timed = http_from_host(f"http://{addr}:{silent.port}/", timeout=0.5)
    assert timed.status is None and timed.timed_out
    assert expect_no_answer(timed) == [] and expect_no_answer(refused) == []
    [m] = expect_http(timed)
    assert "no answer (timed out)" in str(m)


def test_host_probe_ignores_proxy_settings(servers, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # would refuse everything
    addr = loopback_address()
    srv = servers.http(addr, 0, "direct")
    assert http_from_host(f"http://{addr}:{srv.port}/").body == "direct"


@pytest.mark.slow
def test_node_probe_runs_curl_over_ssh(servers, node_runner):
    addr = loopback_address()
    srv = servers.http(addr, 0, "containerPort : 8080\n")
    answer = http_from_node(node_runner, "k8s-master", f"http://{addr}:{srv.port}/")
    assert (answer.vantage, answer.status, answer.body.strip()) == ("k8s-master", 200, "containerPort : 8080")
    assert srv.hits == 1 and node_runner.opened == ["k8s-master"]
    silent = servers.silent(addr, 0)
    timed = http_from_node(node_runner, "k8s-master", f"http://{addr}:{silent.port}/", timeout=1)
    assert timed.status is None and timed.error == "timed out"
    port = free_port_on([addr])
    refused = http_from_node(node_runner, "k8s-node1", f"http://{addr}:{port}/")
    assert refused.error == "connection refused"
    assert node_runner.opened == ["k8s-master", "k8s-node1"]  # one session per node, reused


def test_curl_command_quotes_the_url():
    cmd = curl_command("http://1.2.3.4:80/a b;rm -rf /", 3)
    assert cmd.startswith("curl -s -m 3 -o - -w '\\n%{http_code}' ")
    assert cmd.endswith("'http://1.2.3.4:80/a b;rm -rf /'")


def test_parse_curl_outcomes():
    assert parse_curl("n", "u", 0, "body\nline2\n200").body == "body\nline2"
    assert parse_curl("n", "u", 0, "\n404").status == 404
    assert parse_curl("n", "u", 28, "\n000").error == "timed out"
    assert parse_curl("n", "u", 7, "\n000").error == "connection refused"
    assert parse_curl("n", "u", 127, "", "sh: curl: command not found").error == "curl is not installed on n"
    assert parse_curl("n", "u", None, "").error.startswith("timed out")


def test_recording_runner_records_and_answers():
    runner = RecordingRunner({"curl": (0, "hi\n200", "")})
    answer = http_from_node(runner, "k8s-master", "http://x/")
    assert answer.status == 200 and runner.calls[0][0] == "k8s-master"


@pytest.mark.slow
def test_session_runner_turns_an_ssh_timeout_into_no_exit_status(node_runner):
    result = node_runner.run("k8s-node2", "sleep 5", 0.5)
    assert result.rc is None and not result.succeeded
    answer = parse_curl("k8s-node2", "http://x/", result.rc, result.stdout, result.stderr)
    assert answer.status is None and answer.error == "timed out (ssh)"
    # the session survives for the next probe
    assert node_runner.run("k8s-node2", "echo ok", 5).stdout == "ok\n"
    assert node_runner.opened == ["k8s-node2"]
