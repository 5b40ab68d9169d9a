"""labctl verify [CHECK ...] | --all [--json] [--junit FILE]."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from labctl.cli import app
from labctl.cli.context import get


@app.command()
def verify(
    ctx: typer.Context,
    checks: Optional[List[str]] = typer.Argument(None, help="Check ids or groups (pod-1 also runs pod-1-*).", show_default=False),
    all_checks: bool = typer.Option(False, "--all", help="Run every check, independent ones at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="FILE", help="Also write the report as JUnit XML.", show_default=False),
    deadline: Optional[float] = typer.Option(None, "--deadline", metavar="SECONDS", help="Cap each check's retrying (default: its own deadline).", show_default=False),
) -> None:
    """Check the lab against the course: exit 0 when all pass, 1 when some fail."""
    from labctl.verify import verify as run
    from labctl.report.verify import render_json, render_junit, render_text
    from labctl.errors import ExitCode

    c = get(ctx)
    report = run(c.lab_dir, checks or [], all_checks=all_checks, deadline=deadline)
    if junit is not None:
        from labctl.lab.fsutil import atomic_write

        atomic_write(junit, render_junit(report))
    typer.echo(render_json(report) if as_json else render_text(report))
    # sys.exit, not typer.Exit: the CLI runs click with standalone_mode=False, where
    # typer.Exit's code is returned to labctl.cli.main and lost.
    raise SystemExit(int(ExitCode.OK if report.ok else ExitCode.CHECKS_FAILED))
