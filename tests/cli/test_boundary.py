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


# ---------------------------------------------------------------- issue 12: the boundary

import errno  # noqa: E402

import pytest  # noqa: E402
import typer  # noqa: E402

from labctl.cli import main, report  # noqa: E402
from labctl.errors import LabFolderError, NotFound, SpecError  # noqa: E402


def run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("debug", [False, True])
def test_debug_changes_no_exit_code(tmp_path, debug):
    # NotFound (8) from a real command path: a node the default lab does not have.
    r = labctl(*(["--debug"] if debug else []), "-C", str(tmp_path / "lab"), "ssh", "no-such-node")
    assert r.returncode == ExitCode.NOT_FOUND, r.stderr
    assert ("Traceback" in r.stderr) is debug
    assert "labctl: error: no node named 'no-such-node'" in r.stderr  # the line is there with --debug too
    assert not (tmp_path / "lab").exists()


_EXCEPTIONS = [
    (SpecError("nodes[1].ip", "bad"), ExitCode.SPEC_INVALID),
    (NotFound("gone"), ExitCode.NOT_FOUND),
    (LabFolderError("full"), ExitCode.LAB_FOLDER),
    (typer.Exit(8), ExitCode.NOT_FOUND),
    (typer.Exit(0), ExitCode.OK),
    (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    (OSError(errno.ENOSPC, "No space left on device", "/lab/Vagrantfile"), ExitCode.LAB_FOLDER),
    (OSError(errno.EROFS, "Read-only file system", "/lab/.labctl/lock"), ExitCode.LAB_FOLDER),
    (ValueError("x" * 10_000), ExitCode.INTERNAL),
    (RecursionError("maximum recursion depth exceeded"), ExitCode.INTERNAL),
    (MemoryError(), ExitCode.INTERNAL),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), ExitCode.INTERNAL),
    (Exception("line one\nline two\x1b[31m"), ExitCode.INTERNAL),
]


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("exc,code", _EXCEPTIONS, ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(_EXCEPTIONS)])
def test_any_exception_is_one_line_and_its_code(capsys, exc, code, debug):
    try:
        raise exc  # a real traceback for --debug to print
    except BaseException as raised:  # noqa: B902
        got = report(raised, debug=debug)
    err = capsys.readouterr().err
    assert got == code
    traceback_shown = "Traceback" in err
    lines = [line for line in err.splitlines() if line.startswith("labctl: ")]
    if code == ExitCode.OK or isinstance(exc, typer.Exit):
        assert err == ""
        return
    assert traceback_shown is debug
    assert len(lines) == 1 and len(lines[0]) <= 650, err
    if code == ExitCode.INTERNAL:
        assert "hint: this is a bug in labctl" in err


def test_usage_errors_are_one_line_with_a_hint(capsys):
    code, out, err = run(capsys, "init", "--nodes", "many")
    assert code == ExitCode.USAGE
    assert err.splitlines()[0].startswith("labctl: error: Invalid value for '--nodes'")
    assert err.splitlines()[1] == "hint: see `labctl init --help`" and len(err.splitlines()) == 2


@pytest.mark.parametrize("argv", [
    ["init", "--nodes", "99"], ["init", "--nodes", "-1"], ["init", "--name", "My Lab"],
    ["reset", "pod-1", "--timeout", "-5"], ["reset", "pod-1", "--timeout", "nan"], ["apply", "pod-1", "--timeout", "inf"],
])
def test_out_of_range_command_line_values_are_usage_errors(tmp_path, capsys, argv):
    code, out, err = run(capsys, "-C", str(tmp_path), *argv)
    assert code == ExitCode.USAGE, err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_usage_error_with_json_is_one_json_object(tmp_path, capsys):
    code, out, err = run(capsys, "-C", str(tmp_path), "init", "--nodes", "99", "--json")
    assert code == ExitCode.USAGE
    payload = json.loads(out)
    assert payload["ok"] is False and payload["exit_code"] == ExitCode.USAGE and payload["error"] == "UsageError"


def test_lab_folder_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    for lab in (f, f / "lab"):
        code, out, err = run(capsys, "-C", str(lab), "render")
        assert code == ExitCode.LAB_FOLDER, err
        assert err.startswith(f"labctl: error: lab folder {lab} ") and len(err.splitlines()) == 2
    assert f.read_text() == "x"


def test_labctl_dir_env_that_is_a_file(tmp_path, capsys, monkeypatch):
    f = tmp_path / "afile"
    f.write_text("x")
    monkeypatch.setenv("LABCTL_DIR", str(f))
    code, _, err = run(capsys, "render")
    assert code == ExitCode.LAB_FOLDER and "$LABCTL_DIR" in err


def test_a_path_no_os_accepts_is_a_usage_error(capsys):
    code, _, err = run(capsys, "-C", "lab\x00dir", "render")
    assert code == ExitCode.USAGE and "Traceback" not in err


def test_help_imports_no_pydantic():
    """The spec's model library stays off the start-up path (like paramiko, kubernetes, jinja2)."""
    code = ("import sys\nfrom labctl.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml') or m.startswith('labctl.spec')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
