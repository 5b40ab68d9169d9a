"""Timeouts, dropped connections, hosts that come up late or never."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from labctl.remote.ssh import CommandTimeout, ConnectionLost, SSHSession, SSHTarget
from labctl.errors import CommandFailed, DeadlineExceeded, ExitCode
from tests.helpers.sshd import free_port


def _later(seconds: float, fn) -> threading.Thread:
    def go() -> None:
        time.sleep(seconds)
        fn()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_timeout_closes_the_channel_and_raises_rc_none(session, tmp_path):
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as info:
        session.run("echo started; sleep 30", timeout=1)
    err = info.value
    assert isinstance(err, CommandFailed)
    assert err.rc is None
    assert "timed out after 1s" in err.message and "node1" in err.message
    assert "channel was closed" in err.hint
    assert "started" in err.evidence
    assert err.exit_code == ExitCode.REMOTE_FAILED
    assert time.monotonic() - started < 25  # it did not wait for sleep 30
    # the connection survives a timed-out command
    assert session.run("echo still here").stdout == "still here\n"
    assert "timed out after 1s; channel closed" in (tmp_path / "logs" / "node1.log").read_text()


def test_timeout_applies_while_output_keeps_coming(session):
    with pytest.raises(CommandTimeout) as info:
        session.run("yes", timeout=1, log_output=False)
    assert info.value.rc is None


def test_check_timeout_is_command_failed(session):
    with pytest.raises(CommandFailed) as info:
        session.check("sleep 30", timeout=0.5)
    assert info.value.rc is None


def _run_in_thread(session, command, **kw):
    box: dict = {}

    def go() -> None:
        try:
            box["result"] = session.run(command, **kw)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def _wait_for(predicate, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.05)


def test_connection_dropped_mid_command(sshd_host, session):
    t, box = _run_in_thread(session, "echo begun; sleep 30", timeout=60)
    log = session.log_path
    _wait_for(lambda: " out begun" in log.read_text())
    sshd_host.kill_sessions()
    t.join(20)
    assert not t.is_alive()
    err = box["error"]
    assert isinstance(err, ConnectionLost) and isinstance(err, CommandFailed)
    assert err.rc is None
    assert "lost its connection" in err.message
    assert "dropped" in err.hint and "run the command again" in err.hint
    assert "begun" in err.evidence
    # the next command reconnects on its own: the host is still listening
    assert session.run("echo back").stdout == "back\n"
    assert sshd_host.accepted_connections() == 2


def test_host_goes_away_mid_command(sshd_host, session):
    t, box = _run_in_thread(session, "sleep 30", timeout=60)
    _wait_for(lambda: "$ sleep 30" in session.log_path.read_text())
    time.sleep(0.3)
    sshd_host.stop()
    t.join(20)
    assert isinstance(box["error"], ConnectionLost)
    sshd_host.start()
    session.connect(deadline=20)
    assert session.run("echo up").stdout == "up\n"


def test_host_that_comes_up_late(sshd_factory, make_session):
    host = sshd_factory(start=False)
    session = make_session(host)
    starter = _later(1.5, host.start)
    session.connect(deadline=30)
    starter.join()
    assert session.run("echo booted").stdout == "booted\n"
    log = session.log_path.read_text()
    assert "ConnectionRefusedError" in log and "(retrying)" in log


def test_port_open_before_sshd_banner_errors_are_retried(sshd_factory, make_session):
    # VirtualBox's NAT forward accepts and drops connections while the guest boots.
    host = sshd_factory(start=False)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host.host, host.port))
    listener.listen()
    stop = threading.Event()

    def accept_and_drop() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                pass
        listener.close()

    dropper = threading.Thread(target=accept_and_drop, daemon=True)
    dropper.start()

    def swap() -> None:
        stop.set()
        dropper.join()
        host.start()

    swapper = _later(1.5, swap)
    session = make_session(host)
    session.connect(deadline=30)
    swapper.join()
    assert session.run("echo ok").stdout == "ok\n"
    assert "(retrying)" in session.log_path.read_text()


def test_key_not_yet_authorised_is_retried(sshd_factory, make_session):
    host = sshd_factory()
    host.authorize(False)
    session = make_session(host)
    enabler = _later(1.5, host.authorize)
    session.connect(deadline=30)
    enabler.join()
    assert session.run("echo in").stdout == "in\n"
    assert "AuthenticationException" in session.log_path.read_text()


def test_deadline_exceeded_names_the_node_and_hints(tmp_path, sshd_host):
    target = SSHTarget("k8s-node1", "127.0.0.1", free_port(), "root", sshd_host.key_file)
    with SSHSession(target, known_hosts=tmp_path / "kh") as session:
        with pytest.raises(DeadlineExceeded) as info:
            session.connect(deadline=1)
    err = info.value
    assert err.exit_code == ExitCode.TIMEOUT
    assert "k8s-node1" in err.message and "within 1s" in err.message
    assert "ConnectionRefusedError" in err.message
    assert "vagrant status k8s-node1" in err.hint


def test_deadline_exceeded_on_a_refused_key_says_so(sshd_host, make_session):
    sshd_host.authorize(False)
    session = make_session(sshd_host)
    with pytest.raises(DeadlineExceeded) as info:
        session.connect(deadline=1)
    assert "does not accept the key" in info.value.hint


def test_missing_key_file_is_not_found(tmp_path, sshd_host):
    from labctl.errors import NotFound

    target = SSHTarget("n", sshd_host.host, sshd_host.port, "root", tmp_path / "nokey")
    with pytest.raises(NotFound) as info:
        SSHSession(target, known_hosts=tmp_path / "kh").connect(deadline=1)
    assert "nokey" in info.value.message


def test_a_silent_port_is_bounded_by_the_deadline(sshd_host, tmp_path):
    # Accepts the TCP connection but never says a word (a guest hung during boot).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    target = SSHTarget("k8s-master", "127.0.0.1", listener.getsockname()[1], "root", sshd_host.key_file)
    try:
        with SSHSession(target, known_hosts=tmp_path / "kh") as session:
            with pytest.raises(DeadlineExceeded) as info:
                session.connect(deadline=2)
        assert "banner" in info.value.message.lower()
    finally:
        stop.set()
        holder.join()
        for conn in held:
            conn.close()
        listener.close()
