"""Getting a node's rendered scripts onto it: only the scripts that run travel, and the
next one travels while the current one runs (a second channel on the same
connection), so only a node's first upload is on the critical path."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from labctl.bootstrap.context import Session
from labctl.errors import LabError, LabFolderError
from labctl.lab.paths import LabPaths


class ScriptUploads:
    def __init__(self, paths: LabPaths, sessions: Mapping[str, Session], remote_dir: str, workers: int):
        self.paths = paths
        self.sessions = sessions
        self.remote_dir = remote_dir
        self._done: set[tuple[str, str]] = set()
        self._pending: dict[tuple[str, str], Future] = {}
        self._todo: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(2, workers), thread_name_prefix="labctl-upload")
        self.closed = False

    def upload(self, node: str, names: Sequence[str] | None = None) -> None:
        """Copy the node's rendered scripts to the node (all of them, or ``names``)."""
        folder = self.paths.node_scripts(node)
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        if names is not None:
            files = [p for p in files if p.name in names]
        if not files and names:
            raise LabFolderError(
                f"{folder} has no rendered {', '.join(names)}",
                hint="run `labctl render` (or `labctl up`, which renders first)",
            )
        for p in files:
            self.sessions[node].put(p.read_bytes(), f"{self.remote_dir}/{p.name}", mode=0o755, sudo=True)

    def expect(self, todo: Mapping[str, Sequence[str]]) -> None:
        """The scripts each node will run, in order; the first of each starts travelling."""
        with self._lock:
            self._todo = {n: list(names) for n, names in todo.items()}
        for node, names in todo.items():
            if names:
                self._prefetch(node, names[0])

    def ensure(self, node: str, name: str) -> None:
        """``name`` is on ``node`` when this returns; the next script starts travelling."""
        with self._lock:
            pending = self._pending.pop((node, name), None)
        if pending is not None:
            try:
                pending.result()
            except LabError:
                pass  # a failed prefetch is retried below, in this thread, with its error
            else:
                with self._lock:
                    self._done.add((node, name))
        if (node, name) not in self._done:
            self.upload(node, [name])
            with self._lock:
                self._done.add((node, name))
        todo = self._todo.get(node, [])
        if name in todo and todo.index(name) + 1 < len(todo):
            self._prefetch(node, todo[todo.index(name) + 1])

    def _prefetch(self, node: str, name: str) -> None:
        with self._lock:
            if self.closed or (node, name) in self._done or (node, name) in self._pending:
                return
            self._pending[(node, name)] = self._pool.submit(self.upload, node, [name])

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
