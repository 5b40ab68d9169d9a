"""One command at a time may change a lab.

An OS file lock on ``.labctl/lock`` through ``filelock`` (flock on POSIX, msvcrt on
Windows): the OS drops it when the holder dies, so a crashed or killed labctl never
leaves a stale lock behind. The holder writes its PID and command into a file beside it
(``lock.holder``) so the refusal can say who holds it. Not into the lock file itself:
filelock may truncate that file when a second process opens it, and Windows does not let
a second process read a locked region.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from labctl.errors import LabLocked
from labctl.lab.paths import LabPaths


def holder_path(paths: LabPaths) -> Path:
    return Path(paths.lock).with_name(Path(paths.lock).name + ".holder")


@contextmanager
def lab_lock(paths: LabPaths, command: str) -> Iterator[None]:
    paths.meta.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(paths.lock), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LabLocked(
            f"another labctl command is changing this lab ({_read_holder(holder_path(paths))})",
            hint="wait for it to finish, or stop it (Ctrl-C) and run your command again",
        ) from None
    holder = holder_path(paths)
    try:
        # Bytes, not text mode: the same file on every host (no CRLF on Windows).
        holder.write_bytes(json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            holder.unlink()
        lock.release()


def _read_holder(holder: Path) -> str:
    try:
        info = json.loads(holder.read_bytes() or b"{}")
        return f"`labctl {info.get('command', '?')}`, pid {info.get('pid', '?')}"
    except (OSError, ValueError):
        # The holder has the lock but has not written its name yet (or just removed it).
        return "holder unknown"
