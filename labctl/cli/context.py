"""What every command gets from the root callback: the lab folder and the flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

lab_dir_option = Annotated[
    Optional[Path],
    typer.Option(
        "--dir",
        "-C",
        help="The lab folder (default: $LABCTL_DIR or the current folder).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Ctx:
    lab_dir: Path
    debug: bool = False

    @classmethod
    def make(cls, lab_dir: Path | None, *, debug: bool = False) -> "Ctx":
        chosen = lab_dir or Path(os.environ.get("LABCTL_DIR") or Path.cwd())
        return cls(lab_dir=Path(chosen).expanduser().resolve(), debug=debug)


def get(ctx: typer.Context) -> Ctx:
    return ctx.find_root().obj
