"""put(): upload through an exec channel, atomically, with its mode, with sudo."""

from __future__ import annotations

import threading

import pytest

from labctl.errors import CommandFailed


def test_upload_content_and_mode(session, tmp_path):
    dest = tmp_path / "etc" / "kubeadm" / "join.yaml"
    session.put("token: abc\n", str(dest), mode=0o600)
    assert dest.read_text() == "token: abc\n"
    assert dest.stat().st_mode & 0o777 == 0o600


def test_upload_bytes_default_mode_and_odd_names(session, tmp_path):
    dest = tmp_path / "dir with space" / "it's $name.bin"
    blob = bytes(range(256)) * 1000
    session.put(blob, str(dest))
    assert dest.read_bytes() == blob
    assert dest.stat().st_mode & 0o777 == 0o644


def test_empty_upload(session, tmp_path):
    dest = tmp_path / "empty"
    session.put(b"", str(dest), mode=0o640)
    assert dest.read_bytes() == b""
    assert dest.stat().st_mode & 0o777 == 0o640


def test_upload_with_sudo(session, sshd_host, tmp_path):
    dest = tmp_path / "root-only" / "f.conf"
    session.put("x=1\n", str(dest), mode=0o600, sudo=True)
    assert dest.read_text() == "x=1\n"
    if sshd_host.sudo_log.exists():
        assert "sudo -n -H -- bash -c" in sshd_host.sudo_log.read_text()


def test_replacement_is_atomic_and_leaves_no_temp_files(session, tmp_path):
    dest = tmp_path / "big"
    size = 2 * 1024 * 1024
    session.put(b"a" * size, str(dest))
    torn: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = dest.read_bytes()
            if len(data) != size or len(set(data)) != 1:
                torn.append(len(data))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for letter in b"bcdefgh":
            session.put(bytes([letter]) * size, str(dest))
    finally:
        stop.set()
        t.join()
    assert torn == []
    assert dest.read_bytes() == b"h" * size
    assert [p.name for p in tmp_path.rglob(".labctl-put*")] == []


def test_upload_data_is_not_logged(session, tmp_path):
    session.put("s3cr3t-data\n", str(tmp_path / "f"), mode=0o600)
    log = (tmp_path / "logs" / "node1.log").read_text()
    assert "s3cr3t-data" not in log
    assert f"--- $ put {tmp_path / 'f'} (12 bytes, mode 0600)" in log


def test_failed_upload_raises_and_keeps_the_old_file(session, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("file")
    with pytest.raises(CommandFailed) as info:
        session.put("new", str(blocker / "child"))
    assert info.value.rc not in (0, None)
    assert info.value.command.startswith("put ")
    assert blocker.read_text() == "file"
