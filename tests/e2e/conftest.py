"""Fixtures of the real-VM test: libvirt in a network namespace, the box, one lab.

Opt in with LABCTL_E2E=1 (`.ci/run` sets it, after tests/e2e/setup-host.sh). Everything
started here is torn down by the finalizers, also when a test fails; for a run that
was killed, `python -m tests.e2e.cleanup` removes the leftovers.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.e2e.harness import E2E_PREFIXES, LibvirtNetns, seed_box_volume
from tests.e2e.lab import E2ELab

NEEDED = ("ip", "vagrant", "virsh", "libvirtd", "virtlogd", "qemu-system-x86_64", "qemu-img", "debootstrap", "extlinux")


@pytest.fixture(scope="session")
def libvirt_ns(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the e2e test needs root (network namespaces, libvirtd)")
    missing = [t for t in NEEDED if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run tests/e2e/setup-host.sh first")
    plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True).stdout
    if "vagrant-libvirt" not in plugins:
        pytest.fail("the vagrant-libvirt plugin is missing: run tests/e2e/setup-host.sh first")
    ns = LibvirtNetns.for_this_process(tmp_path_factory.mktemp("e2e-logs"))
    try:
        ns.start()
        yield ns
    finally:
        cleaned = ns.teardown(prefixes=E2E_PREFIXES)
        print(f"\ne2e teardown of {ns.name}: {cleaned or 'nothing left over'} (logs in {ns.log_dir})")


@pytest.fixture(scope="session")
def e2e_lab(libvirt_ns, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    lab = E2ELab(ns=libvirt_ns, lab_dir=root / "lab", vagrant_home=root / "vagrant.d")
    try:
        lab.add_box()
        seed_box_volume(libvirt_ns, lab.box_image, lab.box_name, lab.box_version)
        lab.write_spec()
        yield lab
    finally:
        # Vagrant's own removal first (machine folders, its networks); the namespace
        # teardown then removes anything it missed.
        if (lab.lab_dir / "Vagrantfile").exists():
            lab.vagrant("destroy", "-f", timeout=300)
        shutil.rmtree(lab.vagrant_home, ignore_errors=True)
