"""labctl commands (lab): init, render, doctor.

Each parses its options, calls one labctl API function and renders the result; the
api modules (jinja2, yaml) are imported inside the bodies to keep start-up fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from labctl.cli import app
from labctl.cli.context import get

json_option = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]


@app.command()
def init(
    ctx: typer.Context,
    nodes: Annotated[int, typer.Option("--nodes", help="Number of worker nodes (0-9).")] = 2,
    name: Annotated[str, typer.Option("--name", help="Lab name (VirtualBox group, VM name prefix).")] = "k8s-lab",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing lab.yaml.")] = False,
    as_json: json_option = False,
) -> None:
    """Write lab.yaml with every default spelled out and explained."""
    from labctl.spec.initfile import init_lab
    from labctl.lab.paths import LabPaths
    from labctl.cli.output import emit_json, warn

    result = init_lab(LabPaths(get(ctx).lab_dir), workers=nodes, name=name, force=force)
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
        return
    for w in result.warnings:
        warn(w)
    verb = "replaced" if result.overwritten else "wrote"
    typer.echo(f"{verb} {result.path} ({', '.join(n.name for n in result.spec.nodes)})")


@app.command()
def render(ctx: typer.Context, as_json: json_option = False) -> None:
    """Write the Vagrantfile and every node's bootstrap scripts into the lab folder."""
    from labctl.lab.paths import LabPaths
    from labctl.render.lab import render_lab_dir
    from labctl.cli.output import emit_json, warn

    paths = LabPaths(get(ctx).lab_dir)
    result, warnings = render_lab_dir(paths)
    if as_json:
        emit_json({"ok": True, "warnings": warnings, **result.to_dict(paths.root)})
        return
    for w in warnings:
        warn(w)
    for p in result.written:
        typer.echo(f"wrote {p.relative_to(paths.root)}")
    for p in result.removed:
        typer.echo(f"removed {p.relative_to(paths.root)}")
    typer.echo(f"{len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.removed)} removed in {paths.root}")


_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


@app.command()
def doctor(ctx: typer.Context, as_json: json_option = False) -> None:
    """Check that this host can run the lab: tools, their versions, resources, routes."""
    from labctl.host.doctor import run_doctor
    from labctl.cli.output import emit_json
    from labctl.errors import ExitCode

    report = run_doctor(get(ctx).lab_dir)
    if as_json:
        emit_json(report.to_dict())
    else:
        for f in report.findings:
            typer.echo(f"{_MARK[f.level]}  {f.message}")
            if f.fix and f.level != "ok":
                typer.echo(f"      fix: {f.fix}")
        n = len(report.failures)
        typer.echo("the host is ready for the lab" if report.ok else f"{n} problem{'s' if n > 1 else ''} to fix before `labctl up`")
    if not report.ok:
        raise typer.Exit(int(ExitCode.HOST_NOT_READY))
