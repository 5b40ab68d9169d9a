"""`labctl up` as a named sequence of stages (Molecule's scenarios, in small):

    BEFORE_LOCK = validate -> doctor             (only read: nothing written on failure)
    UP          = bundle -> render -> machines -> connect -> plan -> bootstrap

Every stage is a function of the UpRun the stages hand on to each other. Progress goes
out as events (labctl.lab.events) to the state file and to the CLI's renderer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import UsageError
from labctl.lab import events as ev
from labctl.lab.command import failed, stage
from labctl.lab.lab import CONNECT_DEADLINE, Lab
from labctl.lab.lock import lab_lock

DEFAULT_PARALLEL = 3  # machines booted at once when --parallel is not given


@dataclass
class UpResult:
    lab: str
    nothing_to_do: bool
    booted: list[str] = field(default_factory=list)
    ran: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    kubeconfig: str = ""
    merged_into: str | None = None
    seconds: float = 0.0

    @property
    def message(self) -> str:
        if self.nothing_to_do:
            return f"lab {self.lab} is up; nothing to do"
        return f"lab {self.lab} is up: {len(self.ran)} steps ran, {len(self.skipped)} already done; kubeconfig: {self.kubeconfig}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "lab": self.lab,
            "nothing_to_do": self.nothing_to_do,
            "booted": self.booted,
            "ran": [f"{n}/{s}" for n, s in self.ran],
            "skipped": [f"{n}/{s}" for n, s in self.skipped],
            "kubeconfig": self.kubeconfig,
            "merged_into": self.merged_into,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class UpRun:
    """What the stages of `labctl up` hand on to each other."""

    lab: Lab
    bus: ev.EventBus
    parallel: int | None = None
    merge_kubeconfig: Path | None = None
    connect_deadline: float = CONNECT_DEADLINE
    bundle: Path | None = None  # an offline bundle to add to the host cache first
    sessions: dict[str, Any] = field(default_factory=dict)
    engine: Any = None
    booted: list[str] = field(default_factory=list)
    plans: dict[str, Any] = field(default_factory=dict)
    bootstrap: Any = None

    def outcome(self) -> UpResult:
        res = self.bootstrap
        return UpResult(
            lab=self.lab.spec.name,
            nothing_to_do=not self.booted and not res.ran and not res.kubeconfig_changed,
            booted=self.booted,
            ran=res.ran,
            skipped=res.skipped,
            kubeconfig=str(self.lab.paths.kubeconfig),
            merged_into=str(self.merge_kubeconfig) if self.merge_kubeconfig else None,
        )


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[UpRun], None]
    # True: a phase event around it; a str: the same with this text; False: the stage
    # announces its own phases (the engine does).
    announce: bool | str = True


def _validate(run: UpRun) -> None:
    from labctl.spec import validate

    for warning in validate(run.lab.spec):
        run.bus.emit(ev.WARNING, warning)


def _doctor(run: UpRun) -> None:
    run.lab.host_check(run.lab.spec)


def _write_spec(run: UpRun) -> None:
    if run.lab.spec_to_write and not run.lab.paths.spec.exists():
        from labctl.lab.fsutil import atomic_write
        from labctl.spec.initfile import spec_yaml

        atomic_write(run.lab.paths.spec, spec_yaml(run.lab.spec))


def _bundle(run: UpRun) -> None:
    """`up --bundle FILE`: the class's downloads, carried in, enter the host cache (every
    digest checked first) so the bootstrap takes them from there instead of the internet."""
    if run.bundle is None:
        return
    from labctl.artifacts.api import bundle_import
    from labctl.artifacts.bundle import bundle_set
    from labctl.bootstrap.artifacts import load_for
    from labctl.errors import ArtifactError

    carried, wanted = bundle_set(run.bundle), load_for(run.lab.spec).id
    if carried != wanted:  # another class's or version's bundle: its files would not serve this lab
        raise ArtifactError(f"bundle {run.bundle} carries artifact set {carried}; this lab uses set {wanted}",
                            hint=f"ask for a bundle of set {wanted} (`labctl bundle export FILE --set {wanted}` on the "
                                 "instructor's host), or check lab.yaml's kubernetes.version and $LABCTL_ARTIFACT_SET")
    res = bundle_import(run.bundle)
    run.bus.emit(ev.INFO, f"bundle {run.bundle}: {res.entries} files, {res.added} new in the host cache "
                          f"({res.added_bytes} bytes)", data=res.to_dict())


def _render(run: UpRun) -> None:
    from labctl.render.lab import render_lab

    rendered = render_lab(run.lab.spec, run.lab.paths)
    if rendered.written:
        run.bus.emit(ev.INFO, f"rendered {len(rendered.written)} files into {run.lab.root}")


def _machines(run: UpRun) -> None:
    """Boot what is not running; leave the rest alone."""
    provider, names = run.lab.provider, run.lab.names
    states = provider.states() if provider.has_machines() else {}
    for name in names:
        st = states.get(name)
        run.bus.emit(ev.MACHINE, st.state if st else "not_created", node=name, status=st.state if st else "not_created")
    run.booted = [n for n in names if states.get(n) is None or not states[n].running]
    if run.booted:
        def on_event(name: str, what: str) -> None:
            if name:
                run.bus.emit(ev.MACHINE, f"{provider.name} up: {what}", node=name, status=what)
            else:
                run.bus.emit(ev.INFO, what)

        provider.up(run.booted, parallel=run.parallel or DEFAULT_PARALLEL, on_event=on_event)


def _connect(run: UpRun) -> None:
    from labctl.bootstrap.engine import Engine

    lab = run.lab
    run.engine = Engine(lab.spec, lab.paths, run.sessions, run.bus, parallel=run.parallel,
                        merge_kubeconfig=run.merge_kubeconfig)

    def connect(name: str) -> None:
        # The endpoint is read anew after every up: a forwarded port may have moved.
        run.sessions[name] = lab.session(name, deadline=run.connect_deadline)
        run.engine.gather(name)  # right away: no node waits for the slowest to connect

    each_node(connect, lab.names, run.parallel)


def _plan(run: UpRun) -> None:
    run.plans = run.engine.plan()


def _bootstrap(run: UpRun) -> None:
    run.bootstrap = run.engine.execute(run.plans)


# Validation and the doctor only read: a host that cannot run the lab is told so
# before anything is written into the lab folder.
BEFORE_LOCK: tuple[Stage, ...] = (Stage("validate", _validate), Stage("doctor", _doctor))
UP: tuple[Stage, ...] = (
    Stage("bundle", _bundle, False),
    Stage("render", _render),
    Stage("machines", _machines),
    Stage("connect", _connect, "and read each node's facts"),
    Stage("plan", _plan, False),
    Stage("bootstrap", _bootstrap, False),
)


def _run_stage(s: Stage, run: UpRun) -> None:
    if s.announce is False:
        s.run(run)
        return
    with stage(run.bus, s.name, s.announce if isinstance(s.announce, str) else ""):
        s.run(run)


def up(
    lab: Lab,
    *,
    sinks: Sequence[ev.Sink] = (),
    parallel: int | None = None,
    merge_kubeconfig: Path | None = None,
    connect_deadline: float = CONNECT_DEADLINE,
    bundle: Path | None = None,
) -> UpResult:
    """Bring the lab up, or continue where the last run stopped. Idempotent."""
    from labctl.lab.state import StateRecorder

    started = time.monotonic()
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel {parallel}: must be 1 or more (--parallel 1 does one machine at a time)")
    if bundle is not None and not Path(bundle).is_file():
        raise UsageError(f"--bundle {bundle}: no such file",
                         hint="name a bundle made by `labctl bundle export FILE` on a host that has the downloads")
    bus = ev.EventBus(sinks)
    run = UpRun(lab, bus, parallel=parallel, merge_kubeconfig=merge_kubeconfig, connect_deadline=connect_deadline,
                bundle=Path(bundle) if bundle is not None else None)
    for s in BEFORE_LOCK:
        _run_stage(s, run)
    with lab_lock(lab.paths, "up"):
        _write_spec(run)
        bus.subscribe(StateRecorder(lab.paths, lab=lab.spec.name, command="up"))
        bus.emit(ev.RUN, f"labctl up: lab {lab.spec.name}, {len(lab.spec.nodes)} nodes", status=ev.RUNNING)
        try:
            for s in UP:
                _run_stage(s, run)
            result = run.outcome()
            result.seconds = time.monotonic() - started
            bus.emit(ev.RUN, result.message, status=ev.DONE, data=result.to_dict())
            return result
        except KeyboardInterrupt:
            if run.engine is not None:
                run.engine.abort()
            # Recorded for the state file and --json; the error boundary tells the person.
            bus.emit(ev.RUN, "interrupted; run `labctl up` again to continue", status=ev.FAILED,
                     data={"result": "interrupted"})
            raise
        except BaseException as err:
            failed(bus, err)
            raise
        finally:
            for s in run.sessions.values():
                s.close()


def each_node(fn: Callable[[str], None], names: Sequence[str], parallel: int | None) -> None:
    """``fn`` on every node, ``parallel`` at a time; the first error is raised."""
    if len(names) <= 1:
        for n in names:
            fn(n)
        return
    pool = ThreadPoolExecutor(max_workers=min(parallel or len(names), len(names)), thread_name_prefix="labctl-node")
    try:
        futures = [pool.submit(fn, n) for n in names]
        errors = []
        for f in futures:
            try:
                f.result()
            except BaseException as exc:  # noqa: BLE001 - the first is re-raised
                errors.append(exc)
        if errors:
            raise errors[0]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
