"""Running one `vagrant` process: a deadline, its whole process group, and its log.

python-vagrant runs vagrant with no timeout and keeps no output on failure, so the
driver starts the (same) CLI itself. Each process gets its own session so that a
deadline kills vagrant together with the VBoxManage/ssh children it spawned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def _kill_group(proc: subprocess.Popen, grace: float, first: int = signal.SIGTERM) -> None:
    """Signal the process group, then SIGKILL it if vagrant has not exited after ``grace``."""
    try:
        os.killpg(proc.pid, first)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # Children (VBoxManage, ssh) may outlive vagrant; the group id is still ours.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
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
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc, grace)
        out, err = proc.communicate()
        rc = None
    except BaseException:
        _kill_group(proc, grace, signal.SIGINT)
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
        self._log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
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
                start_new_session=True,
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
        """Wait up to ``deadline`` seconds from the start; kill the group past it (rc None)."""
        rc: int | None
        try:
            remaining = max(0.0, deadline - (time.monotonic() - self.start))
            rc = self.proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            self._write(f"labctl: deadline of {deadline:g} s passed; stopping vagrant (pid {self.proc.pid})")
            _kill_group(self.proc, grace)
            rc = None
        except BaseException:
            # Ctrl-C reaches only labctl (vagrant has its own session): pass it on so
            # vagrant can clean up, then make sure nothing of it is left.
            self.stop(grace)
            raise
        finally:
            self._reader.join(timeout=5)
        self._close(f"labctl: exit {'timeout' if rc is None else rc} after {time.monotonic() - self.start:.1f} s")
        return ProcResult(self.argv, rc, "\n".join(self._tail), "", time.monotonic() - self.start, self.proc.pid)

    def stop(self, grace: float) -> None:
        """Interrupt vagrant (it cleans up on SIGINT), kill what is left after ``grace``."""
        if self.proc.poll() is None:
            self._write(f"labctl: interrupted; passing SIGINT to vagrant (pid {self.proc.pid})")
            _kill_group(self.proc, grace, signal.SIGINT)
        self._reader.join(timeout=5)
        self._close(f"labctl: stopped, exit {self.proc.returncode}")
