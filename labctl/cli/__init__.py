"""labctl's command line: parse, call one api function, render its result.

This module is on the start-up path of every command, `labctl --help` included: it
must not import paramiko, kubernetes, jinja2 or pydantic (tests/render/test_startup.py
and tests/cli/test_boundary.py check).
"""

from __future__ import annotations

import errno
import sys

import typer

from labctl import __version__
from labctl.cli.context import Ctx, lab_dir_option
from labctl.cli.output import print_error
from labctl.errors import ExitCode, LabError, UsageError, clip

app = typer.Typer(
    name="labctl",
    help="A Kubernetes practice lab on your laptop in one command, checked exercise by exercise.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"labctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    lab_dir: lab_dir_option = None,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (exit codes stay the same)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = Ctx.make(lab_dir, debug=debug)


def _register() -> None:
    # Command modules import their heavy dependencies inside the command bodies.
    from labctl.cli import commands  # noqa: F401


_register()

INTERRUPTED = "labctl: interrupted; run the same command again to continue"
# OSErrors that can only mean the storage under the lab folder: LAB_FOLDER wherever they
# come from (a lock file, a removed script), not "a bug in labctl".
_STORAGE = {errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _flags(argv: list[str]) -> tuple[bool, bool]:
    """(--debug, --json) as the user meant them: --debug only among the root options
    (before the command), --json anywhere before a `--` (after it, words go to a node)."""
    own = argv[: argv.index("--")] if "--" in argv else argv
    debug, i = False, 0
    while i < len(own) and own[i].startswith("-"):
        debug = debug or own[i] == "--debug"
        i += 2 if own[i] in ("--dir", "-C") else 1
    return debug, "--json" in own


def main(argv: list[str] | None = None) -> None:
    """The single error boundary: every exception becomes one line (a hint under it) and
    its exit code. --debug adds the traceback above that line and changes nothing else."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug, as_json = _flags(argv)
    try:
        rv = app(args=argv, prog_name="labctl", standalone_mode=False)
    except SystemExit:
        raise  # a command chose its code (labctl verify: 0 or CHECKS_FAILED)
    except BaseException as exc:  # noqa: B902 - this is the boundary
        sys.exit(report(exc, debug=debug, as_json=as_json))
    # Without standalone mode click returns a command's typer.Exit(code) instead of exiting.
    if isinstance(rv, int) and not isinstance(rv, bool) and rv:
        if rv == ExitCode.INTERRUPTED:  # typer turned Ctrl-C into Exit(130) and returned it
            _say(INTERRUPTED)
        sys.exit(rv)


def report(exc: BaseException, *, debug: bool = False, as_json: bool = False) -> int:
    """The boundary's answer to any exception: say what went wrong, once (one line and
    a hint, or one JSON object), and return the exit code. Never raises."""
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    # typer >= 0.22 carries its own copy of click, so click's classes are matched by name.
    if "Exit" in kinds and hasattr(exc, "exit_code"):  # --version, and commands that set a code
        if isinstance(exc.__cause__, KeyboardInterrupt):  # typer's own Ctrl-C handling
            _say(INTERRUPTED)
            return int(ExitCode.INTERRUPTED)
        return int(exc.exit_code)
    if debug:
        _traceback(exc)
    if isinstance(exc, KeyboardInterrupt):
        _say(INTERRUPTED)
        return int(ExitCode.INTERRUPTED)
    if "Abort" in kinds:  # click's answer to Ctrl-C or end of input at a prompt
        _say("labctl: aborted")
        return int(ExitCode.ABORTED)
    err = _as_lab_error(exc, kinds)
    try:
        print_error(err, as_json=as_json)
    except Exception:  # stderr itself is gone (closed pipe): the exit code still tells
        pass
    return int(err.exit_code)


def _as_lab_error(exc: BaseException, kinds: set[str]) -> LabError:
    if isinstance(exc, LabError):
        return exc
    if "ClickException" in kinds:  # usage: a bad option, a value out of range
        ctx = getattr(exc, "ctx", None)
        command = getattr(ctx, "command_path", None) or "labctl"
        return UsageError(exc.format_message(), hint=f"see `{command} --help`")  # type: ignore[attr-defined]
    if isinstance(exc, OSError) and exc.errno in _STORAGE:
        from labctl.lab.fsutil import folder_error

        return folder_error(exc, exc.filename or "the lab folder")
    internal = LabError(f"internal error: {type(exc).__name__}: {clip(exc, 200)}",
                        hint="this is a bug in labctl; run again with --debug and report the traceback")
    internal.exit_code = ExitCode.INTERNAL
    return internal


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except Exception:
        pass


def _traceback(exc: BaseException) -> None:
    import traceback

    try:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    except Exception:
        pass
