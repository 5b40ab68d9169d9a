"""What a check may use: the lab spec, the cluster's API, the nodes' shells, exec.

Checks see two narrow interfaces, so that none of them depends on how a connection
is opened (kubeconfig, vagrant ssh-config, a test's fake API server):
- ``cluster`` (Cluster): read objects, events and logs as the API's JSON dicts;
- ``nodes`` (NodeRunner): run a shell command on a node, get a CommandResult;
  (``cluster.exec`` runs a command inside a container through the one adapter
  labctl.kube.client.exec_in_pod, which tests replace).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labctl.spec import LabSpec
from labctl.verify.probes import NodeRunner
from labctl.errors import LabError

NAMESPACE = "default"


class Cluster(Protocol):
    """Read access to the lab's API server, as labctl.kube.client.KubeClient gives
    it. Objects are the API's JSON (camelCase dicts)."""

    def find(self, kind: str, name: str, namespace: str | None = NAMESPACE) -> dict | None:
        """The object, or None when the API says 404."""
        ...

    def list(self, kind: str, namespace: str | None = NAMESPACE, *, label_selector: str | None = None) -> list[dict]:
        ...

    def events_for(self, kind: str, name: str, namespace: str = NAMESPACE) -> list[dict]:
        ...

    def version(self) -> dict:
        """The server's /version: gitVersion, major, minor, platform."""
        ...

    def pod_logs(self, name: str, namespace: str = NAMESPACE, *, container: str | None = None, previous: bool = False, tail_lines: int | None = None) -> str:
        ...

    def exec(self, pod: str, command: Sequence[str], *, container: str | None = None, namespace: str = NAMESPACE, timeout: float = 30.0) -> Any:
        """Run a command in a container -> ExecResult(rc, stdout, stderr); goes through
        the one adapter labctl.kube.client.exec_in_pod."""
        ...


@dataclass
class VerifyContext:
    spec: LabSpec
    cluster: Cluster
    nodes: NodeRunner
    namespace: str = NAMESPACE
    http_timeout: float = 3.0


class SessionNodeRunner:
    """A NodeRunner over the lab's SSH sessions, opened on first use and reused.

    ``open_session(node)`` returns a connected labctl.remote.ssh.SSHSession (the
    lab's lifecycle knows how: vagrant ssh-config, the lab's known_hosts). Checks run
    in threads: a session is opened once per node (under that node's lock) and its
    commands run as concurrent channels of the one connection, at most
    ``CHANNELS`` at a time (sshd's MaxSessions defaults to 10).
    """

    CHANNELS = 4

    def __init__(self, open_session: Callable[[str], Any]):
        self._open = open_session
        self._sessions: dict[str, Any] = {}
        # A node that could not be reached once is not dialled again in this run:
        # every check's every attempt would otherwise wait out the connect deadline.
        self._failed: dict[str, BaseException] = {}
        self._locks: dict[str, tuple[threading.Lock, threading.Semaphore]] = {}
        self._guard = threading.Lock()

    def _node(self, node: str) -> tuple[threading.Lock, threading.Semaphore]:
        with self._guard:
            return self._locks.setdefault(node, (threading.Lock(), threading.Semaphore(self.CHANNELS)))

    def session(self, node: str):
        opening, _ = self._node(node)
        with opening:
            if node in self._failed:
                raise self._failed[node]
            session = self._sessions.get(node)
            if session is None:
                try:
                    session = self._sessions[node] = self._open(node)
                except LabError as exc:
                    self._failed[node] = exc
                    raise
            return session

    def run(self, node: str, command: str, timeout: float):
        from labctl.remote.ssh import CommandResult, CommandTimeout

        session = self.session(node)
        _, channels = self._node(node)
        with channels:
            try:
                return session.run(command, timeout=timeout, log_output=False)
            except CommandTimeout as exc:
                # No exit status is an answer for a probe (the target did not reply).
                return CommandResult(command, None, "", "\n".join(exc.evidence), timeout)

    def close(self) -> None:
        with self._guard:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()


@dataclass
class RecordingRunner:
    """A NodeRunner that answers from a table and records what was asked.

    For pure-logic tests and dry runs: ``answers`` maps a substring of the command to
    (rc, stdout, stderr); unmatched commands get rc 127 ("command not found").
    """

    answers: dict[str, tuple[int | None, str, str]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def run(self, node: str, command: str, timeout: float):
        from labctl.remote.ssh import CommandResult

        self.calls.append((node, command))
        for needle, (rc, out, err) in self.answers.items():
            if needle in command:
                return CommandResult(command, rc, out, err, 0.0)
        return CommandResult(command, 127, "", "sh: command not found", 0.0)
