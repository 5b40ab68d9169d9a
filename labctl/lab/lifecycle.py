"""The lab's lifecycle as named sequences of stages (Molecule's scenarios, in small).

    UP = validate -> doctor -> render -> machines -> connect -> plan -> bootstrap phases

Every command that changes the lab holds the lab lock. Progress goes out as events
(labctl.lab.events) to the state file and to whatever renderer the CLI subscribed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labctl.lab import events as ev
from labctl.lab.lock import lab_lock
from labctl.lab.paths import LabPaths
from labctl.spec import LabSpec, load_spec
from labctl.errors import LabError, NotFound, UsageError

CONNECT_DEADLINE = 300.0


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


# ------------------------------------------------------------------ shared pieces


def resolve_spec(paths: LabPaths, *, workers: int | None = None, provider: str | None = None) -> LabSpec:
    """The lab's spec with command-line overrides; --nodes must agree with lab.yaml."""
    from labctl.spec import default_spec, validate

    if paths.spec.exists():
        spec = load_spec(paths.root)
        if workers is not None and workers != len(spec.workers):
            raise UsageError(
                f"--nodes {workers} does not match lab.yaml in {paths.root}, which has {len(spec.workers)} workers",
                hint="drop --nodes (lab.yaml decides), or edit the nodes in lab.yaml; a running lab must be destroyed first",
            )
        if provider is not None and provider != spec.provider:
            raise UsageError(
                f"--provider {provider} does not match lab.yaml in {paths.root}, which says provider: {spec.provider}",
                hint="drop --provider (lab.yaml decides), or `labctl destroy` the lab and change provider in lab.yaml",
            )
    else:
        spec = default_spec(2 if workers is None else workers)
        if provider is not None:
            spec = replace(spec, provider=provider)
    validate(spec)
    return spec


def driver_for(paths: LabPaths, env: Mapping[str, str] | None = None):
    from labctl.providers.vagrant.driver import VagrantDriver

    return VagrantDriver(paths.root, log_dir=paths.logs, env=env)


def open_session(paths: LabPaths, target, *, deadline: float = CONNECT_DEADLINE, secrets: Iterable[str] = ()):
    from labctl.remote.ssh import SSHSession

    session = SSHSession(target, known_hosts=paths.known_hosts, log_path=paths.node_log(target.name), secrets=secrets)
    try:
        session.connect(deadline)
    except BaseException:
        session.close()
        raise
    return session


def _stage(bus: ev.EventBus, name: str, message: str = ""):
    class _S:
        def __enter__(self):
            bus.emit(ev.PHASE, message, phase=name, status=ev.RUNNING)
            return self

        def __exit__(self, et, e, tb):
            if et is None:
                bus.emit(ev.PHASE, "", phase=name, status=ev.DONE)
            return False

    return _S()


def _failure_data(err: BaseException) -> dict[str, Any]:
    if isinstance(err, LabError):
        d = err.to_dict()
        d.pop("message", None)
        return d
    return {"error": type(err).__name__}


# ------------------------------------------------------------------ up


def up(
    lab_dir: Path,
    *,
    sinks: Sequence[ev.Sink] = (),
    workers: int | None = None,
    provider: str | None = None,
    parallel: int | None = None,
    merge_kubeconfig: Path | None = None,
    connect_deadline: float = CONNECT_DEADLINE,
    vagrant_env: Mapping[str, str] | None = None,
) -> UpResult:
    """Bring the lab up, or continue where the last run stopped. Idempotent."""
    from labctl.lab.state import StateRecorder
    from labctl.spec import validate

    started = time.monotonic()
    paths = LabPaths(Path(lab_dir))
    bus = ev.EventBus(sinks)
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel {parallel} must be 1 or more", hint="pass --parallel 1 to do one machine at a time")
    # Validation and the doctor only read: a host that cannot run the lab is told so
    # before anything is written into the lab folder.
    with _stage(bus, "validate"):
        spec = resolve_spec(paths, workers=workers, provider=provider)
        for warning in validate(spec):
            bus.emit(ev.WARNING, warning)
    with _stage(bus, "doctor"):
        from labctl.host import doctor

        doctor.require_ready(spec)
    with lab_lock(paths, "up"):
        if (workers is not None or provider is not None) and not paths.spec.exists():
            from labctl.lab.fsutil import atomic_write
            from labctl.spec.initfile import spec_yaml

            # Written so that every later command (status, halt, up) sees the same nodes
            # and provider as this one.
            atomic_write(paths.spec, spec_yaml(spec))
        bus.subscribe(StateRecorder(paths, lab=spec.name, command="up"))
        bus.emit(ev.RUN, f"labctl up: lab {spec.name}, {len(spec.nodes)} nodes", status=ev.RUNNING)
        run = UpRun(paths, spec, bus, parallel=parallel, merge_kubeconfig=merge_kubeconfig,
                    connect_deadline=connect_deadline, vagrant_env=vagrant_env)
        try:
            for name, stage, announce in UP:
                if announce:
                    with _stage(bus, name, announce if isinstance(announce, str) else ""):
                        stage(run)
                else:
                    stage(run)
            result = run.outcome()
            result.seconds = time.monotonic() - started
            bus.emit(ev.RUN, result.message, status=ev.DONE, data=result.to_dict())
            return result
        except KeyboardInterrupt:
            if run.engine is not None:
                run.engine.abort()
            bus.emit(ev.RUN, "interrupted; run `labctl up` again to continue", status=ev.FAILED, data={"result": "interrupted"})
            raise
        except BaseException as err:
            msg = err.message if isinstance(err, LabError) else f"{type(err).__name__}: {err}"
            bus.emit(ev.RUN, msg, status=ev.FAILED, data=_failure_data(err))
            raise
        finally:
            for s in run.sessions.values():
                s.close()


