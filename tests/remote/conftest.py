"""SSH tests run against real OpenSSH servers on loopback (tests/helpers/sshd.py)."""

from __future__ import annotations

import pytest

from labctl.remote.ssh import SSHSession


@pytest.fixture
def make_session(tmp_path):
    """SSHSession factory for a started SSHDHost; every session is closed at teardown."""
    sessions: list[SSHSession] = []

    def make(host, name: str = "node1", **kw) -> SSHSession:
        kw.setdefault("known_hosts", tmp_path / "known_hosts")
        kw.setdefault("log_path", tmp_path / "logs" / f"{name}.log")
        session = SSHSession(host.target(name), **kw)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def session(sshd_host, make_session):
    s = make_session(sshd_host)
    s.connect(deadline=20)
    return s
