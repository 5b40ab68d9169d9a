"""labctl commands (artifacts): cache [prune|fetch], bundle export|import.

Each parses its options, calls one labctl.artifacts.api function and renders the
result; labctl.artifacts (yaml, filelock, urllib) is imported inside the bodies.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from labctl.cli import app

_SETTINGS = dict(no_args_is_help=False, add_completion=False, rich_markup_mode=None,
                 pretty_exceptions_enable=False)
cache_app = typer.Typer(name="cache", invoke_without_command=True, **_SETTINGS,
                        help="The host's download cache: list it (default), fetch the set into it, prune it.")
bundle_app = typer.Typer(name="bundle", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                         pretty_exceptions_enable=False,
                         help="Carry the cache to hosts without internet: export it to one file, import it there.")
app.add_typer(cache_app)
app.add_typer(bundle_app)

json_option = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
set_option = Annotated[str, typer.Option("--set", help="An artifact set: a shipped id or a YAML file "
                                         "(default: $LABCTL_ARTIFACT_SET, else the shipped k8s-1.27.16).",
                                         show_default=False)]
arch_help = "host (this machine's), amd64, arm64 or all."


def _default_set() -> str:
    from labctl.artifacts.model import default_set

    return default_set()  # $LABCTL_ARTIFACT_SET, as `labctl up` reads it


def _mb(n: Optional[int]) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


class _Progress:
    """Download progress on stderr (stdout stays the result): one line per artifact,
    plus a live percentage on a terminal. Called from the cache's worker threads."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.lock = threading.Lock()
        self.started: set[str] = set()
        self.last = 0.0

    def __call__(self, artifact_id: str, done: int, total: Optional[int]) -> None:
        with self.lock:
            finished = total is not None and done >= total
            if finished:
                self.started.discard(artifact_id)
                self._line(f"{artifact_id}: {_mb(done)}")
            elif artifact_id not in self.started:
                self.started.add(artifact_id)
                if not self.tty:
                    self._line(f"{artifact_id}: downloading {_mb(total)}")
            elif self.tty and time.monotonic() - self.last > 0.2:
                self.last = time.monotonic()
                pct = f" {100 * done // total}%" if total else ""
                self.stream.write(f"\r{artifact_id}: {_mb(done)}{pct}\033[K")
                self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()


@cache_app.callback()
def cache(ctx: typer.Context, as_json: json_option = False) -> None:
    """List what the cache holds, with sizes and the total."""
    if ctx.invoked_subcommand is not None:
        return
    from labctl.artifacts.api import cache_report
    from labctl.cli.output import emit_json, table

    report = cache_report()
    if as_json:
        emit_json({"ok": True, **report.to_dict()})
        return
    rows = [[e.id or "?", e.version or "-", e.arch or "-", e.kind, _mb(e.size), e.last_used or "-", e.sha256[:12]]
            for e in sorted(report.entries, key=lambda e: (e.kind, e.id, e.arch or ""))]
    if rows:
        typer.echo(table(rows, ["ID", "VERSION", "ARCH", "KIND", "SIZE", "LAST USED", "SHA256"]))
    typer.echo(f"{len(rows)} cached, {_mb(report.total)} in {report.root}")


@cache_app.command("fetch")
def cache_fetch(
    arch: Annotated[str, typer.Option("--arch", help=arch_help)] = "host",
    set_name: set_option = "",
    parallel: Annotated[int, typer.Option("--parallel", help="Downloads at once.")] = 4,
    as_json: json_option = False,
) -> None:
    """Download every file of the artifact set into the cache (once per host)."""
    from labctl.artifacts.api import cache_fetch as fetch
    from labctl.cli.output import emit_json

    report = fetch(arch=arch, set_name=set_name or _default_set(), parallel=parallel, progress=_Progress())
    if as_json:
        emit_json({"ok": True, **report.to_dict()})
        return
    typer.echo(f"set {report.set_id} ({', '.join(report.archs)}): {len(report.paths)} files in {report.root}; "
               f"downloaded {_mb(report.received)}, {report.hits} already cached")


@cache_app.command("prune")
def cache_prune(
    everything: Annotated[bool, typer.Option("--all", help="Empty the cache.")] = False,
    set_name: set_option = "",
    as_json: json_option = False,
) -> None:
    """Remove what the artifact set does not pin (older versions), or everything."""
    from labctl.artifacts.api import cache_prune as prune
    from labctl.cli.output import emit_json

    result = prune(everything=everything, set_name=set_name or _default_set())
    if as_json:
        emit_json({"ok": True, "removed": [e.to_dict() for e in result.removed], "freed": result.freed,
                   "partials": result.partials})
        return
    for e in result.removed:
        typer.echo(f"removed {e.id or e.sha256[:12]} {e.version} {e.arch or ''}".rstrip())
    typer.echo(f"freed {_mb(result.freed)}" + (f", {result.partials} partial downloads" if result.partials else ""))


@bundle_app.command("export")
def bundle_export(
    file: Annotated[Path, typer.Argument(help="The bundle to write (.tar, or .tar.gz/.tgz to compress).")],
    arch: Annotated[str, typer.Option("--arch", help=arch_help)] = "all",
    set_name: set_option = "",
    as_json: json_option = False,
) -> None:
    """Write the cached artifact set to one file, for hosts without internet."""
    from labctl.artifacts.api import bundle_export as export
    from labctl.cli.output import emit_json, warn

    result = export(file, arch=arch, set_name=set_name or _default_set())
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
        return
    if result.missing_images:
        warn(f"{len(result.missing_images)} image(s) not cached, not in the bundle: {', '.join(result.missing_images)}")
    typer.echo(f"wrote {result.path}: set {result.set_id}, {result.entries} entries, {_mb(result.size)}")


@bundle_app.command("import")
def bundle_import(
    file: Annotated[Path, typer.Argument(help="A bundle made by `labctl bundle export`.")],
    as_json: json_option = False,
) -> None:
    """Verify every file of a bundle, then add what the cache lacks."""
    from labctl.artifacts.api import bundle_import as import_
    from labctl.cli.output import emit_json

    result = import_(file)
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
        return
    typer.echo(f"imported {result.path}: set {result.set_id}, {result.entries} entries verified, "
               f"{result.added} added ({_mb(result.added_bytes)})")
