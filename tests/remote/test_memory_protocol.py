"""The in-memory Session and the SSH one take the same calls: a signature that drifts
would pass in the fast tests and fail over real SSH."""

import inspect

import pytest

from labctl.remote.memory import MemorySession
from labctl.remote.ssh import SSHSession


@pytest.mark.parametrize("method", ["run", "check", "put", "put_file", "get_file", "add_secret", "close"])
def test_memory_and_ssh_sessions_take_the_same_keywords(method):
    def keywords(cls):
        sig = inspect.signature(getattr(cls, method))
        return {n: p.default for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}

    mem, ssh = keywords(MemorySession), keywords(SSHSession)
    assert set(mem) == set(ssh), (method, mem, ssh)
