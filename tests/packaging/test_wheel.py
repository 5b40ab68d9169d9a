"""An installed labctl carries its templates, playbooks and manifests (no checkout needed)."""

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_renders_a_lab_without_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("labctl-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "labctl/remote/ssh.py" in names and "labctl/providers/vagrant/provider.py" in names
    assert "labctl/remote/memory.py" not in names and "labctl/providers/memory.py" not in names  # tests' fakes
    env_dir = tmp_path / "venv"
    # System site-packages give the dependencies; the venv's own labctl comes first.
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    lab = tmp_path / "lab"
    probe = (
        "import labctl.resources as r, sys; from labctl.cli import main;"
        "print(r.data_root()); sys.argv=['labctl','--dir',sys.argv[1],'render']; main()"
    )
    out = subprocess.run(
        [str(py), "-c", probe, str(lab)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    data_root = Path(out.stdout.splitlines()[0])
    assert data_root.is_relative_to(env_dir) and data_root.name == "_data"
    assert (lab / "Vagrantfile").read_text().startswith("# -*- mode: ruby -*-")
    assert (lab / "scripts" / "k8s-master" / "facts.sh").is_file()
    for name in ("pod-1.yaml", "svc-loadbalancer.yaml"):
        assert (data_root / "manifests" / name).is_file()
