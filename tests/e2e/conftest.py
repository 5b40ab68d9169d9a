"""Fixtures of the real-VM test: libvirt in a network namespace, the box, one lab.

Opt in with LABCTL_E2E=1 (`.ci/run` sets it, after tests/e2e/setup-host.sh). Everything
started here is torn down by the finalizers, also when a test fails; for a run that
was killed, `python -m tests.e2e.cleanup` removes the leftovers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.harness import E2E_PREFIXES, LibvirtNetns
from tests.e2e.lab import E2ELab

NEEDED = ("ip", "vagrant", "virsh", "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "debootstrap", "extlinux")


@pytest.fixture(scope="session")
def e2e_root():
    # Not under pytest's basetemp: other pytest sessions on the machine rotate those
    # folders away, and this one holds Vagrant's machine state for the whole run.
    # Kept afterwards (logs for a failed CI run); the VAGRANT_HOME copy of the box is not.
    root = Path(tempfile.mkdtemp(prefix="labctl-e2e-"))
    print(f"\ne2e folder: {root}")
    return root


@pytest.fixture(scope="session")
def libvirt_ns(e2e_root):
    if os.geteuid() != 0:
        pytest.fail("the e2e test needs root (network namespaces, libvirtd)")
    missing = [t for t in NEEDED if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run tests/e2e/setup-host.sh first")
    plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True).stdout
    if "vagrant-libvirt" not in plugins:
        pytest.fail("the vagrant-libvirt plugin is missing: run tests/e2e/setup-host.sh first")
    ns = LibvirtNetns.for_this_process(e2e_root / "logs")
    try:
        ns.start()
        yield ns
    finally:
        cleaned = ns.teardown(prefixes=E2E_PREFIXES)
        print(f"\ne2e teardown of {ns.name}: {cleaned or 'nothing left over'} (logs in {ns.log_dir})")


@pytest.fixture(scope="session")
def e2e_lab(libvirt_ns, e2e_root):
    root = e2e_root
    from tests.e2e.pins import prepare

    lab = E2ELab(ns=libvirt_ns, lab_dir=root / "lab", vagrant_home=root / "vagrant.d",
                 artifacts_env=prepare(root / "artifacts"))
    try:
        # The box's image is not put into the storage pool beforehand: the first
        # `labctl up` uploads it, as it does for a user.
        lab.add_box()
        lab.write_spec()
        yield lab
    finally:
        # Vagrant's own removal first (machine folders, its networks); the namespace
        # teardown then removes anything it missed.
        if (lab.lab_dir / "Vagrantfile").exists():
            lab.vagrant("destroy", "-f", timeout=300)
        shutil.rmtree(lab.vagrant_home, ignore_errors=True)
