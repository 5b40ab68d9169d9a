"""What Vagrant's host providers (VirtualBox, libvirt) each need from labctl.

The only place that knows how the two differ when machines boot side by side; the
list of providers a lab may name (labctl.providers.PROVIDERS) is read from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# vagrant-libvirt uploads a box into the storage pool and creates the lab's networks
# under a lock that holds only inside one Vagrant process: a second `vagrant up` started
# alongside snapshots a half-uploaded box volume (its VM finds no boot disk) or fails
# with "network ... already exists". So with libvirt the first machine boots alone
# until its domain starts (this line in its output); the others then follow together.
LIBVIRT_SHARED_READY = "Starting domain."


@dataclass(frozen=True)
class HostProvider:
    name: str
    # Vagrant >= 2.3.5 takes a non-blocking lock on a box download: parallel `vagrant up`
    # of a box not yet on the host fail with "Download to global Vagrant location already
    # in progress". `vagrant box add` once, before the machines boot, avoids the race.
    add_box_first: bool = False
    # The first machine boots alone until this line appears in its output (or it ends).
    first_alone_until: str | None = None


HOST_PROVIDERS: dict[str, HostProvider] = {
    "virtualbox": HostProvider("virtualbox", add_box_first=True),
    # vagrant-libvirt's first machine downloads the box alone anyway (first_alone_until).
    "libvirt": HostProvider("libvirt", first_alone_until=LIBVIRT_SHARED_READY),
}


def host_provider(name: str | None) -> HostProvider:
    return HOST_PROVIDERS.get(name or "", HostProvider(name or ""))
