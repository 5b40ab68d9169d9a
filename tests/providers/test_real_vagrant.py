"""The driver against the real `vagrant` installed here (Debian's 2.3.4, no VirtualBox).

Only what needs no VM and no network: the version, and the failures a laptop without
VirtualBox gets. VAGRANT_HOME points into the test's folder so ~/.vagrant.d is untouched.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from labctl.providers.vagrant import parse as vagrant_cli
from labctl.providers.vagrant.driver import VagrantDriver
from labctl.errors import ExitCode, VagrantFailed

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "vagrant"
REAL = shutil.which("vagrant")  # looked up before any fixture puts the stand-in first

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REAL is None or "fakes" in (REAL or ""), reason="needs the real vagrant CLI"),
]


@pytest.fixture
def real(tmp_path, monkeypatch) -> VagrantDriver:
    lab = tmp_path / "lab"
    lab.mkdir()
    shutil.copy(FIX / "Vagrantfile.recorded", lab / "Vagrantfile")
    monkeypatch.delenv("VAGRANT_DEFAULT_PROVIDER", raising=False)
    env = {"VAGRANT_HOME": str(tmp_path / "vagrant.d"), "VAGRANT_DEFAULT_PROVIDER": "virtualbox"}
    return VagrantDriver(lab, log_dir=lab / ".labctl" / "logs", env=env, executable=REAL)


def test_version_of_the_real_cli(real):
    assert re.fullmatch(r"\d+\.\d+\.\d+", real.version())


def test_status_without_virtualbox_says_to_install_it(real):
    with pytest.raises(VagrantFailed) as exc:
        real.status()
    err = exc.value
    assert err.exit_code == ExitCode.PROVIDER_FAILED and err.rc == 1
    assert err.command == "vagrant status --machine-readable"
    assert "error-exit: Vagrant::Errors::ProviderNotUsable" in err.evidence
    assert any("Vagrant could not detect VirtualBox!" in line for line in err.evidence)
    assert "install VirtualBox" in err.hint


def test_ssh_target_without_virtualbox_carries_stderr(real):
    with pytest.raises(VagrantFailed) as exc:
        real.ssh_target("k8s-node1")
    assert exc.value.where == "k8s-node1"
    assert any("isn't usable on this system" in line for line in exc.value.evidence)
    assert "install VirtualBox" in exc.value.hint


def test_up_without_virtualbox_fails_with_its_log(real):
    events = []
    with pytest.raises(VagrantFailed) as exc:
        real.up(["k8s-node1"], provider="virtualbox", deadline=300, on_event=lambda n, e: events.append((n, e)))
    err = exc.value
    assert err.where == "k8s-node1" and err.rc == 1
    assert "install VirtualBox" in err.hint
    assert events == [("k8s-node1", "started"), ("k8s-node1", "failed")]
    log = Path(err.log_path).read_text()
    assert "Vagrant could not detect VirtualBox!" in log
    assert "error-exit: Vagrant::Errors::ProviderNotUsable" in log


def test_recorded_up_failure_parses_the_same_way():
    text = (FIX / "up-virtualbox-not-usable.out").read_text()
    assert (FIX / "up-virtualbox-not-usable.rc").read_text().strip() == "1"
    assert vagrant_cli.error_exit(text)[0] == "Vagrant::Errors::ProviderNotUsable"
    assert "install VirtualBox" in vagrant_cli.hint_for("\n".join(vagrant_cli.human_lines(text)))
