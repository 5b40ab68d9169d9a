"""labctl verify [CHECK ...] | --all [--strict/--no-strict] [--json] [--junit FILE] [--deadline SECONDS]."""

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
    strict: Optional[bool] = typer.Option(None, "--strict/--no-strict", help="Count a skipped check as failed (default: on with --all).", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="FILE", help="Also write the report as JUnit XML.", show_default=False),
    deadline: Optional[float] = typer.Option(None, "--deadline", metavar="SECONDS", help="Stop retrying checks after SECONDS (> 0); verify ends a few seconds later at most.", show_default=False),
) -> None:
    """Check the lab against the course: exit 0 when all pass, 1 when some fail.

    If verify cannot start (no kubeconfig, invalid lab.yaml), the report still comes
    out (every check an error) and the exit code is that error's.
    """
    from labctl.verify import verify as run
    from labctl.report.verify import render_json, render_junit, render_text
    from labctl.errors import ExitCode

    from labctl.cli.output import print_error
    from labctl.errors import UsageError
    from labctl.verify.model import VerifyReport

    c = get(ctx)
    try:
        report = run(c.lab_dir, checks or [], all_checks=all_checks, deadline=deadline, strict=strict)
    except UsageError as err:
        if not as_json:
            raise
        # One JSON shape always: the report object, no checks, the error; nothing written.
        typer.echo(render_json(VerifyReport([], 0.0, strict=bool(strict), error=err)))
        print_error(err)
        raise SystemExit(int(err.exit_code)) from None
    if junit is not None:
        from labctl.lab.fsutil import atomic_write

        atomic_write(junit, render_junit(report))
    typer.echo(render_json(report) if as_json else render_text(report))
    if report.error is not None:
        # The report is out (stdout, --junit); the error line (stderr) and its exit code
        # say why nothing was checked. Not re-raised: --json must stay one JSON object.
        print_error(report.error)
        raise SystemExit(int(report.error.exit_code))
    # sys.exit, not typer.Exit: the CLI runs click with standalone_mode=False, where
    # typer.Exit's code is returned to labctl.cli.main and lost.
    raise SystemExit(int(ExitCode.OK if report.ok else ExitCode.CHECKS_FAILED))
