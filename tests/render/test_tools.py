"""Rendered files checked by the real tools: `vagrant validate` and `shellcheck`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from labctl.lab.paths import LabPaths
from labctl.render.lab import render_lab
from tests.render.conftest import SPECS


def _real_vagrant() -> str | None:
    # A fixture may put the project's vagrant stand-in first on PATH; validate needs the real one.
    for candidate in ("/usr/bin/vagrant", shutil.which("vagrant")):
        if candidate and os.path.exists(candidate) and "tests/fakes" not in candidate:
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPECS))
def test_vagrant_validate(tmp_path, name):
    vagrant = _real_vagrant()
    if vagrant is None:
        pytest.skip("vagrant is not installed (.ci/run installs Debian's vagrant)")
    lab = tmp_path / "lab"
    render_lab(SPECS[name](), LabPaths(lab))
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "vagrant-home"), VAGRANT_CHECKPOINT_DISABLE="1")
    env.pop("VAGRANT_CWD", None)
    proc = subprocess.run([vagrant, "validate", "--ignore-provider"], cwd=lab, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Vagrantfile validated successfully" in proc.stdout


@pytest.mark.slow
def test_vagrant_validate_catches_a_broken_vagrantfile(tmp_path):
    """The check above can fail: a Vagrantfile with a bad setting is refused."""
    vagrant = _real_vagrant()
    if vagrant is None:
        pytest.skip("vagrant is not installed")
    lab = tmp_path / "lab"
    render_lab(SPECS["default"](), LabPaths(lab))
    text = lab.joinpath("Vagrantfile").read_text().replace("node.vm.hostname", "node.vm.hostnam", 1)
    lab.joinpath("Vagrantfile").write_text(text)
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "vagrant-home"), VAGRANT_CHECKPOINT_DISABLE="1")
    proc = subprocess.run([vagrant, "validate", "--ignore-provider"], cwd=lab, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0


def _all_scripts(tmp_path: Path) -> list[Path]:
    scripts = []
    for name, make in sorted(SPECS.items()):
        paths = LabPaths(tmp_path / name)
        render_lab(make(), paths)
        scripts += sorted(paths.scripts.rglob("*.sh"))
    return scripts


def test_shellcheck_every_rendered_script(tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (.ci/run installs it)")
    scripts = _all_scripts(tmp_path)
    roles = {p.parent.name for p in scripts}
    assert {"k8s-master", "k8s-node1", "cp", "w2"} <= roles
    assert len(scripts) > 60
    proc = subprocess.run(["shellcheck", "--shell=bash", "--severity=style", *map(str, scripts)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_shellcheck_would_catch_a_problem(tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nrm -rf $1/\n")
    assert subprocess.run(["shellcheck", str(bad)], capture_output=True).returncode != 0


def test_every_script_parses_with_bash(tmp_path):
    for script in _all_scripts(tmp_path):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


@pytest.mark.slow
def test_vagrant_validate_with_the_libvirt_provider_plugin(tmp_path):
    """Where vagrant-libvirt is installed, its own config validation accepts the block."""
    vagrant = _real_vagrant()
    if vagrant is None:
        pytest.skip("vagrant is not installed")
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "vagrant-home"), VAGRANT_CHECKPOINT_DISABLE="1",
               VAGRANT_DEFAULT_PROVIDER="libvirt")
    plugins = subprocess.run([vagrant, "plugin", "list"], env=env, capture_output=True, text=True, timeout=120).stdout
    if "vagrant-libvirt" not in plugins:
        pytest.skip("vagrant-libvirt is not installed")
    lab = tmp_path / "lab"
    render_lab(SPECS["libvirt"](), LabPaths(lab))
    proc = subprocess.run([vagrant, "validate"], cwd=lab, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
