"""The e2e's host scripts are checked on every run, not only when VMs boot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("script", ["build_box.sh", "setup-host.sh"])
def test_host_script_passes_shellcheck(script):
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: tests/install-deps.sh installs it")
    proc = subprocess.run(["shellcheck", "-S", "warning", str(HERE / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
