"""A lab with no VM, no `vagrant` and no sshd: the lifecycle's logic in milliseconds.

The Lab (labctl.lab.lab) gets a MemoryProvider (labctl.providers.memory) and opens
MemorySessions (labctl.remote.memory) whose responder is the same emulated node OS the
slow tier runs behind sshd (tests/helpers/fake_node_shell.py), called in this process:
its ``dispatch`` prints to sys.stdout/sys.stderr and reads sys.stdin, which are swapped
for per-thread buffers while it answers (the engine runs nodes in threads). The nodes
are the same FakeNode folders (tests/helpers/fake_node.py), so tests inject failures,
delays and read journals exactly as they do against sshd.

    def test_x(memory_lab):
        lab = memory_lab(workers=1)
        lab.nodes["k8s-node1"].fail("containerd")
        with pytest.raises(StepFailed): lab.up()
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labctl.lab import events as ev
from labctl.lab.lab import Lab
from labctl.lab.paths import LabPaths
from labctl.providers.memory import MemoryProvider
from labctl.remote.memory import MemorySession
from labctl.remote.result import CommandResult
from tests.helpers import fake_node_shell
from tests.helpers.fake_node import EmulatedNodes, FakeNode

_local = threading.local()


class _ThreadStdio(io.TextIOBase):
    """sys.stdout/err/in for the node shell: this thread's buffer while it answers."""

    def __init__(self, which: str, original):
        self._which = which
        self._original = original

    def _target(self):
        return getattr(_local, self._which, None) or self._original

    def write(self, s: str) -> int:
        return self._target().write(s)

    def flush(self) -> None:
        self._target().flush()

    def read(self, *a):
        return self._target().read(*a)

    @property
    def buffer(self):
        return self._target().buffer


class _Stdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)

    def read(self, *a):
        return self.buffer.read(*a).decode("utf-8", errors="replace")


_install_lock = threading.Lock()


def _install() -> None:
    """Put the per-thread proxies in place. Done at each call, not once in the fixture:
    pytest's output capture sets sys.stdout/err anew between a test's phases."""
    with _install_lock:
        for which in ("stdout", "stderr", "stdin"):
            if not isinstance(getattr(sys, which), _ThreadStdio):
                setattr(sys, which, _ThreadStdio(which, getattr(sys, which)))


def node_responder(node_dir: Path) -> Callable[[str, bytes | None], CommandResult]:
    """fake_node_shell's answer to one command, in this process (journaled as it does)."""

    def respond(command: str, stdin: bytes | None) -> CommandResult:
        _install()
        node = fake_node_shell.Node(node_dir)
        # stdout with a byte buffer: `cat` of an image tarball writes bytes, given back
        # through surrogateescape exactly (MemorySession.get_file).
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="surrogateescape", write_through=True)
        err = io.StringIO()
        _local.stdout, _local.stderr, _local.stdin = out, err, _Stdin(stdin or b"")
        started = time.time()
        try:
            kind, step, rc = fake_node_shell.dispatch(node, command)
        finally:
            _local.stdout = _local.stderr = _local.stdin = None
        node.journal({"start": started, "end": time.time(), "kind": kind, "step": step, "rc": rc,
                      "command": command if kind != "put" else "put"})
        stdout = out.buffer.getvalue().decode("utf-8", "surrogateescape")
        return CommandResult(command, rc, stdout, err.getvalue(), time.time() - started)

    return respond


@dataclass
class MemoryLab(EmulatedNodes):
    dir: Path
    lab: Lab
    provider: MemoryProvider
    nodes: dict[str, FakeNode]
    events: list[ev.Event] = field(default_factory=list)
    sessions: list[MemorySession] = field(default_factory=list)

    def up(self, **kw):
        from labctl.lab.up import up

        return up(self.lab, sinks=[self.events.append], **kw)

    def state(self) -> dict:
        import json

        return json.loads(self.lab.paths.state.read_text())


@pytest.fixture
def memory_lab(tmp_path_factory, monkeypatch, pin_server) -> Iterator[Callable[..., MemoryLab]]:
    # The lab's pinned files come from a loopback server into a fresh host cache.
    del pin_server
    for which in ("stdout", "stderr", "stdin"):  # put back whatever pytest had at the end
        monkeypatch.setattr(sys, which, getattr(sys, which))
    made: list[MemoryLab] = []

    def make(workers: int = 2, *, delay: float = 0.0, name: str | None = None, write_spec: bool = False,
             host_check: Callable | None = None) -> MemoryLab:
        from labctl.spec.initfile import init_lab
        from labctl.spec import default_spec, load_spec

        base = tmp_path_factory.mktemp("memlab")
        lab_dir = base / "lab"
        lab_dir.mkdir()
        paths = LabPaths(lab_dir)
        if write_spec or workers != 2 or name:
            init_lab(paths, workers=workers, name=name)
            spec = load_spec(lab_dir)
        else:
            spec = default_spec(workers, name=name)
        nodes = {}
        for node in spec.nodes:
            fake = FakeNode(base / "cluster" / node.name, node.name, node.role, node.ip, spec.name)
            if delay:
                fake.delay(delay)
            nodes[node.name] = fake
        provider = MemoryProvider([n.name for n in spec.nodes])
        mlab: MemoryLab

        def open_session(lab: Lab, node: str, deadline: float) -> MemorySession:
            lab.provider.ssh_target(node)  # what the real opener asks first: is it running?
            s = MemorySession(node, node_responder(nodes[node].dir), log_path=lab.paths.node_log(node))
            s.connect(deadline)
            mlab.sessions.append(s)
            return s

        lab = Lab(paths, spec, provider, open_session=open_session,
                  host_check=host_check or (lambda spec: None))
        mlab = MemoryLab(lab_dir, lab, provider, nodes)
        made.append(mlab)
        return mlab

    yield make
    for m in made:
        for s in m.sessions:
            s.close()
