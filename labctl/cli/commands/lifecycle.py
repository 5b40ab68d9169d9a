"""labctl commands (lifecycle): up, status, ssh, halt, destroy, snapshot, kubeconfig.

Each command parses its options, builds the Lab once (labctl.lab.lab.Lab.load), calls
one labctl.lab function with it and renders the result. The lab modules (paramiko,
jinja2, yaml) are imported inside the bodies so that `labctl --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from labctl.cli import app
from labctl.cli.context import get
from labctl.providers import PROVIDERS

json_option = Annotated[bool, typer.Option("--json", help="One JSON object per line (events, then the result).")]


def _lab(ctx: typer.Context, **overrides):
    from labctl.lab.lab import Lab

    return Lab.load(get(ctx).lab_dir, **overrides)


def _at_least(option: str, value: int | None, low: int, high: int | None = None, fix: str = "") -> None:
    """Range checks of options: exit 2 with one line naming the option and the fix."""
    from labctl.errors import UsageError

    if value is None or (value >= low and (high is None or value <= high)):
        return
    allowed = f"{low}..{high}" if high is not None else f"{low} or more"
    raise UsageError(f"{option} {value}: must be {allowed}" + (f" ({fix})" if fix else ""))


def _renderer(as_json: bool):
    from labctl.report.progress import make_renderer

    # Progress goes to stderr in the human form so stdout stays the result; --json
    # puts every event on stdout, one per line, for scripts.
    return make_renderer(as_json=as_json, stream=sys.stdout if as_json else sys.stderr)


@app.command()
def up(
    ctx: typer.Context,
    nodes: Annotated[Optional[int], typer.Option("--nodes", help="Number of worker nodes (a new lab; must match lab.yaml).")] = None,
    provider: Annotated[Optional[str], typer.Option("--provider", help=f"{' or '.join(PROVIDERS)} (default: lab.yaml).")] = None,
    parallel: Annotated[Optional[int], typer.Option("--parallel", help="Machines booted / nodes prepared at once.")] = None,
    merge_kubeconfig: Annotated[bool, typer.Option("--merge-kubeconfig", help="Also add the lab as a context to ~/.kube/config.")] = False,
    kubeconfig_path: Annotated[Optional[Path], typer.Option("--kubeconfig-path", help="Merge into this file instead of ~/.kube/config.")] = None,
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help="Add this offline bundle (labctl bundle export) to the host cache first.")] = None,
    as_json: json_option = False,
) -> None:
    """Bring the lab up (or continue where the last run stopped)."""
    from labctl.bootstrap.cluster import default_user_kubeconfig
    from labctl.cli.output import emit_json
    from labctl.lab.up import up as lab_up
    from labctl.spec import MAX_WORKERS, MIN_WORKERS

    _at_least("--nodes", nodes, MIN_WORKERS, MAX_WORKERS, "the number of workers besides the master")
    _at_least("--parallel", parallel, 1, fix="--parallel 1 does one machine at a time")
    merge = (kubeconfig_path or default_user_kubeconfig()) if (merge_kubeconfig or kubeconfig_path) else None
    lab = _lab(ctx, workers=nodes, provider=provider)
    result = lab_up(lab, sinks=[_renderer(as_json)], parallel=parallel, merge_kubeconfig=merge, bundle=bundle)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(result.message)
        if result.merged_into:
            typer.echo(f"merged as context {result.lab} into {result.merged_into}")


@app.command()
def status(ctx: typer.Context, as_json: json_option = False) -> None:
    """Each VM's state and each node's Ready, role, InternalIP and kubelet version."""
    from labctl.lab.status import status as lab_status
    from labctl.cli.output import emit_json, table

    result = lab_status(_lab(ctx))
    if as_json:
        emit_json(result.to_dict())
        return
    rows = []
    for n in result.nodes:
        ready = "-" if n.ready is None else ("Ready" if n.ready else "NotReady")
        failed = ",".join(n.steps_failed)
        rows.append([n.name, n.vm, ready, n.role, n.internal_ip or "-", n.kubelet_version or "-", failed])
    typer.echo(f"lab {result.lab}")
    typer.echo(table(rows, ["NODE", "VM", "STATUS", "ROLES", "INTERNAL-IP", "KUBELET", "FAILED STEPS"]))
    if result.cluster_note:
        typer.echo(result.cluster_note)
    if result.last_run and result.last_run.get("result") not in (None, "done"):
        err = result.last_run.get("error") or {}
        typer.echo(f"last `labctl {result.last_run.get('command')}`: {result.last_run.get('result')}"
                   + (f": {err.get('message')}" if err.get("message") else ""))


@app.command(context_settings={"allow_extra_args": True, "allow_interspersed_args": False})
def ssh(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="The node to log in to, e.g. k8s-master.")],
    command: Annotated[Optional[list[str]], typer.Argument(help="A command to run instead of a shell (after --).")] = None,
) -> None:
    """Log in to a node, or run COMMAND on it and return its exit code."""
    import shlex

    from labctl.lab import ssh as remote

    lab = _lab(ctx)
    if command and command[0] == "--":
        command = command[1:]
    if command:
        rc = remote.ssh_run(lab, node, shlex.join(command))
        # SystemExit, not typer.Exit: the error boundary reads a returned 130 as Ctrl-C,
        # and the remote command's own 130 must not be reported as one.
        sys.exit(rc)
    from labctl.host.sshclient import exec_ssh

    exec_ssh(remote.ssh_argv(lab, node))


@app.command()
def halt(ctx: typer.Context, as_json: json_option = False) -> None:
    """Stop the lab's VMs (their disks stay; `labctl up` starts them again).

    A lab without machines (never brought up, or destroyed) has nothing to halt: it
    says so and exits 0, writing nothing."""
    from labctl.cli.output import emit_json
    from labctl.lab.machines import halt as lab_halt

    lab = _lab(ctx)
    result = lab_halt(lab, sinks=[_renderer(as_json)])
    if as_json:
        emit_json(result.to_dict())
    elif result.nothing_to_do:
        typer.echo(f"nothing to halt: lab {lab.spec.name} has no machines (never brought up, or destroyed)")
    else:
        typer.echo("halted: " + ", ".join(result.machines))


@app.command()
def destroy(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    as_json: json_option = False,
) -> None:
    """Remove the lab's VMs, host keys, state and kubeconfig (lab.yaml stays)."""
    from labctl.cli.output import emit_json
    from labctl.errors import Aborted, UsageError
    from labctl.lab.machines import destroy as lab_destroy

    lab = _lab(ctx)
    lab_dir = lab.root
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("destroy needs confirmation and there is no terminal to ask on",
                             hint="pass --yes to destroy the lab's VMs without asking")
        if not typer.confirm(f"Destroy every VM of the lab in {lab_dir}?", default=False):
            raise Aborted("destroy cancelled; nothing was changed", hint="pass --yes to skip the question")
    result = lab_destroy(lab, sinks=[_renderer(as_json)])
    removed = result.removed
    if as_json:
        emit_json(result.to_dict())
    elif result.nothing_to_do:
        typer.echo(f"no machines to destroy in lab {lab.spec.name}; lab.yaml kept"
                   + (f"; removed {', '.join(removed)}" if removed else ""))
    else:
        typer.echo("destroyed; lab.yaml kept" + (f"; removed {', '.join(removed)}" if removed else ""))


