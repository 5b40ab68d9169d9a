"""Every labctl module imports, and every command that needs no hypervisor runs, with
the POSIX-only modules and functions taken away as on Windows (windows_sim.py), and
none of them ends in exit 70 ("a bug in labctl")."""

from __future__ import annotations

import json

import pytest
import typer.main

from labctl.cli import app
from labctl.errors import ExitCode


def test_the_simulation_takes_away_what_windows_lacks(windows_like):
    proc = windows_like.python(
        "import os, signal\n"
        "for m in ('fcntl', 'termios', 'pwd', 'grp', 'resource'):\n"
        "    try:\n"
        "        __import__(m)\n"
        "    except ImportError:\n"
        "        print('no', m)\n"
        "print(sorted(n for n in ('killpg', 'getpgid', 'sysconf', 'setsid') if hasattr(os, n)))\n"
        "print(hasattr(signal, 'SIGKILL'))\n"
        "open('f.txt', 'w').write('a\\nb\\n'); print(open('f.txt', 'rb').read())\n"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:5] == ["no fcntl", "no termios", "no pwd", "no grp", "no resource"]
    assert lines[5:] == ["[]", "False", "b'a\\r\\nb\\r\\n'"]


IMPORT_ALL = """
import importlib, pkgutil, labctl
failed = []
# __main__ runs the CLI when imported; the command tests below run it.
names = [m.name for m in pkgutil.walk_packages(labctl.__path__, 'labctl.') if m.name != 'labctl.__main__']
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f'{name}: {type(exc).__name__}: {exc}')
print(len(names))
print('\\n'.join(failed))
"""


def test_every_labctl_module_imports(windows_like):
    proc = windows_like.python(IMPORT_ALL)
    assert proc.returncode == 0, proc.stderr
    count, *failed = proc.stdout.splitlines()
    assert int(count) >= 50  # the whole package, not a stub of it
    assert [f for f in failed if f] == []


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)


@pytest.mark.parametrize("command", _commands())
def test_every_commands_help(windows_like, tmp_path, command):
    proc = windows_like.labctl(tmp_path / "lab", command, "--help")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _no_bug(proc) -> None:
    assert proc.returncode != ExitCode.INTERNAL, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


def test_commands_without_a_hypervisor(windows_like, tmp_path):
    lab = tmp_path / "lab"
    lab.mkdir()
    runs = {}

    def run(*args):
        proc = windows_like.labctl(lab, *args)
        _no_bug(proc)
        runs[" ".join(args)] = proc
        return proc

    # Exit codes that other parts of labctl decide (verify, status, lifecycle) may change;
    # only "not a bug" (no 70, no traceback: checked by run) is this test's business there.
    assert run("--help").returncode == 0
    assert run("--version").returncode == 0
    run("status")  # a new folder
    run("verify", "pod-1")  # no lab yet
    run("verify", "--all")
    run("kubeconfig")
    assert run("exercises").returncode == 0
    assert run("init").returncode == 0
    assert run("render").returncode == 0
    doctor = run("doctor", "--json")
    assert doctor.returncode == ExitCode.HOST_NOT_READY  # no Vagrant, no VirtualBox on this PATH
    findings = {f["id"]: f for f in json.loads(doctor.stdout)["findings"]}
    assert findings["vagrant"]["level"] == "fail" and findings["virtualbox"]["level"] == "fail"
    assert run("doctor").returncode == ExitCode.HOST_NOT_READY
    # `up` stops at the doctor, `halt` at the missing vagrant: both take the lab lock (filelock).
    run("up")
    run("halt")
    run("status")
    run("ssh", "k8s-master", "--", "true")
    assert (lab / "Vagrantfile").is_file() and (lab / "lab.yaml").is_file()
