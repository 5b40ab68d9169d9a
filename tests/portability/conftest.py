"""Run Python (and labctl) as if on Windows: windows_sim.py as sitecustomize."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIM = Path(__file__).with_name("windows_sim.py")


class WindowsLike:
    def __init__(self, root: Path, pythonpath: Path = REPO) -> None:
        self.site = root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        shutil.copy(SIM, self.site / "sitecustomize.py")
        self.bin = root / "bin"  # nothing on PATH: no vagrant, no VBoxManage, no ssh
        self.bin.mkdir(exist_ok=True)
        self.home = root / "home"
        self.home.mkdir(exist_ok=True)
        self.pythonpath = pythonpath

    def env(self) -> dict[str, str]:
        return {"PATH": str(self.bin), "HOME": str(self.home), "PYTHONPATH": f"{self.site}{os.pathsep}{self.pythonpath}",
                "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", "NO_COLOR": "1",
                # Downloads stay on this machine (see tests/conftest.py), the cache in the test's folder.
                "LABCTL_MIRROR": os.environ.get("LABCTL_MIRROR", "http://127.0.0.1:9"),
                "LABCTL_CACHE_DIR": str(self.home / "cache")}

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        # cwd: not the checkout, so that only PYTHONPATH decides which labctl is imported.
        return subprocess.run([sys.executable, "-c", code], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, cwd=self.home)

    def labctl(self, lab: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "labctl", "-C", str(lab), *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout, cwd=self.home)


@pytest.fixture
def windows_like(tmp_path) -> WindowsLike:
    return WindowsLike(tmp_path / "winsim")