@dataclass
class UpRun:
    """What the stages of `labctl up` hand on to each other."""

    paths: LabPaths
    spec: LabSpec
    bus: ev.EventBus
    parallel: int | None = None
    merge_kubeconfig: Path | None = None
    connect_deadline: float = CONNECT_DEADLINE
    vagrant_env: Mapping[str, str] | None = None
    sessions: dict[str, Any] = field(default_factory=dict)
    driver: Any = None
    engine: Any = None
    booted: list[str] = field(default_factory=list)
    plans: dict[str, Any] = field(default_factory=dict)
    bootstrap: Any = None

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.spec.nodes]

    def outcome(self) -> UpResult:
        res = self.bootstrap
        return UpResult(
            lab=self.spec.name,
            nothing_to_do=not self.booted and not res.ran and not res.kubeconfig_changed,
            booted=self.booted,
            ran=res.ran,
            skipped=res.skipped,
            kubeconfig=str(self.paths.kubeconfig),
            merged_into=str(self.merge_kubeconfig) if self.merge_kubeconfig else None,
        )


def _render(run: UpRun) -> None:
    from labctl.render.lab import render_lab

    rendered = render_lab(run.spec, run.paths)
    if rendered.written:
        run.bus.emit(ev.INFO, f"rendered {len(rendered.written)} files into {run.paths.root}")


def _machines(run: UpRun) -> None:
    """Boot what is not running (one `vagrant up NAME` each); leave the rest alone."""
    run.driver = driver_for(run.paths, run.vagrant_env)
    states = run.driver.status()
    for name in run.names:
        st = states.get(name)
        run.bus.emit(ev.MACHINE, st.state if st else "unknown", node=name, status=st.state if st else "unknown")
    run.booted = [n for n in run.names if states.get(n) is None or states[n].state != "running"]
    if run.booted:
        def on_event(name: str, what: str) -> None:
            run.bus.emit(ev.MACHINE, f"vagrant up: {what}", node=name, status=what)

        run.driver.up(run.booted, max_parallel=run.parallel or 3, provider=run.spec.provider, on_event=on_event)


def _connect(run: UpRun) -> None:
    from labctl.bootstrap.engine import Engine

    run.engine = Engine(run.spec, run.paths, run.sessions, run.bus, parallel=run.parallel,
                        merge_kubeconfig=run.merge_kubeconfig)

    def connect(name: str) -> None:
        # ssh-config is re-read after every up: the forwarded port may have moved.
        run.sessions[name] = open_session(run.paths, run.driver.ssh_target(name), deadline=run.connect_deadline)
        run.engine.gather(name)  # right away: no node waits for the slowest to connect

    _each_node(connect, run.names, run.parallel)


def _plan(run: UpRun) -> None:
    run.plans = run.engine.plan()


def _bootstrap(run: UpRun) -> None:
    run.bootstrap = run.engine.execute(run.plans)


# `labctl up` after validation and the doctor (which only read, and run before the
# lock): (stage, what it does, how it is announced). Stages the engine runs announce
# their own phases (False); the others get a phase event with the given text.
UP: tuple[tuple[str, Callable[[UpRun], None], bool | str], ...] = (
    ("render", _render, True),
    ("machines", _machines, True),
    ("connect", _connect, "and read each node's facts"),
    ("plan", _plan, False),
    ("bootstrap", _bootstrap, False),
)


