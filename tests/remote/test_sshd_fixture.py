"""The sshd test helper itself: ForceCommand, env, restart, and nothing left running."""

from __future__ import annotations

import threading
import time

import pytest


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_force_command_and_env_emulate_a_node(sshd_factory, make_session):
    host = sshd_factory(
        force_command='/bin/sh -c \'echo "ran=$SSH_ORIGINAL_COMMAND node=$FAKE_NODE"\'',
        env={"FAKE_NODE": "k8s-master"},
    )
    s = make_session(host, "k8s-master")
    s.connect(deadline=10)
    assert s.run("hostname").stdout == "ran=hostname node=k8s-master\n"
    assert s.run("id -u", sudo=True).stdout == "ran=sudo -n -H -- bash -c 'id -u' node=k8s-master\n"


def test_restart_keeps_port_and_keys(sshd_host, session):
    port, key = sshd_host.port, sshd_host.host_key_pub
    sshd_host.stop()
    assert sshd_host.pid is None
    sshd_host.start()
    assert (sshd_host.port, sshd_host.host_key_pub) == (port, key)
    session.connect(deadline=10)  # same pinned key: accepted
    assert session.run("echo again").stdout == "again\n"


def test_stop_ends_sessions_and_their_commands(sshd_host, session):
    pids: list[int] = []

    def run() -> None:
        try:
            session.run("echo $$; exec sleep 300", timeout=60, on_line=lambda s, line: pids.append(int(line)))
        except Exception:  # noqa: BLE001 - the command is expected to die with the host
            pass

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    end = time.monotonic() + 10
    while not pids and time.monotonic() < end:
        time.sleep(0.05)
    assert pids and _alive(pids[0])
    listener = sshd_host.pid
    sshd_host.stop()
    runner.join(20)
    end = time.monotonic() + 5
    while (_alive(pids[0]) or _alive(listener)) and time.monotonic() < end:
        time.sleep(0.05)
    assert not _alive(pids[0])
    assert not _alive(listener)


def test_failing_callback_closes_the_channel(session):
    def boom(stream: str, line: str) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError):
        session.run("echo x; sleep 30", on_line=boom, timeout=60)
    assert session.run("echo fine").stdout == "fine\n"


def test_env_values_with_quotes_and_spaces(sshd_factory, make_session):
    host = sshd_factory(env={"ODD": 'a "quoted" value with spaces'})
    s = make_session(host)
    s.connect(deadline=10)
    assert s.run('printf %s "$ODD"').stdout == 'a "quoted" value with spaces'


def test_a_port_taken_before_sshd_binds_it_means_another_port(sshd_factory):
    """Another process (an xdist worker, another test run) may take the free port
    between free_port() and sshd's bind; a banner on that port is not ours."""
    import socket

    host = sshd_factory(start=False)
    with socket.socket() as taken:
        taken.bind((host.host, 0))
        taken.listen()
        host.move(taken.getsockname()[1])
        host.start()
        assert host.port != taken.getsockname()[1]
        assert f"Server listening on {host.host} port {host.port}." in host.log()
