"""Host keys pinned in the lab's own known_hosts, never ~/.ssh."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from labctl.remote.ssh import HostKeyMismatch, SSHSession, forget_host_keys
from labctl.errors import ExitCode


def _lines(path):
    return [line for line in path.read_text().splitlines() if line.strip()]


def test_first_connection_records_the_key_by_port_and_name(sshd_host, session, tmp_path):
    kh = tmp_path / "known_hosts"
    assert _lines(kh) == [f"[127.0.0.1]:{sshd_host.port},node1 {sshd_host.host_key_pub}"]
    assert kh.stat().st_mode & 0o777 == 0o600
    assert "recorded host key ssh-ed25519 of node1" in session.log_path.read_text()


def test_the_same_key_connects_again_without_changes(sshd_host, session, make_session, tmp_path):
    kh = tmp_path / "known_hosts"
    before = kh.read_text()
    again = make_session(sshd_host, "node1")
    again.connect(deadline=10)
    assert again.run("echo ok").stdout == "ok\n"
    assert kh.read_text() == before
    assert "recorded host key" not in again.log_path.read_text().split("--- $")[-1]


def test_a_changed_key_is_refused_at_once(sshd_host, session, make_session, tmp_path):
    session.close()
    sshd_host.stop()
    sshd_host.rotate_host_key()
    sshd_host.start()
    again = make_session(sshd_host, "node1")
    with pytest.raises(HostKeyMismatch) as info:
        again.connect(deadline=60)  # not retried until the deadline
    err = info.value
    assert err.exit_code == ExitCode.REMOTE_FAILED
    assert "host key of node1" in err.message and str(tmp_path / "known_hosts") in err.message
    assert "labctl destroy" in err.hint
    assert sshd_host.accepted_connections() == 1  # it never authenticated to the impostor


def test_forgotten_keys_are_learned_again(sshd_host, session, make_session, tmp_path):
    kh = tmp_path / "known_hosts"
    session.close()
    sshd_host.stop()
    sshd_host.rotate_host_key()
    sshd_host.start()
    assert forget_host_keys(kh, ["node1", "node9"]) == 1
    assert _lines(kh) == []
    again = make_session(sshd_host, "node1")
    again.connect(deadline=10)
    assert _lines(kh) == [f"[127.0.0.1]:{sshd_host.port},node1 {sshd_host.host_key_pub}"]


def test_forget_without_a_file_is_fine(tmp_path):
    assert forget_host_keys(tmp_path / "none", ["a"]) == 0
    assert not (tmp_path / "none").exists()


def test_a_moved_port_keeps_the_pin_and_updates_the_pattern(sshd_host, session, make_session, tmp_path):
    kh = tmp_path / "known_hosts"
    session.close()
    sshd_host.stop()
    sshd_host.move()
    sshd_host.start()
    again = make_session(sshd_host, "node1")
    again.connect(deadline=10)
    assert _lines(kh) == [f"[127.0.0.1]:{sshd_host.port},node1 {sshd_host.host_key_pub}"]


def test_a_port_reused_by_another_node_is_not_a_mismatch(sshd_factory, make_session, tmp_path):
    kh = tmp_path / "known_hosts"
    first = sshd_factory()
    s1 = make_session(first, "k8s-node1")
    s1.connect(deadline=10)
    s1.close()
    port = first.port
    first.stop()
    second = sshd_factory(start=False)
    second.move(port)
    second.start()
    s2 = make_session(second, "k8s-node2")
    s2.connect(deadline=10)
    lines = _lines(kh)
    assert f"k8s-node1 {first.host_key_pub}" in lines  # pin kept, stale port pattern dropped
    assert f"[127.0.0.1]:{port},k8s-node2 {second.host_key_pub}" in lines


def test_other_lines_and_comments_are_kept(sshd_host, make_session, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("# pinned by labctl\nother ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJunk\n")
    s = make_session(sshd_host, "node1")
    s.connect(deadline=10)
    lines = _lines(kh)
    assert lines[:2] == ["# pinned by labctl", "other ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJunk"]
    assert forget_host_keys(kh, ["node1"]) == 1
    assert _lines(kh) == lines[:2]


def test_the_file_is_valid_for_openssh(sshd_host, session, tmp_path):
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("no OpenSSH client")
    done = subprocess.run(
        [ssh, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "IdentitiesOnly=yes", "-i", str(sshd_host.key_file), "-p", str(sshd_host.port),
         f"{sshd_host.user}@{sshd_host.host}", "echo via-openssh"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "via-openssh\n"


def test_user_ssh_folder_is_never_touched(sshd_host, make_session, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    s = make_session(sshd_host, "node1")
    s.connect(deadline=10)
    s.run("true")
    assert list(home.iterdir()) == []


def test_concurrent_first_connections_record_every_node(sshd_factory, tmp_path):
    import threading

    kh = tmp_path / "known_hosts"
    hosts = [sshd_factory() for _ in range(3)]
    sessions = [SSHSession(h.target(f"n{i}"), known_hosts=kh) for i, h in enumerate(hosts)]
    threads = [threading.Thread(target=s.connect, kwargs={"deadline": 20}) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(_lines(kh)) == sorted(
            f"[127.0.0.1]:{h.port},n{i} {h.host_key_pub}" for i, h in enumerate(hosts)
        )
    finally:
        for s in sessions:
            s.close()