def _each_node(fn, names: Sequence[str], parallel: int | None) -> None:
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


# ------------------------------------------------------------------ halt, destroy, snapshots


def _changing(lab_dir: Path, command: str, sinks: Sequence[ev.Sink], fn, *, vagrant_env=None):
    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    if not paths.vagrantfile.exists():
        raise NotFound(f"lab {spec.name} in {paths.root} has no machines (no Vagrantfile)", hint="run `labctl up` first")
    bus = ev.EventBus(sinks)
    with lab_lock(paths, command):
        bus.emit(ev.RUN, f"labctl {command}: lab {spec.name}", status=ev.RUNNING)
        try:
            result = fn(paths, spec, driver_for(paths, vagrant_env), bus)
        except BaseException as err:
            bus.emit(ev.RUN, err.message if isinstance(err, LabError) else str(err), status=ev.FAILED, data=_failure_data(err))
            raise
        bus.emit(ev.RUN, f"labctl {command}: done", status=ev.DONE)
        return result


def halt(lab_dir: Path, *, sinks: Sequence[ev.Sink] = (), vagrant_env=None) -> list[str]:
    def fn(paths, spec, driver, bus):
        names = [n.name for n in spec.nodes]
        driver.halt(names)
        for n in names:
            bus.emit(ev.MACHINE, "halted", node=n, status="poweroff")
        return names

    return _changing(lab_dir, "halt", sinks, fn, vagrant_env=vagrant_env)


def destroy(lab_dir: Path, *, sinks: Sequence[ev.Sink] = (), vagrant_env=None) -> list[str]:
    """Remove the VMs and everything labctl knows about them; keep lab.yaml."""
    from labctl.lab.state import forget_state
    from labctl.remote.hostkeys import forget_host_keys

    def fn(paths, spec, driver, bus):
        names = [n.name for n in spec.nodes]
        driver.destroy()
        for n in names:
            bus.emit(ev.MACHINE, "destroyed", node=n, status="not_created")
        forget_host_keys(paths.known_hosts, names)
        removed = []
        for p in (paths.known_hosts, paths.kubeconfig):
            if p.exists():
                p.unlink()
                removed.append(str(p))
        if forget_state(paths):
            removed.append(str(paths.state))
        if paths.logs.is_dir():
            shutil.rmtree(paths.logs)
        return removed

    return _changing(lab_dir, "destroy", sinks, fn, vagrant_env=vagrant_env)


def snapshot(lab_dir: Path, action: str, name: str | None = None, *, sinks: Sequence[ev.Sink] = (), vagrant_env=None):
    if action == "list":
        paths = LabPaths(Path(lab_dir))
        load_spec(paths.root)
        if not paths.vagrantfile.exists():
            return {}
        return driver_for(paths, vagrant_env).snapshot_list()
    if action not in ("save", "restore", "delete"):
        raise UsageError(f"unknown snapshot action {action!r}", hint="use save, restore, list or delete")
    if not name:
        raise UsageError(f"snapshot {action} needs a NAME", hint=f"labctl snapshot {action} NAME")

    def fn(paths, spec, driver, bus):
        if action in ("restore", "delete"):
            have = driver.snapshot_list()
            if not any(name in snaps for snaps in have.values()):
                known = sorted({s for snaps in have.values() for s in snaps})
                raise NotFound(f"no snapshot named {name!r} in lab {spec.name}",
                               hint="snapshots: " + (", ".join(known) if known else "none; `labctl snapshot save NAME` makes one"))
        getattr(driver, f"snapshot_{action}")(name)
        return name

    return _changing(lab_dir, f"snapshot {action}", sinks, fn, vagrant_env=vagrant_env)


def kubeconfig(lab_dir: Path, *, merge_into: Path | None = None) -> Path:
    """The lab's kubeconfig path; with ``merge_into``, also merge it there."""
    import yaml

    from labctl.bootstrap.cluster import merge_kubeconfig

    paths = LabPaths(Path(lab_dir))
    if not paths.kubeconfig.exists():
        raise NotFound(f"{paths.kubeconfig} does not exist", hint="run `labctl up`; it writes the kubeconfig when the cluster is ready")
    if merge_into is not None:
        merge_kubeconfig(yaml.safe_load(paths.kubeconfig.read_text()), Path(merge_into))
        return Path(merge_into)
    return paths.kubeconfig
