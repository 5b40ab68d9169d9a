"""One command at a time may change a lab.

An advisory ``flock`` on ``.labctl/lock``: the kernel drops it when the holder dies, so a
crashed or killed labctl never leaves a stale lock behind. The holder writes its PID and
command into the file so the refusal can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from labctl.lab.paths import LabPaths
from labctl.errors import LabLocked


@contextmanager
def lab_lock(paths: LabPaths, command: str) -> Iterator[None]:
    paths.meta.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise LabLocked(
                f"another labctl command is changing this lab ({holder})",
                hint="wait for it to finish, or stop it (Ctrl-C) and run your command again",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"`labctl {info.get('command', '?')}`, pid {info.get('pid', '?')}"
    except (OSError, ValueError):
        return "holder unknown"
