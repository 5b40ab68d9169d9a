"""labctl's command line: parse, call one api function, render its result.

This module is on the start-up path of every command, `labctl --help` included: it
must not import paramiko, kubernetes or jinja2 (tests/test_startup.py checks).
"""

from __future__ import annotations

import sys

import typer

from labctl import __version__
from labctl.cli.context import Ctx, lab_dir_option
from labctl.errors import ExitCode, LabError

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
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = Ctx.make(lab_dir, debug=debug)


def _register() -> None:
    # Command modules import their heavy dependencies inside the command bodies.
    from labctl.cli import commands  # noqa: F401


_register()


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def main(argv: list[str] | None = None) -> None:
    """The single error boundary: LabError -> one line, a hint, its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        rv = app(args=argv, prog_name="labctl", standalone_mode=False)
        # Without standalone mode click returns a command's typer.Exit(code) instead of exiting.
        if isinstance(rv, int) and rv:
            if rv == ExitCode.INTERRUPTED:  # typer turned Ctrl-C into Exit(130) and returned it
                print("labctl: interrupted; run the same command again to continue", file=sys.stderr)
            sys.exit(rv)
    except LabError as err:
        if debug:
            raise
        from labctl.cli.output import print_error

        print_error(err, as_json=_wants_json(argv))
        sys.exit(int(err.exit_code))
    except KeyboardInterrupt:
        if debug:
            raise
        print("labctl: interrupted; run the same command again to continue", file=sys.stderr)
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:  # raised by --version and by commands that set a code
        # typer turns Ctrl-C into Exit(130) itself; say what the user can do about it.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            print("labctl: interrupted; run the same command again to continue", file=sys.stderr)
            sys.exit(int(ExitCode.INTERRUPTED))
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors come here too
        # typer >= 0.22 carries its own copy of click, so match click's classes by name
        # in the exception's MRO instead of importing a click that may not be typer's.
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "Abort" in kinds:
            print("labctl: aborted", file=sys.stderr)
            sys.exit(int(ExitCode.ABORTED))
        if "ClickException" in kinds:
            exc.show()
            sys.exit(int(ExitCode.USAGE))
        if debug:
            raise
        print(f"labctl: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: this is a bug in labctl; run again with --debug and report the traceback", file=sys.stderr)
        sys.exit(int(ExitCode.INTERNAL))
