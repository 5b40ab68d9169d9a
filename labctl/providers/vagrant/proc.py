"""Running one `vagrant` process: a deadline, its whole process tree, and its log.

python-vagrant runs vagrant with no timeout and keeps no output on failure, so the
driver starts the (same) CLI itself. Each process starts in its own session (POSIX) or
process group (Windows), so a Ctrl-C at the terminal reaches only labctl, which passes
it on; a deadline ends vagrant together with the VBoxManage/ssh children it spawned,
found through psutil (process groups and os.killpg do not exist on Windows).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from labctl.providers.vagrant import parse as vagrant_cli

TAIL_LINES = 200  # kept in memory for evidence; the log file has everything


@dataclass(frozen=True)
class ProcResult:
    argv: tuple[str, ...]
    rc: int | None  # None: killed at its deadline (or interrupted)
    stdout: str
    stderr: str
    duration: float
    pid: int

    @property
    def succeeded(self) -> bool:
        return self.rc == 0


# Where the OS has them, a new session (POSIX) or process group (Windows) per vagrant.
if sys.platform == "win32":
    _DETACH: dict = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
else:
    _DETACH = {"start_new_session": True}
_INTERRUPT_NAME = "CTRL_BREAK" if sys.platform == "win32" else "SIGINT"


def _tree(pid: int) -> list[psutil.Process]:
    """The process and every descendant, read before anything is signalled (a child
    re-parented once vagrant exits could no longer be found)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_tree(tree: list[psutil.Process], interrupt: bool) -> None:
    if interrupt and sys.platform == "win32":
        # CTRL_BREAK_EVENT goes to the whole process group vagrant leads.
        with contextlib.suppress(psutil.Error, OSError):
            tree[0].send_signal(signal.CTRL_BREAK_EVENT)
        return
    for p in tree:
        with contextlib.suppress(psutil.Error):
            if interrupt:
                p.send_signal(signal.SIGINT)  # as a terminal's Ctrl-C would: vagrant cleans up
            else:
                p.terminate()


def _running(p: psutil.Process) -> bool:
    # A zombie has ended; where PID 1 does not reap orphans (containers) it stays listed.
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended or ``timeout`` passed; the ones still running."""
    end = time.monotonic() + timeout
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = [p for p in alive if _running(p)]
    return alive


def _kill_tree(proc: subprocess.Popen, grace: float, interrupt: bool = False) -> None:
    """Ask vagrant's tree to stop (SIGTERM, or Ctrl-C when ``interrupt``), give it
    ``grace`` seconds, then kill whatever of it is left. Children (VBoxManage, ssh) may
    outlive vagrant, so the whole tree is waited for, not just vagrant. Vagrant itself
    is reaped by Popen (psutil reaping it would lose its exit code)."""
    tree = _tree(proc.pid) if proc.poll() is None else []
    if tree:
        _signal_tree(tree, interrupt)
        end = time.monotonic() + grace
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        children = tree[1:]
        if proc.poll() is None:
            # Anything vagrant started during the grace period belongs to the tree too.
            children += [p for p in _tree(proc.pid)[1:] if p not in children]
        alive = _wait_gone(children, max(0.0, end - time.monotonic()))
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        _wait_gone(alive, 5)
    proc.wait()


def run_captured(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float, grace: float
) -> ProcResult:
    """Run to completion with stdout and stderr kept apart (ssh-config must stay clean)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        **_DETACH,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_tree(proc, grace)
        out, err = proc.communicate()
        rc = None
    except BaseException:
        _kill_tree(proc, grace, interrupt=True)
        raise
    return ProcResult(tuple(argv), rc, out or "", err or "", time.monotonic() - start, proc.pid)


class LoggedProcess:
    """A long vagrant call (up, reload, restore) streamed line by line into a log file.

    The log gets the human reading of the machine-readable output (see
    vagrant_cli.human_lines), so a person can read it and the evidence is the same text.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.log_path = log_path
        self._on_line = on_line
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()  # the reader thread and wait() both write the log
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # newline="\n": LF in the log on every host (text mode would write CRLF on Windows).
        self._log = open(log_path, "a", buffering=1, encoding="utf-8", newline="\n")  # noqa: SIM115
        self._log.write(f"$ {' '.join(self.argv)}  # cwd {cwd}, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
        self.start = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                **_DETACH,
            )
        except BaseException:
            self._log.close()
            raise
        self._reader = threading.Thread(target=self._pump, name=f"vagrant-log-{log_path.name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            for line in vagrant_cli.human_lines(raw.rstrip("\n")):
                self._tail.append(line)
                self._write(line)
                if self._on_line:
                    self._on_line(line)

    def _write(self, line: str) -> None:
        with self._lock:
            # A child that outlived vagrant may still hold the pipe after we closed the log.
            if not self._log.closed:
                self._log.write(line + "\n")

    def _close(self, last: str) -> None:
        with self._lock:
            if not self._log.closed:
                self._log.write(last + "\n")
                self._log.close()

    def wait(self, deadline: float, grace: float) -> ProcResult:
        """Wait up to ``deadline`` seconds from the start; end the tree past it (rc None)."""
        rc: int | None
        try:
            remaining = max(0.0, deadline - (time.monotonic() - self.start))
            rc = self.proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            self._write(f"labctl: deadline of {deadline:g} s passed; stopping vagrant (pid {self.proc.pid})")
            _kill_tree(self.proc, grace)
            rc = None
        except BaseException:
            # Ctrl-C reaches only labctl (vagrant has its own session/group): pass it on
            # so vagrant can clean up, then make sure nothing of it is left.
            self.stop(grace)
            raise
        finally:
            self._reader.join(timeout=5)
        self._close(f"labctl: exit {'timeout' if rc is None else rc} after {time.monotonic() - self.start:.1f} s")
        return ProcResult(self.argv, rc, "\n".join(self._tail), "", time.monotonic() - self.start, self.proc.pid)

    def stop(self, grace: float) -> None:
        """Interrupt vagrant (it cleans up on SIGINT), kill what of its tree is left after ``grace``."""
        if self.proc.poll() is None:
            self._write(f"labctl: interrupted; passing {_INTERRUPT_NAME} to vagrant (pid {self.proc.pid})")
            _kill_tree(self.proc, grace, interrupt=True)
        self._reader.join(timeout=5)
        self._close(f"labctl: stopped, exit {self.proc.returncode}")
