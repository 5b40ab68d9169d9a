"""What every command gets from the root callback: the lab folder and the flags,
and the option types shared by commands (ranges are checked by click: exit USAGE)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from labctl.errors import LabFolderError, UsageError, clip

lab_dir_option = Annotated[
    Optional[Path],
    typer.Option(
        "--dir",
        "-C",
        help="The lab folder (default: $LABCTL_DIR or the current folder).",
        show_default=False,
    ),
]


def seconds(value: Optional[float]) -> Optional[float]:
    """A click callback for a duration: finite and not negative (nan and inf are not time)."""
    if value is not None and (not math.isfinite(value) or value < 0):
        raise typer.BadParameter(f"{value} is not a number of seconds (0 or more)")
    return value


def lab_folder(chosen: Path | str, origin: str = "--dir") -> Path:
    """``chosen`` as an absolute lab folder path. It need not exist (init and up make
    it), but it must be usable: not a file, not under a file."""
    try:
        path = Path(chosen).expanduser().resolve()
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        is_dir = probe.is_dir()
    except OSError as exc:
        raise LabFolderError(f"lab folder {clip(str(chosen))}: {exc.strerror or type(exc).__name__}",
                             hint=f"pass {origin} a folder you can read and write") from None
    except (ValueError, RuntimeError) as exc:
        # ValueError: a NUL byte; RuntimeError: ~nosuchuser or a symlink loop (3.10-3.12).
        raise UsageError(f"{origin} {clip(str(chosen))}: not a usable path ({clip(exc, 80)})",
                         hint="pass the path of a lab folder") from None
    if not is_dir:
        what = "is a file, not a folder" if probe == path else f"is inside {clip(str(probe), 120)}, which is a file"
        raise LabFolderError(f"lab folder {clip(str(path), 200)} {what}", hint=f"pass {origin} a folder (it is made when missing)")
    return path


@dataclass(frozen=True)
class Ctx:
    lab_dir: Path
    debug: bool = False

    @classmethod
    def make(cls, lab_dir: Path | None, *, debug: bool = False) -> "Ctx":
        if lab_dir is not None:
            return cls(lab_dir=lab_folder(lab_dir), debug=debug)
        env = os.environ.get("LABCTL_DIR")
        try:
            chosen = lab_folder(env, "$LABCTL_DIR") if env else Path.cwd()
        except FileNotFoundError:
            raise LabFolderError("the current folder no longer exists", hint="cd to a lab folder, or pass --dir") from None
        return cls(lab_dir=chosen, debug=debug)


def get(ctx: typer.Context) -> Ctx:
    return ctx.find_root().obj
