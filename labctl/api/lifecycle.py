"""The lab's lifecycle as named sequences of stages (Molecule's scenarios, in small).

    UP = validate -> doctor -> render -> machines -> connect -> plan -> bootstrap phases

Every command that changes the lab holds the lab lock. Progress goes out as events
(labctl.api.events) to the state file and to whatever renderer the CLI subscribed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labctl.api import events as ev
from labctl.api.lock import lab_lock
from labctl.api.paths import LabPaths
from labctl.api.spec import LabSpec, load_spec
from labctl.errors import LabError, NotFound, UsageError

UP_STAGES = ("validate", "doctor", "render", "machines", "connect", "plan", "bootstrap")
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
    from labctl.api.spec import default_spec, validate

    if paths.spec.exists():
        spec = load_spec(paths.root)
        if workers is not None and workers != len(spec.workers):
            raise UsageError(
                f"--nodes {workers} does not match lab.yaml in {paths.root}, which has {len(spec.workers)} workers",
                hint="drop --nodes (lab.yaml decides), or edit the nodes in lab.yaml; a running lab must be destroyed first",
            )
    else:
        spec = default_spec(2 if workers is None else workers)
    if provider is not None:
        spec = replace(spec, provider=provider)
    validate(spec)
    return spec


def driver_for(paths: LabPaths, env: Mapping[str, str] | None = None):
    from labctl.connectors.vagrant import VagrantDriver

    return VagrantDriver(paths.root, log_dir=paths.logs, env=env)


def open_session(paths: LabPaths, target, *, deadline: float = CONNECT_DEADLINE, secrets: Iterable[str] = ()):
    from labctl.connectors.ssh import SSHSession

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
    from labctl.api.state import StateRecorder
    from labctl.api.spec import validate

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
        from labctl.api import doctor

        doctor.require_ready(spec)
    with lab_lock(paths, "up"):
        if workers is not None and not paths.spec.exists():
            from labctl.api.initfile import init_lab

            # Written so that every later command (status, halt, ...) sees the same nodes.
            init_lab(paths, workers=workers)
        bus.subscribe(StateRecorder(paths, lab=spec.name, command="up"))
        bus.emit(ev.RUN, f"labctl up: lab {spec.name}, {len(spec.nodes)} nodes", status=ev.RUNNING)
        sessions: dict[str, Any] = {}
        running: dict[str, Any] = {}
        try:
            result = _up(paths, spec, bus, sessions, running, parallel=parallel, merge_kubeconfig=merge_kubeconfig,
                         connect_deadline=connect_deadline, vagrant_env=vagrant_env)
            result.seconds = time.monotonic() - started
            bus.emit(ev.RUN, result.message, status=ev.DONE, data=result.to_dict())
            return result
        except KeyboardInterrupt:
            if "engine" in running:
                running["engine"].abort()
            bus.emit(ev.RUN, "interrupted; run `labctl up` again to continue", status=ev.FAILED, data={"result": "interrupted"})
            raise
        except BaseException as err:
            msg = err.message if isinstance(err, LabError) else f"{type(err).__name__}: {err}"
            bus.emit(ev.RUN, msg, status=ev.FAILED, data=_failure_data(err))
            raise
        finally:
            for s in sessions.values():
                s.close()


def _up(paths, spec, bus, sessions, running, *, parallel, merge_kubeconfig, connect_deadline, vagrant_env) -> UpResult:
    from labctl.api.bootstrap.engine import Engine

    with _stage(bus, "render"):
        from labctl.api.render import render_lab

        rendered = render_lab(spec, paths)
        if rendered.written:
            bus.emit(ev.INFO, f"rendered {len(rendered.written)} files into {paths.root}")
    names = [n.name for n in spec.nodes]
    driver = driver_for(paths, vagrant_env)
    booted: list[str] = []
    with _stage(bus, "machines"):
        states = driver.status()
        for name in names:
            st = states.get(name)
            bus.emit(ev.MACHINE, st.state if st else "unknown", node=name, status=st.state if st else "unknown")
        booted = [n for n in names if states.get(n) is None or states[n].state != "running"]
        if booted:
            def on_event(name: str, what: str) -> None:
                bus.emit(ev.MACHINE, f"vagrant up: {what}", node=name, status=what)

            driver.up(booted, max_parallel=parallel or 3, provider=spec.provider, on_event=on_event)
    engine = running["engine"] = Engine(spec, paths, sessions, bus, parallel=parallel, merge_kubeconfig=merge_kubeconfig)
    with _stage(bus, "connect", "and read each node's facts"):
        def connect(name: str) -> None:
            # ssh-config is re-read after every up: the forwarded port may have moved.
            sessions[name] = open_session(paths, driver.ssh_target(name), deadline=connect_deadline)
            engine.gather(name)  # right away: no node waits for the slowest to connect

        _each_node(connect, names, parallel)
    plans = engine.plan()
    res = engine.execute(plans)
    nothing = not booted and not res.ran and not res.kubeconfig_changed
    return UpResult(
        lab=spec.name,
        nothing_to_do=nothing,
        booted=booted,
        ran=res.ran,
        skipped=res.skipped,
        kubeconfig=str(paths.kubeconfig),
        merged_into=str(merge_kubeconfig) if merge_kubeconfig else None,
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


# ------------------------------------------------------------------ status


@dataclass
class NodeStatus:
    name: str
    role: str
    ip: str
    vm: str
    ready: bool | None = None
    internal_ip: str = ""
    kubelet_version: str = ""
    steps_failed: list[str] = field(default_factory=list)


@dataclass
class StatusResult:
    lab: str
    nodes: list[NodeStatus]
    cluster_note: str = ""
    last_run: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"lab": self.lab, "nodes": [asdict(n) for n in self.nodes], "cluster_note": self.cluster_note,
                "last_run": self.last_run}


GET_NODES_COMMAND = "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json"


def status(lab_dir: Path, *, vagrant_env: Mapping[str, str] | None = None) -> StatusResult:
    """Each VM's state and, from the master, each node's Ready, InternalIP and version."""
    from labctl.api.bootstrap.cluster import parse_nodes
    from labctl.api.state import read_state

    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    rows = {n.name: NodeStatus(n.name, n.role, n.ip, "not rendered") for n in spec.nodes}
    note = ""
    if paths.vagrantfile.exists():
        states = driver_for(paths, vagrant_env).status()
        for name, row in rows.items():
            row.vm = states[name].state if name in states else "unknown"
        master = spec.master.name
        if rows[master].vm == "running":
            try:
                session = open_session(paths, driver_for(paths, vagrant_env).ssh_target(master), deadline=20.0)
                try:
                    res = session.run(GET_NODES_COMMAND, timeout=60.0, log_output=False)
                finally:
                    session.close()
                if res.rc == 0:
                    for item in parse_nodes(res.stdout):
                        if item["name"] in rows:
                            r = rows[item["name"]]
                            r.ready, r.internal_ip, r.kubelet_version = item["ready"], item["internal_ip"], item["kubelet_version"]
                            r.role = item["roles"] if item["roles"] != "<none>" else r.role
                else:
                    note = f"the cluster did not answer on {master} (kubectl exited {res.rc}); run `labctl up`"
            except LabError as err:
                note = f"cannot ask {master} for nodes: {err.message}"
        else:
            note = f"{master} is not running; run `labctl up`"
    else:
        note = "the lab was never brought up; run `labctl up`"
    state = read_state(paths)
    last = None
    if state:
        last = {k: state.get(k) for k in ("command", "result", "phase", "started", "finished", "error")}
        for name, rec in (state.get("nodes") or {}).items():
            if name in rows:
                rows[name].steps_failed = [s for s, v in rec.get("steps", {}).items() if v.get("status") == ev.FAILED]
    return StatusResult(spec.name, list(rows.values()), note, last)


# ------------------------------------------------------------------ ssh


def ssh_argv(lab_dir: Path, node: str, *, vagrant_env: Mapping[str, str] | None = None) -> list[str]:
    """The system `ssh` command line for an interactive login, pinned to the lab's keys."""
    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    spec.node(node)
    t = driver_for(paths, vagrant_env).ssh_target(node)
    return [
        "ssh", "-t",
        "-i", str(t.key_file),
        "-p", str(t.port),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={paths.known_hosts}",
        # The lab's known_hosts pins keys by node name; the forwarded port may move.
        "-o", f"HostKeyAlias={node}",
        "-o", "StrictHostKeyChecking=accept-new",
        f"{t.user}@{t.host}",
    ]


