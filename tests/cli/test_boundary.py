"""The CLI's one error boundary: exit codes, one-line errors with hints, no tracebacks."""

import json
import subprocess
import sys

from labctl import __version__
from labctl.errors import ExitCode


def labctl(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labctl", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_version():
    r = labctl("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"labctl {__version__}"


def test_unknown_option_is_a_usage_error_not_a_crash():
    r = labctl("--bogus")
    assert r.returncode == ExitCode.USAGE
    assert "No such option: --bogus" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_unknown_command_is_a_usage_error():
    r = labctl("fly")
    assert r.returncode == ExitCode.USAGE
    assert "Traceback" not in r.stderr


def test_lab_error_is_one_line_with_a_hint_and_its_exit_code(tmp_path):
    (tmp_path / "lab.yaml").write_text("nodez: []\n")
    r = labctl("--dir", str(tmp_path), "render")
    assert r.returncode == ExitCode.SPEC_INVALID
    lines = r.stderr.strip().splitlines()
    assert lines[0] == "labctl: error: nodez: unknown key"
    assert lines[1].startswith("hint: did you mean 'nodes'")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "Vagrantfile").exists()


def test_json_errors_go_to_stdout_as_one_object(tmp_path):
    (tmp_path / "lab.yaml").write_text("nodez: []\n")
    r = labctl("--dir", str(tmp_path), "render", "--json")
    assert r.returncode == ExitCode.SPEC_INVALID
    payload = json.loads(r.stdout)
    assert payload["ok"] is False and payload["exit_code"] == ExitCode.SPEC_INVALID
    assert payload["message"] == "nodez: unknown key"


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "lab.yaml").write_text("nodez: []\n")
    r = labctl("--debug", "--dir", str(tmp_path), "render")
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "SpecError" in r.stderr
