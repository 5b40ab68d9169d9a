"""The engine over real SSH: a fake lab's emulated nodes behind real sshd."""

from __future__ import annotations

import pytest

from labctl.bootstrap.engine import Engine
from labctl.lab import events as ev
from labctl.lab.paths import LabPaths
from labctl.remote.ssh import SSHSession
from labctl.render.lab import render_lab
from labctl.spec import default_spec


@pytest.fixture
def engine_over_sshd():
    """``make(lab, bus=None, **engine_kw) -> Engine``: the lab rendered, one connected
    SSHSession per node (all closed at the end of the test)."""
    opened: list[SSHSession] = []

    def make(lab, bus: ev.EventBus | None = None, **kw) -> Engine:
        spec = default_spec(len(lab.workers))
        paths = LabPaths(lab.dir)
        render_lab(spec, paths)
        sessions = {}
        for name, node in lab.nodes.items():
            s = SSHSession(node.sshd.target(name), known_hosts=paths.known_hosts, log_path=paths.node_log(name))
            opened.append(s)
            s.connect(10)
            sessions[name] = s
        return Engine(spec, paths, sessions, bus or ev.EventBus(), **kw)

    yield make
    for s in opened:
        s.close()
