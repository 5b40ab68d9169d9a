"""Booting several machines with one `vagrant up NAME` each, side by side.

When one machine fails, the machines already booting are left to finish (killing
`vagrant up` mid-import leaves half-registered VMs that the next run trips over),
machines not yet started are not started, and the first failure is raised. Ctrl-C
stops every `vagrant` started here before it propagates: none is left running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from labctl.errors import VagrantFailed
from labctl.providers.vagrant.hosts import LIBVIRT_SHARED_READY

if TYPE_CHECKING:
    from labctl.providers.vagrant.cli import VagrantCLI
    from labctl.providers.vagrant.proc import LoggedProcess

__all__ = ["boot_machines", "LIBVIRT_SHARED_READY"]


def boot_machines(
    cli: VagrantCLI,
    names: Sequence[str],
    *,
    max_parallel: int,
    deadline: float,
    provider: str | None,
    on_event: Callable[[str, str], None] | None,
    first_alone_until: str | None,
) -> None:
    """``deadline`` counts, per machine, from the start of its own process. Events
    (name, "started" | "running" | "failed") go to ``on_event`` from worker threads;
    "running" means `vagrant up` exited 0. Raises the first failure in ``names`` order,
    the others listed in its evidence."""
    emit = on_event or (lambda _n, _e: None)
    stop_starting = threading.Event()
    live: dict[str, LoggedProcess] = {}
    guard = threading.Lock()

    shared_ready = threading.Event()
    leader = names[0] if first_alone_until and len(names) > 1 else None
    if leader is None:
        shared_ready.set()

    def watch_leader(line: str) -> None:
        if first_alone_until and first_alone_until in line:
            shared_ready.set()

    def one(name: str) -> None:
        args = ["up", name, "--no-provision", "--machine-readable"]
        if provider:
            args += ["--provider", provider]
        if name != leader:
            while not shared_ready.wait(0.5):
                if stop_starting.is_set():
                    return
        with guard:
            if stop_starting.is_set():
                return
            live[name] = proc = cli.start_logged(args, f"vagrant-up-{name}.log",
                                                  on_line=watch_leader if name == leader else None)
        emit(name, "started")
        try:
            cli.finish_logged(proc, args, name, deadline)
        except BaseException:
            stop_starting.set()
            emit(name, "failed")
            raise
        finally:
            if name == leader:
                shared_ready.set()
        emit(name, "running")

    failures: dict[str, BaseException] = {}
    pool = ThreadPoolExecutor(max_workers=min(max_parallel, len(names)), thread_name_prefix="vagrant-up")
    futures: dict[Future, str] = {pool.submit(one, n): n for n in names}
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.exception() is not None:
                    failures[futures[fut]] = fut.exception()
    except BaseException:
        # Ctrl-C reaches labctl only: every vagrant runs in its own session so that a
        # deadline can kill its whole group. Pass the interrupt on, then stop them.
        with guard:
            stop_starting.set()
            running = list(live.values())
        for proc in running:
            proc.stop(cli.kill_grace)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        first_name = next(n for n in names if n in failures)
        first = failures[first_name]
        if isinstance(first, VagrantFailed):
            for other in names:
                exc = failures.get(other)
                if exc is not None and exc is not first:
                    first.evidence.append(f"also failed: {other}: {exc}")
        raise first
