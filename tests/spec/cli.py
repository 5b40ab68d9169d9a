"""Run the real CLI entry point (labctl.cli.main) in-process and collect its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from labctl.spec.initfile import spec_yaml
from labctl.spec import default_spec


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run_cli(capsys, *args: str) -> Outcome:
    from labctl.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def default_dict(workers: int = 2) -> dict:
    """The default spec as parsed lab.yaml data (what `labctl init` writes)."""
    return yaml.safe_load(spec_yaml(default_spec(workers)))


def write_lab(lab: Path, data) -> Path:
    lab.mkdir(parents=True, exist_ok=True)
    path = lab / "lab.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def lab_files(lab: Path) -> set[str]:
    return {str(p.relative_to(lab)) for p in lab.rglob("*")}