def ssh_run(lab_dir: Path, node: str, command: str, *, out=None, err=None,
            vagrant_env: Mapping[str, str] | None = None) -> int:
    """Run ``command`` on ``node`` through the lab's SSH session; its exit code."""
    import sys

    paths = LabPaths(Path(lab_dir))
    spec = load_spec(paths.root)
    spec.node(node)
    out = out or sys.stdout
    err = err or sys.stderr
    session = open_session(paths, driver_for(paths, vagrant_env).ssh_target(node), deadline=30.0)
    try:
        def on_line(stream: str, line: str) -> None:
            (err if stream == "stderr" else out).write(line + "\n")

        res = session.run(command, on_line=on_line, timeout=3600.0)
    finally:
        session.close()
    return 255 if res.rc is None else (128 + 15 if res.rc == -1 else res.rc)


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
    from labctl.api.state import forget_state
    from labctl.connectors.hostkeys import forget_host_keys

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

    from labctl.api.bootstrap.cluster import merge_kubeconfig

    paths = LabPaths(Path(lab_dir))
    if not paths.kubeconfig.exists():
        raise NotFound(f"{paths.kubeconfig} does not exist", hint="run `labctl up`; it writes the kubeconfig when the cluster is ready")
    if merge_into is not None:
        merge_kubeconfig(yaml.safe_load(paths.kubeconfig.read_text()), Path(merge_into))
        return Path(merge_into)
    return paths.kubeconfig