@app.command()
def snapshot(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="save, restore, list or delete")],
    name: Annotated[Optional[str], typer.Argument(help="The snapshot's name.")] = None,
    as_json: json_option = False,
) -> None:
    """Save, restore, list or delete a snapshot of every VM of the lab."""
    from labctl.cli.output import emit_json, table
    from labctl.errors import UsageError
    from labctl.lab import machines

    if action != "list" and action not in machines.SNAPSHOT_ACTIONS:
        raise UsageError(f"unknown snapshot action {action!r}", hint="use save, restore, list or delete")
    lab = _lab(ctx)
    if action == "list":
        result = machines.snapshot_list(lab)
    else:
        result = machines.SNAPSHOT_ACTIONS[action](lab, name, sinks=[_renderer(as_json)])
    if action == "list":
        if as_json:
            emit_json({"ok": True, "snapshots": result})
        else:
            typer.echo(table([[m, ", ".join(s) or "-"] for m, s in result.items()], ["MACHINE", "SNAPSHOTS"]))
        return
    if as_json:
        emit_json({"ok": True, "action": action, "snapshot": result})
    else:
        typer.echo(f"snapshot {action}: {result}")


@app.command()
def kubeconfig(
    ctx: typer.Context,
    merge: Annotated[bool, typer.Option("--merge", help="Add the lab as a context to ~/.kube/config.")] = False,
    kubeconfig_path: Annotated[Optional[Path], typer.Option("--kubeconfig-path", help="Merge into this file instead.")] = None,
) -> None:
    """Print the lab's kubeconfig path, or merge it into your kubeconfig."""
    from labctl.bootstrap.cluster import default_user_kubeconfig
    from labctl.lab.kubeconfig import kubeconfig as lab_kubeconfig
    from labctl.lab.paths import LabPaths

    target = (kubeconfig_path or default_user_kubeconfig()) if (merge or kubeconfig_path) else None
    path = lab_kubeconfig(LabPaths(get(ctx).lab_dir), merge_into=target)
    typer.echo(str(path) if target is None else f"merged into {path}")
