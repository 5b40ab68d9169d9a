"""`labctl --help` stays fast: the CLI imports none of paramiko, kubernetes, jinja2
(they are imported inside command bodies and api modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("paramiko", "kubernetes", "jinja2")
ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
argv = sys.argv[1:]
if argv:
    from labctl.cli import main
    try:
        main(argv)
    except SystemExit:
        pass
else:
    import labctl.cli
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))), file=sys.stderr)
"""


def _heavy_imported(*argv: str) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n" + _PROBE
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_import_labctl_cli_is_light():
    assert _heavy_imported() == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["up", "--help"], ["verify", "--help"], ["render", "--help"]])
def test_help_is_light(argv):
    assert _heavy_imported(*argv) == []


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check can fail: a command that renders does import jinja2."""
    assert "jinja2" in _heavy_imported("-C", str(tmp_path), "render")
    assert (tmp_path / "Vagrantfile").is_file()


def test_importtime_of_labctl_help():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "labctl", "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported  # the listing is real
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))
