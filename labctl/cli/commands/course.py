"""labctl commands (course): exercises, apply, reset.

Each parses its options, calls one labctl.course.apply function and renders the
result; the kubernetes client is imported only inside the api calls.
"""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from labctl.cli import app
from labctl.cli.context import get, seconds

json_option = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
exercises_argument = Annotated[
    Optional[List[str]],
    typer.Argument(help="Exercise ids (see `labctl exercises`).", show_default=False, metavar="EXERCISE"),
]
all_option = Annotated[bool, typer.Option("--all", help="Every exercise of the course.")]
timeout_option = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", callback=seconds, help="How long to wait for old objects to go away."),
]


@app.command("exercises")
def exercises_cmd(as_json: json_option = False) -> None:
    """List the course's exercises."""
    from labctl.course.apply import list_exercises
    from labctl.cli.output import emit_json, table

    found = list_exercises()
    if as_json:
        emit_json({"ok": True, "exercises": [e.to_dict() for e in found]})
        return
    rows = [[e.id, e.description, ", ".join(str(o) for o in e.objects)] for e in found]
    typer.echo(table(rows, ["EXERCISE", "DESCRIPTION", "OBJECTS"]))


def _render(result, as_json: bool) -> None:
    from labctl.cli.output import emit_json

    if as_json:
        emit_json(result.to_dict())
        return
    for o in result.outcomes:
        typer.echo(f"{o.exercise}: {o.kind.lower()}/{o.name} {o.action}")
    if not result.changed:
        typer.echo(f"nothing to {result.command}: {', '.join(result.exercises)} already {'in place' if result.command == 'apply' else 'gone'}")


@app.command()
def apply(
    ctx: typer.Context,
    exercises: exercises_argument = None,
    all_: all_option = False,
    timeout: timeout_option = 60.0,
    as_json: json_option = False,
) -> None:
    """Create exercises' objects in the lab.

    Idempotent: objects that already match their manifest are left alone; a Pod whose
    spec differs is deleted (grace period 1 s) and created again.
    """
    from labctl.course.apply import apply_exercises

    _render(apply_exercises(get(ctx).lab_dir, exercises or [], all_=all_, deadline=timeout), as_json)


@app.command()
def reset(
    ctx: typer.Context,
    exercises: exercises_argument = None,
    all_: all_option = False,
    timeout: timeout_option = 60.0,
    as_json: json_option = False,
) -> None:
    """Delete exercises' objects and wait until gone.

    Deletes with a 1 s grace period (the course's images ignore SIGTERM), then waits
    until the API server no longer has them, up to --timeout.
    """
    from labctl.course.apply import reset_exercises

    _render(reset_exercises(get(ctx).lab_dir, exercises or [], all_=all_, deadline=timeout), as_json)
