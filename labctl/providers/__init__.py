"""Providers: what runs the lab's machines (labctl.providers.base.Provider).

PROVIDERS is the one list of the host providers a lab may name (`provider:` in
lab.yaml, `--provider`); spec validation, the doctor, rendering, `labctl init` and
the hints read it from here. ``open_provider`` builds the provider for a lab.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from labctl.providers.vagrant.hosts import HOST_PROVIDERS

if TYPE_CHECKING:
    from labctl.lab.paths import LabPaths
    from labctl.providers.base import Provider
    from labctl.spec.model import LabSpec

PROVIDERS: tuple[str, ...] = tuple(HOST_PROVIDERS)  # ("virtualbox", "libvirt"), both through Vagrant
DEFAULT_PROVIDER = "virtualbox"


def open_provider(paths: LabPaths, spec: LabSpec, *, env: Mapping[str, str] | None = None) -> Provider:
    """The lab's provider: Vagrant, on the host provider lab.yaml names."""
    from labctl.providers.vagrant.provider import VagrantProvider

    return VagrantProvider(paths.root, log_dir=paths.logs, host=spec.provider,
                           box=(spec.box.name, spec.box.version), env=env)
