"""One command at a time per lab, through filelock: a second process is refused with
who holds the lock (exit code 7), on this host and with fcntl gone as on Windows; the
lock is free again once the holder ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.portability.conftest import REPO, WindowsLike

HOLD = """
import sys
from pathlib import Path
from labctl.lab.lock import lab_lock
from labctl.lab.paths import LabPaths
with lab_lock(LabPaths(Path(sys.argv[1])), "up"):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""

TRY = """
import sys
from pathlib import Path
from labctl.errors import LabLocked
from labctl.lab.lock import lab_lock
from labctl.lab.paths import LabPaths
try:
    with lab_lock(LabPaths(Path(sys.argv[1])), "halt"):
        print("acquired")
except LabLocked as err:
    print(int(err.exit_code), err.message)
"""


@pytest.mark.parametrize("windows", [False, True], ids=["host", "windows-like"])
def test_a_second_process_is_told_who_holds_the_lab(tmp_path, windows):
    env = WindowsLike(tmp_path / "sim").env() if windows else {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    lab = tmp_path / "lab"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lab)], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        second = subprocess.run([sys.executable, "-c", TRY, str(lab)], env=env, capture_output=True, text=True,
                                timeout=60, cwd=tmp_path)
        assert second.stdout.strip() == (f"7 another labctl command is changing this lab (`labctl up`, pid {holder.pid})"), second.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    again = subprocess.run([sys.executable, "-c", TRY, str(lab)], env=env, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert again.stdout.strip() == "acquired", again.stderr
    assert not (lab / ".labctl" / "lock.holder").exists()
