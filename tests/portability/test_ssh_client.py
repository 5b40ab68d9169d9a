"""Interactive `labctl ssh NODE` needs an OpenSSH client: without one it says what to
install (exit 4) instead of failing inside exec (exit 70)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from labctl.errors import ExitCode, HostNotReady
from labctl.host.sshclient import exec_ssh, find_ssh_client
from tests.portability.conftest import REPO


def test_no_client_says_what_to_install(tmp_path):
    with pytest.raises(HostNotReady) as err:
        exec_ssh(["ssh", "-V"], env={"PATH": str(tmp_path)})
    assert err.value.exit_code == ExitCode.HOST_NOT_READY
    assert "-- COMMAND" in err.value.message and "openssh" in err.value.hint.lower()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client here")
def test_the_client_takes_over_the_process():
    code = "from labctl.host.sshclient import exec_ssh; exec_ssh(['ssh', '-V']); print('not reached')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=REPO)
    assert proc.returncode == 0 and "OpenSSH" in proc.stderr and "not reached" not in proc.stdout
    assert find_ssh_client() == shutil.which("ssh")
