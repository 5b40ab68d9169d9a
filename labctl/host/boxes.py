"""The default Vagrant box per (provider, CPU architecture).

A box is published per provider and per architecture; a Mac with Apple Silicon needs an
arm64 build for its provider or VirtualBox cannot boot it. Pinned versions, so every
student of a class boots the same image.

Where each row was checked (2026-12, from public sources; re-check before changing):
- virtualbox/amd64: bento/ubuntu-22.04 202401.31.0, the course lab's box since the
  first release of labctl (labctl/spec/model.py Box default, README "The default lab").
- virtualbox/arm64: bento/ubuntu-22.04 202510.26.0. bento's CHANGELOG.md ("Builds for
  version 202510.26.0", chef/bento commit 635483b1, 2025-10-27, still the newest build
  table at 6c949e8, 2026-06-26) marks ubuntu-22.04 "virtualbox aarch64" as built. Bento
  publishes each architecture under the one box name (chef/bento#1546, Vagrant Cloud
  architecture support); bento's README: "Vagrant 2.4.0+ is required for new cpu
  architecture support" and "Virtualbox 7.1.6+ required for arm64 support". The
  amd64 pin cannot serve arm64: bento's build table of February 2024 (commit 3094137d)
  has no "virtualbox aarch64" build of ubuntu-22.04. Not checked here: a download of
  the box itself (no network to the Vagrant registry from these machines).
- libvirt: no row. The 202510.26.0 table has no qemu build of ubuntu-22.04 for either
  architecture, and no other published box was verified here; the
  libvirt lab uses the spec's box (tests/e2e builds its own). A libvirt user names a
  box with a libvirt build for their architecture in lab.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.host.platform import AMD64, ARM64


@dataclass(frozen=True)
class BoxChoice:
    name: str
    version: str


BOXES: dict[tuple[str, str], BoxChoice] = {
    ("virtualbox", AMD64): BoxChoice("bento/ubuntu-22.04", "202401.31.0"),
    ("virtualbox", ARM64): BoxChoice("bento/ubuntu-22.04", "202510.26.0"),
}

# The oldest tools that can use an arm64 box (see the module docstring's sources).
ARM64_MIN_VIRTUALBOX = (7, 1, 6)
ARCH_MIN_VAGRANT = (2, 4, 0)


def default_box(provider: str, arch: str) -> BoxChoice | None:
    """The box a new lab uses for this provider and host architecture; None when no
    published box for the pair was verified (the spec's own default then stands)."""
    return BOXES.get((provider, arch))


def box_arch(name: str, version: str, provider: str) -> str | None:
    """Which architecture a pinned (name, version) is this table's default for, if any."""
    for (prov, arch), box in BOXES.items():
        if prov == provider and (box.name, box.version) == (name, version):
            return arch
    return None
