"""A vagrant call past its deadline ends with its whole process tree, found through
psutil: a child that ignores SIGTERM is killed after the grace period, and a child in a
session of its own (which os.killpg on vagrant's group never reached, and which does
not exist on Windows anyway) goes too."""

from __future__ import annotations

import sys
import time

import psutil

from labctl.providers.vagrant.proc import LoggedProcess, run_captured

VAGRANT_LIKE = r"""
import subprocess, sys, time
stubborn = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('stubborn ready', flush=True); time.sleep(600)"])
detached = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print(f"pids {stubborn.pid} {detached.pid}", flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop(pids) -> None:
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


def test_deadline_ends_the_whole_tree(tmp_path):
    lines: list[str] = []
    proc = LoggedProcess([sys.executable, "-c", VAGRANT_LIKE], cwd=tmp_path, env={}, log_path=tmp_path / "up.log",
                         on_line=lines.append)
    pids = [proc.proc.pid]
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not ("stubborn ready" in lines and any(x.startswith("pids ") for x in lines)):
            time.sleep(0.05)
        pids += [int(p) for p in next(x for x in lines if x.startswith("pids ")).split()[1:]]
        assert all(_running(p) for p in pids)
        started = time.monotonic()
        result = proc.wait(deadline=0, grace=1.0)
        took = time.monotonic() - started
        assert result.rc is None
        deadline = time.monotonic() + 5
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_running(p) for p in pids), [p for p in pids if _running(p)]
        assert took < 8, took  # grace (1 s), then kill: no long waits on reaped-late zombies
        assert "deadline of 0 s passed" in (tmp_path / "up.log").read_text()
    finally:
        _stop(pids)


def test_a_quick_command_keeps_its_exit_code(tmp_path):
    res = run_captured([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], cwd=tmp_path, env={},
                       timeout=30, grace=1)
    assert (res.rc, res.stdout.strip()) == (3, "out")
